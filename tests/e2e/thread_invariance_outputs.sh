# Issue 13: the outputs of `dedup`, `run`, `build` with partition.shards and `search` are
# byte-identical for any number of threads per rank, as for any number of ranks (docs/configuration.md:
# threads are left out of the fingerprint). Each command runs with threads=1, 2 and 4 at 1 and
# 2 ranks (--bind-to none) and every output file is compared with the one-rank, one-thread
# run's: dedup's kept/ (concatenated), duplicates.jsonl, pairs.jsonl (dedup.write_pairs); run's
# index.faiss, ids.jsonl, duplicates.jsonl; build's index.faiss, plan.json, shards/*; search's
# search.h5 ids and distances. partition.scan_cost is pinned so that no live timing enters the
# plan. thread_invariance.sh covers index.faiss and trained.faiss of plain builds.
#
# What it guards against: see thread_invariance.sh (OpenBLAS splits a GEMM called outside a
# parallel region over all threads, and a split GEMM rounds differently on some kernels). Here
# the partition stage (coarse assignment of the workload and of the corpus in repartitioning,
# split k-means, flat searches), `run`'s semantic dedup, and `search`'s coarse search: IVFPQ's
# distances add the coarse distance, which depended on the thread count through a GEMM
# (stages/shard_search.cc, coarse_search), and PCA's, applied to the queries with BLAS's
# threads. IVF40,Flat, IVF40,PQ16x4np and PCA32,IVF40,PQ8x4np, repartitioned (checked: the
# plan applies splits). ~80 s on a 2-core VM.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

# Threads > 1 per rank: Open MPI would bind each rank to one core.
export OMPI_MCA_hwloc_base_binding_policy=none

RUNS=("1 1" "1 2" "1 4" "2 1" "2 2" "2 4")  # ranks threads; the first is the reference
DD="$SRC/tests/e2e/dedupdata.py"
differ=()

# compare NAME FILE...: each FILE (relative to the run directories $WORK/NAME-npN-tT) must be
# the same bytes as in the reference run; differences are collected in $differ.
compare() {
  local name=$1 ref="$WORK/$1-np1-t1" run np t f bad=()
  shift
  for run in "${RUNS[@]:1}"; do
    read -r np t <<<"$run"
    for f in "$@"; do
      [[ -f "$ref/$f" && -f "$WORK/$name-np$np-t$t/$f" ]] || fail "$name: no $f at $np x $t"
      cmp -s "$ref/$f" "$WORK/$name-np$np-t$t/$f" || bad+=("$f@${np}x$t")
    done
  done
  if ((${#bad[@]} > 0)); then
    echo "   DIFFERS from 1 rank x 1 thread: ${bad[*]}"
    differ+=("$name: ${bad[*]}")
  else
    ok "$# file(s) the same in all ${#RUNS[@]} runs"
  fi
}

# each NAME COMMAND CONFIG ARGS...: runs COMMAND at every (ranks, threads) into $WORK/NAME-npN-tT.
each() {
  local name=$1 cmd=$2 cfg=$3 run np t
  shift 3
  for run in "${RUNS[@]}"; do
    read -r np t <<<"$run"
    run_ok "$np" "$WORK/$name-np$np-t$t.log" "$cmd" "$cfg" --set "output.dir=$WORK/$name-np$np-t$t" \
      --set threads=$t "$@"
  done
}

check "generating a JSONL corpus with planted duplicates and a 6000 x 64 ann.h5 with a skewed workload"
"$PY" "$DD" planted "$WORK/corpus" --docs 400 --seed 3
sfdata ann "$WORK/ann.h5" --rows 6000 --queries 300 --dim 64 --seed 5 --spread 1.0
"$PY" - "$WORK/ann.h5" "$WORK/workload.fvecs" <<'PY'
import sys, h5py, numpy as np
x = h5py.File(sys.argv[1], "r")["train"][:]
rng = np.random.default_rng(1)
near = np.concatenate([np.argsort(((x - x[c]) ** 2).sum(1))[:200] for c in (0, 1)])
w = (x[near] + rng.normal(0, 0.1, (near.size, x.shape[1]))).astype(np.float32)
out = np.empty((w.shape[0], w.shape[1] + 1), dtype=np.float32)
out[:, 0] = np.array([w.shape[1]], dtype=np.int32).view(np.float32)[0]
out[:, 1:] = w
out.tofile(sys.argv[2])
PY
ok

inputs=("$WORK/corpus/a.jsonl" "$WORK/corpus/b.jsonl" "$WORK/corpus/c.jsonl")
{
  echo "input:"
  echo "  format: jsonl"
  echo "  paths:"
  for p in "${inputs[@]}"; do echo "    - \"$p\""; done
  echo "dedup:"
  echo "  write_pairs: true"
  echo "output:"
  echo "  dir: \"$WORK/unused\""
} >"$WORK/text.yaml"

check "dedup (write_pairs): kept/, duplicates.jsonl, pairs.jsonl at threads 1, 2, 4 x ranks 1, 2"
each dedup dedup "$WORK/text.yaml"
for run in "${RUNS[@]}"; do
  read -r np t <<<"$run"
  cat "$WORK/dedup-np$np-t$t"/kept/* >"$WORK/dedup-np$np-t$t/kept.all"
done
compare dedup kept.all duplicates.jsonl pairs.jsonl

check "run: index.faiss, ids.jsonl, duplicates.jsonl at threads 1, 2, 4 x ranks 1, 2"
each run run "$WORK/text.yaml" --set index.metric=ip --set semdedup.eps=0.1
compare run index.faiss ids.jsonl duplicates.jsonl

# IVF40,PQ16x4np: its search distances add the coarse distance (precomputed tables), so they show
# a coarse search whose rounding depends on the batch or threads; IVF40,Flat's do not.
# PCA32,IVF40,PQ8x4np: the queries' and the corpus's PCA (to_ivf_space) in search and partition.
for factory in "IVF40,Flat" "IVF40,PQ16x4np" "PCA32,IVF40,PQ8x4np"; do
  name=${factory//,/_}
  write_config "$WORK/$name.yaml" "$WORK/unused" "$factory" "$WORK/ann.h5"
  cat >>"$WORK/$name.yaml" <<EOF
partition:
  workload: "$WORK/workload.fvecs"
  shards: 3
  nprobe: 4
  replicate_hot: 1
  scan_cost: [1.0e-7, 1.0e-8]  # a: seconds per probed list, b: per code (applies the split)
search:
  queries: "$WORK/ann.h5"
  nprobe: 4
EOF

  check "$factory, build with partition.shards 3: index.faiss, plan.json, shards/* at threads 1, 2, 4 x ranks 1, 2"
  each "$name" build "$WORK/$name.yaml"
  compare "$name" index.faiss plan.json shards/shard-0000.faiss shards/shard-0001.faiss \
    shards/shard-0002.faiss
  "$PY" -c "
import json, sys; p = json.load(open(sys.argv[1]))
assert p['repartition']['applied'] and p['repartition']['splits'] > 0, p['repartition']
assert p['scan_cost']['source'] != 'calibrated', p['scan_cost']
" "$WORK/$name-np1-t1/plan.json" || fail "the plan did not repartition (the stage checked) or was calibrated"

  # search reads the plan and shards of its output.dir: each run searches its own build's.
  check "$factory, search: search.h5 ids and distances at threads 1, 2, 4 x ranks 1, 2"
  each "$name" search "$WORK/$name.yaml"
  for run in "${RUNS[@]}"; do
    read -r np t <<<"$run"
    "$PY" -c "
import sys, h5py, numpy as np
with h5py.File(sys.argv[1] + '/search.h5', 'r') as f:
    np.save(sys.argv[1] + '/ids.npy', f['ids'][:]); np.save(sys.argv[1] + '/distances.npy', f['distances'][:])
" "$WORK/$name-np$np-t$t"
  done
  compare "$name" ids.npy distances.npy
done

if ((${#differ[@]} > 0)); then
  printf '   %s\n' "${differ[@]}" >&2
  fail "${#differ[@]} output(s) depend on the number of threads (file@ranks x threads)"
fi
sf_done
