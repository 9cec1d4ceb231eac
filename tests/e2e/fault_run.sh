# Faults of `shardforge run` (checkpoints: the dedup's sketch/rank-R and verdicts, then embed,
# train, semdedup, merge, run):
# (a) SIGKILL of one rank once the embeddings are checkpointed: the job ends; --resume reads
#     the sketches and the embeddings back and gives index.faiss, ids.jsonl and
#     duplicates.jsonl byte-identical to an uninterrupted run;
# (b) SIGTERM to one rank while embedding: every rank stops at the next checkpoint (embed), exit 75;
#     --resume completes identically without embedding again;
# (c) a changed semdedup.eps redoes semdedup and what follows, not reading, embed or train;
# (d) a changed embed.dim reads the texts again (no MinHash) and redoes embed and what follows.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
source "$(dirname "$0")/fault_text_lib.bash"
sf_init "$@"
COPIES=${RUN_FAULT_COPIES:-4}
OUTS=(index.faiss ids.jsonl duplicates.jsonl embedder.json)
SETS=(--set embed.dim=64 --set index.metric=ip --set semdedup.eps=0.05)

check "data: fortune cookies x $COPIES as JSONL; reference: an uninterrupted 2-rank run"
fortune_corpus "$WORK/corpus.jsonl" "$COPIES"
text_config "$WORK/run.yaml" "$WORK/unused" "$WORK/corpus.jsonl"
run_ok 2 "$WORK/ref.log" run "$WORK/run.yaml" --set "output.dir=$WORK/ref" "${SETS[@]}"
for m in sketch/rank-00000 sketch/rank-00001 verdicts embed train semdedup merge outputs; do
  [[ -f $WORK/ref/checkpoints/$m.json ]] || fail "no marker $m"
done
ok "$(wc -l <"$WORK/ref/ids.jsonl") documents indexed"

check "SIGKILL of rank 1 once the embeddings are checkpointed: the job ends, no outputs"
start_bg 2 "$WORK/killed.log" run "$WORK/run.yaml" --set "output.dir=$WORK/run" "${SETS[@]}"
wait_until "$FAULT_WAIT" has_markers "$WORK/run" "embed.json" 1
signal_rank KILL 1
wait_bg
[[ $BG_RC -ne 0 ]] || { show "$WORK/killed.log"; fail "the job finished before the kill (a bigger corpus: RUN_FAULT_COPIES)"; }
[[ ! -e $WORK/run/ids.jsonl && ! -e $WORK/run/checkpoints/outputs.json ]] || fail "a killed run left ids.jsonl or its marker"
ok "exit $BG_RC"

check "--resume: sketches and embeddings read back, outputs byte-identical"
run_ok 2 "$WORK/resume.log" run "$WORK/run.yaml" --set "output.dir=$WORK/run" "${SETS[@]}" --resume
grep -q "read+sketch: 2 of 2 rank(s) read their verified sketch back" "$WORK/resume.log" || { show "$WORK/resume.log"; fail "the sketches were not reused"; }
grep -q "embed: complete (marker verified), skipped" "$WORK/resume.log" || { show "$WORK/resume.log"; fail "embedded again"; }
same_outputs "$WORK/ref" "$WORK/run" "${OUTS[@]}"
ok

check "SIGTERM to rank 1 while embedding: every rank stops at the embed checkpoint, exit 75"
start_bg 2 "$WORK/term.log" run "$WORK/run.yaml" --set "output.dir=$WORK/term" "${SETS[@]}"
wait_until "$FAULT_WAIT" in_stage "$WORK/term" embed
signal_rank TERM 1
wait_bg
[[ $BG_RC -eq 75 ]] || { show "$WORK/term.log"; fail "exit $BG_RC, expected 75"; }
# The embed checkpoint is the next safe point (the train checkpoint if embedding ended first).
grep -Eq "stopped by a signal during (embed|train): checkpoint" "$WORK/term.log" || { show "$WORK/term.log"; fail "not stopped at the embed checkpoint"; }
[[ -f $WORK/term/checkpoints/embed.json && ! -e $WORK/term/checkpoints/merge.json ]] || fail "expected the embed marker and no merge marker"
[[ ! -e $WORK/term/ids.jsonl ]] || fail "a stopped run published ids.jsonl"
run_ok 2 "$WORK/term-resume.log" run "$WORK/run.yaml" --set "output.dir=$WORK/term" "${SETS[@]}" --resume
grep -q "embed: complete (marker verified), skipped" "$WORK/term-resume.log" || { show "$WORK/term-resume.log"; fail "embedded again"; }
same_outputs "$WORK/ref" "$WORK/term" "${OUTS[@]}"
ok

check "semdedup.eps changed: semdedup and after redone; reading, embed and train reused; same as a fresh run"
run_ok 2 "$WORK/e-ref.log" run "$WORK/run.yaml" --set "output.dir=$WORK/e-ref" "${SETS[@]}" --set semdedup.eps=0.2
run_ok 2 "$WORK/e.log" run "$WORK/run.yaml" --set "output.dir=$WORK/run" "${SETS[@]}" --set semdedup.eps=0.2 --resume
grep -q "semdedup: redo: semdedup.eps changed from '0.05' to '0.2'" "$WORK/e.log" || { show "$WORK/e.log"; fail "no redo line for semdedup"; }
for skipped in "verdicts" "embed" "train"; do
  grep -q "$skipped: complete (marker verified), skipped" "$WORK/e.log" || { show "$WORK/e.log"; fail "$skipped redone"; }
done
grep -q "read+sketch: 2 of 2 rank(s) read their verified sketch back" "$WORK/e.log" || { show "$WORK/e.log"; fail "reading redone"; }
same_outputs "$WORK/e-ref" "$WORK/run" "${OUTS[@]}"
ok

check "embed.dim changed: the texts read again (no MinHash), verdicts reused, embed and after redone; same as a fresh run"
run_ok 2 "$WORK/d-ref.log" run "$WORK/run.yaml" --set "output.dir=$WORK/d-ref" "${SETS[@]}" --set embed.dim=32
run_ok 2 "$WORK/d.log" run "$WORK/run.yaml" --set "output.dir=$WORK/term" "${SETS[@]}" --set embed.dim=32 --resume
grep -q "embed: redo: embed.dim changed from '64' to '32'" "$WORK/d.log" || { show "$WORK/d.log"; fail "no redo line for embed"; }
grep -q "verdicts: complete (marker verified), skipped" "$WORK/d.log" || { show "$WORK/d.log"; fail "verdicts redone"; }
grep -q "read+sketch: 2 of 2 rank(s) read their verified sketch back" "$WORK/d.log" || { show "$WORK/d.log"; fail "reading redone"; }
same_outputs "$WORK/d-ref" "$WORK/term" "${OUTS[@]}"
ok

sf_done
