# SIGINT and SIGUSR1 stop a build as SIGTERM does (docs/checkpoints-and-faults.md, "Faults": Ctrl-C, and Slurm's
# `--signal=USR1@120`): the ranks agree at the next batch boundary of the add stage, keep every
# complete piece and exit 75; --resume finishes with a byte-identical index.faiss. And "a second
# signal kills the process at once": a rank waiting at its safe point for a rank that cannot
# answer (SIGSTOPped) dies of the second SIGTERM instead of waiting.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"

check "data: $FAULT_ROWS x $FAULT_DIM, $FAULT_FACTORY; reference: an uninterrupted 2-rank build"
fault_data "$WORK"
run_ok 2 "$WORK/ref.log" build "$WORK/build.yaml" --set "output.dir=$WORK/ref" "${FAULT_SETS[@]}"
ok

# stop_and_resume SIGNAL RANK: SIGNAL to RANK while adding -> exit 75 with the signal named;
# --resume -> the reference index.faiss.
stop_and_resume() {
  local sig=$1 rank=$2 dir=$WORK/run-$1
  check "SIG$sig to rank $rank while adding: every rank stops at a batch boundary, exit 75; --resume is byte-identical"
  start_bg 2 "$WORK/$sig.log" build "$WORK/build.yaml" --set "output.dir=$dir" "${FAULT_SETS[@]}"
  wait_until 60 has_piece_marker "$dir"
  local pid
  pid=$(rank_pid "$rank")
  [[ -n $pid ]] || fail "rank $rank not found"
  kill "-$sig" "$pid"
  wait_bg
  [[ $BG_RC -eq 75 ]] || { show "$WORK/$sig.log"; fail "exit $BG_RC after SIG$sig, expected 75"; }
  grep -q "shardforge \[rank $rank/2\]: SIG$sig during stage 'add'" "$WORK/$sig.log" ||
    { show "$WORK/$sig.log"; fail "no SIG$sig line from rank $rank"; }
  grep -q "stopped by a signal during add" "$WORK/$sig.log" || { show "$WORK/$sig.log"; fail "no stop message"; }
  grep -q '"state": "stopped"' "$dir/status.json" || fail "status.json: $(cat "$dir/status.json")"
  [[ ! -e $dir/index.faiss ]] || fail "a stopped run left index.faiss"
  local kept
  kept=$(piece_markers "$dir")
  [[ $kept -ge 1 ]] || fail "no complete piece kept"
  if find "$dir" -name '*.tmp.*' | grep -q .; then fail "temporary files left: $(find "$dir" -name '*.tmp.*')"; fi
  run_ok 2 "$WORK/$sig-resume.log" build "$WORK/build.yaml" --set "output.dir=$dir" "${FAULT_SETS[@]}" --resume
  grep -q "stopped in stage 'add'" "$WORK/$sig-resume.log" || { show "$WORK/$sig-resume.log"; fail "resume does not report the stopped run"; }
  cmp "$WORK/ref/index.faiss" "$dir/index.faiss" || fail "resumed index.faiss differs (SIG$sig)"
  ok "$kept piece(s) kept"
}
stop_and_resume INT 1
stop_and_resume USR1 0

check "a second SIGTERM kills at once: rank 1 dies while its safe point waits for a SIGSTOPped rank 0"
start_bg 2 "$WORK/twice.log" build "$WORK/build.yaml" --set "output.dir=$WORK/twice" "${FAULT_SETS[@]}"
wait_until 60 has_piece_marker "$WORK/twice"
pid0=$(rank_pid 0)
pid1=$(rank_pid 1)
[[ -n $pid0 && -n $pid1 ]] || fail "ranks not found"
# Rank 0 cannot reach the agreement: rank 1, once signalled, waits there for it.
kill -STOP "$pid0"
kill -TERM "$pid1"
signal_line() { grep -q "shardforge \[rank 1/2\]: SIGTERM during stage 'add'" "$WORK/twice.log"; }
wait_until 60 signal_line
kill -TERM "$pid1"
gone=0
for ((i = 0; i < 3000; i++)); do  # up to 60 s
  if ! kill -0 "$pid1" 2>/dev/null; then gone=1; break; fi
  sleep 0.02
done
kill -CONT "$pid0" 2>/dev/null || true
if [[ $gone -ne 1 ]]; then
  kill -KILL "$pid1" 2>/dev/null || true
  wait_bg
  show "$WORK/twice.log"
  fail "rank 1 still alive 60 s after its second SIGTERM (it waited for the safe point)"
fi
wait_bg
[[ $BG_RC -ne 0 && $BG_RC -ne 75 ]] || { show "$WORK/twice.log"; fail "exit $BG_RC: the job stopped cleanly, expected a kill"; }
grep -qi "rank 1 .*signal 15" "$WORK/twice.log" || { show "$WORK/twice.log"; fail "mpirun does not say rank 1 died of SIGTERM"; }
# Rank 0's log may still say "stopped by a signal": when rank 0 had posted its part of the
# agreement before it was frozen, it completes that agreement once continued, whatever became
# of rank 1. What is promised is about rank 1: it died of its second signal (above).
[[ ! -e $WORK/twice/index.faiss ]] || fail "a killed run left index.faiss"
ok "exit $BG_RC"

sf_done
