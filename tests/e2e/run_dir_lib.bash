# Helpers of the run-directory tests (tests/e2e/run_dir_*.sh; sourced after lib.bash, no .sh
# suffix: not a test itself).


# expect_refused LOG PATTERN NP ARGS...: shardforge exits 2 and says PATTERN.
expect_refused() {
  local log=$1 pattern=$2 np=$3
  shift 3
  sf_mpirun "$np" "$log" "$@"
  [[ $SF_RC -eq 2 ]] || { show "$log"; fail "shardforge $* exited $SF_RC, expected 2 (refused)"; }
  grep -q -- "$pattern" "$log" || { show "$log"; fail "shardforge $*: no message matching '$pattern'"; }
}
# dedup_config FILE OUTDIR INPUT...
dedup_config() {
  local file=$1 out=$2
  shift 2
  printf 'input:\n  format: jsonl\n  paths:\n' >"$file"
  printf '    - "%s"\n' "$@" >>"$file"
  printf 'dedup:\n  write_pairs: true\noutput:\n  dir: "%s"\n' "$out" >>"$file"
}
tree_sum() { (cd "$1" && find . -type f ! -path './.shardforge/*' -print0 | sort -z | xargs -0 sha256sum); }

# run_dir_data: $WORK/corpus.jsonl (planted duplicates) and $WORK/base.fvecs (3000 x 8).
run_dir_data() {
  "$PY" "$SRC/tests/e2e/dedupdata.py" planted "$WORK/corpus" --docs 120 --seed 3 >/dev/null
  cat "$WORK"/corpus/*.jsonl >"$WORK/corpus.jsonl"
  sfdata gen "$WORK/base.fvecs" --rows 3000 --dim 8 --seed 5
}
