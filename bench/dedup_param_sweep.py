#!/usr/bin/python3
"""Scores dedup runs against the exact Jaccard that one dedup-quality run already computed.

  /usr/bin/python3 bench/dedup_param_sweep.py TRUTH_RUNDIR THRESHOLD RUNDIR...

TRUTH_RUNDIR/quality_pairs.jsonl lists every pair with exact Jaccard >= 0.3 (dedup-quality);
a pair not in it is below 0.3. Each RUNDIR is a `shardforge dedup` run with dedup.write_pairs
on the same corpus: prints pair precision (pairs.jsonl), pair recall (duplicates.jsonl
clusters) and F1, as dedup-quality defines them, one line per RUNDIR; then the means.
"""
import json
import sys

truth_dir, t, runs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
jac, true = {}, []
for line in open(truth_dir + "/quality_pairs.jsonl"):
    p = json.loads(line)
    key = (min(p["a"], p["b"], key=str), max(p["a"], p["b"], key=str))
    jac[key] = p["jaccard"]
    if p["jaccard"] >= t:
        true.append(key)
sums = [0.0, 0.0, 0.0]
for run in runs:
    parent = {}
    def find(x):
        while parent.get(x, x) != x:
            x = parent[x]
        return x
    for line in open(run + "/duplicates.jsonl"):
        d = json.loads(line)
        for o in (d["cluster"], d["representative"]):
            a, b = find(d["id"]), find(o)
            if a != b:
                parent[max(a, b, key=str)] = min(a, b, key=str)
    pairs = [json.loads(l) for l in open(run + "/pairs.jsonl")]
    good = sum(jac.get((min(p["a"], p["b"], key=str), max(p["a"], p["b"], key=str)), 0.0) >= t
               for p in pairs)
    found = sum(find(a) == find(b) for a, b in true)
    prec = good / len(pairs) if pairs else 1.0
    rec = found / len(true) if true else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    for i, v in enumerate((prec, rec, f1)):
        sums[i] += v
    print(f"{run}: precision {prec:.4f} ({good}/{len(pairs)}) recall {rec:.4f} "
          f"({found}/{len(true)}) F1 {f1:.4f}")
n = len(runs)
print(f"mean of {n}: precision {sums[0] / n:.4f} recall {sums[1] / n:.4f} F1 {sums[2] / n:.4f}")
