#!/usr/bin/env python3
"""Each rank's peak RSS, sampled from outside every 20 ms (the benchmarks' memory figure).

usage: rss_sampler.py PID_BASE NP OUT

Each rank writes its pid to PID_BASE.<rank> (a wrapper: `echo $$ > ...; exec ...`); the
sampler reads /proc/<pid>/status (VmRSS) of that process and of its children (a rank run under
/usr/bin/time is time's child) until every rank has exited, then writes one line to OUT: the
ranks' peaks in KiB, rank 0 first. A second view beside getrusage's max RSS (/usr/bin/time %M,
the kernel's own peak of the whole job): the two should agree; a binary before commit 71d8577
(runtime::StagePeak) reset its high-water mark at every stage, so its %M is the last stage's peak only.
"""
import os
import sys
import time

base, np, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pids, peak = {}, {}
deadline = time.time() + 7200
while time.time() < deadline:
    for k in range(np):
        if k not in pids and os.path.exists(f"{base}.{k}"):
            text = open(f"{base}.{k}").read().strip()
            if text:
                pids[k] = int(text)
    alive = 0
    for k, pid in pids.items():
        procs = [pid]
        try:
            procs += [int(c) for c in open(f"/proc/{pid}/task/{pid}/children").read().split()]
        except OSError:
            pass
        for p in procs:
            try:
                for line in open(f"/proc/{p}/status"):
                    if line.startswith("VmRSS:"):
                        peak[k] = max(peak.get(k, 0), int(line.split()[1]))
                        alive += 1
            except OSError:
                pass
    if len(pids) == np and alive == 0:
        break
    time.sleep(0.02)
with open(out, "w") as f:
    f.write(" ".join(str(peak.get(k, 0)) for k in range(np)) + "\n")
