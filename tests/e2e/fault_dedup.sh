# Faults of `shardforge dedup` (checkpoints: sketch/rank-R per rank, verdicts, kept):
# (a) SIGKILL of one rank once the sketches are written: the job ends, nothing looks complete,
#     and --resume reads the sketches back (no reading, no MinHash) and writes kept/ and
#     duplicates.jsonl byte-identical to an uninterrupted run;
# (b) SIGTERM to one rank while it reads (caught with its input open short of the end): that
#     rank abandons its reading at its next batch (no sketch), the other keeps its sketch, every
#     rank stops, exit 75; --resume reads the one sketch back and completes identically;
# (c) the killed run resumed with 1 rank redoes the sketches (they depend on the rank count);
#     at 4 ranks, a lost kept/ is rewritten from the sketches and verdicts read back;
# (d) a changed dedup.threshold redoes the verdicts and kept/, not the reading; a touched input
#     file redoes the reading; an unchanged complete run has nothing to do.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
source "$(dirname "$0")/fault_text_lib.bash"
sf_init "$@"
COPIES=${DEDUP_FAULT_COPIES:-8}
OUTS=(duplicates.jsonl kept/00000.jsonl.zst)

check "data: fortune cookies x $COPIES as JSONL; reference: an uninterrupted 2-rank dedup"
fortune_corpus "$WORK/corpus.jsonl" "$COPIES"
text_config "$WORK/dedup.yaml" "$WORK/unused" "$WORK/corpus.jsonl"
run_ok 2 "$WORK/ref.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/ref"
for m in sketch/rank-00000 sketch/rank-00001 verdicts kept; do
  [[ -f $WORK/ref/checkpoints/$m.json ]] || fail "no marker $m"
done
ok "$(wc -l <"$WORK/ref/duplicates.jsonl") duplicates"

check "SIGKILL of rank 1 once both sketches are checkpointed: the job ends, no kept/ and no kept marker"
start_bg 2 "$WORK/killed.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/run"
wait_until "$FAULT_WAIT" has_markers "$WORK/run" "sketch/*.json" 2
signal_rank KILL 1
wait_bg
[[ $BG_RC -ne 0 ]] || { show "$WORK/killed.log"; fail "the job finished before the kill (a bigger corpus: DEDUP_FAULT_COPIES)"; }
[[ ! -e $WORK/run/kept && ! -e $WORK/run/checkpoints/kept.json && ! -e $WORK/run/duplicates.jsonl ]] ||
  fail "a killed run left kept/, duplicates.jsonl or the kept marker"
ok "exit $BG_RC"

cp -a "$WORK/run" "$WORK/run1"
check "--resume: both sketches read back, outputs byte-identical"
run_ok 2 "$WORK/resume.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/run" --resume
grep -q "read+sketch: 2 of 2 rank(s) read their verified sketch back" "$WORK/resume.log" ||
  { show "$WORK/resume.log"; fail "the sketches were not reused"; }
same_outputs "$WORK/ref" "$WORK/run" "${OUTS[@]}"
ok

check "--resume of the killed run with 1 rank: the 2-rank sketches do not fit, all redone; same records kept"
run_ok 1 "$WORK/resume1.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/run1" --resume
grep -q "sketch/rank-00000: redo: ranks changed from '2' to '1'" "$WORK/resume1.log" || { show "$WORK/resume1.log"; fail "no redo line naming the rank count"; }
cmp "$WORK/ref/duplicates.jsonl" "$WORK/run1/duplicates.jsonl" || fail "duplicates.jsonl differs with 1 rank"
cmp <(cat "$WORK"/ref/kept/*) <(cat "$WORK"/run1/kept/*) || fail "kept/ differs with 1 rank"
ok

# catch_reading PID FILE DIR: stops PID (SIGSTOP) at a moment it has FILE open short of its end,
# i.e. with bytes of its share still to read (rank 1's share ends at the end of the file); it is
# left stopped. Fails if the rank's sketch is marked first (it finished reading: a bigger corpus).
catch_reading() {
  local pid=$1 file dir=$3 size fd pos i
  file=$(realpath "$2")
  size=$(stat -c %s "$file")
  for ((i = 0; i < 6000; i++)); do  # polls for up to about 2 minutes
    kill -STOP "$pid"
    for fd in /proc/"$pid"/fd/*; do
      [[ $(readlink "$fd" 2>/dev/null) == "$file" ]] || continue
      pos=$(awk '/^pos:/ { print $2 }' "/proc/$pid/fdinfo/${fd##*/}" 2>/dev/null)
      if [[ -n $pos && $pos -gt 0 && $pos -lt $size ]]; then
        CAUGHT_POS=$pos
        return 0
      fi
    done
    kill -CONT "$pid"
    [[ ! -e $dir/checkpoints/sketch/rank-00001.json ]] ||
      fail "rank 1 finished reading before it was caught reading (a bigger corpus: DEDUP_FAULT_COPIES)"
    kill -0 "$BG_PID" 2>/dev/null || fail "the run ended before rank 1 was caught reading"
    sleep 0.02
  done
  fail "rank 1 not caught reading within 2 minutes"
}

check "SIGTERM to rank 1 while it reads: it abandons its reading (no sketch), rank 0 keeps its sketch, every rank stops, exit 75"
start_bg 2 "$WORK/term.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/term"
wait_until "$FAULT_WAIT" in_stage "$WORK/term" read+sketch
pid1=$(rank_pid 1)
[[ -n $pid1 ]] || fail "rank 1 not found"
catch_reading "$pid1" "$WORK/corpus.jsonl" "$WORK/term"
kill -TERM "$pid1"  # pending while stopped, handled at once on SIGCONT
kill -CONT "$pid1"
wait_bg
[[ $BG_RC -eq 75 ]] || { show "$WORK/term.log"; fail "exit $BG_RC, expected 75"; }
grep -q "shardforge \[rank 1/2\]: SIGTERM during stage 'read+sketch'" "$WORK/term.log" ||
  { show "$WORK/term.log"; fail "no signal line from rank 1"; }
grep -q "stopped by a signal during read+sketch" "$WORK/term.log" || { show "$WORK/term.log"; fail "no stop message"; }
grep -q '"state": "stopped"' "$WORK/term/status.json" || fail "status.json: $(cat "$WORK/term/status.json")"
# Rank 1 had bytes of its share left to read: it stops at its next batch, short of its share,
# without a sketch; rank 0, not signalled, finishes its reading and keeps its sketch.
abandoned=$(sed -n 's/.*\[rank 1\/2\] \[warning\] read+sketch: stop requested; reading abandoned after \([0-9]*\) record(s).*/\1/p' "$WORK/term.log")
[[ -n $abandoned ]] || { show "$WORK/term.log"; fail "rank 1 did not abandon its reading (caught at byte $CAUGHT_POS)"; }
share=$(sed -n 's/.*"docs": *\([0-9]*\).*/\1/p' "$WORK/ref/checkpoints/sketch/rank-00001.json" | head -1)
[[ -n $share && $abandoned -lt $share ]] || fail "rank 1 abandoned after $abandoned record(s), its share is ${share:-unknown}"
[[ ! -e $WORK/term/checkpoints/sketch/rank-00001.json && ! -e $WORK/term/sketch/rank-00001.sfar ]] ||
  fail "rank 1 abandoned its reading but left a sketch"
[[ -e $WORK/term/checkpoints/sketch/rank-00000.json ]] || fail "rank 0 kept no sketch"
reused=1
[[ ! -e $WORK/term/checkpoints/verdicts.json && ! -e $WORK/term/kept ]] || fail "a stopped run went on"
if find "$WORK/term" -name '*.tmp.*' | grep -q .; then fail "temporary files left: $(find "$WORK/term" -name '*.tmp.*')"; fi
run_ok 2 "$WORK/term-resume.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/term" --resume
grep -q "stopped in stage 'read+sketch'" "$WORK/term-resume.log" || { show "$WORK/term-resume.log"; fail "resume does not report the stopped run"; }
grep -q "read+sketch: $reused of 2 rank(s) read their verified sketch back" "$WORK/term-resume.log" ||
  { show "$WORK/term-resume.log"; fail "expected $reused sketch(es) reused"; }
same_outputs "$WORK/ref" "$WORK/term" "${OUTS[@]}"
ok "rank 1 caught at byte $CAUGHT_POS, abandoned after $abandoned of its $share records"

check "--resume of a complete run: nothing to do"
run_ok 2 "$WORK/again.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/run" --resume
grep -q "are complete: nothing to do" "$WORK/again.log" || { show "$WORK/again.log"; fail "redone"; }
same_outputs "$WORK/ref" "$WORK/run" "${OUTS[@]}"
ok

check "4 ranks: kept/ lost after a straight run; --resume reads the 4 sketches and the verdicts back; same records as 2 ranks"
run_ok 4 "$WORK/four.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/four"
rm -rf "$WORK/four/kept"
run_ok 4 "$WORK/four-resume.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/four" --resume
grep -q "kept: redo: kept/00000.jsonl.zst: No such file" "$WORK/four-resume.log" || { show "$WORK/four-resume.log"; fail "the lost kept/ was not noticed"; }
grep -q "read+sketch: 4 of 4 rank(s) read their verified sketch back" "$WORK/four-resume.log" || { show "$WORK/four-resume.log"; fail "the sketches were not reused"; }
grep -q "verdicts: complete (marker verified), skipped" "$WORK/four-resume.log" || { show "$WORK/four-resume.log"; fail "the verdicts were redone"; }
cmp "$WORK/ref/duplicates.jsonl" "$WORK/four/duplicates.jsonl" || fail "duplicates.jsonl differs with 4 ranks"
cmp <(cat "$WORK"/ref/kept/*) <(cat "$WORK"/four/kept/*) || fail "kept/ differs with 4 ranks"
ok

check "dedup.threshold changed: verdicts and kept/ redone, the sketches reused; same as a fresh run"
run_ok 2 "$WORK/t-ref.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/t-ref" --set dedup.threshold=0.6
run_ok 2 "$WORK/t.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/run" --set dedup.threshold=0.6 --resume
grep -q "verdicts: redo: dedup.threshold changed from '0.8' to '0.6'" "$WORK/t.log" || { show "$WORK/t.log"; fail "no redo line for the verdicts"; }
grep -q "kept: redo" "$WORK/t.log" || { show "$WORK/t.log"; fail "kept/ not redone"; }
grep -q "read+sketch: 2 of 2 rank(s) read their verified sketch back" "$WORK/t.log" || { show "$WORK/t.log"; fail "reading redone"; }
same_outputs "$WORK/t-ref" "$WORK/run" "${OUTS[@]}"
cmp -s "$WORK/ref/duplicates.jsonl" "$WORK/run/duplicates.jsonl" && fail "threshold 0.6 removed the same documents as 0.8"
ok

check "an input file touched: the sketches are redone"
touch "$WORK/corpus.jsonl"
run_ok 2 "$WORK/touch.log" dedup "$WORK/dedup.yaml" --set "output.dir=$WORK/run" --set dedup.threshold=0.6 --resume
grep -q "read+sketch: 0 of 2 rank(s) read their verified sketch back" "$WORK/touch.log" || { show "$WORK/touch.log"; fail "the sketches were reused"; }
grep -q "redo: input files changed" "$WORK/touch.log" || { show "$WORK/touch.log"; fail "no redo line naming the input files"; }
same_outputs "$WORK/t-ref" "$WORK/run" "${OUTS[@]}"
ok

sf_done
