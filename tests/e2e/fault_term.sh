# Fault (b): SIGTERM (Slurm preemption or time limit) -> the ranks agree to stop at the next
# batch boundary, keep every complete piece and exit 75 (what the sbatch script requeues on);
# the resumed run finishes with a byte-identical index.faiss. (A SIGTERM during training:
# fault_term_train.sh.)
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"

check "data: $FAULT_ROWS x $FAULT_DIM, $FAULT_FACTORY; reference: an uninterrupted 2-rank build"
fault_data "$WORK"
run_ok 2 "$WORK/ref.log" build "$WORK/build.yaml" --set "output.dir=$WORK/ref" "${FAULT_SETS[@]}"
ok

check "SIGTERM to rank 1 only, while adding: every rank stops at a batch boundary, exit 75"
start_bg 2 "$WORK/term.log" build "$WORK/build.yaml" --set "output.dir=$WORK/run" "${FAULT_SETS[@]}"
wait_until "$FAULT_WAIT" has_piece_marker "$WORK/run"
pid=$(rank_pid 1)
[[ -n $pid ]] || fail "rank 1 not found"
kill -TERM "$pid"
wait_bg
[[ $BG_RC -eq 75 ]] || { show "$WORK/term.log"; fail "exit $BG_RC, expected 75"; }
grep -q "shardforge \[rank 1/2\]: SIGTERM during stage 'add'" "$WORK/term.log" || { show "$WORK/term.log"; fail "no signal line from rank 1"; }
grep -q "stopped by a signal during add" "$WORK/term.log" || { show "$WORK/term.log"; fail "no stop message"; }
grep -q '"state": "stopped"' "$WORK/run/status.json" || fail "status.json: $(cat "$WORK/run/status.json")"
[[ ! -e $WORK/run/index.faiss ]] || fail "a stopped run left index.faiss"
kept=$(piece_markers "$WORK/run")
[[ $kept -ge 1 ]] || fail "no complete piece kept"
# Every kept piece has its file, and nothing half-written is left behind.
for m in "$WORK"/run/checkpoints/add/*.json; do
  [[ -f $WORK/run/pieces/$(basename "$m" .json).sfsh ]] || fail "marker $m without its piece"
done
if find "$WORK/run" -name '*.tmp.*' | grep -q .; then fail "temporary files left: $(find "$WORK/run" -name '*.tmp.*')"; fi
ok "$kept piece(s) kept"

check "--resume finishes: byte-identical index.faiss"
run_ok 2 "$WORK/resume.log" build "$WORK/build.yaml" --set "output.dir=$WORK/run" "${FAULT_SETS[@]}" --resume
grep -q "stopped in stage 'add'" "$WORK/resume.log" || { show "$WORK/resume.log"; fail "resume does not report the stopped run"; }
cmp "$WORK/ref/index.faiss" "$WORK/run/index.faiss" || fail "resumed index.faiss differs"
ok

sf_done
