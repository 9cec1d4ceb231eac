# Fault (c): a full disk. The stage that cannot write fails with a clear error (naming the file
# and the reason), writes no completion marker and leaves no temporary file; the markers and
# files of the stages before it stay intact and verify (a resume elsewhere reuses them and
# matches an uninterrupted build).
#
# The disk fills in two ways, each checked for all of the above:
#  - a file-size limit on the ranks (RLIMIT_FSIZE with SIGXFSZ ignored, as `prlimit --fsize`
#    and `ulimit -f` set it): a write past it fails with EFBIG, "File too large". Needs no
#    privilege, so it runs everywhere (CI runs as root in a container without mount rights);
#  - a tiny tmpfs as output.dir: a real ENOSPC, "No space left on device". Only where this test
#    may mount one (root with mount rights); elsewhere it says so and the limit above stands in.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"

SMALL="$WORK/small"
mkdir -p "$SMALL"
MOUNTED=""
trap '[[ -z $MOUNTED ]] || umount "$SMALL" 2>/dev/null; rm -rf "$WORK"' EXIT

FAULT_ROWS=20000
FAULT_FACTORY="IVF64,Flat"
check "data: 20000 x 32, IVF64,Flat (pieces of 4096 rows, ~560 KB each; index.faiss ~2.7 MB); reference build"
fault_data "$WORK"
SETS=(--set output.piece_rows=4096 --set input.batch_rows=2048)
run_ok 2 "$WORK/ref.log" build "$WORK/build.yaml" --set "output.dir=$WORK/ref" "${SETS[@]}"
ok

# no_tmp DIR: no temporary file is left.
no_tmp() {
  if find "$1" -name '*.tmp.*' | grep -q .; then fail "temporary files left: $(find "$1" -name '*.tmp.*')"; fi
}

# The ranks under a file-size limit: each rank is started through this wrapper, which ignores
# SIGXFSZ (else the kernel kills the process at the limit instead of failing the write) and sets
# RLIMIT_FSIZE to $SF_FSIZE bytes. Open MPI's shared-memory transport keeps its segment in a
# file larger than the limit, so the ranks talk over TCP (btl self,tcp) in these runs.
REAL_SF=$SF
cat >"$WORK/fsize-rank.sh" <<EOF
#!/usr/bin/env bash
trap '' XFSZ
exec prlimit --fsize="\$SF_FSIZE" -- "$REAL_SF" "\$@"
EOF
chmod +x "$WORK/fsize-rank.sh"
# limited_run BYTES NP LOG ARGS...: sf_mpirun with every rank's files limited to BYTES.
limited_run() {
  local bytes=$1
  shift
  SF="$WORK/fsize-rank.sh" SF_FSIZE=$bytes OMPI_MCA_btl=self,tcp sf_mpirun "$@"
}

# full_disk_checks MODE RUN REASON: MODE "fsize" or "tmpfs"; RUN the output.dir on the small
# disk; REASON the error the full disk gives.
full_disk_checks() {
  local mode=$1 run=$2 reason=$3
  # fill RUN-SIZE LOG: the 2-rank build into RUN on a disk of that size (1m: train fits, a
  # piece does not; 4m: the pieces fit, index.faiss does not; in fsize mode: per file).
  fill() {
    local size=$1 log=$2
    if [[ $mode == tmpfs ]]; then
      mount_small "$size"
      sf_mpirun 2 "$log" build "$WORK/build.yaml" --set "output.dir=$run" "${SETS[@]}"
    else
      rm -rf "$run"
      # Per file: 256 KB (train's files fit, a piece does not), 1 MB (pieces fit, the index not).
      local bytes=$((256 * 1024))
      [[ $size == 4m ]] && bytes=$((1024 * 1024))
      limited_run "$bytes" 2 "$log" build "$WORK/build.yaml" --set "output.dir=$run" "${SETS[@]}"
    fi
  }

  check "$mode: train fits, the add stage runs out of space -> clear error, no marker for the failing piece"
  fill 1m "$WORK/$mode-full-add.log"
  [[ $SF_RC -eq 1 ]] || { show "$WORK/$mode-full-add.log"; fail "exit $SF_RC, expected 1"; }
  grep -q "add failed on rank [0-9]: cannot write $run/pieces/rows-.*$reason" "$WORK/$mode-full-add.log" ||
    { show "$WORK/$mode-full-add.log"; fail "no clear error naming the piece and '$reason'"; }
  if grep -q "MPI_ABORT\|MPI_Abort" "$WORK/$mode-full-add.log"; then show "$WORK/$mode-full-add.log"; fail "aborted instead of agreeing"; fi
  [[ -f $run/checkpoints/train.json && -f $run/trained.faiss ]] || fail "the train checkpoint is gone"
  [[ ! -e $run/index.faiss && ! -e $run/checkpoints/merge.json ]] || fail "merge marker or index on a full disk"
  for m in "$run"/checkpoints/add/*.json; do
    [[ -e $m ]] || continue
    [[ -f $run/pieces/$(basename "$m" .json).sfsh ]] || fail "marker $m without its piece"
  done
  no_tmp "$run"
  ok "$(grep -o 'add failed.*' "$WORK/$mode-full-add.log" | head -1)"

  check "$mode: the earlier stage's checkpoint verifies: a resume on a larger disk skips train and matches the reference"
  rm -rf "$WORK/$mode-moved"
  cp -a "$run" "$WORK/$mode-moved"
  run_ok 2 "$WORK/$mode-moved.log" build "$WORK/build.yaml" --set "output.dir=$WORK/$mode-moved" "${SETS[@]}" --resume
  grep -q "train: complete (marker verified), skipped" "$WORK/$mode-moved.log" || { show "$WORK/$mode-moved.log"; fail "train redone"; }
  cmp "$WORK/ref/index.faiss" "$WORK/$mode-moved/index.faiss" || fail "resumed index.faiss differs"
  ok

  check "$mode: the pieces fit, index.faiss does not -> merge's write fails, no merge marker, pieces intact"
  fill 4m "$WORK/$mode-full-merge.log"
  [[ $SF_RC -eq 1 ]] || { show "$WORK/$mode-full-merge.log"; fail "exit $SF_RC, expected 1"; }
  # Every rank writes its own lists (MPI-IO): whichever rank's write failed names the file.
  grep -q "merge failed on rank [0-9]: cannot write $run/index.faiss.*$reason" "$WORK/$mode-full-merge.log" ||
    { show "$WORK/$mode-full-merge.log"; fail "no clear error naming index.faiss and '$reason'"; }
  [[ ! -e $run/index.faiss && ! -e $run/checkpoints/merge.json ]] || fail "merge marker or index on a full disk"
  pieces=$(piece_markers "$run")
  [[ $pieces -eq 6 ]] || fail "expected all 6 piece markers (3 per rank), found $pieces"
  no_tmp "$run"
  rm -rf "$WORK/$mode-moved2"
  cp -a "$run" "$WORK/$mode-moved2"
  run_ok 2 "$WORK/$mode-moved2.log" build "$WORK/build.yaml" --set "output.dir=$WORK/$mode-moved2" "${SETS[@]}" --resume
  grep -q "add: 20000 of 20000 rows are in verified pieces" "$WORK/$mode-moved2.log" || { show "$WORK/$mode-moved2.log"; fail "pieces not reused"; }
  cmp "$WORK/ref/index.faiss" "$WORK/$mode-moved2/index.faiss" || fail "resumed index.faiss differs"
  ok "$pieces pieces kept and reused"
}

# mount_small SIZE: a fresh tmpfs of SIZE at $SMALL.
mount_small() {
  umount "$SMALL" 2>/dev/null || true
  mount -t tmpfs -o "size=$1" tmpfs "$SMALL" || fail "mounting a $1 tmpfs at $SMALL failed"
  MOUNTED=1
}

full_disk_checks fsize "$WORK/fsize/run" "File too large"

if err=$(mount -t tmpfs -o size=1m tmpfs "$SMALL" 2>&1); then
  MOUNTED=1
  full_disk_checks tmpfs "$SMALL/run" "No space left on device"
else
  # Not a skip: the checks above hold the same promises with EFBIG in place of ENOSPC.
  echo "-- tmpfs: not run, this test cannot mount (${err%%$'\n'*}); the file-size limit above stood in"
fi

sf_done
