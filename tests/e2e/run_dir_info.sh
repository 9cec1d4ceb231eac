# Issue 12, "never touch what the user owns" (4): `info` is read-only (the status.json of a
# failed eval stays as it was) and takes a run directory instead of a config.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/run_dir_lib.bash"
sf_init "$@"

check "data: a JSONL corpus with planted duplicates, 3000 x 8 vectors"
run_dir_data
ok

check "a build"
write_config "$WORK/b.yaml" "$WORK/b" "IVF8,Flat" "$WORK/base.fvecs"
run_ok 1 "$WORK/b1.log" build "$WORK/b.yaml"
ok

check "info writes nothing: the status.json of a failed eval stays"
sfdata gen "$WORK/q16.fvecs" --rows 10 --dim 16 --seed 6
sf_mpirun 1 "$WORK/evalbad.log" eval "$WORK/b.yaml" --set "eval.queries=$WORK/q16.fvecs"
[[ $SF_RC -eq 1 ]] || { show "$WORK/evalbad.log"; fail "eval with 16-dim queries exited $SF_RC, expected 1"; }
grep -q '"state": "failed"' "$WORK/b/status.json" || fail "status.json does not record the failed eval"
b_before=$(tree_sum "$WORK/b")
run_ok 1 "$WORK/info1.log" info "$WORK/b.yaml"
grep -q '"command": "eval"' "$WORK/b/status.json" && grep -q '"state": "failed"' "$WORK/b/status.json" ||
  fail "info rewrote status.json: $(cat "$WORK/b/status.json")"
[[ $(tree_sum "$WORK/b") == "$b_before" ]] || fail "info changed the run directory"
ok

check "info RUN_DIR reads RUN_DIR/config.yaml"
run_ok 1 "$WORK/info2.log" info "$WORK/b"
grep -q "vectors      3000 x 8 dims" "$WORK/info2.log" || { show "$WORK/info2.log"; fail "info RUN_DIR did not show the index"; }
[[ $(tree_sum "$WORK/b") == "$b_before" ]] || fail "info changed the run directory"
ok

sf_done
