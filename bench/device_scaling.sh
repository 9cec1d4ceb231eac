#!/usr/bin/env bash
# Scaling on a many-core machine: stock FAISS in one process with every core (bench/faiss_build,
# the C++ twin of py_build.py) against `shardforge build` at 1, 2, 4, ... ranks on the same data,
# threads per rank = cores / ranks. Checks that every rank count writes the same index.faiss.
#
# usage: bench/device_scaling.sh BUNDLE_DIR WORK_DIR [ROWS] [FACTORIES]
#   BUNDLE_DIR: made by the developers' device-bundle tool (holds shardforge, faiss_build, Open MPI)
# Prints one JSON line per run and a table; needs python3 with numpy for the data.
set -euo pipefail
bundle=$1 work=$2 rows=${3:-2000000} factories=${4:-"IVF1024,PQ16np;IVF4096,Flat"}
bench_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091
source "$bundle/env.sh"
cores=$(nproc)
mkdir -p "$work"
data=$work/base.fvecs
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
t0=$(now)
python3 "$bench_dir/synth.py" "$data" "$work/queries.fvecs" --rows "$rows"
echo "generated $rows x 128 in $(since "$t0") s on $cores cores" >&2

IFS=';' read -ra list <<<"$factories"
for factory in "${list[@]}"; do
  tag=${factory//,/_}
  s=$(now)
  peer=$(OMP_NUM_THREADS=$cores faiss_build "$data" "$factory" l2 "$work/peer-$tag.faiss")
  echo "{\"factory\": \"$factory\", \"contender\": \"faiss x1 (${cores} threads)\", \"wall\": $(since "$s"), \"phases\": $peer}"
  for np in 1 2 4 8 16; do
    [ "$np" -le "$cores" ] || continue
    threads=$((cores / np))
    dir=$work/sf-$tag-np$np
    printf 'input:\n  paths: [%s]\n  format: fvecs\nindex:\n  factory: "%s"\noutput:\n  dir: %s\nthreads: %d\n' \
      "$data" "$factory" "$dir" "$threads" >"$work/$tag-np$np.yaml"
    s=$(now)
    mpirun -np "$np" --bind-to none -x OMP_NUM_THREADS="$threads" \
      shardforge build "$work/$tag-np$np.yaml" >"$work/$tag-np$np.log" 2>&1 ||
      { tail -20 "$work/$tag-np$np.log" >&2; exit 1; }
    wall=$(since "$s")
    same=$(cmp -s "$dir/index.faiss" "$work/sf-$tag-np1/index.faiss" && echo true || echo false)
    stages=$(python3 -c "import json; b=json.load(open('$dir/run.json'))['commands']['build']
print(json.dumps({s['name']: [round(max(s['seconds']), 2), round(max(s['peak_rss_mib']))]
                  for s in b['stages']}))")
    echo "{\"factory\": \"$factory\", \"contender\": \"shardforge x$np (${threads} threads)\", \"wall\": $wall, \"same_index_as_np1\": $same, \"stages_s_rss\": $stages}"
  done
done
