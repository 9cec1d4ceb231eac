# input.paths as directories and glob patterns (issue 16): dedup over a directory of JSONL files
# (nested, one gzipped, a file input.glob leaves out) and over a `**` pattern, at 1 and 2 ranks,
# equals dedup over the same files listed by hand; build over a directory of fvecs parts equals
# build over the listed parts; a file added to the directory redoes read+sketch on --resume; a
# directory or pattern that matches nothing is a config error naming it (exit 2).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_text_lib.bash"
sf_init "$@"
DD="$SRC/tests/e2e/dedupdata.py"

# same_dedup REF RUN: duplicates.jsonl and every kept/ file byte-identical.
same_dedup() {
  cmp "$1/duplicates.jsonl" "$2/duplicates.jsonl" || fail "$2/duplicates.jsonl differs from $1's"
  diff -r "$1/kept" "$2/kept" >/dev/null || fail "$2/kept differs from $1/kept"
}

check "data: a planted JSONL corpus in corpus/ (a.jsonl, b.jsonl.gz, sub/c.jsonl, notes.txt)"
"$PY" "$DD" planted "$WORK/corpus" --docs 300 --seed 11 >/dev/null
mkdir -p "$WORK/corpus/sub"
mv "$WORK/corpus/c.jsonl" "$WORK/corpus/sub/c.jsonl"
gzip "$WORK/corpus/b.jsonl"
echo "not a corpus file" >"$WORK/corpus/notes.txt"
listed=("$WORK/corpus/a.jsonl" "$WORK/corpus/b.jsonl.gz" "$WORK/corpus/sub/c.jsonl")
ok

for np in 1 2; do
  check "dedup at $np rank(s): the directory and the pattern corpus/**/*.jsonl* give the listed files' outputs"
  text_config "$WORK/listed.yaml" "$WORK/listed-$np" "${listed[@]}"
  run_ok "$np" "$WORK/listed-$np.log" dedup "$WORK/listed.yaml"
  text_config "$WORK/dir.yaml" "$WORK/dir-$np" "$WORK/corpus/"
  run_ok "$np" "$WORK/dir-$np.log" dedup "$WORK/dir.yaml"
  grep -q "input: 3 file(s)" "$WORK/dir-$np.log" || { show "$WORK/dir-$np.log"; fail "no input line"; }
  [[ $(grep -c "input: 3 file(s)" "$WORK/dir-$np.log") -eq 1 ]] || fail "the input line is logged more than once"
  same_dedup "$WORK/listed-$np" "$WORK/dir-$np"
  text_config "$WORK/glob.yaml" "$WORK/glob-$np" "$WORK/corpus/**/*.jsonl*"
  run_ok "$np" "$WORK/glob-$np.log" dedup "$WORK/glob.yaml"
  same_dedup "$WORK/listed-$np" "$WORK/glob-$np"
  ok
done

check "a file added to the directory: --resume redoes read+sketch, the outputs equal a fresh run's"
run_ok 2 "$WORK/same.log" dedup "$WORK/dir.yaml" --set "output.dir=$WORK/dir-2" --resume
grep -q "kept/ and duplicates.jsonl are complete: nothing to do" "$WORK/same.log" ||
  { show "$WORK/same.log"; fail "nothing changed, yet the run was redone"; }
"$PY" "$DD" planted "$WORK/more" --docs 60 --seed 12 >/dev/null
cp "$WORK/more/a.jsonl" "$WORK/corpus/sub/d.jsonl"
run_ok 2 "$WORK/added.log" dedup "$WORK/dir.yaml" --set "output.dir=$WORK/dir-2" --resume
grep -q "input: 4 file(s)" "$WORK/added.log" || { show "$WORK/added.log"; fail "the new file was not found"; }
grep -q "sketch/rank-00000: redo: " "$WORK/added.log" || { show "$WORK/added.log"; fail "no redo line"; }
grep -q "read+sketch: 0 of 2 rank(s) read their verified sketch back" "$WORK/added.log" ||
  { show "$WORK/added.log"; fail "stale sketches were reused"; }
text_config "$WORK/fresh.yaml" "$WORK/fresh" "${listed[@]}" "$WORK/corpus/sub/d.jsonl"
run_ok 2 "$WORK/fresh.log" dedup "$WORK/fresh.yaml"
same_dedup "$WORK/fresh" "$WORK/dir-2"
ok

check "build over a directory of fvecs parts equals build over the listed parts (1 and 2 ranks)"
mkdir -p "$WORK/vectors"
sfdata gen "$WORK/vectors/part1.fvecs" "$WORK/vectors/part2.fvecs" --rows 3000 --dim 16 --seed 5 \
  --split 1200,1800 >/dev/null
echo "not vectors" >"$WORK/vectors/README"
write_config "$WORK/vlisted.yaml" "$WORK/vlisted" "IVF16,Flat" "$WORK/vectors/part1.fvecs" "$WORK/vectors/part2.fvecs"
run_ok 1 "$WORK/vlisted.log" build "$WORK/vlisted.yaml"
for np in 1 2; do
  write_config "$WORK/vdir.yaml" "$WORK/vdir-$np" "IVF16,Flat" "$WORK/vectors"
  run_ok "$np" "$WORK/vdir-$np.log" build "$WORK/vdir.yaml"
  cmp "$WORK/vlisted/index.faiss" "$WORK/vdir-$np/index.faiss" ||
    fail "index.faiss over the directory ($np rank(s)) differs from the listed files'"
done
run_ok 1 "$WORK/vinfo.log" info "$WORK/vdir-2"
ok

check "a directory or pattern matching nothing: exit 2, one error naming it"
mkdir -p "$WORK/empty"
echo "x" >"$WORK/empty/notes.txt"
text_config "$WORK/empty.yaml" "$WORK/e" "$WORK/empty"
sf_mpirun 2 "$WORK/empty.log" dedup "$WORK/empty.yaml"
[[ $SF_RC -eq 2 ]] || { show "$WORK/empty.log"; fail "an empty directory exited $SF_RC, expected 2"; }
expect_one_error "empty directory" "$WORK/empty.log" "input.paths: $WORK/empty: a directory with no file matching input.glob"
text_config "$WORK/nomatch.yaml" "$WORK/n" "$WORK/corpus/**/*.parquet"
sf_mpirun 2 "$WORK/nomatch.log" dedup "$WORK/nomatch.yaml"
[[ $SF_RC -eq 2 ]] || { show "$WORK/nomatch.log"; fail "a pattern matching nothing exited $SF_RC, expected 2"; }
expect_one_error "no match" "$WORK/nomatch.log" "input.paths: $WORK/corpus/**/*.parquet: matches no file"
ok

sf_done
