# Memory per rank in `build` is bounded by input.batch_rows (docs/configuration.md:
# "rows read and added per batch: bounds the memory per rank"), not by the rank's share of the
# corpus. Peak RSS is measured per rank twice: by the program (run.json's peak_rss_mib, each
# stage's own peak) and from outside (/usr/bin/time -f %M around each rank), and the two agree:
# the outside figure is at least every stage's peak (no stage resets the process's high-water
# mark) and at most 10 % + 8 MiB above the largest (the job's peak is inside a stage). The
# limit is derived, not guessed: the fixed cost of a rank (the peak of the same build on a 4,000-row corpus) + 4
# batches of input.batch_rows x dim floats + 2 copies of the training sample (the train
# marker's sample_rows and codebook_rows) + the rank's index (PQ8 codes and ids: 16 bytes a
# row) + 16 MiB. The rank's share here (300,000 x 64 floats, 73 MiB) does not fit in it, so a
# build that holds its share fails it: the test shows that with batch_rows and piece_rows
# raised to hold the whole share in one batch (the limit is real).
source "$(dirname "$0")/lib.bash"
sf_init "$@"
ROWS=600000
DIM=64
BATCH=16384

check "data: $ROWS x $DIM (IVF64,PQ8np, 2 ranks) and a 4000-row corpus for the fixed cost"
sfdata gen "$WORK/base.fvecs" --rows $ROWS --dim $DIM --seed 4
sfdata gen "$WORK/tiny.fvecs" --rows 4000 --dim $DIM --seed 4
write_config "$WORK/big.yaml" "$WORK/unused" "IVF64,PQ8np" "$WORK/base.fvecs"
write_config "$WORK/tiny.yaml" "$WORK/unused" "IVF64,PQ8np" "$WORK/tiny.fvecs"
# measured NAME CONFIG SETS...: a 2-rank build with each rank's RSS sampled; prints the
# largest peak RSS of the ranks in KiB, outside and (run.json, all stages) inside, as "OUT IN".
measured() {
  local name=$1 config=$2
  shift 2
  rss_run "$name" 2 build "$config" --set "output.dir=$WORK/$name" "$@"
  echo "$RSS_KIB $(stage_peak_kib "$WORK/$name/run.json" build)"
}
ok

check "the fixed cost of a rank: the same build on 4000 rows"
read -r fixed_out fixed_in < <(measured tiny "$WORK/tiny.yaml")
fixed=$((fixed_out > fixed_in ? fixed_out : fixed_in))
ok "$((fixed / 1024)) MiB (outside $fixed_out KiB, run.json $fixed_in KiB)"

check "$ROWS rows at input.batch_rows=$BATCH: every rank's peak RSS within the derived limit"
read -r out in < <(measured big "$WORK/big.yaml" --set input.batch_rows=$BATCH)
read -r sample codebook < <("$PY" -c '
import json, sys
i = json.load(open(sys.argv[1]))["info"]
print(i["sample_rows"], i["codebook_rows"])' "$WORK/big/checkpoints/train.json")
share=$((ROWS / 2))
limit=$((fixed + (4 * BATCH * DIM * 4 + 2 * (sample + codebook) * DIM * 4 + share * 16) / 1024 + 16 * 1024))
share_kib=$((share * DIM * 4 / 1024))
[[ $share_kib -gt $((limit - fixed)) ]] || fail "the rank's share (${share_kib} KiB) fits the limit's margin: a bigger corpus"
[[ $out -le $limit && $in -le $limit ]] ||
  fail "peak RSS outside $out KiB, run.json $in KiB: over the limit of $limit KiB derived from input.batch_rows"
ok "outside $((out / 1024)) MiB, run.json $((in / 1024)) MiB <= limit $((limit / 1024)) MiB (share: $((share_kib / 1024)) MiB)"

check "outside and inside agree: /usr/bin/time's peak is the largest stage's (within 10 % + 8 MiB)"
[[ $out -ge $((in - 1024)) ]] ||
  fail "/usr/bin/time -f %M $out KiB < run.json's largest stage peak $in KiB: a stage's peak was lost to the outside view"
[[ $out -le $((in + in / 10 + 8 * 1024)) ]] ||
  fail "/usr/bin/time -f %M $out KiB > run.json's largest stage peak $in KiB + 10 % + 8 MiB: a peak the stages did not see"
ok "outside $out KiB, run.json $in KiB"

check "the limit is real: batch_rows and piece_rows holding a rank's whole share exceed it"
read -r uout uin < <(measured unbounded "$WORK/big.yaml" --set input.batch_rows=100000000 --set output.piece_rows=1000000)
[[ $uout -gt $limit && $uin -gt $limit ]] ||
  fail "an unbounded batch stayed within the limit (outside $uout KiB, run.json $uin KiB, limit $limit KiB)"
ok "outside $((uout / 1024)) MiB, run.json $((uin / 1024)) MiB > limit $((limit / 1024)) MiB"

sf_done
