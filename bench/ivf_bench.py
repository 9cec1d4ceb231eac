#!/usr/bin/python3
"""shardforge build vs python3-faiss, same factory string, same data, one run.

For each dataset and factory string, runs (each REPEATS times, medians reported):
  peer      python3-faiss in one process (bench/py_build.py), all threads it wants
  sf x1     shardforge build, 1 rank
  sf x2     shardforge build, 2 ranks (mpirun)
in two thread settings: "node" (every contender gets all cores of this machine: python and
1 rank use NCORES threads, 2 ranks NCORES/2 each) and "per-core" (1 thread per process: the
peer gets one core, 2 ranks get two). Wall time is for the whole job: read the corpus from
disk, train, add, write index.faiss. mpirun runs with --bind-to none (its default binds a
single rank to one core, which would starve its threads). Recall@10 of every index is measured by the same code
against the same exact ground truth. Peak RSS: /usr/bin/time for the peer, run.json per rank
for shardforge.

usage: bench/ivf_bench.py [--datasets fashion-mnist,synthetic-1m] [--factories ...]
                          [--repeats 3] [--binary build/commands/shardforge] [--modes node,per-core]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import faiss
import numpy as np

from synth import synthetic

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FASHION_TRAIN = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
FASHION_TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
NPROBES = [1, 4, 16, 64]


def load_vectors(path):
    if path.endswith(".gz"):
        import gzip
        with gzip.open(path) as f:
            data = f.read()
        n = int.from_bytes(data[4:8], "big")
        return np.frombuffer(data[16:], dtype=np.uint8).reshape(n, -1).astype(np.float32)
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def timed(cmd, env):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS MiB of the process tree's largest)."""
    t0 = time.time()
    res = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M"] + cmd, env=env,
                         capture_output=True, text=True)
    wall = time.time() - t0
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    rss = 0.0
    for line in res.stderr.splitlines():
        if line.startswith("MAXRSS_KB"):
            rss = int(line.split()[1]) / 1024.0
    return wall, rss, res.stdout


def recall_at(index, queries, truth, nprobe, k=10):
    faiss.extract_index_ivf(index).nprobe = nprobe
    _, found = index.search(queries, k)
    hits = sum(len(set(found[i, :k]) & set(truth[i, :k])) for i in range(len(queries)))
    return hits / (k * len(queries))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="fashion-mnist,synthetic-1m")
    ap.add_argument("--factories", default="IVF1024,Flat;IVF1024,PQ16np")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/commands/shardforge"))
    ap.add_argument("--modes", default="node,per-core")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    ncores = os.cpu_count()
    work = args.workdir or tempfile.mkdtemp(prefix="sf_bench_")
    os.makedirs(work, exist_ok=True)
    base_env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

    datasets = {}
    for name in args.datasets.split(","):
        if name == "fashion-mnist":
            datasets[name] = (FASHION_TRAIN, "idx", FASHION_TEST)
        elif name == "synthetic-1m":
            b, q = os.path.join(work, "syn1m.fvecs"), os.path.join(work, "syn1m-q.fvecs")
            if not os.path.exists(b):
                print(f"generating {b} ...", flush=True)
                synthetic(b, q)
            datasets[name] = (b, "fvecs", q)
        else:
            raise SystemExit(f"unknown dataset {name}")

    rows = []
    for dname, (base, fmt, qpath) in datasets.items():
        xb = load_vectors(base)
        xq = load_vectors(qpath)[:1000]
        _, truth = faiss.knn(xq, xb, 100)
        nrows = xb.shape[0]
        del xb
        for factory in args.factories.split(";"):
            for mode in args.modes.split(","):
                contenders = [("python3-faiss", None), ("shardforge x1", 1), ("shardforge x2", 2)]
                results = {}
                for label, ranks in contenders:
                    walls, rsss, outs = [], [], []
                    for rep in range(args.repeats):
                        out = os.path.join(work, f"{dname}-{mode}-{ranks}")
                        os.makedirs(out, exist_ok=True)
                        if ranks is None:
                            threads = ncores if mode == "node" else 1
                            env = dict(base_env, OMP_NUM_THREADS=str(threads))
                            wall, rss, _ = timed(["/usr/bin/python3", os.path.join(HERE, "py_build.py"),
                                                  base, fmt, factory, "l2", out + "/index.faiss"], env)
                        else:
                            threads = max(1, ncores // ranks) if mode == "node" else 1
                            env = dict(base_env, OMP_NUM_THREADS=str(threads))
                            cfg = os.path.join(out, "bench.yaml")
                            with open(cfg, "w") as f:
                                f.write(f"input:\n  paths: [{base}]\nindex:\n  factory: '{factory}'\n"
                                        f"output:\n  dir: {out}\n")
                            wall, _, _ = timed(["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none",
                                                "-x", f"OMP_NUM_THREADS={threads}",
                                                args.binary, "build", cfg], env)
                            run = json.load(open(os.path.join(out, "run.json")))["commands"]["build"]
                            per_rank = [max(s["peak_rss_mib"][r] for s in run["stages"])
                                        for r in range(ranks)]
                            rss = max(per_rank)
                        walls.append(wall)
                        rsss.append(rss)
                    index = faiss.read_index(os.path.join(out, "index.faiss"))
                    recalls = {p: recall_at(index, xq, truth, p) for p in NPROBES}
                    results[label] = (statistics.median(walls), max(rsss), recalls, walls)
                    print(f"{dname:14s} {factory:16s} {mode:8s} {label:15s} wall {statistics.median(walls):7.2f}s "
                          f"(runs {', '.join(f'{w:.2f}' for w in walls)}) peak RSS {max(rsss):7.0f} MiB "
                          f"recall@10 " + " ".join(f"np{p}={r:.4f}" for p, r in recalls.items()), flush=True)
                peer = results["python3-faiss"][0]
                for label in ("shardforge x1", "shardforge x2"):
                    wall, rss, recalls, _ = results[label]
                    dr = max(abs(recalls[p] - results["python3-faiss"][2][p]) for p in NPROBES)
                    rows.append((dname, factory, mode, label, wall, peer, wall / peer, rss,
                                 results["python3-faiss"][1], dr))
    print()
    print(f"| dataset | factory | threads | contender | wall s | python3-faiss s | ratio | peak RSS/rank MiB | python RSS MiB | max abs recall@10 diff |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.2f} | {r[5]:.2f} | {r[6]:.2f}x | {r[7]:.0f} | {r[8]:.0f} | {r[9]:.4f} |")


if __name__ == "__main__":
    main()
