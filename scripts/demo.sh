#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine (as root): install the dependencies,
# build, then build one global IVF index of Fashion-MNIST (60,000 x 784, from the Debian
# package dataset-fashion-mnist) with 2 MPI ranks and print the recall table; then the text
# pipeline, `shardforge run`, on the fortune cookies (Debian packages fortunes + fortunes-min)
# on the same ranks: read, exact + near dedup, embed, train, semantic dedup, add, merge, eval; a
# few example queries with their nearest fortunes; the run's status; and last a report of each
# run directory (report.html: plots and tables, one file that opens offline), with its path.
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
run() { mpirun -np "$ranks" --oversubscribe --bind-to none -x OMP_NUM_THREADS="$threads" build/commands/shardforge "$@"; }
run build "$config"
run eval "$config"
build/commands/shardforge info "$config"
# Step 2 (a few seconds): the whole text pipeline over the ~15,000 fortune cookies, then queries.
if [[ -r /usr/share/games/fortunes/fortunes ]]; then
  run run configs/fortunes-run.yaml --set run.eval=true
  echo "first duplicates found (runs/fortunes/duplicates.jsonl):"
  head -n 3 runs/fortunes/duplicates.jsonl
  grep -m 2 '"semantic"' runs/fortunes/duplicates.jsonl || true
  for q in "A penny saved is a penny earned." \
           "The early bird catches the worm." \
           "To be or not to be, that is the question."; do
    build/commands/shardforge query runs/fortunes "$q" -k 3
  done
  build/commands/shardforge status runs/fortunes
fi
# Last, a report of each run: one HTML page of plots and tables (report prints its path).
build/commands/shardforge report "$config"
if [[ -r /usr/share/games/fortunes/fortunes ]]; then
  build/commands/shardforge report runs/fortunes
fi
