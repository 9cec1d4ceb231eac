#!/usr/bin/env bash
# Time and peak RSS per stage and rank of the whole `shardforge run` on a corpus, for one or
# more binaries run one after the other under the same config (to compare before/after), at NP
# ranks (default 2), 1 thread per rank. Prints, per binary, each stage's seconds and peak RSS
# (run.json: each stage's own peak, runtime::StagePeak) per
# rank, each rank's peak RSS over the whole job (sampled from /proc: includes what happens
# between stages, e.g. the row redistributions), and whether index.faiss / ids.jsonl / duplicates.jsonl
# are the same bytes as the first binary's.
#   bench/run_memory.sh build/commands/shardforge[,OTHER...] CORPUS.jsonl...   (NP=2 OUT=/tmp/dir)
set -euo pipefail
IFS=, read -r -a sfs <<<"$1"; shift
for i in "${!sfs[@]}"; do sfs[$i]=$(realpath "${sfs[$i]}"); done
np=${NP:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=${OUT:-$(mktemp -d /tmp/sf-run-memory.XXXXXX)}
mkdir -p "$work"
source "$(dirname "$0")/text_run_config.bash"
text_run_config "$work/c.yaml" "$work/out" "$@"
echo "corpus: $* ($(du -cb "$@" | tail -1 | cut -f1) bytes), $np rank(s)"
for b in "${!sfs[@]}"; do
  echo "== ${sfs[$b]}: load before $(cut -d' ' -f1-3 /proc/loadavg)"
  start=$(date +%s.%N)
  rm -f "$work/pid.$b".* "$work/rss.$b"
  # Each rank's RSS sampled every 20 ms from /proc, which includes what happens between stages.
  /usr/bin/python3 "$(dirname "$0")/rss_sampler.py" "$work/pid.$b" "$np" "$work/rss.$b" &
  sampler=$!
  mpirun -np "$np" --oversubscribe --bind-to none bash -c \
    'echo $$ >"$0.$OMPI_COMM_WORLD_RANK"; exec "$@"' "$work/pid.$b" \
    "${sfs[$b]}" run "$work/c.yaml" --set output.dir="$work/out$b" >"$work/log$b" 2>&1 ||
    { tail -20 "$work/log$b"; exit 1; }
  wait "$sampler"
  echo "wall $(echo "$(date +%s.%N) - $start" | bc) s; load after $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/python3 - "$work/out$b/run.json" "$work" "$b" "$np" <<'PY'
import json, sys, glob
r = json.load(open(sys.argv[1]))['commands']['run']
work, b, np = sys.argv[2], sys.argv[3], int(sys.argv[4])
s = r['summary']
print(f"docs {s['docs_in']}, embedded {s['docs_embedded']}, semantic {s['semantic_duplicates']}, "
      f"largest list {s['semantic_largest_list']}, indexed {s['ntotal']}, "
      f"embed {s['embed_throughput']['mb_per_s_per_core']:.1f} MB/s per core")
print("| stage | " + " | ".join(f"rank {k} s / MiB" for k in range(np)) + " |")
print("|---|" + "---|" * np)
for st in r['stages']:
    print(f"| {st['name']} | " + " | ".join(f"{t:.1f} / {m:.0f}" for t, m in zip(st['seconds'], st['peak_rss_mib'])) + " |")
whole = [int(x) / 1024 for x in open(f"{work}/rss.{b}").read().split()]
print("| whole job (VmRSS sampled every 20 ms) | " + " | ".join(f"{m:.0f}" for m in whole) + " |")
PY
  if [[ $b -gt 0 ]]; then
    for f in index.faiss ids.jsonl duplicates.jsonl embedder.json; do
      cmp -s "$work/out0/$f" "$work/out$b/$f" && echo "$f: same bytes as ${sfs[0]}" || echo "$f: DIFFERS from ${sfs[0]}"
    done
  fi
done
