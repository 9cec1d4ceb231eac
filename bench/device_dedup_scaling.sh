#!/usr/bin/env bash
# Dedup scaling on a many-core machine: `shardforge dedup` on one generated corpus at 1, 2, 4,
# 8 and 16 ranks (1 thread each), checking that every rank count removes the same documents.
#
# usage: bench/device_dedup_scaling.sh BUNDLE_DIR WORK_DIR [SIZE_MB]
#   BUNDLE_DIR: made by the developers' device-bundle tool (holds shardforge and Open MPI)
# Needs python3 with numpy (bench/gen_text_corpus.py). Prints one JSON line per run.
set -euo pipefail
bundle=$1 work=$2 size_mb=${3:-384}
bench_dir=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091
source "$bundle/env.sh"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
mkdir -p "$work"
t0=$(now)
python3 "$bench_dir/gen_text_corpus.py" --out "$work/corpus" --size-mb "$size_mb" --files 16 >&2
echo "generated ${size_mb} MB in $(since "$t0") s" >&2
bytes=$(cat "$work"/corpus/corpus-*.jsonl | wc -c)
for np in 1 2 4 8 16; do
  [ "$np" -le "$(nproc)" ] || continue
  dir=$work/dedup-np$np
  printf 'input:\n  format: jsonl\n  paths: [%s]\noutput:\n  dir: %s\nthreads: 1\n' \
    "$(ls "$work"/corpus/corpus-*.jsonl | paste -sd, -)" "$dir" >"$work/np$np.yaml"
  s=$(now)
  mpirun -np "$np" --bind-to core -x OMP_NUM_THREADS=1 shardforge dedup "$work/np$np.yaml" \
    >"$work/np$np.log" 2>&1 || { tail -20 "$work/np$np.log" >&2; exit 1; }
  wall=$(since "$s")
  cut -d, -f1 "$dir/duplicates.jsonl" | sort >"$work/removed-np$np"
  same=$(cmp -s "$work/removed-np$np" "$work/removed-np1" && echo true || echo false)
  stages=$(python3 -c "import json; d=json.load(open('$dir/dedup.json'))
st=d.get('stages', [])
print(json.dumps({s['name']: [round(max(s['seconds']), 2), round(max(s['peak_rss_mib']))] for s in st}))")
  echo "{\"ranks\": $np, \"wall\": $wall, \"mb\": $((bytes / 1000000)), \"removed\": $(wc -l <"$work/removed-np$np"), \"same_removed_as_np1\": $same, \"stages_s_rss\": $stages}"
done
