# Issue 16, `shardforge status RUN_DIR_OR_CONFIG`: a finished build (done, every stage listed),
# a failed build (failed, rank 1's error), a running build (running in a stage, the ranks'
# progress), the same build killed (ended without a word), a build stopped by SIGTERM (stopped
# in 'add', merge not started), the Slurm job's state (squeue, else sacct), a directory that is
# not a run directory (exit 2). `status` only reads: the run directory is the same bytes after
# it. --json parses with python3.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"

# Every file of a run directory, .shardforge/ included, with its checksum.
all_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# status_json DIR: `shardforge status DIR --json` (exit 0), in $WORK/status.json.
status_json() {
  "$SF" status "$1" --json >"$WORK/status.json" 2>"$WORK/status.err" ||
    { cat "$WORK/status.err" >&2; fail "status $1 --json exited non-zero"; }
}

# report_check PYTHON-EXPRESSION...: each expression, over the report `r` of $WORK/status.json,
# is true.
report_check() {
  "$PY" - "$WORK/status.json" "$@" <<'PYEOF' || { cat "$WORK/status.json" >&2; fail "status --json: $*"; }
import json, sys
r = json.load(open(sys.argv[1]))
stages = {s["name"]: s for s in r["stages"]}
for expr in sys.argv[2:]:
    if not eval(expr):
        sys.exit(f"not true: {expr}")
PYEOF
}

check "a finished 2-rank build: done, every stage of run.json listed in order, with its figures"
sfdata gen "$WORK/part1.fvecs" "$WORK/part2.fvecs" --rows 6000 --dim 16 --seed 7 --split 3000,3000
write_config "$WORK/small.yaml" "$WORK/small" "IVF8,Flat" "$WORK/part1.fvecs" "$WORK/part2.fvecs"
run_ok 2 "$WORK/small.log" build "$WORK/small.yaml"
before=$(all_sum "$WORK/small")
"$SF" status "$WORK/small" >"$WORK/s1.out" 2>&1 || { show "$WORK/s1.out"; fail "status exited non-zero"; }
grep -q "^command        build, 2 rank(s)" "$WORK/s1.out" || { show "$WORK/s1.out"; fail "no command line"; }
grep -q "^state          done" "$WORK/s1.out" || { show "$WORK/s1.out"; fail "not done"; }
grep -q "^  merge         done, marker verified (sizes)" "$WORK/s1.out" || { show "$WORK/s1.out"; fail "merge's marker"; }
status_json "$WORK/small.yaml"  # a config names its output.dir
report_check 'r["state"] == "done" and r["command"] == "build"' \
  '[s["name"] for s in r["stages"]] == [s["name"] for s in json.load(open(r["run_dir"] + "/run.json"))["commands"]["build"]["stages"]]' \
  'all(s["state"] == "done" and len(s["seconds"]) == 2 and len(s["peak_rss_mib"]) == 2 for s in r["stages"])' \
  'r["error"] is None and r["slurm"]["job_id"] == ""'
[[ $(all_sum "$WORK/small") == "$before" ]] || fail "status changed the run directory"
ok

check "a failed build (rank 1 reads a NaN row): failed, rank 1's error"
cp "$WORK/part2.fvecs" "$WORK/part2.good"
head -c 64 /dev/zero | tr '\0' '\377' | dd of="$WORK/part2.fvecs" bs=1 seek=$((100 * 68 + 4)) conv=notrunc status=none
sf_mpirun 2 "$WORK/bad.log" build "$WORK/small.yaml" --set "output.dir=$WORK/bad"
[[ $SF_RC -eq 1 ]] || { show "$WORK/bad.log"; fail "the bad build exited $SF_RC, expected 1"; }
cp "$WORK/part2.good" "$WORK/part2.fvecs"
"$SF" status "$WORK/bad" >"$WORK/s2.out" 2>&1 || { show "$WORK/s2.out"; fail "status exited non-zero"; }
grep -q "^state          failed in stage '" "$WORK/s2.out" || { show "$WORK/s2.out"; fail "not failed"; }
grep -q "^last error     rank 1: .*part2.fvecs" "$WORK/s2.out" || { show "$WORK/s2.out"; fail "no error of rank 1"; }
status_json "$WORK/bad"
report_check 'r["state"] == "failed" and r["error"]["rank"] == 1 and "part2.fvecs" in r["error"]["message"]' \
  'stages[r["stage"]]["state"] == "failed"' \
  'all(s["state"] == "not started" for s in r["stages"][[s["name"] for s in r["stages"]].index(r["stage"]) + 1:])'
ok

check "a running build: running in a stage, then in 'add' with the ranks' progress"
fault_data "$WORK"
start_bg 2 "$WORK/live.log" build "$WORK/build.yaml" --set "output.dir=$WORK/live" "${FAULT_SETS[@]}"
running_in_add() {
  "$SF" status "$WORK/live" --json >"$WORK/status.json" 2>/dev/null || return 1
  "$PY" -c 'import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if r["state"] == "running" and r["stage"] == "add" and r["progress"] else 1)' "$WORK/status.json"
}
running_in_stage() { "$SF" status "$WORK/live" 2>/dev/null | grep -q "^state          running in stage '"; }
wait_until "$FAULT_WAIT" running_in_stage
wait_until "$FAULT_WAIT" running_in_add
report_check 'stages["train"]["state"] == "done" and stages["add"]["state"] == "running"' \
  'stages["merge"]["state"] == "not started"' \
  'all(p["step"] == "build: add" and 0 < p["done"] <= p["total"] and p["rank"] in (0, 1) for p in r["progress"])'
ok "$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["progress"])' "$WORK/status.json")"

check "the same build killed (SIGKILL): ended without a word (killed?)"
for pid in $(rank_pids | awk '{ print $2 }'); do kill -KILL "$pid" 2>/dev/null || true; done
wait_bg
"$SF" status "$WORK/live" >"$WORK/s3.out" 2>&1 || { show "$WORK/s3.out"; fail "status exited non-zero"; }
grep -q "^state          ended without a word (killed?) in stage 'add'" "$WORK/s3.out" ||
  { show "$WORK/s3.out"; fail "the killed run is not told apart"; }
status_json "$WORK/live"
report_check 'r["state"] == "killed" and stages["add"]["state"] == "killed"'
ok

check "a build stopped by SIGTERM in 'add': stopped, later stages not started"
start_bg 2 "$WORK/term.log" build "$WORK/build.yaml" --set "output.dir=$WORK/term" "${FAULT_SETS[@]}"
wait_until "$FAULT_WAIT" has_piece_marker "$WORK/term"
kill -TERM "$(rank_pid 1)"
wait_bg
[[ $BG_RC -eq 75 ]] || { show "$WORK/term.log"; fail "exit $BG_RC, expected 75"; }
"$SF" status "$WORK/term" >"$WORK/s4.out" 2>&1 || { show "$WORK/s4.out"; fail "status exited non-zero"; }
grep -q "^state          stopped in stage 'add'" "$WORK/s4.out" || { show "$WORK/s4.out"; fail "not stopped in add"; }
grep -q "^  merge         not started" "$WORK/s4.out" || { show "$WORK/s4.out"; fail "merge should not have started"; }
status_json "$WORK/term"
report_check 'r["state"] == "stopped" and r["stage"] == "add"' \
  'stages["open"]["state"] == "done" and stages["train"]["state"] == "done"' \
  'stages["merge"]["state"] == "not started" and "marker(s) in checkpoints/add/" in stages["add"]["marker"]'
ok

check "the Slurm job the run recorded: squeue's state, else sacct's (stand-ins on PATH)"
cp -a "$WORK/small" "$WORK/slurm"
"$PY" - "$WORK/slurm/status.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
s["slurm_job_id"] = "4242"
json.dump(s, open(sys.argv[1], "w"))
PYEOF
mkdir -p "$WORK/bin"
printf '#!/bin/sh\n[ "$3" = 4242 ] && [ -e "%s" ] && echo "  RUNNING"\nexit 0\n' "$WORK/queued" >"$WORK/bin/squeue"
printf '#!/bin/sh\n[ "$4" = 4242 ] && echo " COMPLETED "\nexit 0\n' >"$WORK/bin/sacct"
chmod +x "$WORK/bin/squeue" "$WORK/bin/sacct"
touch "$WORK/queued"
PATH="$WORK/bin:$PATH" "$SF" status "$WORK/slurm" >"$WORK/s6.out" 2>&1
grep -q "^slurm job      4242: RUNNING$" "$WORK/s6.out" || { show "$WORK/s6.out"; fail "squeue's state"; }
rm "$WORK/queued"
PATH="$WORK/bin:$PATH" "$SF" status "$WORK/slurm" --json >"$WORK/status.json"
report_check 'r["slurm"] == {"job_id": "4242", "state": "COMPLETED"}'
"$SF" status "$WORK/slurm" >"$WORK/s6.out" 2>&1  # the real ones, or none: the job id, no error
grep -q "^slurm job      4242: " "$WORK/s6.out" || { show "$WORK/s6.out"; fail "the job id"; }
ok

check "not a run directory: exit 2 with a message"
mkdir -p "$WORK/empty"
for path in "$WORK/empty" "$WORK/nowhere"; do
  set +e
  "$SF" status "$path" >"$WORK/s5.out" 2>&1
  rc=$?
  set -e
  [[ $rc -eq 2 ]] || { show "$WORK/s5.out"; fail "status $path exited $rc, expected 2"; }
done
grep -q "no such run directory or config file" "$WORK/s5.out" || { show "$WORK/s5.out"; fail "message"; }
set +e
"$SF" status "$WORK/empty" >"$WORK/s5.out" 2>&1
set -e
grep -q "not a run directory" "$WORK/s5.out" || { show "$WORK/s5.out"; fail "message"; }
ok

sf_done
