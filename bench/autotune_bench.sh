#!/usr/bin/env bash
# The automatic index choice (issue 17) against a python3-faiss grid, on Fashion-MNIST
# (60,000 x 784, the 10,000 test images as queries) and the SIFT sample (5,000 x 128, 100
# queries), two index-size budgets each: one where a compressed code is needed (SQ8 does not
# fit) and one where SQ8 fits and Flat does not. Target recall@10 TARGET.
#   1. bench/autotune_grid.py grid: IVF256..2048 x Flat/SQ8/SQ6/SQ4/PQ(d/2..d/16) with
#      python3-faiss, each point's size, its smallest nprobe reaching the target and
#      single-thread QPS there; the best point per budget; the grid's total time.
#   2. shardforge build with index.factory: auto (or FACTORY, e.g. FACTORY=IVF1024,SQ8, until
#      auto lands), index.memory_budget and index.target_recall, NP ranks of one thread each;
#      then the written index.faiss measured by python3-faiss as the grid's points are: size,
#      stored nprobe, recall@10 there, single-thread QPS, its ratio to the best grid point, the
#      tune stage's share of the build (run.json) and the build's wall time against the grid's.
#   bench/autotune_bench.sh build/commands/shardforge   (NP=2 TARGET=0.9 FACTORY=auto
#       DATASETS="fashion sift" EVAL_QUERIES=1000 FASHION_BUDGETS="32MiB 64MiB"
#       SIFT_BUDGETS="768KiB 1536KiB" GRID=1 (0: reuse OUT/NAME.grid.json)
#       COSTS="fashion sift" (the datasets whose time per code and per list probed of each code
#       is measured, at two nlists, on the indexes the grid keeps in OUT)
#       OUT=/tmp/sf-autotune)
# Everything runs with OMP_NUM_THREADS=1 (a 2-core machine: k-means of small d ran several
# times slower with 2 threads here, and QPS is single-thread by definition).
# Runs, indexes and the cached ground truth stay in OUT (outside the repository).
set -euo pipefail
sf=$(realpath "$1")
np_ranks=${NP:-2}
target=${TARGET:-0.9}
factory=${FACTORY:-auto}
datasets=${DATASETS:-fashion sift}
grid=${GRID:-1}
costs=${COSTS-fashion sift}  # COSTS="": none
work=${OUT:-/tmp/sf-autotune}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
py=(/usr/bin/python3 -u "$here/autotune_grid.py")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mkdir -p "$work"

fashion=/usr/share/datasets/fashion-mnist
declare -A base=([fashion]=$fashion/train-images-idx3-ubyte.gz
  [sift]=$root/tests/data/sift-5k.fvecs)
declare -A queries=([fashion]=$fashion/t10k-images-idx3-ubyte.gz
  [sift]=$root/tests/data/sift-queries-100.fvecs)
# The budgets shardforge builds for; the grid's tables also show 16MiB and 400KiB (the issue's
# first guesses: no point of the grid reaches recall 0.9 within them).
declare -A budgets=([fashion]=${FASHION_BUDGETS:-32MiB 64MiB}
  [sift]=${SIFT_BUDGETS:-768KiB 1536KiB})
declare -A grid_budgets=([fashion]="16MiB ${budgets[fashion]}" [sift]="400KiB ${budgets[sift]}")
# Fashion: recall and QPS on the first EVAL_QUERIES of the 10,000 test images (Debian's scalar
# libfaiss decodes an SQ code of 784 dims in 1.4-2.8 us: all 10,000 at each tried nprobe of
# every point would take hours); nprobe is narrowed on the first 200 of them first.
declare -A eval_queries=([fashion]=${EVAL_QUERIES:-1000} [sift]=0)
declare -A tune_queries=([fashion]=200 [sift]=0)
# Fashion's PQ codebooks: d/4, d/8, d/16 (PQ392, two dims per sub-quantizer, is SQ4's size and
# its training alone took over 4 minutes per nlist here), trained on 10,000 seeded rows (FAISS's
# 39 per centroid; PQ98 took 42 s on 16,384 rows, one core). The coarse k-means uses all rows.
declare -A grid_args=([fashion]="--pq-divs ${PQ_DIVS:-4,8,16} --code-train-rows 10000"
  [sift]="--pq-divs ${PQ_DIVS:-2,4,8,16}")
declare -A cost_args=([fashion]="--cost-nlists 256,2048 --cost-nprobe 2,8 --cost-queries 500
  ${grid_args[fashion]}" [sift]="--cost-nlists 64,1024 --cost-nprobe 4,32")

echo "$(date -u '+%F %T') UTC, $(nproc --all) cores, load $(cut -d' ' -f1-3 /proc/loadavg);" \
  "OMP_NUM_THREADS=1; shardforge: $np_ranks ranks x 1 thread; factory $factory; target $target"
for ds in $datasets; do
  b=${base[$ds]} q=${queries[$ds]}
  echo; echo "######## $ds"
  if [[ " $costs " == *" $ds "* ]]; then
    # shellcheck disable=SC2086
    "${py[@]}" costs "$ds" "$b" "$q" "$work" ${cost_args[$ds]} 2>&1 |
      grep --line-buffered -v '^WARNING clustering'
  fi
  if [[ $grid == 1 ]]; then
    list=${grid_budgets[$ds]}
    # shellcheck disable=SC2086
    "${py[@]}" grid "$ds" "$b" "$q" "$work" --budgets "${list// /,}" --target "$target" \
      ${grid_args[$ds]} \
      --eval-queries "${eval_queries[$ds]}" --tune-queries "${tune_queries[$ds]}" 2>&1 |
      grep --line-buffered -v '^WARNING clustering'
  fi
  for budget in ${budgets[$ds]}; do
    run=$work/$ds-$budget
    rm -rf "$run"
    mkdir -p "$run"
    cat >"$run/c.yaml" <<EOF
input: {paths: [$b]}
index: {factory: "$factory", memory_budget: $budget, target_recall: $target}
output: {dir: $run/out}
eval: {k: 10, queries: $q, max_queries: ${eval_queries[$ds]}, nprobe: [1, 4, 16, 64], target_recall: $target}
threads: 1
seed: 1234
EOF
    echo; echo "-- $ds, budget $budget: shardforge build, $np_ranks ranks, factory $factory"
    t0=$(date +%s.%N)
    if ! mpirun --oversubscribe --bind-to none -np "$np_ranks" "$sf" build "$run/c.yaml" \
      >"$run/build.log" 2>&1; then
      echo "shardforge build failed:"; tail -5 "$run/build.log"; continue
    fi
    build_s=$(echo "$(date +%s.%N) - $t0" | bc)
    grep -E 'tune|wrote' "$run/build.log" | sed 's/^/  /' | tail -8
    # eval on the same queries: the smallest nprobe reaching the target (eval.target_recall),
    # which eval stores in index.faiss; the index is measured below at that stored nprobe.
    if ! mpirun --oversubscribe --bind-to none -np "$np_ranks" "$sf" eval "$run/c.yaml" \
      >"$run/eval.log" 2>&1; then
      echo "shardforge eval failed:"; tail -5 "$run/eval.log"; continue
    fi
    grep -E 'recommended|not reached' "$run/eval.log" | sed 's/^/  eval: /' | tail -2
    chosen=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))
      ['commands']['build']['summary'].get('factory', '?'))" "$run/out/run.json")
    "${py[@]}" index "$ds" "$b" "$q" "$work" --index "$run/out/index.faiss" --budget "$budget" \
      --target "$target" --factory "$chosen" --run-json "$run/out/run.json" --build-s "$build_s" \
      --eval-queries "${eval_queries[$ds]}" --tune-queries "${tune_queries[$ds]}"
  done
done
