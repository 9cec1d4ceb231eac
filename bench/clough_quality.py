#!/usr/bin/env python3
"""Clough & Stevenson corpus: is each answer found as a near-duplicate of its task's original?

  /usr/bin/python3 bench/clough_quality.py data/dedup/clough.jsonl RUNDIR

RUNDIR: a `shardforge dedup` + `shardforge dedup-quality` run on that file. Per category
(cut, light, heavy, non): answers in one cluster with their original, and the exact 5-gram
Jaccard to the original (from RUNDIR/quality_pairs.jsonl, which lists pairs >= 0.3).
"""
import json
import statistics
import sys

docs = [json.loads(l) for l in open(sys.argv[1])]
run = sys.argv[2]
cluster = {}
for l in open(run + "/duplicates.jsonl"):
    d = json.loads(l)
    cluster[d["id"]] = d["cluster"]
label = lambda i: cluster.get(i, i)
jac = {}
for l in open(run + "/quality_pairs.jsonl"):
    p = json.loads(l)
    jac[(p["a"], p["b"])] = jac[(p["b"], p["a"])] = p["jaccard"]
threshold = json.load(open(run + "/quality.json"))["threshold"]
orig = {d["task"]: d["id"] for d in docs if d["category"] == "orig"}
print(f"threshold {threshold}")
print("(Jaccard to the original; below 0.3 counted as 0: quality_pairs.jsonl lists pairs >= 0.3)")
print(f"{'category':>9} {'answers':>7} {'found':>5} {'J>=t':>5} {'median J':>9} {'max J':>6}")
for cat in ("cut", "light", "heavy", "non"):
    ans = [d for d in docs if d["category"] == cat]
    found = sum(label(d["id"]) == label(orig[d["task"]]) for d in ans)
    js = [jac.get((d["id"], orig[d["task"]]), 0.0) for d in ans]  # < 0.3 shown as 0
    print(f"{cat:>9} {len(ans):>7} {found:>5} {sum(j >= threshold for j in js):>5} "
          f"{statistics.median(js):>9.3f} {max(js):>6.3f}")
