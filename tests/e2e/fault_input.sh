# Fault (d): one rank's input unreadable. The corpus is two files; with 2 ranks, rank 1 alone
# reads part2.fvecs. Corrupt rows there (0xff bytes: NaN) fail rank 1 in whichever stage reads
# them first: all ranks stop together with rank 1's reason (file and row), none waits in a
# collective (every run has a timeout). A FIFO in place of the file is refused at open
# instead of blocking every rank forever.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"

check "data: 24576 x 32 in two files of 12288 rows (rank 1 reads only part2.fvecs with 2 ranks)"
sfdata gen "$WORK/part1.fvecs" "$WORK/part2.fvecs" --rows 24576 --dim 32 --seed 7 --split 12288,12288
write_config "$WORK/build.yaml" "$WORK/run" "IVF64,Flat" "$WORK/part1.fvecs" "$WORK/part2.fvecs"
run_ok 2 "$WORK/good.log" build "$WORK/build.yaml" --set "output.dir=$WORK/good"
ok

# corrupt FIRST_ROW ROWS [SKIP]: overwrites ROWS rows of part2.fvecs (132 bytes each: a
# 4-byte dimension, then 32 floats) with 0xff, from byte SKIP of the first row on (4: the
# values only, which read as NaN).
corrupt() {
  cp "$WORK/part2.good" "$WORK/part2.fvecs"
  local skip=${3:-0}
  head -c $(($2 * 132 - skip)) /dev/zero | tr '\0' '\377' |
    dd of="$WORK/part2.fvecs" bs=1 seek=$(($1 * 132 + skip)) conv=notrunc status=none
}
cp "$WORK/part2.fvecs" "$WORK/part2.good"

# expect_rank1_failure LOG: exit 1, rank 1's reason naming part2.fvecs, the same on all ranks.
expect_rank1_failure() {
  [[ $SF_RC -eq 1 ]] || { show "$1"; fail "exit $SF_RC, expected 1"; }
  grep -q "failed on rank 1: .*part2.fvecs: row [0-9]*" "$1" ||
    { show "$1"; fail "no agreed error naming rank 1, part2.fvecs and the row"; }
  if grep -q "MPI_ABORT\|MPI_Abort" "$1"; then show "$1"; fail "the job was aborted instead of agreeing"; fi
  [[ ! -e $WORK/run/index.faiss ]] || fail "index.faiss written from a bad corpus"
}

check "rows 100-1099 of part2.fvecs overwritten: every rank stops in the training sample read with rank 1's reason"
corrupt 100 1000
sf_mpirun 2 "$WORK/bad-train.log" build "$WORK/build.yaml"
expect_rank1_failure "$WORK/bad-train.log"
ok "$(grep -o '[a-z: ]*failed on rank 1: [^:]*' "$WORK/bad-train.log" | head -1)"

check "the values of one row NaN, a 64-row training sample (so almost surely met in the add stage): all stop together"
corrupt 9000 1 4
sf_mpirun 2 "$WORK/bad-add.log" build "$WORK/build.yaml" --set index.train_size=64 --set output.piece_rows=2048
expect_rank1_failure "$WORK/bad-add.log"
ok "$(grep -o '[a-z: ]*failed on rank 1: [^:]*' "$WORK/bad-add.log" | head -1)"

check "part2.fvecs replaced by a FIFO: refused at open on every rank, no rank blocks"
rm "$WORK/part2.fvecs"
mkfifo "$WORK/part2.fvecs"
sf_mpirun 2 "$WORK/fifo.log" build "$WORK/build.yaml"
[[ $SF_RC -eq 1 ]] || { show "$WORK/fifo.log"; fail "exit $SF_RC, expected 1"; }
grep -q "open input failed on rank 0: .*part2.fvecs: not a regular file (a FIFO)" "$WORK/fifo.log" ||
  { show "$WORK/fifo.log"; fail "no clear error for the FIFO"; }
ok

sf_done
