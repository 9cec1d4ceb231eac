# Regression (issue 12): `eval`, `search`, `info` and `query` used a damaged index.faiss (exit 0
# with cosine 2.3e37, empty result lists, recall@1 0.80 instead of 1.00). Each now checks the
# published files it reads against the size and XXH3 that their stage's completion marker
# recorded: one byte flipped in the middle of index.faiss (size kept), of a shard, of
# ids.jsonl: exit 1 naming the file. The unchanged outputs still work; an index without a
# marker (an older shardforge) is used with a warning.
source "$(dirname "$0")/lib.bash"
sf_init "$@"
DD="$SRC/tests/e2e/dedupdata.py"

# flip_byte FILE: the byte in the middle of FILE, inverted (the size stays).
flip_byte() {
  "$PY" - "$1" <<'PY'
import os, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0xFF]))
PY
}

# expect_fail NP RC PATTERN ARGS...: shardforge ARGS exits RC with PATTERN (ERE) on stderr.
expect_fail() {
  local np=$1 rc=$2 pat=$3
  shift 3
  sf_mpirun "$np" "$WORK/bad.log" "$@"
  [[ $SF_RC -eq $rc ]] || { show "$WORK/bad.log"; fail "$* exited $SF_RC, expected $rc"; }
  grep -qE "$pat" "$WORK/bad.log.stderr" || { show "$WORK/bad.log"; fail "$*: stderr lacks /$pat/"; }
}

check "a small sharded build (ann.h5 2000 x 16, IVF8,Flat, 2 shards) with eval and search queries"
sfdata ann "$WORK/ann.h5" --rows 2000 --queries 50 --dim 16 --seed 7 --spread 1.0
OUT="$WORK/b"
write_config "$WORK/b.yaml" "$OUT" "IVF8,Flat" "$WORK/ann.h5"
cat >>"$WORK/b.yaml" <<EOF
eval:
  queries: "$WORK/ann.h5"
  nprobe: [8]
partition:
  shards: 2
search:
  queries: "$WORK/ann.h5"
  nprobe: 8
EOF
run_ok 2 "$WORK/build.log" build "$WORK/b.yaml"
ok

check "unchanged outputs: eval (recall@1 1.0 at nprobe = nlist), search at 2 ranks, info: exit 0"
run_ok 2 "$WORK/eval.log" eval "$WORK/b.yaml"
grep -qE "^ +8 +1\.0000 " "$WORK/eval.log.stdout" || { show "$WORK/eval.log"; fail "recall@1 is not 1.0"; }
run_ok 2 "$WORK/search.log" search "$WORK/b.yaml"
run_ok 1 "$WORK/info.log" info "$WORK/b.yaml"
grep -q "vectors      2000 x 16 dims" "$WORK/info.log.stdout" || { show "$WORK/info.log"; fail "info"; }
ok

check "one byte flipped in the middle of index.faiss: eval (1 and 2 ranks, also --resume) and info exit 1 naming it"
cp "$OUT/index.faiss" "$WORK/index.good"
flip_byte "$OUT/index.faiss"
[[ $(stat -c %s "$OUT/index.faiss") -eq $(stat -c %s "$WORK/index.good") ]] || fail "size changed"
msg="$OUT/index.faiss: checksum mismatch with its marker \(checkpoints/merge.json\): the file changed after the stage wrote it; rebuild"
expect_fail 1 1 "$msg" eval "$WORK/b.yaml"
expect_fail 2 1 "$msg" eval "$WORK/b.yaml"
expect_fail 2 1 "$msg" eval "$WORK/b.yaml" --resume
[[ ! -e $OUT/eval.json ]] || fail "a failed eval left eval.json"
expect_fail 1 1 "$msg" info "$WORK/b.yaml"
ok

check "index.faiss truncated: the size is named"
head -c 812 "$WORK/index.good" >"$OUT/index.faiss"
expect_fail 1 1 "$OUT/index.faiss: 812 bytes, its marker \(checkpoints/merge.json\) says $(stat -c %s "$WORK/index.good")" \
  info "$WORK/b.yaml"
cp "$WORK/index.good" "$OUT/index.faiss"
run_ok 1 "$WORK/info2.log" info "$WORK/b.yaml"
ok "restored: info works again"

check "one byte flipped in a shard: search at 1 and 2 ranks exits 1 naming the shard (checked by the rank that loads it)"
cp "$OUT/shards/shard-0001.faiss" "$WORK/shard.good"
flip_byte "$OUT/shards/shard-0001.faiss"
for np in 1 2; do
  expect_fail $np 1 "$OUT/shards/shard-0001.faiss: checksum mismatch with its marker" search "$WORK/b.yaml"
done
cp "$WORK/shard.good" "$OUT/shards/shard-0001.faiss"
flip_byte "$OUT/plan.json"
expect_fail 2 1 "$OUT/plan.json: checksum mismatch with its marker" search "$WORK/b.yaml"
[[ ! -e $OUT/search.json && ! -e $OUT/search.h5 ]] || fail "a failed search left search.json or search.h5"
expect_fail 1 1 "$OUT/plan.json: checksum mismatch with its marker" info "$WORK/b.yaml"
ok

check "no merge marker (an index from an older shardforge, or copied without checkpoints/): a warning, used as it is"
mkdir -p "$WORK/old"
cp "$WORK/index.good" "$WORK/old/index.faiss"
run_ok 1 "$WORK/old.log" info "$WORK/b.yaml" --set "output.dir=$WORK/old"
grep -q "warn.*$WORK/old/index.faiss: not verified: no completion marker checkpoints/merge.json" "$WORK/old.log.stderr" ||
  { show "$WORK/old.log"; fail "no warning"; }
grep -q "vectors      2000 x 16 dims" "$WORK/old.log.stdout" || { show "$WORK/old.log"; fail "info"; }
ok

check "a small text run (planted corpus, 120 documents); query of a document's text finds it"
"$PY" "$DD" planted "$WORK/corpus" --docs 120 --seed 5
RUN="$WORK/run"
printf 'input:\n  format: jsonl\n  paths:\n    - "%s"\noutput:\n  dir: "%s"\nindex:\n  factory: "IVF4,Flat"\n  metric: ip\n' \
  "$WORK/corpus/a.jsonl" "$RUN" >"$WORK/run.yaml"
run_ok 1 "$WORK/run.log" run "$WORK/run.yaml"
query_finds_itself "$RUN" "$WORK/corpus/a.jsonl" orig-7
text=$QUERY_TEXT
ok

# query_fails FILE: query exits 1 and names FILE (a mismatch with its marker).
query_fails() {
  set +e
  "$SF" query "$RUN" "$text" -k 3 --nprobe 4 >"$WORK/q.out" 2>&1
  local rc=$?
  set -e
  [[ $rc -eq 1 ]] || { show "$WORK/q.out"; fail "query with a damaged $1 exited $rc, expected 1"; }
  grep -q "$RUN/$1: checksum mismatch with its marker" "$WORK/q.out" || { show "$WORK/q.out"; fail "query did not name $1"; }
}
check "query: one byte flipped in index.faiss, then in ids.jsonl, then in embedder.json: exit 1 naming the file"
for f in index.faiss ids.jsonl embedder.json; do
  cp "$RUN/$f" "$WORK/good"
  flip_byte "$RUN/$f"
  query_fails "$f"
  cp "$WORK/good" "$RUN/$f"
done
"$SF" query "$RUN" "$text" -k 3 --nprobe 4 >"$WORK/q.out" 2>&1 || { show "$WORK/q.out"; fail "restored: query failed"; }
ok "restored: query works again"

sf_done
