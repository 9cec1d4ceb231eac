#!/usr/bin/env bash
# Out-of-core build (issue 15): a clustered corpus of ROWS x 128 float32 (bench/synth.py)
# built as IVF1024,Flat with resources.memory_per_rank: BUDGET at each rank count of NPS, in each
# of LAYOUTS (output.layout memory: index.faiss; ondisk: index.faiss + index.ivfdata, at the
# rank counts ONDISK_NPS), every rank wrapped in /usr/bin/time (its peak RSS from outside,
# against the budget + 10 %); the files' sha256 (the same bytes for any rank count);
# python3-faiss building the same index in one process (wall time, peak RSS; PY=0 skips it),
# and recall@10 of each on 100 queries at nprobe 8 and 32 (stock FAISS loading ours, the on-disk
# one through its index.ivfdata); the merge stage's write rate (bytes written / merge seconds,
# run.json) and its parts (the merge's log line: piece reads, MPI-IO writes, sync, rank 0's
# read-back check) against the disk's own (dd 2 GiB conv=fsync, before and after the builds).
#   bench/ooc_bench.sh build/commands/shardforge   (ROWS=3000000 NPS="1 2 4" BUDGET=256MiB
#                              LAYOUTS="memory ondisk" ONDISK_NPS=$NPS PY=1 TRAIN_SIZE=0
#                              OUT=/tmp/sf-ooc-bench)
# The corpus, indexes and logs stay in OUT (outside the repository); a corpus already there is
# reused. Needs about 8 x the corpus's size free on OUT's disk (the corpus, an index per rank
# count, the pieces while a build runs, python's index, dd's 2 GiB).
set -euo pipefail
sf=$(realpath "$1")
rows=${ROWS:-3000000}
nps=${NPS:-1 2 4}
budget=${BUDGET:-256MiB}
train_size=${TRAIN_SIZE:-0}
layouts=${LAYOUTS:-memory ondisk}
ondisk_nps=${ONDISK_NPS:-$nps}
py=${PY:-1}
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
# by a sampler of /proc/<pid>/status (VmRSS every 20 ms): two outside views of the whole job,
# which agree (run.json's per-stage peaks reset nothing since commit 71d8577; before it, the
# kernel's max RSS that /usr/bin/time reports was reset at every stage).
cat >"$work/rank.sh" <<'SH'
#!/usr/bin/env bash
echo $$ >"$TIMES.pid.$OMPI_COMM_WORLD_RANK"
exec /usr/bin/time -f %M -o "$TIMES.$OMPI_COMM_WORLD_RANK" "$SF_BIN" "$@"
SH
chmod +x "$work/rank.sh"
sampler() {  # TIMES-prefix ranks: writes the ranks' sampled peaks (KiB) to TIMES.sampled
  /usr/bin/python3 "$here/rss_sampler.py" "$1.pid" "$2" "$1.sampled" &
}

# The disk's own sequential write rate, flushed (before and after the builds: it is shared).
disk_rate() {  # prints MiB/s
  dd if=/dev/zero of="$work/dd.bin" bs=1M count=2048 conv=fsync 2>"$work/dd.log"
  rm -f "$work/dd.bin"
  tail -1 "$work/dd.log" | sed 's/^/dd 2 GiB (same disk, conv=fsync): /' >&2
  /usr/bin/python3 -c "import re,sys; m=re.search(r'copied, ([0-9.]+) s', open(sys.argv[1]).read()); print(f'{2048 / float(m.group(1)):.0f}')" "$work/dd.log"
}
dd_before=$(disk_rate)
rm -f "$work/rates"

budget_kib=$(/usr/bin/python3 -c "
import re,sys
m=re.fullmatch(r'(\d+)([KMGT]i?B?)?', '$budget'); n=int(m.group(1)); u=(m.group(2) or 'K')[0]
print(n * {'K':1,'M':1024,'G':1024**2,'T':1024**3}[u])")
build() {  # LAYOUT NP
  local layout=$1 np=$2 out=$work/out.$1.$2
  rm -rf "$out" "$work/time.$layout.$np".*
  sampler "$work/time.$layout.$np" "$np"
  local sampling=$! start wall peaks
  start=$(date +%s.%N)
  TIMES=$work/time.$layout.$np SF_BIN=$sf mpirun -np "$np" --oversubscribe --bind-to none \
    -x TIMES -x SF_BIN -x OMP_NUM_THREADS=1 "$work/rank.sh" build "$work/c.yaml" \
    --set output.dir="$out" --set output.layout="$layout" >"$work/log.$layout.$np" 2>&1 ||
    { tail -20 "$work/log.$layout.$np"; exit 1; }
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  wait "$sampling"
  peaks=$(for ((r = 0; r < np; r++)); do tail -1 "$work/time.$layout.$np.$r"; done | tr '\n' ' ')
  /usr/bin/python3 - "$out" "$np" "$wall" "$budget_kib" "$(cat "$work/time.$layout.$np.sampled")" \
    "$work/log.$layout.$np" "$layout" "$dd_before" $peaks <<'PY'
import json, os, re, sys
out, np, wall, budget = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
sampled = [int(p) for p in sys.argv[5].split()]
log, layout, dd = sys.argv[6], sys.argv[7], float(sys.argv[8])
peaks = [int(p) for p in sys.argv[9:]]
stages = {s["name"]: s for s in json.load(open(f"{out}/run.json"))["commands"]["build"]["stages"]}
files = ["index.faiss"] + (["index.ivfdata"] if layout == "ondisk" else [])
size = sum(os.path.getsize(f"{out}/{f}") for f in files)
merge = max(stages["merge"]["seconds"])
per_stage = {n: [round(x) for x in s.get("peak_rss_mib", [])] for n, s in stages.items()}
limit = budget * 1.1
rate = size / 2**20 / merge
print(f"{layout}, {np} rank(s): wall {wall:.1f} s; {' + '.join(files)} {size} bytes "
      f"({size / 2**20:.0f} MiB); merge stage {merge:.2f} s = {rate:.0f} MiB/s, "
      f"{100 * rate / dd:.0f} % of dd before the builds ({dd:.0f} MiB/s)")
parts = re.findall(r"merge: read ([0-9.]+) s, write ([0-9.]+) s, sync ([0-9.]+) s, "
                   r"check ([0-9.]+) s", open(log).read())
if parts:
    r, w, s, c = (float(x) for x in parts[-1])
    # Each part is its slowest rank's: at several ranks their sum can pass the stage's seconds.
    print(f"  merge parts (each its slowest rank's): piece reads {r:.2f} s, MPI-IO writes "
          f"{w:.2f} s, sync {s:.2f} s, rank 0's read-back check {c:.2f} s; the stage less these "
          f"(header, list sizes, marker, removing the pieces) {max(0.0, merge - r - w - s - c):.2f} s")
worst = max(peaks + sampled + [max(v) * 1024 for v in per_stage.values() if v])
print(f"  peak RSS per rank: /usr/bin/time {[round(p / 1024) for p in peaks]} MiB (whole "
      f"job), sampled every 20 ms {[round(p / 1024) for p in sampled]} MiB; budget + 10 % "
      f"= {limit / 1024:.0f} MiB: {'within' if worst <= limit else 'OVER'} (worst of all three "
      f"measures: {worst / 1024:.0f} MiB)")
print(f"  peak RSS per stage and rank (run.json, MiB): {per_stage}")
with open(os.path.join(os.path.dirname(out), "rates"), "a") as f:
    f.write(f"{layout} {np} {rate:.0f}\n")
PY
  local f
  for f in index.faiss $([[ $layout == ondisk ]] && echo index.ivfdata); do
    sha256sum "$out/$f" | awk -v np="$np" -v f="$f" '{print "  sha256 " f " " $1 " (" np " rank(s))"}'
  done
}
same_files() {  # LAYOUT NPS...: prints yes when every rank count wrote the same bytes
  local layout=$1 first=$2 same=yes np f
  shift
  for np in "$@"; do
    for f in index.faiss $([[ $layout == ondisk ]] && echo index.ivfdata); do
      cmp -s "$work/out.$layout.$first/$f" "$work/out.$layout.$np/$f" || same=NO
    done
  done
  echo "$layout: files byte-identical across rank counts ($*): $same"
}
for layout in $layouts; do
  these=$nps
  [[ $layout == ondisk ]] && these=$ondisk_nps
  for np in $these; do build "$layout" "$np"; done
  same_files "$layout" $these
done

# The peer: python3-faiss builds the same index in one process (bench/py_build.py).
if [[ $py == 1 ]]; then
  rm -f "$work/py.faiss"
  start=$(date +%s.%N)
  /usr/bin/time -f %M -o "$work/time.py" /usr/bin/python3 "$here/py_build.py" "$work/base.fvecs" \
    fvecs IVF1024,Flat l2 "$work/py.faiss" >"$work/log.py"
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  echo "python3-faiss, one process: wall $wall s, peak RSS $(($(tail -1 "$work/time.py") / 1024)) MiB;" \
    "phases $(cat "$work/log.py")"
fi

# Recall@10 of stock FAISS loading our indexes (the first rank count of each layout; on disk:
# faiss.read_index from the index's folder, which finds index.ivfdata) and its own, against
# exact search; the on-disk layout's results against the in-memory one's.
indexes=()
for layout in $layouts; do
  these=$nps
  [[ $layout == ondisk ]] && these=$ondisk_nps
  indexes+=("shardforge $layout" "$work/out.$layout.$(set -- $these; echo "$1")/index.faiss")
done
[[ $py == 1 ]] && indexes+=("python3-faiss" "$work/py.faiss")
/usr/bin/python3 - "$work" "${indexes[@]}" <<'PY'
import os, sys
import faiss
import numpy as np
work, named = sys.argv[1], sys.argv[2:]
def fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    return raw.reshape(-1, raw[0] + 1)[:, 1:].view(np.float32)
q = np.ascontiguousarray(fvecs(f"{work}/q.fvecs")[:100])
base = fvecs(f"{work}/base.fvecs")
exact = faiss.IndexFlatL2(base.shape[1])
for s in range(0, base.shape[0], 500_000):
    exact.add(np.ascontiguousarray(base[s:s + 500_000]))
_, gt = exact.search(q, 10)
del exact, base
results = {}
for name, path in zip(named[::2], named[1::2]):
    os.chdir(os.path.dirname(path))
    index = faiss.read_index(os.path.basename(path))
    line = []
    for nprobe in (8, 32):
        faiss.extract_index_ivf(index).nprobe = nprobe
        d, found = index.search(q, 10)
        results[name, nprobe] = (d, found)
        recall = np.mean([len(set(found[i]) & set(gt[i])) / 10 for i in range(len(q))])
        line.append(f"nprobe {nprobe}: {recall:.3f}")
    lists = type(faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)).__name__
    print(f"recall@10, {name} (faiss.read_index, {lists}, ntotal {index.ntotal}): " + ", ".join(line))
    del index
for nprobe in (8, 32):
    if ("shardforge memory", nprobe) in results and ("shardforge ondisk", nprobe) in results:
        a, b = results["shardforge memory", nprobe], results["shardforge ondisk", nprobe]
        same = np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        print(f"ondisk layout's results at nprobe {nprobe} equal the in-memory layout's: "
              f"{'yes' if same else 'NO'}")
PY

dd_after=$(disk_rate)
echo "merge rate against the disk (dd before the builds $dd_before MiB/s, after $dd_after MiB/s):"
while read -r layout np rate; do
  echo "  $layout, $np rank(s): $rate MiB/s = $(echo "100 * $rate / $dd_before" | bc) % of dd" \
    "before, $(echo "100 * $rate / $dd_after" | bc) % after"
done <"$work/rates"
