# Factory strings FAISS accepts but the data refutes (no lists, a PCA to more dimensions than
# the data has, PQ codebooks of more centroids than there are rows): each exits 1 (a failed
# stage, all ranks agreed: no MPI_ABORT), prints exactly one error line naming index.factory,
# the config file and the corpus's rows x dims (not FAISS's source location), and leaves no
# index.faiss.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

check "generating 1000 x 32 and 100 x 32 gaussian mixtures"
sfdata gen "$WORK/d32.fvecs" --rows 1000 --dim 32 --seed 3
sfdata gen "$WORK/r100.fvecs" --rows 100 --dim 32 --seed 3
ok

OUT="$WORK/out"

# expect_factory_error NP FACTORY INPUT SHAPE PATTERN...: a build with NP ranks must exit
# exactly 1 with one [error] line holding the factory, the config file, SHAPE and each PATTERN.
expect_factory_error() {
  local np=$1 factory=$2 input=$3 shape=$4
  shift 4
  check "index.factory '$factory' on $shape ($np rank(s)): exit 1, one error naming the key, the config and the shape"
  rm -rf "$OUT"
  write_config "$WORK/c.yaml" "$OUT" "$factory" "$input"
  local log="$WORK/case-${factory//[^A-Za-z0-9]/_}-np$np.log"
  sf_mpirun "$np" "$log" build "$WORK/c.yaml"
  if [[ $SF_RC -ne 1 ]]; then
    show "$log"
    fail "'$factory': exit code $SF_RC, expected 1"
  fi
  expect_one_error "'$factory'" "$log" "index.factory '$factory'" "$WORK/c.yaml" "$shape" "$@"
  if grep -qE 'Error in |\.cpp:[0-9]' <<<"$ERROR_LINE"; then
    fail "'$factory': the error shows FAISS's source location: $ERROR_LINE"
  fi
  [[ -e "$OUT/index.faiss" ]] && fail "'$factory': $OUT/index.faiss exists after a failed build"
  ok "${ERROR_LINE#*\[error\] }"
}

expect_factory_error 2 "IVF0,Flat" "$WORK/d32.fvecs" "1000 rows x 32 dims" "0 lists"
expect_factory_error 4 "IVF0,Flat" "$WORK/d32.fvecs" "1000 rows x 32 dims" "0 lists"
expect_factory_error 2 "PCA64,IVF16,Flat" "$WORK/d32.fvecs" "1000 rows x 32 dims" "from 32 to 64 dimensions"
expect_factory_error 2 "IVF2,PQ8" "$WORK/r100.fvecs" "100 rows x 32 dims" "256 centroids" "100 rows"
expect_factory_error 4 "IVF2,PQ8np" "$WORK/r100.fvecs" "100 rows x 32 dims" "256 centroids"
expect_factory_error 1 "OPQ8,IVF2,PQ8np" "$WORK/r100.fvecs" "100 rows x 32 dims" "OPQ"

sf_done
