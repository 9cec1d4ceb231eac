#!/usr/bin/env bash
# Memory per rank in `run`'s semantic dedup: "a list is compared where it is placed, but its
# members travel in rounds ... so the stage holds a round's vectors ... plus a few round
# buffers, not the rank's vectors" (docs/text-to-index.md, memory per rank in `run`).
# Measured inside (run.json: each stage's own peak, runtime::StagePeak) on 2 ranks with
# 512-dimensional vectors, so that a rank's vectors (120 MiB) outweigh the allowance: the
# semdedup stage may exceed the train stage before it (which holds the trained quantizer and
# its k-means sample, capped by index.train_size, but reads the vectors from the embed files)
# by at most 3 rounds of SemanticOptions::round_bytes (16 MiB: the round's own vectors, sent
# and received) + 16 MiB; its list assignment, before the rounds, reads 16,384 rows (32 MiB)
# at a time. A copy of the rank's vectors does not fit in that allowance, nor did the
# assignment's old last batch of up to 2 x 16,384 rows (71-83 MiB over train; now ~25).
source "$(dirname "$0")/lib.bash"
sf_init "$@"
DOCS=120000
DIM=512
ROUND_KIB=$((16 * 1024))

check "data: $DOCS records of 30 random words, embedded in $DIM dims (hashed)"
"$PY" - "$WORK/docs.jsonl" "$DOCS" <<'PYEOF'
import random, sys
rng = random.Random(3)
vocab = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(3, 9)))
         for _ in range(50000)]
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write('{"id": %d, "text": "%s"}\n' % (i, ' '.join(rng.choices(vocab, k=30))))
PYEOF
cat >"$WORK/sem.yaml" <<EOF
input:
  format: jsonl
  paths: ["$WORK/docs.jsonl"]
run:
  dedup: false
  index: false
embed:
  dim: $DIM
index:
  factory: IVF256,Flat
  train_size: 10000
semdedup:
  eps: 0.05
output:
  dir: "$WORK/run"
EOF
ok

check "run on 2 ranks: the semdedup stage adds at most 3 rounds + 16 MiB to what train held"
rss_run run 2 run "$WORK/sem.yaml"
train=$(stage_peak_kib "$WORK/run/run.json" run train)
sem=$(stage_peak_kib "$WORK/run/run.json" run semdedup)
vectors_kib=$((DOCS / 2 * DIM * 4 / 1024))
allowance=$((3 * ROUND_KIB + 16 * 1024))
[[ $vectors_kib -gt $allowance ]] || fail "a rank's vectors ($vectors_kib KiB) fit the allowance: a bigger corpus"
[[ $sem -le $((train + allowance)) ]] ||
  fail "semdedup peak $sem KiB > train peak $train KiB + $allowance KiB (a rank's vectors: $vectors_kib KiB)"
ok "semdedup $((sem / 1024)) MiB, train $((train / 1024)) MiB, allowance $((allowance / 1024)) MiB < a rank's vectors $((vectors_kib / 1024)) MiB (outside, whole run: $((RSS_KIB / 1024)) MiB)"

sf_done
