#!/usr/bin/env bash
# Time from SIGTERM to exit while a build trains its coarse k-means: a shardforge without the
# k-means stop check (e.g. main's build) against one with it, interleaved, same data, same
# moment. Also: the resumed run's time and whether its index.faiss equals an uninterrupted one.
#
#   bench/stop_train_bench.sh OLD_SHARDFORGE NEW_SHARDFORGE [REPEATS] [ROWS] [ITERATIONS]
#
# 2 ranks x 1 thread, IVF1024,Flat, k-means on every row (index.train_size = ROWS, d 64);
# SIGTERM to every rank (as Slurm sends it) DELAY s after the build enters stage `train`.
set -euo pipefail
OLD=$(realpath "$1"); NEW=$(realpath "$2")
REPEATS=${3:-3}; ROWS=${4:-200000}; ITERS=${5:-25}; DELAY=${DELAY:-4}
SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/stop-train-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OMP_NUM_THREADS=1 /usr/bin/python3 "$SRC/tests/e2e/sfdata.py" gen "$WORK/base.fvecs" --rows "$ROWS" --dim 64 --seed 5
cat >"$WORK/b.yaml" <<YAML
input:
  paths: ["$WORK/base.fvecs"]
  batch_rows: 16384
index:
  factory: "IVF1024,Flat"
  train_size: $ROWS
  kmeans_iterations: $ITERS
output:
  dir: "$WORK/unused"
seed: 7
YAML
now() { date +%s.%N; }
build() {  # BINARY DIR [ARGS...]: build in the foreground, prints wall seconds
  local bin=$1 dir=$2; shift 2
  local t0; t0=$(now)
  mpirun -np 2 --bind-to none -x OMP_NUM_THREADS=1 "$bin" build "$WORK/b.yaml" \
    --set "output.dir=$dir" "$@" >"$dir.log" 2>&1 || true
  echo "$(now) - $t0" | bc
}
stop_during_training() {  # BINARY DIR: prints "seconds-from-SIGTERM-to-exit exit-code"
  local bin=$1 dir=$2
  mpirun -np 2 --bind-to none -x OMP_NUM_THREADS=1 "$bin" build "$WORK/b.yaml" \
    --set "output.dir=$dir" >"$dir.log" 2>&1 &
  local launcher=$!
  until grep -q '"stage": "train"' "$dir/status.json" 2>/dev/null; do sleep 0.05; done
  sleep "$DELAY"
  local t0; t0=$(now)
  for pid in $(pgrep -P "$launcher"); do kill -TERM "$pid"; done
  set +e; wait "$launcher"; local rc=$?; set -e
  echo "$(echo "$(now) - $t0" | bc) $rc"
}
echo "load before: $(uptime)"
ref=$(build "$NEW" "$WORK/ref")
echo "uninterrupted build (new): ${ref}s"
printf '| repeat | old: SIGTERM to exit s (rc) | new: SIGTERM to exit s (rc) | new: stopped after iteration | resume s | index.faiss |\n|---|---|---|---|---|---|\n'
for r in $(seq 1 "$REPEATS"); do
  rm -rf "$WORK/old" "$WORK/new"
  read -r old_s old_rc < <(stop_during_training "$OLD" "$WORK/old")
  read -r new_s new_rc < <(stop_during_training "$NEW" "$WORK/new")
  it=$(grep -o 'after iteration [0-9]* of [0-9]*' "$WORK/new.log" | head -1 | cut -d' ' -f3)
  res=$(build "$NEW" "$WORK/new" --resume)
  same=$(cmp -s "$WORK/ref/index.faiss" "$WORK/new/index.faiss" && echo byte-identical || echo DIFFERS)
  printf '| %s | %.2f (%s) | %.2f (%s) | %s of %s | %.1f | %s |\n' "$r" "$old_s" "$old_rc" "$new_s" "$new_rc" "${it:-?}" "$ITERS" "$res" "$same"
done
echo "load after: $(uptime)"
