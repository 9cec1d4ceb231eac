#!/usr/bin/env bash
# Memory per rank in `dedup` is bounded by the records it holds, not by their text (README,
# dedup: "Memory per rank: its records' hashes, ids and its share of the signatures; the texts
# are read twice ... rather than held"). Peak RSS is measured from outside (/usr/bin/time -f %M
# around each rank, lib.bash rss_run) and inside (dedup.json, each stage's own peak). One rank, so that the
# rank's share is the whole corpus (290 MB of text). The limit is derived, not guessed: the
# fixed cost of a rank (the same dedup of a 500-record corpus) + 4 reading batches of 32 MiB
# (the batch's texts, their normalised copies, the reader's buffers and the allocator's slack
# for the strings freed between batches; 3 are in use here) + per record its
# signature (4 bytes x dedup.num_perm), hash, id and line, counted at 256 bytes + 16 MiB. The
# text does not fit in it: the same dedup with dedup.verify exact, which holds every record's
# shingle set (as large as its text), exceeds it (the limit is real). (`run` used to show that
# by holding the texts for the embedder; it streams them now, and stays within the limit too.)
source "$(dirname "$0")/lib.bash"
sf_init "$@"
DOCS=16000
WORDS=2600
PERM=128
BATCH_BYTES=$((32 * 1024 * 1024))

check "data: $DOCS records of $WORDS random words (~290 MB) and a 500-record corpus"
"$PY" - "$WORK" "$DOCS" "$WORDS" <<'PYEOF'
import random, sys
work, docs, nwords = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
vocab = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(3, 9)))
         for _ in range(20000)]
for name, n in (("big", docs), ("tiny", 500)):
    with open(f"{work}/{name}.jsonl", "w") as f:
        for i in range(n):
            f.write('{"id": %d, "text": "%s"}\n' % (i, ' '.join(rng.choices(vocab, k=nwords))))
PYEOF
for name in big tiny; do
  cat >"$WORK/$name.yaml" <<EOF
input:
  format: jsonl
  paths: ["$WORK/$name.jsonl"]
dedup:
  num_perm: $PERM
  threshold: 0.8
embed:
  dim: 64
run:
  semdedup: false
  index: false
output:
  dir: "$WORK/unused"
EOF
done
text_kib=$(($(stat -c %s "$WORK/big.jsonl") / 1024))
ok "$((text_kib / 1024)) MiB of JSONL"

# measured NAME COMMAND CONFIG: prints the peak RSS in KiB outside and inside ("OUT IN").
measured() {
  rss_run "$1" 1 "$2" "$3" --set "output.dir=$WORK/$1"
  local json=$WORK/$1/dedup.json
  [[ $2 == dedup ]] || json=$WORK/$1/run.json
  echo "$RSS_KIB $(stage_peak_kib "$json" "$2")"
}

check "the fixed cost of a rank: the same dedup of 500 records"
read -r fixed_out fixed_in < <(measured tiny dedup "$WORK/tiny.yaml")
fixed=$((fixed_out > fixed_in ? fixed_out : fixed_in))
[[ $fixed -gt 0 ]] || fail "no fixed cost measured"
ok "$((fixed / 1024)) MiB (outside $fixed_out KiB, dedup.json $fixed_in KiB)"

limit=$((fixed + (4 * BATCH_BYTES + DOCS * (4 * PERM + 256)) / 1024 + 16 * 1024))
[[ $text_kib -gt $((limit - fixed)) ]] || fail "the text ($text_kib KiB) fits the limit's margin: a bigger corpus"

check "dedup of $DOCS records on one rank: peak RSS within the derived limit"
read -r out in < <(measured big dedup "$WORK/big.yaml")
[[ -n $out && -n $in ]] || fail "dedup was not measured"
[[ $out -le $limit && $in -le $limit ]] ||
  fail "peak RSS outside $out KiB, dedup.json $in KiB: over the limit of $limit KiB (text: $text_kib KiB)"
ok "outside $((out / 1024)) MiB, dedup.json $((in / 1024)) MiB <= limit $((limit / 1024)) MiB (text: $((text_kib / 1024)) MiB)"

check "the limit is real: dedup.verify exact, which holds every record's shingle set (it grows with the text), exceeds it"
read -r rout rin < <(rss_run held 1 dedup "$WORK/big.yaml" --set "output.dir=$WORK/held" --set dedup.verify=exact
  echo "$RSS_KIB $(stage_peak_kib "$WORK/held/dedup.json" dedup)")
[[ -n $rout && $rout -gt $limit && $rin -gt $limit ]] ||
  fail "dedup.verify exact stayed within the limit (outside $rout KiB, dedup.json $rin KiB, limit $limit KiB)"
ok "outside $((rout / 1024)) MiB, dedup.json $((rin / 1024)) MiB > limit $((limit / 1024)) MiB"

sf_done
