#!/usr/bin/env bash
# Out-of-core build (issue 15): a clustered corpus of ROWS x 128 float32 (bench/synth.py)
# built as IVF1024,Flat with resources.memory_per_rank: BUDGET at each rank count of NPS, every
# rank wrapped in /usr/bin/time (its peak RSS from outside, against the budget + 10 %); the
# index.faiss files' sha256 (the same bytes for any rank count); python3-faiss building the
# same index in one process (wall time, peak RSS), and recall@10 of both on 100 queries at
# nprobe 8 and 32 (stock FAISS loading ours); the merge stage's write rate (index.faiss bytes
# / merge seconds, run.json) against the disk's own (dd 2 GiB conv=fsync) in the same run.
#   bench/ooc_bench.sh build/commands/shardforge   (ROWS=3000000 NPS="1 2 4" BUDGET=256MiB
#                                                   TRAIN_SIZE=0 OUT=/tmp/sf-ooc-bench)
# The corpus, indexes and logs stay in OUT (outside the repository); a corpus already there is
# reused. Needs about 8 x the corpus's size free on OUT's disk (the corpus, an index per rank
# count, the pieces while a build runs, python's index, dd's 2 GiB).
set -euo pipefail
sf=$(realpath "$1")
rows=${ROWS:-3000000}
nps=${NPS:-1 2 4}
budget=${BUDGET:-256MiB}
train_size=${TRAIN_SIZE:-0}
work=${OUT:-/tmp/sf-ooc-bench}
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$work"

corpus_bytes=$((rows * (4 + 128 * 4)))
need=$((corpus_bytes * 8 / 1024))
free=$(df --output=avail -k "$work" | tail -1)
echo "disk: $((free / 1048576)) GiB free on $work, about $((need / 1048576)) GiB needed"
[[ $free -gt $need ]] || { echo "not enough free disk on $work" >&2; exit 1; }

if [[ ! -f $work/base.fvecs || $(stat -c %s "$work/base.fvecs") -ne $corpus_bytes ]]; then
  /usr/bin/python3 "$here/synth.py" "$work/base.fvecs" "$work/q.fvecs" --rows "$rows" --dim 128 \
    --nq 100
fi
echo "corpus: $rows x 128 float32, $(stat -c %s "$work/base.fvecs") bytes; queries: 100"
{
  printf 'input: {paths: [%s]}\n' "$work/base.fvecs"
  printf 'index: {factory: "IVF1024,Flat"%s}\n' \
    "$([[ $train_size -gt 0 ]] && echo ", train_size: $train_size")"
  printf 'resources: {memory_per_rank: %s}\nthreads: 1\n' "$budget"
} >"$work/c.yaml"
echo "config:"; sed 's/^/  /' "$work/c.yaml"

# A rank: its peak RSS measured from outside by /usr/bin/time (max RSS of the process), and
# by a sampler of /proc/<pid>/status (VmRSS every 20 ms). Both are needed: shardforge resets
# its own high-water mark at every stage (writing 5 to /proc/self/clear_refs, for run.json's
# per-stage peaks), and the kernel's max RSS that /usr/bin/time reports is reset with it, so
# /usr/bin/time sees only the peak since the last stage began.
cat >"$work/rank.sh" <<'SH'
#!/usr/bin/env bash
echo $$ >"$TIMES.pid.$OMPI_COMM_WORLD_RANK"
exec /usr/bin/time -f %M -o "$TIMES.$OMPI_COMM_WORLD_RANK" "$SF_BIN" "$@"
SH
chmod +x "$work/rank.sh"
sampler() {  # TIMES-prefix ranks: writes the ranks' sampled peaks (KiB) to TIMES.sampled
  /usr/bin/python3 "$here/rss_sampler.py" "$1.pid" "$2" "$1.sampled" &
}

budget_kib=$(/usr/bin/python3 -c "
import re,sys
m=re.fullmatch(r'(\d+)([KMGT]i?B?)?', '$budget'); n=int(m.group(1)); u=(m.group(2) or 'K')[0]
print(n * {'K':1,'M':1024,'G':1024**2,'T':1024**3}[u])")
for np in $nps; do
  out=$work/out.$np
  rm -rf "$out" "$work/time.$np".*
  sampler "$work/time.$np" "$np"
  sampling=$!
  start=$(date +%s.%N)
  TIMES=$work/time.$np SF_BIN=$sf mpirun -np "$np" --oversubscribe --bind-to none \
    -x TIMES -x SF_BIN -x OMP_NUM_THREADS=1 "$work/rank.sh" build "$work/c.yaml" \
    --set output.dir="$out" >"$work/log.$np" 2>&1 || { tail -20 "$work/log.$np"; exit 1; }
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  wait "$sampling"
  peaks=$(for ((r = 0; r < np; r++)); do tail -1 "$work/time.$np.$r"; done | tr '\n' ' ')
  /usr/bin/python3 - "$out" "$np" "$wall" "$budget_kib" "$(cat "$work/time.$np.sampled")" $peaks <<'PY'
import json, os, sys
out, np, wall, budget = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
sampled = [int(p) for p in sys.argv[5].split()]
peaks = [int(p) for p in sys.argv[6:]]
stages = {s["name"]: s for s in json.load(open(f"{out}/run.json"))["commands"]["build"]["stages"]}
size = os.path.getsize(f"{out}/index.faiss")
merge = max(stages["merge"]["seconds"])
per_stage = {n: [round(x) for x in s.get("peak_rss_mib", [])] for n, s in stages.items()}
limit = budget * 1.1
print(f"{np} rank(s): wall {wall:.1f} s; index.faiss {size} bytes ({size / 2**20:.0f} MiB); "
      f"merge stage {merge:.2f} s = {size / 2**20 / merge:.0f} MiB/s")
worst = max(peaks + sampled + [max(v) * 1024 for v in per_stage.values() if v])
print(f"  peak RSS per rank: /usr/bin/time {[round(p / 1024) for p in peaks]} MiB (since the last "
      f"stage began), sampled every 20 ms {[round(p / 1024) for p in sampled]} MiB; budget + 10 % "
      f"= {limit / 1024:.0f} MiB: {'within' if worst <= limit else 'OVER'} (worst of all three "
      f"measures: {worst / 1024:.0f} MiB)")
print(f"  peak RSS per stage and rank (run.json, MiB): {per_stage}")
PY
  sha256sum "$out/index.faiss" | awk -v np="$np" '{print "  sha256 " $1 " (" np " rank(s))"}'
done
first=$(set -- $nps; echo "$1")
same=yes
for np in $nps; do cmp -s "$work/out.$first/index.faiss" "$work/out.$np/index.faiss" || same=NO; done
echo "index.faiss byte-identical across rank counts ($nps): $same"

# The peer: python3-faiss builds the same index in one process (bench/py_build.py).
rm -f "$work/py.faiss"
start=$(date +%s.%N)
/usr/bin/time -f %M -o "$work/time.py" /usr/bin/python3 "$here/py_build.py" "$work/base.fvecs" \
  fvecs IVF1024,Flat l2 "$work/py.faiss" >"$work/log.py"
wall=$(echo "$(date +%s.%N) - $start" | bc)
echo "python3-faiss, one process: wall $wall s, peak RSS $(($(tail -1 "$work/time.py") / 1024)) MiB;" \
  "phases $(cat "$work/log.py")"

# Recall@10 of stock FAISS loading our index and its own, against exact search.
/usr/bin/python3 - "$work" "$first" <<'PY'
import sys
import faiss
import numpy as np
work, first = sys.argv[1], sys.argv[2]
def fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    return raw.reshape(-1, raw[0] + 1)[:, 1:].view(np.float32)
q = np.ascontiguousarray(fvecs(f"{work}/q.fvecs")[:100])
base = fvecs(f"{work}/base.fvecs")
exact = faiss.IndexFlatL2(base.shape[1])
for s in range(0, base.shape[0], 500_000):
    exact.add(np.ascontiguousarray(base[s:s + 500_000]))
_, gt = exact.search(q, 10)
del exact
for name, path in (("shardforge", f"{work}/out.{first}/index.faiss"), ("python3-faiss", f"{work}/py.faiss")):
    index = faiss.read_index(path)
    line = []
    for nprobe in (8, 32):
        faiss.extract_index_ivf(index).nprobe = nprobe
        _, found = index.search(q, 10)
        recall = np.mean([len(set(found[i]) & set(gt[i])) / 10 for i in range(len(q))])
        line.append(f"nprobe {nprobe}: {recall:.3f}")
    print(f"recall@10, {name} (faiss.read_index, ntotal {index.ntotal}): " + ", ".join(line))
    del index
PY

# The disk's own sequential write rate, flushed, in the same run.
dd if=/dev/zero of="$work/dd.bin" bs=1M count=2048 conv=fsync 2>&1 | tail -1 |
  sed 's/^/dd 2 GiB (same disk, conv=fsync): /'
rm -f "$work/dd.bin"
