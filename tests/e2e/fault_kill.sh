# Fault (a): one rank killed with SIGKILL while adding. The job ends within seconds (mpirun
# stops the other ranks; their signal line names the stage), status.json keeps the stage it
# died in, and a rerun with --resume (2 ranks, or 3) gives an index.faiss byte-identical to an
# uninterrupted run, reusing the pieces that were complete.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"
# How long mpirun may take to end the job once a rank died: docs/checkpoints-and-faults.md says about 2 s (this test
# prints what it measured); a generous limit for a loaded machine, far below SF_TIMEOUT.
KILL_END_LIMIT_S=${KILL_END_LIMIT_S:-60}

check "data: $FAULT_ROWS x $FAULT_DIM, $FAULT_FACTORY, pieces of 8192 rows; reference: an uninterrupted 2-rank build"
fault_data "$WORK"
run_ok 2 "$WORK/ref.log" build "$WORK/build.yaml" --set "output.dir=$WORK/ref" "${FAULT_SETS[@]}"
ok

check "SIGKILL of rank 1 after its first piece: mpirun ends the job (measured; limit ${KILL_END_LIMIT_S}s), naming stage 'add'"
start_bg 2 "$WORK/killed.log" build "$WORK/build.yaml" --set "output.dir=$WORK/run" "${FAULT_SETS[@]}"
wait_until "$FAULT_WAIT" has_piece_marker "$WORK/run"
pid=$(rank_pid 1)
[[ -n $pid ]] || fail "rank 1 not found"
t0=$(date +%s%N)
kill -KILL "$pid"
wait_bg
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
cat "$WORK/killed.log" >&2
[[ $BG_RC -ne 0 ]] || fail "the job exited 0 after a rank was killed (it finished before the kill?)"
# The docs' "about 2 s" is a measured figure (printed below); the check is what a user relies
# on: mpirun ends the job itself, long before the run's timeout would, though the machine be loaded.
((elapsed_ms < KILL_END_LIMIT_S * 1000)) ||
  fail "the job took ${elapsed_ms} ms to end after the kill (limit ${KILL_END_LIMIT_S}s): does mpirun wait for the surviving rank?"
grep -q "during stage 'add'" "$WORK/killed.log" || fail "no line names stage 'add'"
grep -q "signal 9" "$WORK/killed.log" || fail "the launcher does not say a rank died of signal 9"
grep -q '"state": "running"' "$WORK/run/status.json" || fail "status.json: $(cat "$WORK/run/status.json")"
grep -q '"stage": "add"' "$WORK/run/status.json" || fail "status.json: $(cat "$WORK/run/status.json")"
[[ ! -e $WORK/run/index.faiss && ! -e $WORK/run/checkpoints/merge.json ]] ||
  fail "a killed run left index.faiss or its marker"
[[ -f $WORK/run/checkpoints/train.json ]] || fail "no train marker"
ok "ended ${elapsed_ms} ms after the kill, exit $BG_RC, $(piece_markers "$WORK/run") piece(s) complete"

cp -a "$WORK/run" "$WORK/run3"
check "--resume (2 ranks): train skipped, complete pieces read back, index.faiss byte-identical"
run_ok 2 "$WORK/resume.log" build "$WORK/build.yaml" --set "output.dir=$WORK/run" "${FAULT_SETS[@]}" --resume
grep -q "did not finish: it was in stage 'add'" "$WORK/resume.log" || { show "$WORK/resume.log"; fail "resume does not report the earlier run"; }
grep -q "train: complete (marker verified), skipped" "$WORK/resume.log" || { show "$WORK/resume.log"; fail "train not skipped"; }
reused=$(sed -n 's/.*add: \([0-9]*\) of [0-9]* rows are in verified pieces.*/\1/p' "$WORK/resume.log")
[[ -n $reused && $reused -gt 0 ]] || { show "$WORK/resume.log"; fail "no piece reused"; }
cmp "$WORK/ref/index.faiss" "$WORK/run/index.faiss" || fail "resumed index.faiss differs from the uninterrupted one"
[[ ! -e $WORK/run/pieces ]] || fail "the pieces were not removed after the merge"
ok "$reused rows reused"

check "--resume of the same killed run with 3 ranks, one piece file damaged: that piece is redone; byte-identical"
victim=$(find "$WORK/run3/pieces" -name '*.sfsh' | sort | head -1)
printf '\xff' | dd of="$victim" bs=1 seek=100 conv=notrunc status=none
run_ok 3 "$WORK/resume3.log" build "$WORK/build.yaml" --set "output.dir=$WORK/run3" "${FAULT_SETS[@]}" --resume
grep -q "$(basename "$victim" .sfsh).*checksum differs" "$WORK/resume3.log" || { show "$WORK/resume3.log"; fail "the damaged piece was not reported"; }
cmp "$WORK/ref/index.faiss" "$WORK/run3/index.faiss" || fail "3-rank resumed index.faiss differs"
ok

sf_done
