# Fault (b) inside training: a SIGTERM during the coarse k-means is agreed at the next
# iteration boundary (seconds, not the rest of the training: Slurm's KillWait is ~30 s), the
# k-means state is saved as a checkpoint and the run exits 75; --resume continues from that
# iteration and ends with a trained.faiss and index.faiss byte-identical to an uninterrupted run.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"

ROWS=60000
ITERS=30
SETS=(--set index.train_size=$ROWS --set index.kmeans_iterations=$ITERS --set input.batch_rows=8192)

check "data: $ROWS x 32, IVF1024,Flat, $ITERS k-means iterations on every row; reference: an uninterrupted 2-rank build"
sfdata gen "$WORK/base.fvecs" --rows "$ROWS" --dim 32 --seed 23
write_config "$WORK/build.yaml" "$WORK/unused" "IVF1024,Flat" "$WORK/base.fvecs"
start=$SECONDS
run_ok 2 "$WORK/ref.log" build "$WORK/build.yaml" --set "output.dir=$WORK/ref" "${SETS[@]}"
ref_seconds=$((SECONDS - start))
ok "${ref_seconds}s"

check "SIGTERM to rank 1 only, during k-means: every rank stops at an iteration boundary within seconds, exit 75"
start_bg 2 "$WORK/term.log" build "$WORK/build.yaml" --set "output.dir=$WORK/run" "${SETS[@]}"
# The sample is read (logged), then k-means starts: a few iterations in, the signal.
wait_until 60 grep -q "train: read sample" "$WORK/term.log"
sleep 1
pid=$(rank_pid 1)
[[ -n $pid ]] || fail "rank 1 not found"
signalled=$(date +%s.%N)
kill -TERM "$pid"
wait_bg
stop_seconds=$(echo "$(date +%s.%N) - $signalled" | bc)
[[ $BG_RC -eq 75 ]] || { show "$WORK/term.log"; fail "exit $BG_RC, expected 75"; }
grep -q "shardforge \[rank 1/2\]: SIGTERM during stage 'train'" "$WORK/term.log" || { show "$WORK/term.log"; fail "no signal line from rank 1"; }
line=$(grep -o "stopped by a signal during train: k-means (after iteration [0-9]* of $ITERS)" "$WORK/term.log" | head -1) ||
  { show "$WORK/term.log"; fail "not stopped inside k-means"; }
saved=$(echo "$line" | sed 's/.*after iteration \([0-9]*\) of.*/\1/')
((saved > 0 && saved < ITERS)) || fail "stopped after iteration $saved of $ITERS: not mid-training"
(($(echo "$stop_seconds < 5" | bc))) || { show "$WORK/term.log"; fail "took ${stop_seconds}s from SIGTERM to exit"; }
[[ -f $WORK/run/train-kmeans.sfkm && -f $WORK/run/checkpoints/train-kmeans.json ]] ||
  fail "no k-means checkpoint: $(ls "$WORK/run" "$WORK/run/checkpoints" 2>&1)"
[[ ! -e $WORK/run/trained.faiss && ! -e $WORK/run/checkpoints/train.json ]] || fail "a stopped training left trained.faiss"
grep -q '"state": "stopped"' "$WORK/run/status.json" || fail "status.json: $(cat "$WORK/run/status.json")"
if find "$WORK/run" -name '*.tmp.*' | grep -q .; then fail "temporary files left: $(find "$WORK/run" -name '*.tmp.*')"; fi
ok "stopped after iteration $saved of $ITERS, ${stop_seconds}s after the signal (uninterrupted build: ${ref_seconds}s)"

check "--resume continues k-means from iteration $saved: byte-identical trained.faiss and index.faiss"
run_ok 2 "$WORK/resume.log" build "$WORK/build.yaml" --set "output.dir=$WORK/run" "${SETS[@]}" --resume
grep -q "train: k-means continues from iteration $saved of $ITERS" "$WORK/resume.log" ||
  { show "$WORK/resume.log"; fail "training did not continue from the saved iteration"; }
cmp "$WORK/ref/trained.faiss" "$WORK/run/trained.faiss" || fail "resumed trained.faiss differs"
cmp "$WORK/ref/index.faiss" "$WORK/run/index.faiss" || fail "resumed index.faiss differs"
[[ ! -e $WORK/run/train-kmeans.sfkm && ! -e $WORK/run/checkpoints/train-kmeans.json ]] ||
  fail "the k-means checkpoint outlived the trained index"
ok

check "a k-means checkpoint of another config is not continued"
start_bg 2 "$WORK/term2.log" build "$WORK/build.yaml" --set "output.dir=$WORK/other" "${SETS[@]}"
wait_until 60 grep -q "train: read sample" "$WORK/term2.log"
sleep 0.5
while read -r _ pid; do kill -TERM "$pid"; done < <(rank_pids)
wait_bg
[[ $BG_RC -eq 75 && -f $WORK/other/train-kmeans.sfkm ]] || { show "$WORK/term2.log"; fail "exit $BG_RC, expected 75 with a k-means checkpoint"; }
run_ok 2 "$WORK/other-resume.log" build "$WORK/build.yaml" --set "output.dir=$WORK/other" "${SETS[@]}" \
  --set index.kmeans_iterations=3 --resume
grep -q "not continued, k-means starts afresh: .*index.kmeans_iterations" "$WORK/other-resume.log" ||
  { show "$WORK/other-resume.log"; fail "a changed key did not redo k-means"; }
if grep -q "k-means continues" "$WORK/other-resume.log"; then fail "continued a state of another config"; fi
ok

sf_done
