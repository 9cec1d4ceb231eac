# A kill while results are published (io/atomic_file.cc: write a temporary, fsync, rename,
# fsync the directory). Rank 0 runs under strace, which SIGKILLs it on entry to its Nth rename,
# i.e. with the new file complete under its temporary name and not yet published; N covers each
# publishing step of a build (trained.faiss, its marker, an add piece and its marker,
# index.faiss, its marker, run.json, the last status.json). After each kill: every visible
# result is complete (a file is absent, or the same bytes as an uninterrupted build; every JSON
# file parses; every marker's outputs exist with its sizes), and --resume reuses only what
# verifies and ends byte-identical. Then a kill while a --resume with a changed key replaces
# trained.faiss: the old file and its marker stay, consistent, and --resume finishes the new one.
source "$(dirname "$0")/lib.bash"
sf_init "$@"
command -v strace >/dev/null || sf_skip "strace not installed (scripts/install-deps.sh installs it)"
SETS=(--set output.piece_rows=4096 --set input.batch_rows=2048)

check "data: 20000 x 16, IVF16,Flat; reference builds (2 ranks) with kmeans_iterations 10 and 4"
sfdata gen "$WORK/base.fvecs" --rows 20000 --dim 16 --seed 5
write_config "$WORK/build.yaml" "$WORK/unused" "IVF16,Flat" "$WORK/base.fvecs"
run_ok 2 "$WORK/ref.log" build "$WORK/build.yaml" --set "output.dir=$WORK/ref" "${SETS[@]}"
run_ok 2 "$WORK/ref4.log" build "$WORK/build.yaml" --set "output.dir=$WORK/ref4" "${SETS[@]}" --set index.kmeans_iterations=4
cmp -s "$WORK/ref/trained.faiss" "$WORK/ref4/trained.faiss" && fail "kmeans_iterations 4 trained the same quantizer"
ok


check "rank 0's renames in a traced build: the publishing steps and their order"
traced_renames "$WORK/list.log" "$WORK/list.trace" "$WORK/list" \
  build "$WORK/build.yaml" --set "output.dir=$WORK/list" "${SETS[@]}"
cmp "$WORK/ref/index.faiss" "$WORK/list/index.faiss" || fail "the traced build differs"
# first_rename PATTERN: the 1-based number of rank 0's first rename to a path matching PATTERN.
first_rename() {
  local i
  for i in "${!NAMES[@]}"; do
    [[ ${NAMES[$i]} == $1 ]] && { echo $((i + 1)); return 0; }
  done
  fail "rank 0 never renamed to $1 (renames: ${NAMES[*]})"
}
STEPS=()
for pat in trained.faiss checkpoints/train.json 'pieces/*.sfsh' 'checkpoints/add/*.json' index.faiss \
  checkpoints/merge.json run.json; do
  STEPS+=("$(first_rename "$pat")")
done
STEPS+=("${#NAMES[@]}")  # the last: status.json, finished
ok "${#NAMES[@]} renames ($calls); killed at: ${STEPS[*]}"

# complete_or_absent DIR: every visible result of DIR is complete.
complete_or_absent() {
  local dir=$1 f
  for f in trained.faiss index.faiss; do
    [[ ! -e $dir/$f ]] || cmp -s "$WORK/ref/$f" "$dir/$f" || fail "$dir/$f is visible and not the complete file"
  done
  "$PY" - "$dir" <<'PYEOF' || fail "a visible JSON file or marker is not complete"
import glob, json, os, sys
d = sys.argv[1]
for p in glob.glob(d + "/*.json") + glob.glob(d + "/checkpoints/**/*.json", recursive=True):
    with open(p) as f:
        doc = json.load(f)  # a half-written file does not parse
    for o in doc.get("outputs", []) if "/checkpoints/" in p else []:
        q = os.path.join(d, o["path"])
        assert os.path.exists(q), (p, "names", q, "which is not there")
        assert os.path.getsize(q) == o["bytes"], (p, q, os.path.getsize(q), o["bytes"])
PYEOF
}

for n in "${STEPS[@]}"; do
  name=${NAMES[$((n - 1))]}
  check "SIGKILL of rank 0 on entry to rename $n ($name): nothing half-written visible; --resume byte-identical"
  dir=$WORK/kill-$n
  traced 2 "$WORK/kill-$n.log" "$WORK/kill-$n.trace" "-e inject=$calls:signal=SIGKILL:when=$n" \
    build "$WORK/build.yaml" --set "output.dir=$dir" "${SETS[@]}"
  [[ $SF_RC -ne 0 ]] || { show "$WORK/kill-$n.log"; fail "the run was not killed"; }
  grep -q "killed by SIGKILL" "$WORK/kill-$n.trace" || fail "strace did not kill rank 0"
  [[ $(traced_targets "$WORK/kill-$n.trace" "$dir" | tail -n 1) == "$name" ]] ||
    fail "rank 0 was killed at $(traced_targets "$WORK/kill-$n.trace" "$dir" | tail -n 1), expected $name"
  ls "$dir/$name".tmp.* >/dev/null 2>&1 || fail "no temporary for $name: the kill was not at its rename"
  if [[ $name != status.json ]]; then
    [[ ! -e $dir/$name ]] || fail "$name is visible though its rename never ran"
  fi
  complete_or_absent "$dir"
  run_ok 2 "$WORK/resume-$n.log" build "$WORK/build.yaml" --set "output.dir=$dir" "${SETS[@]}" --resume
  ! grep -E "redo: .*(differs|size|truncated|damaged)" "$WORK/resume-$n.log" ||
    fail "a published file did not verify after the kill"
  cmp "$WORK/ref/index.faiss" "$dir/index.faiss" || fail "resumed index.faiss differs"
  cmp "$WORK/ref/trained.faiss" "$dir/trained.faiss" || fail "resumed trained.faiss differs"
  ok
done

check "SIGKILL while a --resume with kmeans_iterations 4 publishes its trained.faiss: the old file and marker stay; --resume ends as a fresh kmeans_iterations 4 build"
cp -a "$WORK/ref" "$WORK/old-list" && cp -a "$WORK/ref" "$WORK/old"
traced 2 "$WORK/old-list.log" "$WORK/old-list.trace" "" build "$WORK/build.yaml" --set "output.dir=$WORK/old-list" \
  "${SETS[@]}" --set index.kmeans_iterations=4 --resume
[[ $SF_RC -eq 0 ]] || { show "$WORK/old-list.log"; fail "traced resume exited $SF_RC"; }
mapfile -t NAMES < <(traced_targets "$WORK/old-list.trace" "$WORK/old-list")
n=$(first_rename trained.faiss)
traced 2 "$WORK/old.log" "$WORK/old.trace" "-e inject=$calls:signal=SIGKILL:when=$n" build "$WORK/build.yaml" \
  --set "output.dir=$WORK/old" "${SETS[@]}" --set index.kmeans_iterations=4 --resume
[[ $SF_RC -ne 0 ]] || { show "$WORK/old.log"; fail "the run was not killed"; }
ls "$WORK/old/trained.faiss".tmp.* >/dev/null 2>&1 || fail "no temporary: the kill was not at trained.faiss's rename"
cmp "$WORK/ref/trained.faiss" "$WORK/old/trained.faiss" || fail "trained.faiss is not the old complete file"
if [[ -e $WORK/old/checkpoints/train.json ]]; then
  cmp "$WORK/ref/checkpoints/train.json" "$WORK/old/checkpoints/train.json" || fail "the train marker is not the old one"
fi
run_ok 2 "$WORK/old-resume.log" build "$WORK/build.yaml" --set "output.dir=$WORK/old" "${SETS[@]}" \
  --set index.kmeans_iterations=4 --resume
cmp "$WORK/ref4/trained.faiss" "$WORK/old/trained.faiss" || fail "resumed trained.faiss differs from a fresh kmeans_iterations 4 build"
cmp "$WORK/ref4/index.faiss" "$WORK/old/index.faiss" || fail "resumed index.faiss differs from a fresh kmeans_iterations 4 build"
ok "killed at rename $n"

sf_done
