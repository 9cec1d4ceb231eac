#!/usr/bin/env bash
# Embedding throughput of `shardforge run` (hashed embedder, embed.dim 256): read + embed only
# (run.dedup, run.semdedup, run.index false), 1 thread per rank, at 1 and 2 ranks, REPEAT runs
# each; prints the median of run.json's embed_throughput (embed() only; the idf pass, fit, is
# its own stage, embed.fit) and the fit seconds.
#   bench/embed_bench.sh build/jobs/shardforge CORPUS.jsonl...      (REPEAT=3 DIM=256)
set -euo pipefail
sf=$(realpath "$1"); shift
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
    mpirun -np "$np" --oversubscribe --bind-to none "$sf" run "$work/c.yaml" >"$work/log" 2>&1 ||
      { tail -20 "$work/log"; exit 1; }
    /usr/bin/python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))['commands']['run']
t = r['summary']['embed_throughput']
fit = max(next(s for s in r['stages'] if s['name'] == 'embed.fit')['seconds'])
rss = max(next(s for s in r['stages'] if s['name'] == 'embed')['peak_rss_mib'])
print(f\"{sys.argv[2]} {t['docs']} {t['text_bytes']} {t['seconds']:.3f} {t['mb_per_s']:.2f} {t['mb_per_s_per_core']:.2f} {t['docs_per_s_per_core']:.0f} {fit:.3f} {rss:.0f}\")
" "$work/out/run.json" "$np" >>"$work/results"
  done
done
/usr/bin/python3 - "$work/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("| ranks x threads | docs | text MB | embed s (median) | MB/s | MB/s per core | docs/s per core | fit s | peak RSS/rank MiB |")
print("|---|---|---|---|---|---|---|---|---|")
for np in ("1", "2"):
    rs = [r for r in rows if r[0] == np]
    med = lambda i: statistics.median(float(r[i]) for r in rs)
    print(f"| {np} x 1 | {rs[0][1]} | {int(rs[0][2]) / 1e6:.0f} | {med(3):.2f} | {med(4):.1f} | {med(5):.1f} | {med(6):.0f} | {med(7):.2f} | {med(8):.0f} |")
PY
