#!/usr/bin/python3
"""Dedup throughput: `shardforge dedup` at 1 and 2 ranks against the Python reference.

    /usr/bin/python3 bench/gen_text_corpus.py --out /tmp/corpus --size-mb 1024
    /usr/bin/python3 bench/dedup_bench.py --corpus /tmp/corpus [--ref-limit-mb 200]

Runs, on the same files, in one go (the machine is shared: keep the contenders together):
  ref       bench/minhash_ref.py, one process, one core (numpy + xxhash, datasketch MinHash)
  sf x1     shardforge dedup, 1 rank, 1 thread           (mpirun --bind-to none)
  sf x2     shardforge dedup, 2 ranks, 1 thread each
and prints wall time, CPU time (user + system, all processes: robust where other jobs share the
machine), MB/s of JSONL read, MB/s per core, MB per CPU-second, the MinHash-signature step's
MB/s per core (MB of text per second of shingling + MinHash from dedup.json's "sketch"
timings, median over ranks; without them, its stage containing "sketch"/"minhash"/"signature",
which also reads and normalises), peak RSS per rank, the ratios to the
reference and the 2-rank speedup; then, against the generator's truth.jsonl, how many
planted exact / near duplicates each contender removed, per target Jaccard level, and removed
documents that were not planted. Both contenders use the same parameters (dedup defaults:
5-gram words, 112 permutations, 14 x 8 bands, threshold 0.8, seed 1, keep first), so with
--ref-limit-mb 0 their removed sets should agree; that agreement is printed too.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (wall s, max RSS MiB of the biggest process,
    stdout, CPU s = user + system of the process and the children it waited for)."""
    start = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        err = res.stderr.split("\tCommand being timed")[0]
        sys.stderr.write(res.stdout[-4000:] + err[-4000:])
        raise SystemExit("failed: " + " ".join(cmd))
    rss, cpu = 0.0, 0.0
    for line in res.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split()[-1]) / 1024.0
        if "User time (seconds)" in line or "System time (seconds)" in line:
            cpu += float(line.split()[-1])
    return wall, rss, res.stdout, cpu


def removed_ids(path):
    out = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            out[str(r["id"])] = r.get("reason", "")
    return out


def truth_report(truth, removed, limit_ids=None):
    """Planted duplicates removed, per kind / target level; removed but not planted."""
    rows, planted = {}, set()
    for t in truth:
        if limit_ids is not None and (t["id"] not in limit_ids or t["of"] not in limit_ids):
            continue
        planted.add(t["id"])
        key = "exact" if t["kind"] == "exact" else "near %.2f" % t["target"]
        n, hit = rows.get(key, (0, 0))
        rows[key] = (n + 1, hit + (t["id"] in removed))
    extra = sum(1 for r in removed if r not in planted)
    return rows, extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True, help="a gen_text_corpus.py output directory")
    ap.add_argument("--shardforge", default=os.path.join(ROOT, "build", "commands", "shardforge"))
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each shardforge setting")
    ap.add_argument("--ref-repeats", type=int, default=1, help="runs of the reference")
    ap.add_argument("--ref-limit-mb", type=float, default=0,
                    help="time the reference on this prefix only (0: the whole corpus)")
    ap.add_argument("--work", help="run directories go here (default: a temp dir)")
    ap.add_argument("--skip-ref", action="store_true")
    args = ap.parse_args()

    files = sorted(glob.glob(os.path.join(args.corpus, "corpus-*.jsonl*")))
    if not files:
        raise SystemExit("no corpus-*.jsonl[.gz] in " + args.corpus)
    summary = json.load(open(os.path.join(args.corpus, "summary.json")))
    truth = [json.loads(l) for l in open(os.path.join(args.corpus, "truth.jsonl"))]
    work = args.work or tempfile.mkdtemp(prefix="dedup_bench_")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    load = os.getloadavg()
    print("corpus: %s, %d files, %d docs, %.1f MB%s; load average %.2f %.2f %.2f" % (
        args.corpus, len(files), summary["docs"], summary["bytes"] / 1e6,
        " (gzip)" if summary.get("gzip") else "", *load))

    results = []  # (label, cores, wall, mb, sig_mb_per_core, rss, removed)
    if not args.skip_ref:
        walls, rsss, outs, cpus = [], [], [], []
        ref_removed = os.path.join(work, "ref_removed.jsonl")
        for _ in range(args.ref_repeats):
            cmd = ["/usr/bin/python3", os.path.join(HERE, "minhash_ref.py"), *files,
                   "--removed", ref_removed]
            if args.ref_limit_mb > 0:
                cmd += ["--limit-mb", str(args.ref_limit_mb)]
            wall, rss, out, cpu = timed(cmd, env)
            walls.append(wall)
            cpus.append(cpu)
            rsss.append(rss)
            outs.append(json.loads(out))
        r = outs[-1]
        ref_docs = r["docs"]
        sig_s = statistics.median(o["seconds"]["shingles"] + o["seconds"]["minhash"] for o in outs)
        mb = r["bytes"] / 1e6
        results.append(("ref (python)", 1, statistics.median(walls), mb, mb / sig_s, max(rsss),
                        removed_ids(ref_removed), walls, statistics.median(cpus)))
        print("ref: %s" % json.dumps(r))

    for ranks in [int(x) for x in args.ranks.split(",") if x]:
        walls, rsss, sigs, cpus = [], [], [], []
        for rep in range(args.repeats):
            run_dir = os.path.join(work, "sf-np%d-%d" % (ranks, rep))
            cfg = os.path.join(work, "dedup-np%d.yaml" % ranks)
            with open(cfg, "w") as f:
                f.write("input:\n  format: jsonl\n  text_field: text\n  id_field: id\n"
                        "  paths: [%s]\noutput:\n  dir: %s\nthreads: 1\n"
                        "dedup:\n  ngram: 5\n  num_perm: 112\n  bands: 14\n  rows: 8\n"
                        "  threshold: 0.8\n  keep: first\n  seed: 1\n"
                        % (", ".join(json.dumps(p) for p in files), json.dumps(run_dir)))
            wall, _, _, cpu = timed(["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
                                "-x", "OMP_NUM_THREADS=1", args.shardforge, "dedup", cfg], env)
            report = json.load(open(os.path.join(run_dir, "dedup.json")))
            walls.append(wall)
            cpus.append(cpu)
            rsss.append(max(max(s["peak_rss_mib"]) for s in report["stages"]))
            sketch = report.get("sketch")
            if sketch and sketch.get("signature_seconds"):  # the job times MinHash apart
                per_rank = [b / 1e6 / t for b, t in zip(sketch["signature_text_bytes"],
                                                         sketch["signature_seconds"]) if t > 0]
                sigs.append(1.0 / statistics.median(per_rank))  # s per MB, see below
                print("sf x%d run %d: signatures (shingles + MinHash) %s MB of text/s per rank" % (
                    ranks, rep, ", ".join("%.1f" % x for x in per_rank)))
                continue_with_stages = False
            else:
                continue_with_stages = True
            sig_stage = [s for s in report["stages"]
                         if any(w in s["name"].lower() for w in ("minhash", "signature", "sketch"))]
            if continue_with_stages:
                sig_seconds = sum(max(s["seconds"]) for s in sig_stage) if sig_stage else None
                sigs.append(sig_seconds / (report["bytes_in"] / 1e6 / ranks)
                            if sig_seconds else None)
            print("sf x%d run %d: %.2f s; stages (max over ranks): %s" % (
                ranks, rep, wall, ", ".join("%s %.2f s / %.0f MiB" % (
                    s["name"], max(s["seconds"]), max(s["peak_rss_mib"])) for s in report["stages"])))
        mb = report["bytes_in"] / 1e6
        # signature MB/s per core: dedup.json's sketch timings (MB of text per second of the
        # signature step, median over ranks), else its read+sketch stage (MB of JSONL)
        sig = (1.0 / statistics.median(sigs)) if all(s for s in sigs) else None
        results.append(("shardforge x%d" % ranks, ranks, statistics.median(walls), mb, sig,
                        max(rsss), removed_ids(os.path.join(run_dir, "duplicates.jsonl")), walls,
                        statistics.median(cpus)))

    ref = results[0] if not args.skip_ref else None
    ref_per_core = ref[3] / ref[2] if ref else None
    one = next((r for r in results if r[0] == "shardforge x1"), None)
    print()
    ref_per_cpu = ref[3] / ref[8] if ref else None
    print("| contender | cores | wall s (runs) | CPU s | MB | MB/s | MB/s per core | MB per CPU-s |"
          " signatures MB/s per core | peak RSS/rank MiB | per-core x ref | per-CPU-s x ref |"
          " speedup vs 1 rank |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, cores, wall, mb, sig, rss, _, walls, cpu in results:
        per_core = mb / wall / cores
        print("| %s | %d | %.2f (%s) | %.1f | %.0f | %.2f | %.2f | %.2f | %s | %.0f | %s | %s | %s |" % (
            label, cores, wall, ", ".join("%.2f" % w for w in walls), cpu, mb, mb / wall,
            per_core, mb / cpu, "%.2f" % sig if sig else "n/a", rss,
            "%.1fx" % (per_core / ref_per_core) if ref_per_core else "n/a",
            "%.1fx" % (mb / cpu / ref_per_cpu) if ref_per_cpu else "n/a",
            "%.2fx" % (one[2] / wall) if one and label.startswith("shardforge") else ""))

    two = next((r for r in results if r[0] == "shardforge x2"), None)
    print()
    for label, cores, wall, mb, sig, *_ in results:
        if not label.startswith("shardforge"):
            continue
        print("targets, %s: signatures %s MB/s per core (>= 50: %s); whole dedup %.1f MB/s per "
              "core (>= 15: %s)" % (label, "%.1f" % sig if sig else "n/a",
                                    "met" if sig and sig >= 50 else "MISSED", mb / wall / cores,
                                    "met" if mb / wall / cores >= 15 else "MISSED"))
    if one and two:
        print("targets: 2 ranks %.2fx one rank (>= 1.7: %s)" % (
            one[2] / two[2], "met" if one[2] / two[2] >= 1.7 else "MISSED"))
    print()
    prefix_ids = None
    if ref and args.ref_limit_mb > 0:  # generator ids are d<row>, rows in file order
        prefix_ids = {"d%09d" % i for i in range(ref_docs)}
        print("(the reference read the first %d docs, %.0f MB: its rows count pairs inside them)"
              % (ref_docs, ref[3]))
    for label, _, _, _, _, _, removed, _, _ in results:
        if not truth:  # a real set: nothing planted
            reasons = list(removed.values())
            print("%s: removed %d (exact %d, near %d)" % (
                label, len(removed), reasons.count("exact"), reasons.count("near")))
            continue
        rows, extra = truth_report(truth, removed, prefix_ids if label.startswith("ref") else None)
        print("%s: removed %d; %s; removed but not planted: %d" % (
            label, len(removed), ", ".join("%s %d/%d" % (k, hit, n) for k, (n, hit) in
                                           sorted(rows.items())), extra))
    if ref and args.ref_limit_mb <= 0:
        for label, _, _, _, _, _, removed, _, _ in results[1:]:
            same = set(removed) == set(ref[6])
            print("%s removed set %s the reference's (%d vs %d ids, %d in common)" % (
                label, "EQUALS" if same else "differs from", len(removed), len(ref[6]),
                len(set(removed) & set(ref[6]))))


if __name__ == "__main__":
    main()
