#!/usr/bin/env bash
# Memory per rank in `search` is bounded by search.batch_queries (README, configuration:
# "queries per serving rank per round (bounds messages and memory)"), not by the number of
# queries times nprobe. Peak RSS is measured from outside (/usr/bin/time -f %M around
# each rank, lib.bash rss_run) and inside (run.json's search stages, each stage's own peak). The limit is derived, not
# guessed: the fixed cost of a rank (the same search of a 200-query workload on a 2,000-row
# index) + the rank's shards (its rows' vectors and ids) + its slice of the queries + the
# results on rank 0, twice (the ranks' top-k and the merged table) + 4 copies of one round's
# routed queries (batch_queries x nprobe x (dim floats + query and list ids): sent, received,
# grouped by list, and the replies' top-k) + 16 MiB. The whole workload routed in one round
# does not fit in it: the same search with batch_queries = all queries exceeds it (the limit
# is real).
source "$(dirname "$0")/lib.bash"
sf_init "$@"
ROWS=20000
NQ=40000
DIM=64
NPROBE=32
K=10
BATCH=512

check "data: $ROWS x $DIM (IVF64,Flat, 2 shards), $NQ queries; 2,000 rows and 200 queries for the fixed cost"
sfdata gen "$WORK/big.fvecs" --rows $ROWS --dim $DIM --seed 8
sfdata gen "$WORK/big-q.fvecs" --rows $NQ --dim $DIM --seed 9
sfdata gen "$WORK/tiny.fvecs" --rows 2000 --dim $DIM --seed 8
sfdata gen "$WORK/tiny-q.fvecs" --rows 200 --dim $DIM --seed 9
for name in big tiny; do
  write_config "$WORK/$name.yaml" "$WORK/$name" "IVF64,Flat" "$WORK/$name.fvecs"
  printf 'partition:\n  shards: 2\nsearch:\n  queries: "%s"\n  nprobe: %d\n  k: %d\n' \
    "$WORK/$name-q.fvecs" $NPROBE $K >>"$WORK/$name.yaml"
  run_ok 2 "$WORK/$name-build.log" build "$WORK/$name.yaml"
done
ok

# measured NAME CONFIG BATCH: a 2-rank search; prints the peak RSS in KiB outside and inside.
measured() {
  rss_run "$1" 2 search "$2" --set search.batch_queries="$3"
  echo "$RSS_KIB $(stage_peak_kib "$(dirname "$2")/$(basename "$2" .yaml)/run.json" search)"
}

check "the fixed cost of a rank: the same search of 200 queries"
read -r fixed_out fixed_in < <(measured tiny-search "$WORK/tiny.yaml" $BATCH)
fixed=$((fixed_out > fixed_in ? fixed_out : fixed_in))
[[ $fixed -gt 0 ]] || fail "no fixed cost measured"
ok "$((fixed / 1024)) MiB (outside $fixed_out KiB, run.json $fixed_in KiB)"

round=$((BATCH * NPROBE * (DIM * 4 + 16)))
limit=$((fixed + (ROWS * (DIM * 4 + 8) + NQ / 2 * DIM * 4 + 2 * NQ * K * 12 + 4 * round) / 1024 + 16 * 1024))
unbounded=$((NQ / 2 * NPROBE * (DIM * 4 + 16) / 1024))
[[ $unbounded -gt $((limit - fixed)) ]] || fail "one unbounded round ($unbounded KiB) fits the limit's margin"

check "$NQ queries, nprobe $NPROBE, search.batch_queries=$BATCH: every rank's peak RSS within the derived limit"
read -r out in < <(measured bounded "$WORK/big.yaml" $BATCH)
[[ -n $out && -n $in ]] || fail "search was not measured"
[[ $out -le $limit && $in -le $limit ]] ||
  fail "peak RSS outside $out KiB, run.json $in KiB: over the limit of $limit KiB derived from search.batch_queries"
ok "outside $((out / 1024)) MiB, run.json $((in / 1024)) MiB <= limit $((limit / 1024)) MiB"

check "the limit is real: every query in one round (search.batch_queries=$NQ) exceeds it"
read -r uout uin < <(measured unbounded "$WORK/big.yaml" $NQ)
[[ -n $uout && $uout -gt $limit && $uin -gt $limit ]] ||
  fail "an unbounded round stayed within the limit (outside $uout KiB, run.json $uin KiB, limit $limit KiB)"
ok "outside $((uout / 1024)) MiB, run.json $((uin / 1024)) MiB > limit $((limit / 1024)) MiB"

sf_done
