# Issue 12, "never touch what the user owns" (1): an input inside output.dir that the run
# replaces or cleans (a previous dedup's kept/00000.jsonl.zst deduplicated in place, an input
# named duplicates.jsonl, a build input under pieces/) is refused with exit 2 before anything
# is removed, with or without --resume; a user's own files in the run directory
# (kept/notes.txt, output.dir/notes.txt) survive reruns.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/run_dir_lib.bash"
sf_init "$@"

check "data: a JSONL corpus with planted duplicates, 3000 x 8 vectors"
run_dir_data
ok

check "dedup, then the same dedup again in place on its own kept/00000.jsonl.zst: refused, exit 2, kept/ intact"
dedup_config "$WORK/d.yaml" "$WORK/d" "$WORK/corpus.jsonl"
run_ok 1 "$WORK/d1.log" dedup "$WORK/d.yaml"
dedup_config "$WORK/again.yaml" "$WORK/d" "$WORK/d/kept/00000.jsonl.zst"
before=$(sha256sum <"$WORK/d/kept/00000.jsonl.zst")
expect_refused "$WORK/again.log" "input.paths: .*kept/00000.jsonl.zst lies inside .*/kept" 2 dedup "$WORK/again.yaml"
[[ $(sha256sum <"$WORK/d/kept/00000.jsonl.zst") == "$before" ]] || fail "kept/00000.jsonl.zst was changed"
expect_refused "$WORK/again-r.log" "lies inside" 1 dedup "$WORK/again.yaml" --resume
[[ $(sha256sum <"$WORK/d/kept/00000.jsonl.zst") == "$before" ]] || fail "kept/00000.jsonl.zst was changed by --resume"
ok

check "an input named duplicates.jsonl inside output.dir: refused, the file stays"
mkdir -p "$WORK/mine"
cp "$WORK/corpus.jsonl" "$WORK/mine/duplicates.jsonl"
dedup_config "$WORK/dj.yaml" "$WORK/mine" "$WORK/mine/duplicates.jsonl"
expect_refused "$WORK/dj.log" "duplicates.jsonl lies inside" 1 dedup "$WORK/dj.yaml"
cmp -s "$WORK/corpus.jsonl" "$WORK/mine/duplicates.jsonl" || fail "the input duplicates.jsonl was removed or changed"
ok

check "a build whose input lies under output.dir/pieces/: refused, the file stays"
mkdir -p "$WORK/bp/pieces"
cp "$WORK/base.fvecs" "$WORK/bp/pieces/base.fvecs"
write_config "$WORK/bp.yaml" "$WORK/bp" "IVF8,Flat" "$WORK/bp/pieces/base.fvecs"
expect_refused "$WORK/bp.log" "pieces/base.fvecs lies inside .*/pieces" 1 build "$WORK/bp.yaml"
cmp -s "$WORK/base.fvecs" "$WORK/bp/pieces/base.fvecs" || fail "the input under pieces/ was removed"
ok

check "a user's kept/notes.txt and output.dir/notes.txt survive a rerun of dedup (with and without --resume)"
echo "my notes" >"$WORK/d/kept/notes.txt"
echo "my notes" >"$WORK/d/notes.txt"
run_ok 1 "$WORK/d2.log" dedup "$WORK/d.yaml"
[[ -f $WORK/d/kept/notes.txt && -f $WORK/d/notes.txt ]] || fail "a user's file was removed"
[[ -f $WORK/d/kept/00000.jsonl.zst ]] || fail "kept/00000.jsonl.zst missing"
run_ok 2 "$WORK/d3.log" dedup "$WORK/d.yaml" --resume --set dedup.threshold=0.7
[[ -f $WORK/d/kept/notes.txt && -f $WORK/d/notes.txt ]] || fail "a user's file was removed by --resume"
[[ -f $WORK/d/kept/00000.jsonl.zst ]] || fail "kept/ shard missing"
[[ $(find "$WORK/d" -name '*.tmp*' | wc -l) -eq 0 ]] || fail "temporary files left"
ok

sf_done
