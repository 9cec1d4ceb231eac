#!/usr/bin/env bash
# `shardforge run` within a per-rank memory budget (issue 15): the same corpus run twice at NP
# ranks (default 2, 1 thread each), first without resources.memory_per_rank (the node's
# available memory / ranks), then with BUDGET (default 512MiB). Each rank of the budgeted run is
# wrapped in /usr/bin/time -f %M (rss.<rank>) and its VmRSS sampled every 20 ms from /proc
# (sampled-NAME, bench/rss_sampler.py): two outside views of the whole job's peak, which agree
# (run.json's per-stage peaks no longer reset the high-water mark that %M reads). Prints, per stage, run.json's peak
# per rank against the budget + 10 %, both whole-job peaks per rank, and whether index.faiss,
# ids.jsonl and duplicates.jsonl are the same bytes in both runs.
#   bench/run_budget.sh build/commands/shardforge CORPUS.jsonl...   (NP=2 BUDGET=512MiB OUT=/tmp/dir)
# BUDGET_ONLY=1 runs the budgeted run alone; a stage the budget cannot hold ends it with exit 2
# and the stage's need, which the script prints.
# A corpus: /usr/bin/python3 bench/gen_text_corpus.py --out /tmp/corpus --size-mb 1024
set -euo pipefail
sf=$(realpath "$1"); shift
np=${NP:-2}
budget=${BUDGET:-512MiB}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=${OUT:-$(mktemp -d /tmp/sf-run-budget.XXXXXX)}
mkdir -p "$work"
source "$(dirname "$0")/text_run_config.bash"
text_run_config "$work/c.yaml" "$work/out" "$@"
echo "corpus: $* ($(du -cb "$@" | tail -1 | cut -f1) bytes), $np rank(s), budget $budget"

# sampled NAME: the ranks' VmRSS peaks (KiB) over the whole job, one line in $work/sampled-NAME,
# from the pids the ranks write to $work/pid-NAME.<rank>.
sampler() {
  /usr/bin/python3 "$(dirname "$0")/rss_sampler.py" "$work/pid-$1" "$np" "$work/sampled-$1" &
}

# one NAME SETS...: a run; each rank under /usr/bin/time -f %M, its shardforge process sampled
# (the pid of time's child goes to $PID_PREFIX.<rank>).
one() {
  local name=$1
  shift
  rm -rf "$work/out-$name" "$work/pid-$name".* "$work/rss-$name".* "$work/sampled-$name"
  echo "== $name: load before $(cut -d' ' -f1-3 /proc/loadavg)"
  sampler "$name"
  local s=$!
  local start
  start=$(date +%s.%N)
  PID_PREFIX="$work/pid-$name" RSS_PREFIX="$work/rss-$name" \
    mpirun -np "$np" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 -x PID_PREFIX -x RSS_PREFIX \
    bash -c 'r=$OMPI_COMM_WORLD_RANK
      /usr/bin/time -f %M -o "$RSS_PREFIX.$r" "$@" & p=$!
      for _ in $(seq 100); do
        c=$(cut -d" " -f1 /proc/$p/task/$p/children 2>/dev/null); [[ -n $c ]] && break; sleep 0.01
      done
      echo "${c:-$p}" >"$PID_PREFIX.$r"; wait $p' \
    bash "$sf" run "$work/c.yaml" --set output.dir="$work/out-$name" "$@" \
    >"$work/log-$name" 2>&1 || {
    local rc=$?
    wait "$s"
    # A budget too small for a stage: exit 2 before the stage starts, with its need.
    if [[ $rc -eq 2 ]] && grep -q 'more than the memory budget' "$work/log-$name"; then
      echo "exit 2 (wall $(echo "$(date +%s.%N) - $start" | bc) s):"
      grep -h '\[error\]' "$work/log-$name" | sed 's/^.*\[error\] /  /'
      return 2
    fi
    tail -20 "$work/log-$name"
    exit 1
  }
  wait "$s"
  echo "wall $(echo "$(date +%s.%N) - $start" | bc) s; load after $(cut -d' ' -f1-3 /proc/loadavg)"
}

# BUDGET_ONLY=1: the budgeted run alone (e.g. a corpus it cannot hold: its exit 2 and message).
if [[ -n ${BUDGET_ONLY:-} ]]; then
  one budget --set resources.memory_per_rank="$budget" || exit 0
  exit 0
fi
one nobudget
one budget --set resources.memory_per_rank="$budget" || exit 0
grep -h "memory budget" "$work/log-nobudget" "$work/log-budget" | sed 's/^.*\[info\] /  /'
grep -h "went over the memory budget\|\[error\]" "$work/log-budget" | sed 's/^/  /' || true

/usr/bin/python3 - "$work" "$np" <<'PY'
import json, sys
work, np = sys.argv[1], int(sys.argv[2])
run = json.load(open(f"{work}/out-budget/run.json"))["commands"]["run"]
budget = run["memory_budget_mib"]
limit = budget * 1.1
print(f"budget {budget:.0f} MiB per rank ({run['memory_budget_source']}), limit +10 %: {limit:.0f} MiB")
print(f"{'stage':<16}" + "".join(f"{'rank ' + str(r) + ' s / MiB':>20}" for r in range(np)) + "   within")
over = []
for s in run["stages"]:
    peaks = s["peak_rss_mib"]
    ok = max(peaks) <= limit
    if not ok: over.append(s["name"])
    print(f"{s['name']:<16}" + "".join(f"{t:>11.1f} / {p:>6.0f}" for t, p in zip(s["seconds"], peaks))
          + f"   {'yes' if ok else 'NO'}")
for r in range(np):
    t = int(open(f"{work}/rss-budget.{r}").read().split()[-1])
    smp = int(open(f"{work}/sampled-budget").read().split()[r])
    print(f"rank {r}: /usr/bin/time %M {t / 1024:.0f} MiB (whole job), "
          f"sampled VmRSS peak {smp / 1024:.0f} MiB (whole job)")
print("stages over budget + 10 %:", ", ".join(over) if over else "none")
PY
for f in index.faiss ids.jsonl duplicates.jsonl; do
  if cmp -s "$work/out-nobudget/$f" "$work/out-budget/$f"; then
    echo "$f: same bytes ($(stat -c %s "$work/out-budget/$f") bytes)"
  else
    echo "$f: DIFFERS"
  fi
done
