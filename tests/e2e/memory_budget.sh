# The per-rank memory budget (resources.memory_per_rank, issue 15): logged on rank 0 with its
# source, recorded in run.json beside each stage's peak and shown by `info`; a training sample
# that cannot fit fails at once (exit 2, one error naming index.train_size, the budget and the
# need, agreed on every rank: no MPI_ABORT), before k-means, and leaves no index.faiss; so does
# a budget below what a rank holds when it starts; `run`'s embed reads its texts in batches of
# the budget, with the same outputs as without one.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

check "data: 200000 x 64"
sfdata gen "$WORK/base.fvecs" --rows 200000 --dim 64 --seed 5
write_config "$WORK/c.yaml" "$WORK/out" "IVF64,Flat" "$WORK/base.fvecs"
ok

check "a build within 2 GiB per rank: the budget logged, in run.json and in info"
run_ok 2 "$WORK/within.log" build "$WORK/c.yaml" --set resources.memory_per_rank=2GiB
grep -qF 'memory budget 2 GiB per rank (resources.memory_per_rank)' "$WORK/within.log" ||
  { show "$WORK/within.log"; fail "no log line with the budget and its source"; }
"$PY" - "$WORK/out/run.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))["commands"]["build"]
assert b["memory_budget_mib"] == 2048, b
assert b["memory_budget_source"] == "resources.memory_per_rank", b
for s in b["stages"]:
    assert s["over_budget"] is False and 0 < s["peak_over_budget"] < 1, s
PY
run_ok 1 "$WORK/info.log" info "$WORK/c.yaml"
grep -qF 'memory budget 2048 MiB per rank (resources.memory_per_rank)' "$WORK/info.log" ||
  { show "$WORK/info.log"; fail "info does not show the budget"; }
grep -q 'of budget' "$WORK/info.log" || { show "$WORK/info.log"; fail "info shows no stage against the budget"; }
ok

# A budget below what a rank holds when it starts (the program, MPI, FAISS: ~25 MiB) fails at
# once, before any stage, on every rank alike.
check "resources.memory_per_rank=1MiB: exit 2 at startup, naming the key, the budget and a rank's start"
rm -rf "$WORK/out"
sf_mpirun 2 "$WORK/start.log" build "$WORK/c.yaml" --set resources.memory_per_rank=1MiB
[[ $SF_RC -eq 2 ]] || { show "$WORK/start.log"; fail "exit code $SF_RC, expected 2"; }
expect_one_error "budget below a rank's start" "$WORK/start.log" "resources.memory_per_rank" \
  "the memory budget 1 MiB per rank (resources.memory_per_rank)" \
  "is less than a rank holds before any stage starts" "the largest rank's" "$WORK/c.yaml"
grep -q '\[info\] corpus:' "$WORK/start.log" && { show "$WORK/start.log"; fail "a stage started"; }
[[ -e "$WORK/out/index.faiss" ]] && fail "index.faiss exists after a failed build"
ok "${ERROR_LINE#*\[error\] }"

# build's read and add plan from the budget: input.batch_rows and output.piece_rows lowered to
# what 40 MiB holds (logged once), index.faiss byte-identical to a build without a budget.
check "add in 40 MiB per rank (2 ranks): smaller batches and pieces, the same index.faiss"
sfdata gen "$WORK/b256.fvecs" --rows 20000 --dim 256 --seed 3
write_config "$WORK/d.yaml" "$WORK/add-budget" "IVF16,Flat" "$WORK/b256.fvecs"
run_ok 2 "$WORK/add-budget.log" build "$WORK/d.yaml" --set resources.memory_per_rank=40MiB
[[ $(grep -c '\] add: .* rows per batch, .* per piece (input.batch_rows 16384, output.piece_rows 65536, memory budget 40 MiB)' "$WORK/add-budget.log") -eq 1 ]] ||
  { show "$WORK/add-budget.log"; fail "no single log line with the lowered batches and pieces"; }
run_ok 2 "$WORK/add-free.log" build "$WORK/d.yaml" --set output.dir="$WORK/add-free"
grep -q 'rows per batch' "$WORK/add-free.log" && { show "$WORK/add-free.log"; fail "lowered without a budget"; }
cmp "$WORK/add-budget/index.faiss" "$WORK/add-free/index.faiss" ||
  fail "index.faiss differs with the budget's batches and pieces"
ok "$(grep -o 'add: [0-9]* rows per batch, [0-9]* per piece' "$WORK/add-budget.log")"

# A 200000-row sample: 100000 x 64 floats per rank (24 MiB read and moved) and the k-means
# buffers do not fit 40 MiB.
for np in 1 2; do
  check "index.train_size 200000 in 40 MiB per rank ($np rank(s)): exit 2 before k-means"
  rm -rf "$WORK/out"
  sf_mpirun "$np" "$WORK/over-$np.log" build "$WORK/c.yaml" --set resources.memory_per_rank=40MiB \
    --set index.train_size=200000
  [[ $SF_RC -eq 2 ]] || { show "$WORK/over-$np.log"; fail "exit code $SF_RC, expected 2"; }
  expect_one_error "train over budget" "$WORK/over-$np.log" "index.train_size" \
    "200000 rows x 64 dims" "more than the memory budget 40 MiB per rank (resources.memory_per_rank)" \
    "$WORK/c.yaml"
  grep -q '\[info\] train: k-means' "$WORK/over-$np.log" && { show "$WORK/over-$np.log"; fail "k-means started"; }
  [[ -e "$WORK/out/index.faiss" ]] && fail "index.faiss exists after a failed build"
  ok "${ERROR_LINE#*\[error\] }"
done

# `run`: embed reads a rank's texts in batches planned from the budget (budget / 16) and writes
# the vectors to a file per rank; a small budget (many batches) gives the same outputs as none,
# at 1 and 2 ranks.
check "run: embed in batches of the budget's sixteenth: the same outputs as without a budget"
"$PY" - "$WORK/docs.jsonl" <<'PY'
import json, random, sys
r = random.Random(7)
words = [f"w{i}" for i in range(5000)]
with open(sys.argv[1], "w") as f:
    for i in range(20000):
        f.write(json.dumps({"id": str(i), "text": " ".join(r.choices(words, k=200))}) + "\n")
PY
{
  echo "input: {format: jsonl, paths: [\"$WORK/docs.jsonl\"]}"
  echo "output: {dir: \"$WORK/run\"}"
  echo "index: {metric: ip}"
} >"$WORK/run.yaml"
run_ok 1 "$WORK/run-none.log" run "$WORK/run.yaml" --set output.dir="$WORK/run-none"
for np_budget in 1:64MiB 2:40MiB; do  # the smallest budgets train's sample fits (24 MB of text)
  np=${np_budget%%:*} budget=${np_budget#*:}
  run_ok "$np" "$WORK/run-$np.log" run "$WORK/run.yaml" --set output.dir="$WORK/run-$np" \
    --set resources.memory_per_rank="$budget"
  grep -q "embed: .*batches of [0-9.]* MiB" "$WORK/run-$np.log" || { show "$WORK/run-$np.log"; fail "no embed batch size logged"; }
  for f in index.faiss ids.jsonl duplicates.jsonl; do
    cmp -s "$WORK/run-none/$f" "$WORK/run-$np/$f" || fail "$f at $np rank(s) within $budget differs from the run without a budget"
  done
done
ok "index.faiss, ids.jsonl, duplicates.jsonl the same bytes at 1 rank (64 MiB) and 2 ranks (40 MiB)"

# dedup plans from the budget as it reads: within it, the same outputs as without one; a share
# whose signatures cannot fit stops reading and every rank fails alike, before any sketch.
check "dedup in 32 MiB per rank (2 ranks): the same kept/ and duplicates.jsonl as without a budget"
{
  echo "input: {format: jsonl, paths: [\"$WORK/docs.jsonl\"]}"
  echo "output: {dir: \"$WORK/dedup\"}"
  echo "dedup: {near: true}"
} >"$WORK/dedup.yaml"
run_ok 2 "$WORK/dedup-budget.log" dedup "$WORK/dedup.yaml" --set resources.memory_per_rank=32MiB
run_ok 2 "$WORK/dedup-free.log" dedup "$WORK/dedup.yaml" --set output.dir="$WORK/dedup-free"
diff -r "$WORK/dedup/kept" "$WORK/dedup-free/kept" >/dev/null || fail "kept/ differs with a budget"
cmp "$WORK/dedup/duplicates.jsonl" "$WORK/dedup-free/duplicates.jsonl" ||
  fail "duplicates.jsonl differs with a budget"
ok

check "dedup.num_perm 1024 in 32 MiB per rank (2 ranks): exit 2 while reading, nothing published"
rm -rf "$WORK/dedup"
sf_mpirun 2 "$WORK/dedup-over.log" dedup "$WORK/dedup.yaml" --set resources.memory_per_rank=32MiB \
  --set dedup.num_perm=1024
[[ $SF_RC -eq 2 ]] || { show "$WORK/dedup-over.log"; fail "exit code $SF_RC, expected 2"; }
expect_one_error "dedup over budget" "$WORK/dedup-over.log" "dedup near" "x 1024 values (dedup.num_perm)" \
  "more than the memory budget 32 MiB per rank (resources.memory_per_rank)" \
  "run on more ranks, lower dedup.num_perm, or raise resources.memory_per_rank" "$WORK/dedup.yaml"
grep -q '\] exact: ' "$WORK/dedup-over.log" && { show "$WORK/dedup-over.log"; fail "exact started"; }
compgen -G "$WORK/dedup/sketch/*.sfar" >/dev/null && fail "a sketch was published"
[[ -e "$WORK/dedup/duplicates.jsonl" || -e "$WORK/dedup/kept" ]] && fail "outputs after a failed dedup"
ok "${ERROR_LINE#*\[error\] }"

sf_done
