#!/bin/bash
# Batch QPS of `shardforge search` on the count and workload layouts that
# bench/partition_bench.py built (its --work dir), interleaved, median of REPEATS runs. Used to
# compare two builds of the binary on the same layouts (bench/RESULTS.md, "A faster scan").
# usage: bench/search_qps.sh BINARY RANKS REPEATS [DATASET fashion] [NPROBE_COUNT 3]
#                            [NPROBE_WORKLOAD 4] [WORK /tmp/partition-bench] [--set k=v ...]
set -euo pipefail
BIN=$1 R=$2 N=$3 DS=${4:-fashion} NPC=${5:-3} NPW=${6:-4} WORK=${7:-/tmp/partition-bench}
shift $(( $# < 7 ? $# : 7 ))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for _ in $(seq "$N"); do
  for L in count workload; do
    np=$NPC; [ "$L" = workload ] && np=$NPW
    mpirun -np "$R" --oversubscribe --bind-to none "$BIN" search "$WORK/$DS-$L-s$R.yaml" \
      --set search.nprobe="$np" "$@" > /dev/null 2>&1
    echo "$L $(/usr/bin/python3 -c "import json; print(json.load(open('$WORK/$DS-$L-s$R/search.json'))['qps'])")"
  done
done | /usr/bin/python3 -c "
import statistics as st, sys
d = {}
for line in sys.stdin:
    k, v = line.split(); d.setdefault(k, []).append(float(v))
c, w = st.median(d['count']), st.median(d['workload'])
print(f'count {c:.0f} workload {w:.0f} ratio {w / c:.3f} (runs: {d})')"
