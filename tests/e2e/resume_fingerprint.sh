# Regression (issue 12): resume knew an input file by path, size and mtime only, so an edit
# that kept the size and restored the mtime (`touch -r`) was resumed from stale sketches and
# embeddings and every output differed from a fresh run. The fingerprint now also holds the
# file's ctime and inode (which `touch` cannot set back), and with input.verify: content the
# XXH3 of its bytes (rank 0 reads each input once and shares the checksums).
# dedup (2 ranks) and run (1 rank): edit one letter of an input in place, restore its mtime,
# --resume: the reading is redone and the outputs equal a fresh run's.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_text_lib.bash"
sf_init "$@"
DD="$SRC/tests/e2e/dedupdata.py"
OUTS=(duplicates.jsonl kept/00000.jsonl.zst)

# edit_keeping_mtime FILE: one letter of the first record's text changed in place (same size,
# same inode), then the mtime set back with `touch -r`.
edit_keeping_mtime() {
  local file=$1
  touch -r "$file" "$WORK/stamp"
  "$PY" - "$file" <<'PY'
import sys
path = sys.argv[1]
with open(path, "r+b") as f:
    data = f.read()
    at = data.index(b'"text": "') + len(b'"text": "')
    f.seek(at)
    f.write(b"Q" if data[at:at + 1] != b"Q" else b"R")
PY
  touch -r "$WORK/stamp" "$file"
  [[ $(stat -c %Y.%y "$file") == $(stat -c %Y.%y "$WORK/stamp") ]] || fail "mtime not restored"
}

check "data: a planted JSONL corpus (300 documents, 3 files); a 2-rank dedup"
"$PY" "$DD" planted "$WORK/corpus" --docs 300 --seed 11 >/dev/null
inputs=("$WORK/corpus/a.jsonl" "$WORK/corpus/b.jsonl" "$WORK/corpus/c.jsonl")
text_config "$WORK/dedup.yaml" "$WORK/run" "${inputs[@]}"
run_ok 2 "$WORK/first.log" dedup "$WORK/dedup.yaml"
cp -a "$WORK/run" "$WORK/before"
ok

check "a.jsonl edited in place (size kept), mtime restored with touch -r: --resume redoes the reading"
size=$(stat -c %s "$WORK/corpus/a.jsonl")
edit_keeping_mtime "$WORK/corpus/a.jsonl"
[[ $(stat -c %s "$WORK/corpus/a.jsonl") -eq $size ]] || fail "size changed"
run_ok 2 "$WORK/resume.log" dedup "$WORK/dedup.yaml" --resume
grep -q "sketch/rank-00000: redo: input files changed" "$WORK/resume.log" ||
  { show "$WORK/resume.log"; fail "no redo line naming the input files"; }
grep -q "read+sketch: 0 of 2 rank(s) read their verified sketch back" "$WORK/resume.log" ||
  { show "$WORK/resume.log"; fail "stale sketches were reused"; }
ok

check "the resumed outputs equal a fresh run's over the edited corpus (and differ from the stale ones)"
run_ok 2 "$WORK/fresh.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/fresh"
same_outputs "$WORK/fresh" "$WORK/run" "${OUTS[@]}"
cmp -s "$WORK/before/kept/00000.jsonl.zst" "$WORK/fresh/kept/00000.jsonl.zst" &&
  fail "the edit does not show in kept/: this test would not see stale outputs"
ok

check "input.verify: content at 2 ranks: rank 0 checksums the inputs once; unchanged -> all reused; edited -> redone"
run_ok 2 "$WORK/c1.log" dedup "$WORK/dedup.yaml" --set input.verify=content --set "output.dir=$WORK/content"
grep -q "input.verify: content: checksummed 3 input file(s)" "$WORK/c1.log" ||
  { show "$WORK/c1.log"; fail "no checksum line"; }
grep -q '"xxh3"' "$WORK/content/checkpoints/sketch/rank-00001.json" || fail "rank 1's sketch marker has no input checksum"
run_ok 2 "$WORK/c2.log" dedup "$WORK/dedup.yaml" --set input.verify=content --set "output.dir=$WORK/content" --resume
grep -q "kept/ and duplicates.jsonl are complete: nothing to do" "$WORK/c2.log" ||
  { show "$WORK/c2.log"; fail "unchanged inputs: the complete run was redone"; }
rm -rf "$WORK/content/kept" "$WORK/content/checkpoints/kept.json"
run_ok 2 "$WORK/c2b.log" dedup "$WORK/dedup.yaml" --set input.verify=content --set "output.dir=$WORK/content" --resume
grep -q "read+sketch: 2 of 2 rank(s) read their verified sketch back" "$WORK/c2b.log" ||
  { show "$WORK/c2b.log"; fail "unchanged inputs: the sketches were not reused (do the ranks' fingerprints agree?)"; }
edit_keeping_mtime "$WORK/corpus/b.jsonl"
run_ok 2 "$WORK/c3.log" dedup "$WORK/dedup.yaml" --set input.verify=content --set "output.dir=$WORK/content" --resume
grep -q "sketch/rank-00000: redo: input files changed" "$WORK/c3.log" || { show "$WORK/c3.log"; fail "no redo line"; }
run_ok 2 "$WORK/fresh2.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/fresh2"
same_outputs "$WORK/fresh2" "$WORK/content" "${OUTS[@]}"
ok

check "run (1 rank): the same edit redoes the reading and the embeddings; outputs equal a fresh run's"
RUN_SETS=(--set index.factory=IVF4,Flat --set index.metric=ip)
text_config "$WORK/run.yaml" "$WORK/r" "${inputs[@]}"
run_ok 1 "$WORK/r1.log" run "$WORK/run.yaml" "${RUN_SETS[@]}"
edit_keeping_mtime "$WORK/corpus/c.jsonl"
run_ok 1 "$WORK/r2.log" run "$WORK/run.yaml" "${RUN_SETS[@]}" --resume
grep -q "sketch/rank-00000: redo: input files changed" "$WORK/r2.log" || { show "$WORK/r2.log"; fail "no redo line"; }
grep -q "embed: complete (marker verified), skipped" "$WORK/r2.log" && fail "stale embeddings reused"
run_ok 1 "$WORK/r3.log" run "$WORK/run.yaml" "${RUN_SETS[@]}" --set "output.dir=$WORK/rfresh"
same_outputs "$WORK/rfresh" "$WORK/r" index.faiss ids.jsonl duplicates.jsonl embedder.json
ok

sf_done
