# Issue 12, "never touch what the user owns" (2): a run holds <output.dir>/.shardforge/lock for
# its whole life.
#  - a second build on the same directory, started while the first holds the lock, fails at
#    once (exit 2) naming the holder; the first succeeds with its own config.yaml;
#  - two builds 0.1 s apart: one builds, the other is refused; config.yaml and index.faiss
#    come from the same config;
#  - a stale lock of this host (dead pid, or a pid reused by another process) is taken over
#    with a log line; one of another host is refused with how to clear it;
#  - the lock is gone after a success, a failure and a stop (exit 75).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
source "$(dirname "$0")/run_dir_lib.bash"
sf_init "$@"
LOCK=.shardforge/lock

check "data: 60000 x 32 vectors (a build of a few seconds), 3000 x 8 vectors"
sfdata gen "$WORK/base.fvecs" --rows 60000 --dim 32 --seed 21
sfdata gen "$WORK/small.fvecs" --rows 3000 --dim 8 --seed 5
write_config "$WORK/a.yaml" "$WORK/run" "IVF64,PQ8np" "$WORK/base.fvecs"
write_config "$WORK/b.yaml" "$WORK/run" "IVF32,Flat" "$WORK/base.fvecs"
write_config "$WORK/small.yaml" "$WORK/unused" "IVF8,Flat" "$WORK/small.fvecs"
ok

check "a second build while the first holds the lock: refused at once naming the holder; the first succeeds"
start_bg 2 "$WORK/first.log" build "$WORK/a.yaml" "${FAULT_SETS[@]}"
wait_until 60 test -s "$WORK/run/$LOCK"
holder=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$WORK/run/$LOCK")
expect_refused "$WORK/second.log" "output.dir .*run is in use by \`build\` (pid $holder on host $(hostname)" \
  2 build "$WORK/b.yaml"
grep -q "still running" "$WORK/second.log" || { show "$WORK/second.log"; fail "the refusal does not say the holder runs"; }
wait_bg
[[ $BG_RC -eq 0 ]] || { show "$WORK/first.log"; fail "the first build exited $BG_RC"; }
grep -q "IVF64,PQ8np" "$WORK/run/config.yaml" || fail "config.yaml is not the first build's"
[[ ! -e $WORK/run/$LOCK ]] || fail "the lock stayed after the build"
ok "holder pid $holder named"

check "two builds started 0.1 s apart on one directory: one exits 0, the other 2; config.yaml matches index.faiss"
start_bg 2 "$WORK/r1.log" build "$WORK/a.yaml" --set "output.dir=$WORK/race" "${FAULT_SETS[@]}"
sleep 0.1
sf_mpirun 2 "$WORK/r2.log" build "$WORK/b.yaml" --set "output.dir=$WORK/race"
wait_bg
codes="$BG_RC $SF_RC"
[[ $codes == "0 2" || $codes == "2 0" ]] || { show "$WORK/r1.log"; show "$WORK/r2.log"; fail "exit codes $codes, expected one 0 and one 2"; }
run_ok 1 "$WORK/race-info.log" info "$WORK/race"
nlist=$(sed -n 's/^ivf *nlist \([0-9]*\),.*/\1/p' "$WORK/race-info.log")
grep -q "factory: IVF$nlist," "$WORK/race/config.yaml" ||
  { show "$WORK/race-info.log"; fail "index.faiss has nlist $nlist, config.yaml says $(grep factory "$WORK/race/config.yaml")"; }
ok "exit codes $codes; nlist $nlist in both"

check "a stale lock of this host (dead pid) is taken over with a log line"
mkdir -p "$WORK/s1/.shardforge"
sleep 0 &
dead=$!
wait "$dead"
printf '{"format_version": 1, "host": "%s", "pid": %d, "pid_start_ticks": 1, "started": "2026-01-01T00:00:00Z", "command": "build", "ranks": 2}\n' \
  "$(hostname)" "$dead" >"$WORK/s1/$LOCK"
run_ok 1 "$WORK/s1.log" build "$WORK/small.yaml" --set "output.dir=$WORK/s1"
grep -q "took over the stale lock of \`build\` (pid $dead on host $(hostname).*process $dead is gone" "$WORK/s1.log" ||
  { show "$WORK/s1.log"; fail "no take-over line"; }
[[ ! -e $WORK/s1/$LOCK ]] || fail "the lock stayed"
ok

check "a lock whose pid now belongs to another process (start time differs) is taken over"
mkdir -p "$WORK/s2/.shardforge"
printf '{"format_version": 1, "host": "%s", "pid": %d, "pid_start_ticks": 1, "started": "2026-01-01T00:00:00Z", "command": "dedup", "ranks": 1}\n' \
  "$(hostname)" "$$" >"$WORK/s2/$LOCK"
run_ok 1 "$WORK/s2.log" build "$WORK/small.yaml" --set "output.dir=$WORK/s2"
grep -q "took over the stale lock .*pid $$ now belongs to another process" "$WORK/s2.log" ||
  { show "$WORK/s2.log"; fail "no take-over line"; }
ok

check "a lock held on another host: refused (exit 2) saying how to clear it; runs once removed"
mkdir -p "$WORK/s3/.shardforge"
printf '{"format_version": 1, "host": "node-elsewhere", "pid": 4242, "pid_start_ticks": 77, "started": "2026-01-01T00:00:00Z", "command": "build", "ranks": 8}\n' \
  >"$WORK/s3/$LOCK"
expect_refused "$WORK/s3.log" "in use by \`build\` (pid 4242 on host node-elsewhere.*another host.*remove .*s3/$LOCK" \
  1 build "$WORK/small.yaml" --set "output.dir=$WORK/s3"
[[ -e $WORK/s3/$LOCK ]] || fail "the other host's lock was removed"
rm "$WORK/s3/$LOCK"
run_ok 1 "$WORK/s3b.log" build "$WORK/small.yaml" --set "output.dir=$WORK/s3"
ok

check "the lock is released after a failure (build, eval) and a stop (exit 75)"
sf_mpirun 2 "$WORK/f1.log" build "$WORK/small.yaml" --set "output.dir=$WORK/f" --set "input.paths=[$WORK/missing.fvecs]"
[[ $SF_RC -eq 1 ]] || { show "$WORK/f1.log"; fail "build of a missing file exited $SF_RC"; }
[[ ! -e $WORK/f/$LOCK ]] || fail "a failed build left the lock"
sf_mpirun 2 "$WORK/f2.log" eval "$WORK/small.yaml" --set "output.dir=$WORK/s3" --set "eval.queries=$WORK/base.fvecs"
[[ $SF_RC -eq 1 ]] || { show "$WORK/f2.log"; fail "eval with 32-dim queries exited $SF_RC"; }
[[ ! -e $WORK/s3/$LOCK ]] || fail "a failed eval left the lock"
start_bg 2 "$WORK/t.log" build "$WORK/a.yaml" --set "output.dir=$WORK/t" --set index.kmeans_iterations=200 "${FAULT_SETS[@]}"
wait_until 60 in_stage "$WORK/t" train
kill -TERM "$(rank_pid 0)"
wait_bg
[[ $BG_RC -eq 75 ]] || { show "$WORK/t.log"; fail "the stopped build exited $BG_RC, expected 75"; }
[[ ! -e $WORK/t/$LOCK ]] || fail "a stopped build left the lock"
ok

sf_done
