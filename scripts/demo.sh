#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine (as root): install the dependencies,
# build, then build one global IVF index of Fashion-MNIST (60,000 x 784, from the Debian
# package dataset-fashion-mnist) with 2 MPI ranks and print the recall table; then
# deduplicate the fortune cookies (Debian packages fortunes + fortunes-min) on the same ranks
# and print what was removed.
#   RANKS=4 scripts/demo.sh        more ranks (oversubscribed on a small machine)
#   CONFIG=configs/x.yaml scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ranks=${RANKS:-2}
config=${CONFIG:-configs/fashion-mnist.yaml}
threads=$(( $(nproc) / ranks )); (( threads >= 1 )) || threads=1
run() { mpirun -np "$ranks" --oversubscribe --bind-to none -x OMP_NUM_THREADS="$threads" build/jobs/shardforge "$@"; }
run build "$config"
run eval "$config"
build/jobs/shardforge info "$config"
# Step 2 (a few seconds): exact and near-duplicate removal over the ~15,000 fortune cookies.
if [[ -r /usr/share/games/fortunes/fortunes ]]; then
  run dedup configs/fortunes-dedup.yaml
  echo "first duplicates found (runs/fortunes-dedup/duplicates.jsonl):"
  head -n 5 runs/fortunes-dedup/duplicates.jsonl
fi
