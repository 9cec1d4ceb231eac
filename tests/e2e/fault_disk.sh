# Fault (c): a full disk. output.dir on a tiny tmpfs: the stage that cannot write fails with a
# clear error (No space left on device, naming the file), writes no completion marker and
# leaves no temporary file; the markers and files of the stages before it stay intact and
# verify (a resume elsewhere reuses them and matches an uninterrupted build).
# Needs root and tmpfs mounts: exits 77 (skipped), saying why, where it cannot mount.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"

SMALL="$WORK/small"
mkdir -p "$SMALL"
trap 'umount "$SMALL" 2>/dev/null; rm -rf "$WORK"' EXIT
# mount_small SIZE: a fresh tmpfs of SIZE at $SMALL.
mount_small() {
  umount "$SMALL" 2>/dev/null || true
  if ! err=$(mount -t tmpfs -o "size=$1" tmpfs "$SMALL" 2>&1); then
    echo "SKIP: cannot mount a tmpfs (needs root and mount rights): $err"
    exit 77
  fi
}
mount_small 1m

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

check "1 MB tmpfs: train fits, the add stage runs out of space -> clear error, no marker for the failing piece"
sf_mpirun 2 "$WORK/full-add.log" build "$WORK/build.yaml" --set "output.dir=$SMALL/run" "${SETS[@]}"
[[ $SF_RC -eq 1 ]] || { show "$WORK/full-add.log"; fail "exit $SF_RC, expected 1"; }
grep -q "add failed on rank [0-9]: cannot write $SMALL/run/pieces/rows-.*No space left on device" "$WORK/full-add.log" ||
  { show "$WORK/full-add.log"; fail "no clear error naming the piece and the full disk"; }
[[ -f $SMALL/run/checkpoints/train.json && -f $SMALL/run/trained.faiss ]] || fail "the train checkpoint is gone"
[[ ! -e $SMALL/run/index.faiss && ! -e $SMALL/run/checkpoints/merge.json ]] || fail "merge marker or index on a full disk"
for m in "$SMALL"/run/checkpoints/add/*.json; do
  [[ -e $m ]] || continue
  [[ -f $SMALL/run/pieces/$(basename "$m" .json).sfsh ]] || fail "marker $m without its piece"
done
no_tmp "$SMALL/run"
ok "$(grep -o 'add failed.*' "$WORK/full-add.log" | head -1)"

check "the earlier stage's checkpoint verifies: a resume on a larger disk skips train and matches the reference"
cp -a "$SMALL/run" "$WORK/moved"
run_ok 2 "$WORK/moved.log" build "$WORK/build.yaml" --set "output.dir=$WORK/moved" "${SETS[@]}" --resume
grep -q "train: complete (marker verified), skipped" "$WORK/moved.log" || { show "$WORK/moved.log"; fail "train redone"; }
cmp "$WORK/ref/index.faiss" "$WORK/moved/index.faiss" || fail "resumed index.faiss differs"
ok

check "4 MB tmpfs: the pieces fit, index.faiss does not -> 'write index' fails, no merge marker, pieces intact"
mount_small 4m
sf_mpirun 2 "$WORK/full-merge.log" build "$WORK/build.yaml" --set "output.dir=$SMALL/run" "${SETS[@]}"
[[ $SF_RC -eq 1 ]] || { show "$WORK/full-merge.log"; fail "exit $SF_RC, expected 1"; }
grep -q "write index failed on rank 0: cannot write $SMALL/run/index.faiss.*No space left on device" "$WORK/full-merge.log" ||
  { show "$WORK/full-merge.log"; fail "no clear error naming index.faiss and the full disk"; }
[[ ! -e $SMALL/run/index.faiss && ! -e $SMALL/run/checkpoints/merge.json ]] || fail "merge marker or index on a full disk"
pieces=$(piece_markers "$SMALL/run")
[[ $pieces -eq 6 ]] || fail "expected all 6 piece markers (3 per rank), found $pieces"
no_tmp "$SMALL/run"
cp -a "$SMALL/run" "$WORK/moved2"
run_ok 2 "$WORK/moved2.log" build "$WORK/build.yaml" --set "output.dir=$WORK/moved2" "${SETS[@]}" --resume
grep -q "add: 20000 of 20000 rows are in verified pieces" "$WORK/moved2.log" || { show "$WORK/moved2.log"; fail "pieces not reused"; }
cmp "$WORK/ref/index.faiss" "$WORK/moved2/index.faiss" || fail "resumed index.faiss differs"
ok "$pieces pieces kept and reused"

sf_done
