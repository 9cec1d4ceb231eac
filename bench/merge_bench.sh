#!/usr/bin/env bash
# The merge stage of `build` on a synthetic corpus (bench/synth.py: ROWS x 128 float32,
# IVF1024,Flat), for one or more binaries one after the other (to compare the collective merge
# with the rank-0 merge of an older build): per binary, the merge stage's seconds and peak RSS
# per rank (run.json), each rank's peak RSS over the whole job sampled from outside (/proc,
# every 20 ms), index.faiss's size and its write rate, whether index.faiss is the same bytes as
# the first binary's; and the disk's own sequential write rate (dd conv=fsync) for as many
# bytes, in the same run.
#   bench/merge_bench.sh build/commands/shardforge[,OTHER...]   (ROWS=1000000 NP=2 OUT=/tmp/dir)
set -euo pipefail
IFS=, read -r -a sfs <<<"$1"
for i in "${!sfs[@]}"; do sfs[$i]=$(realpath "${sfs[$i]}"); done
rows=${ROWS:-1000000}
np=${NP:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=${OUT:-$(mktemp -d /tmp/sf-merge-bench.XXXXXX)}
mkdir -p "$work"
here=$(cd "$(dirname "$0")" && pwd)
[[ -f $work/base.fvecs ]] ||
  /usr/bin/python3 "$here/synth.py" "$work/base.fvecs" "$work/q.fvecs" --rows "$rows" --dim 128
printf 'input: {paths: [%s]}\nindex: {factory: "IVF1024,Flat"}\nthreads: 1\n' \
  "$work/base.fvecs" >"$work/c.yaml"
# A rank's wrapper: records its pid for the sampler, then becomes shardforge.
cat >"$work/rank.sh" <<'SH'
#!/usr/bin/env bash
echo $$ >"$PIDS.$OMPI_COMM_WORLD_RANK"
exec "$SF_BIN" "$@"
SH
chmod +x "$work/rank.sh"
echo "corpus: $rows x 128 ($(stat -c %s "$work/base.fvecs") bytes), $np rank(s), IVF1024,Flat"
for b in "${!sfs[@]}"; do
  out=$work/out.$b
  rm -rf "$out" "$work/pid.$b".*
  /usr/bin/python3 - "$work/pid.$b" "$np" "$work/rss.$b" <<'PY' &
import os, sys, time
base, np, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pids, peak, seen_end = {}, {}, 0
while True:
    for k in range(np):
        if k not in pids and os.path.exists(f"{base}.{k}"):
            t = open(f"{base}.{k}").read().strip()
            if t: pids[k] = int(t)
    alive = 0
    for k, pid in pids.items():
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    peak[k] = max(peak.get(k, 0), int(line.split()[1])); alive += 1
        except OSError:
            pass
    if len(pids) == np and alive == 0:
        break
    time.sleep(0.02)
open(out, "w").write(" ".join(str(peak.get(k, 0) // 1024) for k in range(np)) + "\n")
PY
  sampler=$!
  start=$(date +%s.%N)
  PIDS=$work/pid.$b SF_BIN=${sfs[$b]} mpirun -np "$np" --oversubscribe --bind-to none \
    -x PIDS -x SF_BIN -x OMP_NUM_THREADS=1 "$work/rank.sh" build "$work/c.yaml" \
    --set output.dir="$out" >"$work/log.$b" 2>&1 || { tail -5 "$work/log.$b"; exit 1; }
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  wait "$sampler"
  bytes=$(stat -c %s "$out/index.faiss")
  same=yes
  [[ $b -eq 0 ]] || cmp -s "$work/out.0/index.faiss" "$out/index.faiss" || same=NO
  /usr/bin/python3 - "$out/run.json" "$bytes" "${sfs[$b]}" "$wall" "$(cat "$work/rss.$b")" "$same" <<'PY'
import json, sys
run, size, binary, wall, rss, same = sys.argv[1:]
stages = {s["name"]: s for s in json.load(open(run))["commands"]["build"]["stages"]}
m = stages["merge"]
secs = max(m["seconds"])
print(f"{binary}: wall {float(wall):.1f} s; merge {secs:.2f} s, peak RSS per rank in merge "
      f"{[round(x) for x in m['peak_rss_mib']]} MiB; whole job, sampled from outside: "
      f"[{rss.replace(' ', ', ')}] MiB; index.faiss {int(size) / 2**20:.0f} MiB, "
      f"{int(size) / 2**20 / secs:.0f} MiB/s over the merge stage; same bytes as the first: {same}")
PY
done
# The disk's own sequential write rate for the same number of bytes, flushed.
mib=$(( $(stat -c %s "$work/out.0/index.faiss") / 1048576 + 1 ))
dd if=/dev/zero of="$work/dd.bin" bs=1M count="$mib" conv=fsync 2>&1 | tail -1 | sed 's/^/dd (same disk, conv=fsync): /'
rm -f "$work/dd.bin"
