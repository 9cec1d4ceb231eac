# Fault (b) inside training: a SIGTERM during the coarse k-means is agreed at the next
# iteration boundary (within one iteration of the signal, checked against rank 0's per-iteration
# log lines, not the rest of the training: Slurm's KillWait is ~30 s), the
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

check "SIGTERM to rank 1 only, during k-means: every rank stops within one iteration of the signal, exit 75"
start_bg 2 "$WORK/term.log" build "$WORK/build.yaml" --set "output.dir=$WORK/run" "${SETS[@]}"
# Rank 0 logs every k-means iteration ("[HH:MM:SS.mmm] ... train: k-means: I/30"): once the
# first is logged, the signal, between two clock readings on the same clock as those stamps.
wait_for_line "$WORK/term.log" "train: k-means: [0-9]+/$ITERS" >/dev/null
pid=$(rank_pid 1)
[[ -n $pid ]] || fail "rank 1 not found"
before=$(date +%H:%M:%S.%3N)
kill -TERM "$pid"
after=$(date +%H:%M:%S.%3N)
signalled=$SECONDS
wait_bg
stop_seconds=$((SECONDS - signalled))
[[ $BG_RC -eq 75 ]] || { show "$WORK/term.log"; fail "exit $BG_RC, expected 75"; }
grep -q "shardforge \[rank 1/2\]: SIGTERM during stage 'train'" "$WORK/term.log" || { show "$WORK/term.log"; fail "no signal line from rank 1"; }
line=$(grep -o "stopped by a signal during train: k-means (after iteration [0-9]* of $ITERS)" "$WORK/term.log" | head -1) ||
  { show "$WORK/term.log"; fail "not stopped inside k-means (did k-means end before the signal?)"; }
saved=$(echo "$line" | sed 's/.*after iteration \([0-9]*\) of.*/\1/')
((saved > 0 && saved < ITERS)) || fail "stopped after iteration $saved of $ITERS: not mid-training"
# The iterations rank 0 had logged before the signal: lo (stamped before `before`, surely done)
# and hi (stamped up to `after`: perhaps done). Rank 0 logs iteration I before the boundary after
# it; rank 1, which got the signal, may already wait at the boundary after iteration hi + 1
# having said "go on", so the agreed stop is at boundary hi + 2 at the latest, never before lo.
read -r lo hi < <(awk -v before="$before" -v after="$after" -v iters="$ITERS" '
  # milliseconds since the first k-means line (modulo a day: a run may cross midnight)
  function ms(t, p) { split(t, p, /[:.]/); return ((p[1] * 60 + p[2]) * 60 + p[3]) * 1000 + p[4] }
  function rel(t) { return (ms(t) - t0 + 86400000) % 86400000 }
  $0 ~ "train: k-means: [0-9]+/" iters "( |$)" {
    stamp = substr($0, 2, 12)
    if (!seen++) t0 = ms(stamp)
    i = $0; sub(/.*train: k-means: /, "", i); sub(/\/.*/, "", i)
    if (rel(stamp) < rel(before)) lo = i + 0
    if (rel(stamp) <= rel(after)) hi = i + 0
  }
  END { print lo + 0, hi + 0 }' "$WORK/term.log")
((hi >= 1)) || { show "$WORK/term.log"; fail "no k-means iteration logged before the signal at $before"; }
((saved >= lo && saved <= hi + 2)) || { show "$WORK/term.log"; \
  fail "signalled after iteration $lo..$hi ($before..$after), stopped after iteration $saved: not within one iteration"; }
[[ -f $WORK/run/train-kmeans.sfkm && -f $WORK/run/checkpoints/train-kmeans.json ]] ||
  fail "no k-means checkpoint: $(ls "$WORK/run" "$WORK/run/checkpoints" 2>&1)"
[[ ! -e $WORK/run/trained.faiss && ! -e $WORK/run/checkpoints/train.json ]] || fail "a stopped training left trained.faiss"
grep -q '"state": "stopped"' "$WORK/run/status.json" || fail "status.json: $(cat "$WORK/run/status.json")"
if find "$WORK/run" -name '*.tmp.*' | grep -q .; then fail "temporary files left: $(find "$WORK/run" -name '*.tmp.*')"; fi
ok "signalled after iteration $lo..$hi, stopped after iteration $saved of $ITERS (${stop_seconds}s after the signal; uninterrupted build: ${ref_seconds}s)"

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
wait_for_line "$WORK/term2.log" "train: k-means: [0-9]+/$ITERS" >/dev/null
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
