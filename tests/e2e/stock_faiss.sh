# index.faiss is a plain FAISS index: stock faiss (Python) reads it, it is IVF, it holds every
# row id exactly once with ids ascending within each list, and search finds the right rows.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

ROWS=5000
DIM=24

check "generating a ${ROWS} x ${DIM} gaussian mixture split over two fvecs files (1800 + 3200 rows)"
sfdata gen "$WORK/part1.fvecs" "$WORK/part2.fvecs" --rows $ROWS --dim $DIM --seed 21 --split 1800,3200
ok

check "stock faiss (python) reads the 2-rank IVF32,Flat build over two files"
write_config "$WORK/flat.yaml" "$WORK/flat" "IVF32,Flat" "$WORK/part1.fvecs" "$WORK/part2.fvecs"
run_ok 2 "$WORK/flat.log" build "$WORK/flat.yaml"
"$PY" -c "import faiss, sys; i = faiss.read_index(sys.argv[1]); print('  read', type(i).__name__, i.ntotal)" \
  "$WORK/flat/index.faiss"
ok

check "IVF32,Flat: ntotal == rows, IVF, every id once, ids ascend per list, codes == corpus rows, self is nearest at nprobe=nlist"
sfdata index "$WORK/flat/index.faiss" --rows $ROWS --corpus "$WORK/part1.fvecs" "$WORK/part2.fvecs" --flat --search
ok

# PQ without "np" would add polysemous training: slow FAISS work that tells nothing here. A
# smaller codebook sample keeps OPQ's training short on 2 shared cores.
for factory in "IVF32,PQ8np" "OPQ8,IVF32,PQ8np" "PCA16,IVF32,SQ8" "IVF32_HNSW16,Flat"; do
  check "$factory (2 ranks): stock faiss reads it, every id once, ids ascend, search finds corpus rows"
  write_config "$WORK/f.yaml" "$WORK/f" "$factory" "$WORK/part1.fvecs" "$WORK/part2.fvecs"
  run_ok 2 "$WORK/f.log" build "$WORK/f.yaml" --set index.codebook_sample=1500
  if [[ $factory == *Flat ]]; then
    sfdata index "$WORK/f/index.faiss" --rows $ROWS --corpus "$WORK/part1.fvecs" "$WORK/part2.fvecs" --flat --search
  else
    sfdata index "$WORK/f/index.faiss" --rows $ROWS --corpus "$WORK/part1.fvecs" "$WORK/part2.fvecs" --search
  fi
  ok
done

check "index.metric=ip gives an inner-product index"
run_ok 2 "$WORK/ip.log" build "$WORK/flat.yaml" --set index.metric=ip --set "output.dir=$WORK/ip"
"$PY" - "$WORK/ip/index.faiss" <<'EOF'
import faiss, sys
i = faiss.read_index(sys.argv[1])
if i.metric_type != faiss.METRIC_INNER_PRODUCT:
    sys.exit("FAIL: metric_type %d, expected METRIC_INNER_PRODUCT" % i.metric_type)
EOF
ok

SIFT="$DATA/sift-5k.fvecs"
[[ -f "$SIFT" ]] || fail "missing real data file $SIFT (tests/data is part of the repository)"
check "real data: IVF64,Flat over $SIFT (5000 x 128) with 2 ranks"
write_config "$WORK/sift.yaml" "$WORK/sift" "IVF64,Flat" "$SIFT"
run_ok 2 "$WORK/sift.log" build "$WORK/sift.yaml"
sfdata index "$WORK/sift/index.faiss" --rows 5000 --corpus "$SIFT" --flat --search
ok

check "real data: the SIFT build is identical with 1 rank"
run_ok 1 "$WORK/sift1.log" build "$WORK/sift.yaml" --set "output.dir=$WORK/sift1"
cmp "$WORK/sift/index.faiss" "$WORK/sift1/index.faiss" || fail "SIFT index.faiss differs between 1 and 2 ranks"
ok

check "real data: IVF64,PQ16np over SIFT with 2 ranks"
run_ok 2 "$WORK/siftpq.log" build "$WORK/sift.yaml" --set "index.factory=IVF64,PQ16np" --set "output.dir=$WORK/siftpq"
sfdata index "$WORK/siftpq/index.faiss" --rows 5000 --corpus "$SIFT" --search
ok

sf_done
