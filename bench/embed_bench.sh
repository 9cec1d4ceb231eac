#!/usr/bin/env bash
# Embedding throughput of `shardforge run` (hashed embedder, embed.dim 256): read + embed only
# (run.dedup, run.semdedup, run.index false), 1 thread per rank, at 1 and 2 ranks, REPEAT runs
# each, the binaries interleaved (so that they meet the same load); prints, per binary, the
# median of run.json's embed_throughput and the seconds of the idf pass when it is a stage of
# its own (`embed.fit`, before fit_embed folded it into `embed`: "-" then).
#   bench/embed_bench.sh build/commands/shardforge[,OTHER_BINARY...] CORPUS.jsonl...  (REPEAT=3 DIM=256)
set -euo pipefail
IFS=, read -r -a sfs <<<"$1"; shift
for i in "${!sfs[@]}"; do sfs[$i]=$(realpath "${sfs[$i]}"); done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d /tmp/sf-embed-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
  echo "input:"; echo "  format: jsonl"; echo "  paths:"
  for p in "$@"; do echo "    - \"$(realpath "$p")\""; done
  echo "output: {dir: $work/out}"
  echo "run: {dedup: false, semdedup: false, index: false}"
  echo "embed: {method: hashed, dim: ${DIM:-256}}"
  echo "threads: 1"
} >"$work/c.yaml"
echo "corpus: $* ($(du -cb "$@" | tail -1 | cut -f1) bytes); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for np in 1 2; do
  for r in $(seq "${REPEAT:-3}"); do
    for b in "${!sfs[@]}"; do
      mpirun -np "$np" --oversubscribe --bind-to none "${sfs[$b]}" run "$work/c.yaml" >"$work/log" 2>&1 ||
        { tail -20 "$work/log"; exit 1; }
      /usr/bin/python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))['commands']['run']
t = r['summary']['embed_throughput']
st = {s['name']: s for s in r['stages']}
fit = max(st['embed.fit']['seconds']) if 'embed.fit' in st else -1
rss = max(st['embed']['peak_rss_mib'])
print(f\"{sys.argv[3]} {sys.argv[2]} {t['docs']} {t['text_bytes']} {t['seconds']:.3f} {t['mb_per_s']:.2f} {t['mb_per_s_per_core']:.2f} {t['docs_per_s_per_core']:.0f} {fit:.3f} {rss:.0f}\")
" "$work/out/run.json" "$np" "$b" >>"$work/results"
    done
  done
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 - "$work/results" "${sfs[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
bins = sys.argv[2:]
print("| binary | ranks x threads | docs | text MB | embed s | MB/s | MB/s per core | docs/s per core | embed.fit s | embed + fit s | (embed) MB/s per core, fit included | peak RSS/rank MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for b in range(len(bins)):
    for np in ("1", "2"):
        rs = [r[1:] for r in rows if r[0] == str(b) and r[1] == np]
        med = lambda i: statistics.median(float(r[i]) for r in rs)
        fit = med(7)
        total = med(3) + max(fit, 0)
        mb = int(rs[0][2]) / 1e6
        print(f"| {bins[b]} | {np} x 1 | {rs[0][1]} | {mb:.0f} | {med(3):.2f} | {med(4):.1f} | {med(5):.1f} | {med(6):.0f} | "
              f"{fit:.2f} | {total:.2f} | {mb / total / int(np):.1f} | {med(8):.0f} |".replace("| -1.00 |", "| - |"))
PY
