# Bad input and bad config: every case exits with its documented code within the timeout
# (docs/commands.md, "Exit codes": 2 for a config file or --set that is invalid, 1 for bad data or a config value
# only the data can refute; commands/main.cc kExitConfig, kExitFailed), prints exactly one
# error line (from rank 0, agreed by all ranks: no MPI_ABORT), naming the file (and the row
# where one applies), and leaves no index.faiss in output.dir.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

DIM=8

check "generating inputs: good, truncated, bad row header, other dimension, NaN/Inf, empty, 3-row, bad HDF5"
sfdata gen "$WORK/good.fvecs" --rows 400 --dim $DIM --seed 2
sfdata gen "$WORK/dim16.fvecs" --rows 300 --dim 16 --seed 2
head -c -3 "$WORK/good.fvecs" >"$WORK/trunc.fvecs"  # 400 rows less 3 bytes: row 399 is cut
sfdata poison "$WORK/good.fvecs" "$WORK/nan.fvecs" --row 317 --col 5 --value nan
sfdata poison "$WORK/good.fvecs" "$WORK/inf.fvecs" --row 250 --col 0 --value inf
sfdata poison "$WORK/good.fvecs" "$WORK/ninf.fvecs" --row 3 --col 7 --value=-inf
sfdata gen "$WORK/big.fvecs" --rows 20000 --dim $DIM --seed 4
sfdata poison "$WORK/big.fvecs" "$WORK/bignan.fvecs" --row 19999 --col 2 --value nan
: >"$WORK/empty.fvecs"
"$PY" -c "import numpy as np, sys; np.save(sys.argv[1], np.zeros((0, $DIM), np.float32)); \
np.save(sys.argv[2], np.random.default_rng(0).normal(size=(3, $DIM)).astype(np.float32))" \
  "$WORK/empty.npy" "$WORK/three.npy"
sfdata h5bad "$WORK/strings.h5" string
sfdata h5bad "$WORK/cube.h5" 3d
sfdata h5bad "$WORK/nodata.h5" missing
cp "$WORK/good.fvecs" "$WORK/vectors.bin"
"$PY" - "$WORK" <<'EOF'
import sys
import numpy as np
work = sys.argv[1]
raw = np.fromfile(work + "/good.fvecs", dtype=np.int32).reshape(400, 9)
raw[100, 0] = 9  # row 100 claims 9 dims: the size still looks whole
raw.tofile(work + "/badrow.fvecs")
np.save(work + "/full.npy", np.random.default_rng(1).normal(size=(400, 8)).astype(np.float32))
data = open(work + "/full.npy", "rb").read()
open(work + "/trunc.npy", "wb").write(data[:-10])  # row 399 is cut
EOF
ok

OUT="$WORK/out"

# expect_error NAME NP RC SHARDFORGE-ARGS... -- PATTERN...: runs shardforge with NP ranks; it must
# exit RC, print exactly one "[error]" line containing every PATTERN (fixed strings), not
# abort through MPI_Abort, and leave no $OUT/index.faiss (build) or $OUT/eval.json (eval).
expect_error() {
  local name=$1 np=$2 rc=$3
  shift 3
  local args=()
  while [[ $# -gt 0 && $1 != -- ]]; do
    args+=("$1")
    shift
  done
  [[ $# -gt 0 ]] && shift
  check "$name ($np rank(s))"
  local log="$WORK/case-${name//[^A-Za-z0-9]/_}-np$np.log"
  sf_mpirun "$np" "$log" "${args[@]}"
  if [[ $SF_RC -ne $rc ]]; then
    show "$log"
    fail "$name: shardforge ${args[*]} exited $SF_RC, expected $rc"
  fi
  expect_one_error "$name" "$log" "$@"
  if [[ ${args[0]} == build && -e "$OUT/index.faiss" ]]; then
    fail "$name: $OUT/index.faiss exists after a failed build"
  fi
  if [[ ${args[0]} == eval && -e "$OUT/eval.json" ]]; then
    fail "$name: $OUT/eval.json exists after a failed eval"
  fi
  ok "rc $SF_RC: ${ERROR_LINE#*\[error\] }"
}

# config FACTORY INPUT...: $WORK/c.yaml building into a fresh $OUT.
config() {
  rm -rf "$OUT"
  write_config "$WORK/c.yaml" "$OUT" "$@"
}

# ---- data errors ---------------------------------------------------------------------------

config "IVF4,Flat" "$WORK/missing.fvecs"
expect_error "missing input file" 2 1 build "$WORK/c.yaml" -- "$WORK/missing.fvecs" "cannot open"
config "IVF4,Flat" "$WORK/good.fvecs" "$WORK/missing.fvecs"
expect_error "missing second input file" 4 1 build "$WORK/c.yaml" -- "$WORK/missing.fvecs" "cannot open"

config "IVF4,Flat" "$WORK/trunc.fvecs"
expect_error "truncated fvecs" 2 1 build "$WORK/c.yaml" -- "$WORK/trunc.fvecs" "truncated" "row 399"
expect_error "truncated fvecs" 1 1 build "$WORK/c.yaml" -- "$WORK/trunc.fvecs" "truncated" "row 399"

config "IVF4,Flat" "$WORK/badrow.fvecs"
expect_error "fvecs row with a wrong dimension header" 2 1 build "$WORK/c.yaml" -- \
  "$WORK/badrow.fvecs" "row 100" "dimension 9"
config "IVF4,Flat" "$WORK/trunc.npy"
expect_error "truncated .npy" 2 1 build "$WORK/c.yaml" -- "$WORK/trunc.npy" "truncated" "row 399"

config "IVF4,Flat" "$WORK/good.fvecs" "$WORK/dim16.fvecs"
expect_error "dimension mismatch between two files" 2 1 build "$WORK/c.yaml" -- \
  "$WORK/dim16.fvecs" "$WORK/good.fvecs" "16" "8"

config "IVF4,Flat" "$WORK/good.fvecs" "$WORK/nan.fvecs"
expect_error "NaN in the second file" 2 1 build "$WORK/c.yaml" -- \
  "$WORK/nan.fvecs" "row 317" "global row 717" "column 5"
config "IVF4,Flat" "$WORK/nan.fvecs"
expect_error "NaN in the last rank's rows" 4 1 build "$WORK/c.yaml" -- "$WORK/nan.fvecs" "row 317"
config "IVF4,Flat" "$WORK/inf.fvecs"
expect_error "+Inf in a vector" 2 1 build "$WORK/c.yaml" -- "$WORK/inf.fvecs" "row 250" "column 0"
config "IVF4,Flat" "$WORK/ninf.fvecs"
expect_error "-Inf in a vector" 1 1 build "$WORK/c.yaml" -- "$WORK/ninf.fvecs" "row 3" "column 7"

config "IVF4,Flat" "$WORK/empty.fvecs"
expect_error "empty corpus: 0-byte fvecs" 2 1 build "$WORK/c.yaml" -- "$WORK/empty.fvecs" "empty"
config "IVF4,Flat" "$WORK/empty.npy"
expect_error "empty corpus: 0-row .npy" 2 1 build "$WORK/c.yaml" -- "$WORK/empty.npy" "empty"
config "IVF4,Flat" "$WORK/empty.fvecs" "$WORK/empty.npy"
expect_error "empty corpus: two empty files" 1 1 build "$WORK/c.yaml" -- "$WORK/empty.fvecs" "$WORK/empty.npy"

config "IVF2,Flat" "$WORK/three.npy"
expect_error "more ranks than rows" 4 1 build "$WORK/c.yaml" -- "$WORK/three.npy" "4" "3"

config "IVF4,Flat" "$WORK/strings.h5"
expect_error "HDF5 dataset of strings" 2 1 build "$WORK/c.yaml" -- "$WORK/strings.h5" "train" "string"
config "IVF4,Flat" "$WORK/cube.h5"
expect_error "HDF5 dataset of rank 3" 2 1 build "$WORK/c.yaml" -- "$WORK/cube.h5" "train" "rank 3"
config "IVF4,Flat" "$WORK/nodata.h5"
expect_error "HDF5 file without the dataset" 2 1 build "$WORK/c.yaml" -- "$WORK/nodata.h5" "train" "not found"
config "IVF4,Flat" "$WORK/good.fvecs"
expect_error "HDF5 dataset named by input.dataset is absent" 2 1 build "$WORK/c.yaml" \
  --set "input.paths=[$WORK/nodata.h5]" --set input.dataset=vectors -- "$WORK/nodata.h5" "vectors"
config "IVF4,Flat" "$WORK/vectors.bin"
expect_error "unknown file extension" 2 1 build "$WORK/c.yaml" -- "$WORK/vectors.bin" "format"

config "IVF64,Flat" "$WORK/three.npy"
expect_error "fewer rows than nlist" 1 1 build "$WORK/c.yaml" -- "3 rows" "64"

# ---- config errors -------------------------------------------------------------------------

rm -rf "$OUT"
printf 'input:\n  paths: [%s]\nindex:\n  factory: IVF4,Flat\n  bogus_key: 3\noutput:\n  dir: %s\n' \
  "$WORK/good.fvecs" "$OUT" >"$WORK/bogus.yaml"
expect_error "unknown config key" 2 2 build "$WORK/bogus.yaml" -- "$WORK/bogus.yaml" "index.bogus_key"
config "IVF4,Flat" "$WORK/good.fvecs"
printf 'idnex:\n  factory: x\n' >>"$WORK/c.yaml"
expect_error "misspelt config section" 2 2 build "$WORK/c.yaml" -- "$WORK/c.yaml" "idnex" "did you mean 'index'"
config "IVF4,Flat" "$WORK/good.fvecs"
expect_error "unknown key given by --set" 1 2 build "$WORK/c.yaml" --set index.nlist=4 -- \
  "$WORK/c.yaml" "index.nlist" "--set index.nlist=4"

rm -rf "$OUT"
printf 'input:\n  paths: [%s]\noutput:\n  dir: %s\n' "$WORK/good.fvecs" "$OUT" >"$WORK/nofactory.yaml"
expect_error "missing required key index.factory" 2 2 build "$WORK/nofactory.yaml" -- \
  "$WORK/nofactory.yaml" "index.factory" "required"
printf 'index:\n  factory: IVF4,Flat\noutput:\n  dir: %s\n' "$OUT" >"$WORK/nopaths.yaml"
expect_error "missing required key input.paths" 2 2 build "$WORK/nopaths.yaml" -- \
  "$WORK/nopaths.yaml" "input.paths" "required"
printf 'input:\n  paths: [%s]\nindex:\n  factory: IVF4,Flat\n' "$WORK/good.fvecs" >"$WORK/nodir.yaml"
expect_error "missing required key output.dir" 2 2 build "$WORK/nodir.yaml" -- "$WORK/nodir.yaml" "output.dir"

config "IVF4,Flat" "$WORK/good.fvecs"
expect_error "bad --set syntax: no '='" 2 2 build "$WORK/c.yaml" --set seed -- "--set seed" "key=value"
expect_error "bad --set syntax: empty key" 2 2 build "$WORK/c.yaml" --set =3 -- "--set =3" "key=value"
expect_error "bad --set syntax: empty key part" 1 2 build "$WORK/c.yaml" --set index..factory=X -- \
  "--set index..factory=X" "key=value"
expect_error "bad --set value: broken YAML" 2 2 build "$WORK/c.yaml" --set 'eval.nprobe=[1,' -- "eval.nprobe=[1,"
expect_error "bad --set value: wrong type" 2 2 build "$WORK/c.yaml" --set input.batch_rows=many -- \
  "input.batch_rows" "many"
expect_error "missing config file" 2 2 build "$WORK/none.yaml" -- "$WORK/none.yaml"

# ---- eval errors ---------------------------------------------------------------------------

config "IVF4,Flat" "$WORK/good.fvecs"
expect_error "eval without an index (no output.dir yet: refused, 2)" 2 2 eval "$WORK/c.yaml" --set "eval.queries=$WORK/good.fvecs" -- \
  "$OUT/index.faiss"
run_ok 2 "$WORK/eval-build.log" build "$WORK/c.yaml"
# An eval must not remove or replace index.faiss, and must leave no eval.json when it fails.
eval_case() {
  rm -f "$OUT/eval.json"
  expect_error "$@"
  cmp -s "$OUT/index.faiss" "$WORK/kept.faiss" || fail "$1: a failed eval changed index.faiss"
}
cp "$OUT/index.faiss" "$WORK/kept.faiss"
eval_case "eval: eval.queries not set" 2 2 eval "$WORK/c.yaml" -- "$WORK/c.yaml" "eval.queries"
eval_case "eval: queries of another dimension" 2 1 eval "$WORK/c.yaml" --set "eval.queries=$WORK/dim16.fvecs" -- \
  "$WORK/dim16.fvecs" "16" "8"
eval_case "eval: NaN in a query" 2 1 eval "$WORK/c.yaml" --set "eval.queries=$WORK/nan.fvecs" -- \
  "$WORK/nan.fvecs" "row 317"
eval_case "eval: missing ground-truth file" 2 1 eval "$WORK/c.yaml" --set "eval.queries=$WORK/good.fvecs" \
  --set "eval.ground_truth=$WORK/gt.ivecs" -- "$WORK/gt.ivecs"
eval_case "eval: ground truth in a float file" 1 1 eval "$WORK/c.yaml" --set "eval.queries=$WORK/good.fvecs" \
  --set "eval.ground_truth=$WORK/good.fvecs" -- "$WORK/good.fvecs"

# ---- a failed build does not leave the previous build's results ----------------------------

check "a successful build + eval, then a failing build (NaN) into the same output.dir: no index.faiss, eval.json or run.json left"
config "IVF4,Flat" "$WORK/good.fvecs"
run_ok 2 "$WORK/ok-build.log" build "$WORK/c.yaml"
run_ok 2 "$WORK/ok-eval.log" eval "$WORK/c.yaml" --set "eval.queries=$WORK/good.fvecs" --set "eval.nprobe=[1]"
for f in index.faiss eval.json run.json; do [[ -f "$OUT/$f" ]] || fail "the successful runs left no $f"; done
sf_mpirun 2 "$WORK/then-fail.log" build "$WORK/c.yaml" --set "input.paths=[$WORK/good.fvecs, $WORK/nan.fvecs]"
[[ $SF_RC -eq 1 ]] || fail "the build over nan.fvecs exited $SF_RC, expected 1"
for f in index.faiss eval.json run.json; do
  [[ ! -e "$OUT/$f" ]] || fail "after a failed build, $OUT/$f from the earlier run is still there"
done
ok

check "the same with a failing build that stops at a missing input file (4 ranks)"
run_ok 2 "$WORK/ok-build2.log" build "$WORK/c.yaml"
[[ -f "$OUT/index.faiss" ]] || fail "the successful build left no index.faiss"
sf_mpirun 4 "$WORK/then-fail2.log" build "$WORK/c.yaml" --set "input.paths=[$WORK/missing.fvecs]"
[[ $SF_RC -eq 1 ]] || fail "the build over missing.fvecs exited $SF_RC, expected 1"
[[ ! -e "$OUT/index.faiss" ]] || fail "after a failed build, $OUT/index.faiss from the earlier build is still there"
ok

# A small training sample: the NaN row is first read when adding, after training.
config "IVF4,Flat" "$WORK/bignan.fvecs"
expect_error "NaN in a row outside the training sample" 2 1 build "$WORK/c.yaml" \
  --set index.train_size=8 -- "$WORK/bignan.fvecs" "row 19999" "column 2"

# Last: a factory string shardforge cannot shard is a config error whatever the data (exit 2), and
# config errors name the config file (runtime/config.h: "a bad value is a ConfigError naming
# the key and the file").
config "HNSW32" "$WORK/good.fvecs"
expect_error "non-IVF factory string" 2 2 build "$WORK/c.yaml" -- "HNSW32" "index.factory" "$WORK/c.yaml"
config "IVF4,Flat" "$WORK/good.fvecs"
expect_error "non-IVF factory string from --set" 1 2 build "$WORK/c.yaml" --set index.factory=Flat -- \
  "'Flat'" "index.factory" "$WORK/c.yaml"

# A factory string FAISS refuses for the corpus's dimension (PQ3 needs a multiple of 3, the
# vectors have 8): a config value only the data refutes, exit 1.
config "IVF4,PQ3" "$WORK/good.fvecs"
expect_error "factory string that does not fit the dimension" 2 1 build "$WORK/c.yaml" -- \
  "'IVF4,PQ3'" "index.factory" "d=8" "$WORK/c.yaml"

sf_done
