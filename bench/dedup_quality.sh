# Dedup quality against exact all-pairs Jaccard on the real corpora: the fortune cookies, the
# SPDX licence texts and the Clough corpus (scripts/fetch-dedup-data.sh makes the last two).
# For each corpus and dedup.verify (signature | exact): shardforge dedup (the configs set
# dedup.write_pairs: true), then shardforge dedup-quality; prints pair precision (of the pairs
# dedup verified) / pair recall (of the true pairs, in one cluster) / F1 at the threshold (0.8),
# the transitive, representative and document figures, and for Clough which answers land in
# their original's cluster. bench/dedup_param_sweep.sh varies num_perm, bands x rows and seeds.
#   bench/dedup_quality.sh [BUILD_DIR]      (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
sf=${1:-build}/commands/shardforge
[[ -f data/dedup/spdx.jsonl && -f data/dedup/clough.jsonl ]] || scripts/fetch-dedup-data.sh
echo "uptime: $(uptime)"
for corpus in fortunes spdx clough; do
  for verify in signature exact; do
    out=runs/quality-$corpus-$verify
    set=(--set dedup.verify=$verify --set output.dir=$out)
    "$sf" dedup "configs/$corpus-dedup.yaml" "${set[@]}" 2>/dev/null
    echo "== $corpus, verify: $verify ($sf dedup-quality configs/$corpus-dedup.yaml ${set[*]})"
    "$sf" dedup-quality "configs/$corpus-dedup.yaml" "${set[@]}"
  done
done
for t in 0.8 0.5 0.3; do
  out=runs/quality-clough-t$t
  set=(--set dedup.threshold=$t --set dedup.bands=0 --set dedup.rows=0 --set output.dir=$out)
  "$sf" dedup configs/clough-dedup.yaml "${set[@]}" 2>/dev/null
  "$sf" dedup-quality configs/clough-dedup.yaml "${set[@]}" >/dev/null
  echo "== clough answers vs their original, threshold $t (bands x rows from the threshold)"
  /usr/bin/python3 bench/clough_quality.py data/dedup/clough.jsonl "$out"
done
