# Issue 13: index.faiss and trained.faiss are byte-identical for any number of threads per
# rank, as for any number of ranks (docs/configuration.md: threads are left out of the fingerprint). Each
# factory is built with threads=1, 2 and 4 at 1 and 2 ranks (--bind-to none) and all six
# results are compared with the one-rank, one-thread build.
#
# What it guards against: OpenBLAS's OpenMP build splits a GEMM called outside an active
# parallel region over omp_get_max_threads() threads, and on its Prescott, Haswell and Zen
# kernels a split GEMM rounds some products differently (SkylakeX: none), so any step that
# lets FAISS call BLAS with all of a rank's threads (coarse assignment, PQ encoding with
# dsub >= 16, PCA/OPQ application, PCA/OPQ/PQ training) can make the bytes depend on the
# thread count. nlist 40 and d 128 are chosen so the GEMMs are not multiples of the kernels'
# blocks (IVF32 hid the bug) and PQ8 encodes through BLAS (dsub 16). index.codebook_sample
# 2048 keeps OPQ's training short.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

# Threads > 1 per rank: Open MPI would bind each rank to one core.
export OMPI_MCA_hwloc_base_binding_policy=none

ROWS=8000
DIM=128
FACTORIES=("IVF40,Flat" "IVF40,PQ8np" "OPQ8,IVF40,PQ8np" "PCA16,IVF40,SQ8" "IVF40,SQ8"
           "IVF40_HNSW16,Flat")
RUNS=("1 1" "1 2" "1 4" "2 1" "2 2" "2 4")  # ranks threads; the first is the reference

check "generating a ${ROWS} x ${DIM} gaussian mixture"
sfdata gen "$WORK/x.fvecs" --rows $ROWS --dim $DIM --seed 13 --centers 50
ok

# Builds every factory at every (ranks, threads) and lists each file that differs from the
# reference, so one run shows every breach, not only the first.
differ=()
for factory in "${FACTORIES[@]}"; do
  name=${factory//,/_}
  check "$factory: index.faiss and trained.faiss at threads 1, 2, 4 x ranks 1, 2 are byte-identical"
  write_config "$WORK/$name.yaml" "$WORK/unused" "$factory" "$WORK/x.fvecs"
  ref=""
  bad=()
  for run in "${RUNS[@]}"; do
    read -r np t <<<"$run"
    out="$WORK/$name-np$np-t$t"
    run_ok "$np" "$out.log" build "$WORK/$name.yaml" --set "output.dir=$out" --set threads=$t \
      --set index.codebook_sample=2048
    [[ -z "$ref" ]] && { ref=$out; continue; }
    for f in trained.faiss index.faiss; do
      [[ -f "$out/$f" ]] || fail "$factory at $np rank(s) x $t thread(s): no $out/$f"
      cmp -s "$ref/$f" "$out/$f" || bad+=("$f@${np}x$t")
    done
  done
  if ((${#bad[@]} > 0)); then
    echo "   DIFFERS from 1 rank x 1 thread: ${bad[*]}"
    differ+=("$factory: ${bad[*]}")
  else
    ok "$(stat -c %s "$ref/index.faiss") bytes each"
  fi
done

if ((${#differ[@]} > 0)); then
  printf '   %s\n' "${differ[@]}" >&2
  fail "${#differ[@]} of ${#FACTORIES[@]} factories depend on the number of threads (file@ranks x threads)"
fi
sf_done
