#!/usr/bin/env bash
# dedup and run killed after their expensive per-rank checkpoint, then resumed: wall seconds
# of an uninterrupted run, of the killed run until the kill, and of the resumed run, with the
# seconds of read+sketch (dedup) and embed (run) in each. Usage:
#   bench/resume_text_bench.sh BUILD/commands/shardforge [COPIES] [RANKS]
# Corpus: the fortune cookies x COPIES as JSONL (tests/e2e/fault_text_lib.bash).
SRC="$(cd "$(dirname "$0")/.." && pwd)"
source "$SRC/tests/e2e/lib.bash"
source "$SRC/tests/e2e/fault_lib.bash"
source "$SRC/tests/e2e/fault_text_lib.bash"
sf_init "$1" "$SRC"
COPIES=${2:-16}
NP=${3:-2}
SF_TIMEOUT=600
stage_seconds() {  # FILE COMMAND STAGE: per-rank seconds of STAGE in run.json
  "$PY" -c "import json,sys; d=json.load(open(sys.argv[1]))['commands'][sys.argv[2]]; print(' '.join('%.2f' % t for s in d['stages'] if s['name']==sys.argv[3] for t in s['seconds']) or '-')" "$1" "$2" "$3"
}
fortune_corpus "$WORK/corpus.jsonl" "$COPIES"
text_config "$WORK/c.yaml" "$WORK/unused" "$WORK/corpus.jsonl"
echo "load: $(uptime)"
for cmd in dedup run; do
  marker="sketch/*.json" && count=$NP && stage=read+sketch
  [[ $cmd == run ]] && marker="embed.json" && count=1 && stage=embed
  t0=$SECONDS
  run_ok "$NP" "$WORK/$cmd-ref.log" "$cmd" "$WORK/c.yaml" --set "output.dir=$WORK/$cmd-ref"
  full=$((SECONDS - t0))
  t0=$SECONDS
  start_bg "$NP" "$WORK/$cmd-killed.log" "$cmd" "$WORK/c.yaml" --set "output.dir=$WORK/$cmd-run"
  wait_until 300 has_markers "$WORK/$cmd-run" "$marker" "$count"
  signal_rank KILL 1
  wait_bg
  killed=$((SECONDS - t0))
  t0=$SECONDS
  run_ok "$NP" "$WORK/$cmd-resume.log" "$cmd" "$WORK/c.yaml" --set "output.dir=$WORK/$cmd-run" --resume
  resumed=$((SECONDS - t0))
  echo "$cmd x$COPIES, $NP ranks: uninterrupted ${full} s ($stage $(stage_seconds "$WORK/$cmd-ref/run.json" "$cmd" "$stage") s);" \
    "killed after the $stage checkpoint at ${killed} s; resumed ${resumed} s ($stage $(stage_seconds "$WORK/$cmd-run/run.json" "$cmd" "$stage") s)"
done
