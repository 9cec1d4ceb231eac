# FAISS prints "WARNING clustering N points to K centroids: please provide at least ..." once
# per codebook clustering (for OPQ once per sub-quantizer and iteration: hundreds of lines).
# shardforge says it once instead, in its own log with the figures, and FAISS says nothing.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

check "generating a 1000 x 8 gaussian mixture"
sfdata gen "$WORK/x.fvecs" --rows 1000 --dim 8 --seed 5
ok

# expect_one_warning NP FACTORY PATTERN...: the build succeeds; stderr holds no FAISS warning
# and exactly one shardforge warning about the codebook sample, holding each PATTERN.
expect_one_warning() {
  local np=$1 factory=$2
  shift 2
  check "index.factory '$factory' on 1000 rows ($np rank(s)): one warning about the codebook sample, none from FAISS"
  local log="$WORK/${factory//[^A-Za-z0-9]/_}-np$np.log"
  write_config "$WORK/c.yaml" "$WORK/out-$np-${factory//[^A-Za-z0-9]/_}" "$factory" "$WORK/x.fvecs"
  run_ok "$np" "$log" build "$WORK/c.yaml"
  local faiss_lines ours
  faiss_lines=$(grep -c 'please provide at least' "$log.stderr" || true)
  [[ $faiss_lines -eq 0 ]] || fail "'$factory': FAISS warned $faiss_lines time(s)"
  ours=$(grep -F '[warning]' "$log.stderr" | grep -F 'codebook k-means on few points' || true)
  [[ $(grep -c . <<<"$ours") -eq 1 && -n $ours ]] ||
    { show "$log"; fail "'$factory': expected one codebook warning, got: $ours"; }
  local pattern
  for pattern in "$@"; do
    grep -qF -- "$pattern" <<<"$ours" || fail "'$factory': the warning does not say '$pattern': $ours"
  done
  ok "${ours#*\[warning\] }"
}

# Codebook sample: min(1000 rows, 256 x nlist = 1024) = 1000 rows; FAISS recommends 39 x 256.
# Before: 2 x 50 OPQ lines + 2 PQ lines from FAISS, nothing from shardforge.
expect_one_warning 2 "OPQ2,IVF4,PQ2np" "OPQ2 rotation: 1000 points for 256 centroids, FAISS recommends at least 9984" \
  "PQ2 sub-quantizers: 1000 points for 256 centroids"
# Polysemous PQ trains with FAISS's own IndexIVFPQ::train on rank 0.
expect_one_warning 3 "IVF4,PQ2" "PQ2 sub-quantizers: 1000 points for 256 centroids, FAISS recommends at least 9984"

sf_done
