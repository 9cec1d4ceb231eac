#!/usr/bin/env bash
# Pair precision / recall of `shardforge dedup` at threshold 0.8 for several num_perm and
# bands x rows, each over seeds 1..S (the MinHash permutations), on SPDX and the fortunes.
# The exact Jaccard comes from one dedup-quality run per corpus (runs/quality-CORPUS-exact, made
# by bench/dedup_quality.sh); bench/dedup_param_sweep.py scores each run against it.
#   bench/dedup_param_sweep.sh [BUILD_DIR] [SEEDS] ["PERM BANDS ROWS[ VERIFY]" ...]
set -euo pipefail
cd "$(dirname "$0")/.."
sf=${1:-build}/commands/shardforge
seeds=${2:-8}
shift $(($# > 2 ? 2 : $#))
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] ||
  configs=("112 14 8" "112 14 8 exact" "128 16 8" "192 14 8" "256 14 8" "256 20 8" "256 16 10")
echo "uptime: $(uptime)"
for corpus in spdx fortunes; do
  truth=runs/quality-$corpus-exact
  if [[ ! -f $truth/quality_pairs.jsonl ]]; then
    "$sf" dedup "configs/$corpus-dedup.yaml" --set dedup.verify=exact --set output.dir=$truth 2>/dev/null
    "$sf" dedup-quality "configs/$corpus-dedup.yaml" --set dedup.verify=exact --set output.dir=$truth >/dev/null
  fi
  for cfg in "${configs[@]}"; do
    read -r perm bands rows verify <<<"$cfg"
    verify=${verify:-signature}
    dirs=()
    for seed in $(seq 1 "$seeds"); do
      out=runs/sweep-$corpus-$perm-${bands}x$rows-$verify-$seed
      "$sf" dedup "configs/$corpus-dedup.yaml" --set dedup.num_perm=$perm --set dedup.bands=$bands \
        --set dedup.rows=$rows --set dedup.verify=$verify --set dedup.seed=$seed \
        --set output.dir=$out 2>/dev/null
      dirs+=("$out")
    done
    echo "== $corpus: num_perm $perm, $bands bands x $rows rows, verify $verify, seeds 1..$seeds"
    /usr/bin/python3 bench/dedup_param_sweep.py "$truth" 0.8 "${dirs[@]}" | tail -1
  done
done
