# `shardforge run` adds piece by piece as `build` does (pipeline/index_build.h): rank 0 runs under
# strace, which SIGKILLs it on entry to the rename that publishes its second add piece. The
# killed run leaves status.json in stage 'add', a piece marker and no merge marker; --resume
# reads the complete pieces back and gives index.faiss, ids.jsonl and duplicates.jsonl
# byte-identical to an uninterrupted run. Then `run` with partition.shards 2 writes the sharded
# layout (plan.json, shards/) and `search` answers over it.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
source "$(dirname "$0")/fault_text_lib.bash"
sf_init "$@"
command -v strace >/dev/null || sf_skip "strace not installed (scripts/install-deps.sh installs it)"
OUTS=(index.faiss ids.jsonl duplicates.jsonl embedder.json)
SETS=(--set embed.dim=32 --set output.piece_rows=1024 --set input.batch_rows=1024)

check "data: fortune cookies x 2 as JSONL; reference: an uninterrupted 2-rank run, pieces of 1024 rows"
fortune_corpus "$WORK/corpus.jsonl" 2
text_config "$WORK/run.yaml" "$WORK/unused" "$WORK/corpus.jsonl"
run_ok 2 "$WORK/ref.log" run "$WORK/run.yaml" --set "output.dir=$WORK/ref" "${SETS[@]}"
[[ ! -e $WORK/ref/pieces ]] || fail "the pieces were not removed after the merge"
ok "$(wc -l <"$WORK/ref/ids.jsonl") documents indexed"


check "rank 0's renames in a traced run: its second add piece"
traced_renames "$WORK/list.log" "$WORK/list.trace" "$WORK/list" \
  run "$WORK/run.yaml" --set "output.dir=$WORK/list" "${SETS[@]}"
n=0 seen=0
for i in "${!NAMES[@]}"; do
  if [[ ${NAMES[$i]} == pieces/*.sfsh ]]; then
    seen=$((seen + 1))
    if ((seen == 2)); then n=$((i + 1)); break; fi
  fi
done
((n > 0)) || fail "rank 0 published fewer than 2 pieces (renames: ${NAMES[*]})"
ok "rename $n: ${NAMES[$((n - 1))]}"

check "SIGKILL of rank 0 while it publishes that piece: the job ends in stage 'add', one piece complete"
traced 2 "$WORK/kill.log" "$WORK/kill.trace" "-e inject=$calls:signal=SIGKILL:when=$n" \
  run "$WORK/run.yaml" --set "output.dir=$WORK/run" "${SETS[@]}"
[[ $SF_RC -ne 0 ]] || { show "$WORK/kill.log"; fail "the run was not killed"; }
grep -q "killed by SIGKILL" "$WORK/kill.trace" || fail "strace did not kill rank 0"
grep -q '"stage": "add"' "$WORK/run/status.json" || fail "status.json: $(cat "$WORK/run/status.json")"
[[ $(piece_markers "$WORK/run") -ge 1 ]] || fail "no piece marker"
[[ ! -e $WORK/run/checkpoints/merge.json && ! -e $WORK/run/ids.jsonl ]] ||
  fail "a killed run left a merge marker or ids.jsonl"
ok "exit $SF_RC, $(piece_markers "$WORK/run") piece(s) complete"

check "--resume: train skipped, complete pieces read back, outputs byte-identical"
run_ok 2 "$WORK/resume.log" run "$WORK/run.yaml" --set "output.dir=$WORK/run" "${SETS[@]}" --resume
grep -q "train: complete (marker verified), skipped" "$WORK/resume.log" || { show "$WORK/resume.log"; fail "train not skipped"; }
reused=$(sed -n 's/.*add: \([0-9]*\) of [0-9]* rows are in verified pieces.*/\1/p' "$WORK/resume.log")
[[ -n $reused && $reused -gt 0 ]] || { show "$WORK/resume.log"; fail "no piece reused"; }
same_outputs "$WORK/ref" "$WORK/run" "${OUTS[@]}"
[[ ! -e $WORK/run/pieces ]] || fail "the pieces were not removed after the merge"
ok "$reused rows reused"

check "run with partition.shards 2: plan.json and 2 shards; search over them"
sfdata gen "$WORK/queries.fvecs" --rows 50 --dim 32 --seed 3
run_ok 2 "$WORK/sharded.log" run "$WORK/run.yaml" --set "output.dir=$WORK/sharded" "${SETS[@]}" \
  --set partition.shards=2
[[ -f $WORK/sharded/plan.json && -f $WORK/sharded/shards/shard-0000.faiss && -f $WORK/sharded/shards/shard-0001.faiss ]] ||
  fail "no sharded layout: $(ls "$WORK/sharded")"
same_outputs "$WORK/ref" "$WORK/sharded" ids.jsonl duplicates.jsonl
run_ok 2 "$WORK/search.log" search "$WORK/run.yaml" --set "output.dir=$WORK/sharded" "${SETS[@]}" \
  --set partition.shards=2 --set "search.queries=$WORK/queries.fvecs"
[[ -f $WORK/sharded/search.h5 ]] || fail "search wrote no search.h5"
ok

sf_done
