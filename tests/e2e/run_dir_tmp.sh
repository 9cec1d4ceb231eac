# Issue 12, "never touch what the user owns" (5): after a failure (input.strict: true and a
# bad line) neither dedup nor run leaves *.tmp* files or folders in output.dir.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/run_dir_lib.bash"
sf_init "$@"

check "data: a JSONL corpus with planted duplicates, 3000 x 8 vectors"
run_dir_data
ok

check "strict dedup and run failing on a bad line: exit 1, no *.tmp* left"
cp "$WORK/corpus.jsonl" "$WORK/bad.jsonl"
echo '{"id": "broken", "text": ' >>"$WORK/bad.jsonl"
dedup_config "$WORK/s.yaml" "$WORK/s" "$WORK/bad.jsonl"
sf_mpirun 2 "$WORK/s.log" dedup "$WORK/s.yaml" --set input.strict=true
[[ $SF_RC -eq 1 ]] || { show "$WORK/s.log"; fail "strict dedup exited $SF_RC, expected 1"; }
left=$(find "$WORK/s" -name '*.tmp*')
[[ -z $left ]] || fail "dedup left: $left"
sf_mpirun 2 "$WORK/r.log" run "$WORK/s.yaml" --set input.strict=true --set "output.dir=$WORK/r"
[[ $SF_RC -eq 1 ]] || { show "$WORK/r.log"; fail "strict run exited $SF_RC, expected 1"; }
left=$(find "$WORK/r" -name '*.tmp*')
[[ -z $left ]] || fail "run left: $left"
ok

sf_done

sf_done
