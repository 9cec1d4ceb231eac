#!/usr/bin/python3
"""Workload-aware vs count-balanced partitioning: same nlist budget, same data, one run.

Datasets:
  fashion   Fashion-MNIST: the 60,000 train images are the corpus; queries are test images,
            90% from two of the ten classes (--hot-classes), 10% from the others. The workload
            sample and the searched queries are disjoint halves of the test images.
  zipf      a generated Gaussian mixture (equal clusters); query popularity over the clusters
            is Zipf-distributed (--zipf), workload and searched queries drawn independently.
For each dataset and shard count S (= ranks: 2 and 4), two builds with the same factory string
(the nlist budget) and partition.shards = S:
  count     no workload: k-means lists, placed on shards by size
  workload  partition.workload = the workload sample: lists split/merged and placed by cost
nprobe is tuned per layout, on index.faiss with python3-faiss (search equals it, see the
tests), as the smallest nprobe with recall@10 >= --target; the workload build's cost model
uses the count layout's tuned nprobe. Then `shardforge search` runs at that nprobe on S ranks
(--repeats times, interleaved; medians) and reports per_shard_codes_scanned max/mean, codes
scanned per query and batch QPS.

usage: bench/partition_bench.py [--datasets fashion,zipf] [--ranks 2,4] [--repeats 3]
                                [--binary build/commands/shardforge] [--work DIR]
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time

import faiss
import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FM = "/usr/share/datasets/fashion-mnist/"
NPROBES = [1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 128]


def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = x.view(np.int32)
    out.tofile(path)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims[0], -1) if ndim > 1 else arr


def fashion(work, hot, seed):
    train = read_idx(FM + "train-images-idx3-ubyte.gz").astype(np.float32)
    test = read_idx(FM + "t10k-images-idx3-ubyte.gz").astype(np.float32)
    labels = read_idx(FM + "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)
    sets = {"workload": [], "queries": []}
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(labels == c))
        take = 450 if c in hot else 13  # 2 x 450 hot + 8 x 13 cold = 1004 per set (~90% hot)
        sets["workload"].append(idx[:take])
        sets["queries"].append(idx[take:2 * take])
    out = {}
    for name, parts in sets.items():
        rows = rng.permutation(np.concatenate(parts))
        out[name] = test[rows]
    return FM + "train-images-idx3-ubyte.gz", train, out["workload"], out["queries"]


def zipf_mixture(work, s, seed, spread, n=100_000, d=48, clusters=400, nq=2000):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (clusters, d)).astype(np.float32)
    base = centres[rng.integers(0, clusters, n)] + rng.normal(0, 1, (n, d)).astype(np.float32)
    p = 1.0 / np.arange(1, clusters + 1) ** s
    p /= p.sum()
    popular = rng.permutation(clusters)  # popularity rank -> cluster
    def draw(m):
        return centres[popular[rng.choice(clusters, m, p=p)]] + rng.normal(0, 1, (m, d)).astype(np.float32)
    path = os.path.join(work, "zipf-base.fvecs")
    write_fvecs(path, base)
    return path, base, draw(nq), draw(nq)


def ground_truth(base, queries, k=10):
    index = faiss.IndexFlatL2(base.shape[1])
    index.add(base)
    _, I = index.search(queries, k)
    return I


def recall(found, truth, k=10):
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(found, truth)]))


def run(cmd, log):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, env=env)


def mpirun(ranks, binary, *args):
    return ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none", "-x",
            "OMP_NUM_THREADS=1", binary, *args]


def tune(index_path, queries, truth, target):
    """Smallest nprobe with recall@10 >= target, and codes/query interpolated at the target
    between the nprobe below and that one (the recall/codes curve is piecewise linear)."""
    index = faiss.read_index(index_path)
    ivf = faiss.extract_index_ivf(index)
    sizes = np.array([ivf.invlists.list_size(j) for j in range(ivf.nlist)])
    prev = None
    for p in NPROBES:
        ivf.nprobe = p
        _, I = index.search(queries, 10)
        r = recall(I, truth)
        _, L = ivf.quantizer.search(queries, p)
        codes = float(sizes[L].sum(1).mean())
        if r >= target:
            at = codes if prev is None else prev[1] + (codes - prev[1]) * (target - prev[0]) / (r - prev[0])
            return p, r, at
        prev = (r, codes)
    return NPROBES[-1], r, codes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="fashion,zipf")
    ap.add_argument("--ranks", default="2,4")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/commands/shardforge"))
    ap.add_argument("--work", default="/tmp/partition-bench")
    ap.add_argument("--target", type=float, default=0.9)
    ap.add_argument("--hot-classes", default="1,9")
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--zipf-spread", type=float, default=0.75,
                    help="std of the cluster centres (unit noise around them): overlap")
    ap.add_argument("--fashion-factory", default="IVF256,Flat")
    ap.add_argument("--zipf-factory", default="IVF512,Flat")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tile", type=int, default=16)
    ap.add_argument("--tiers", type=int, default=4, help="partition.tiers of the workload layout")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    log = os.path.join(a.work, "bench.log")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    faiss.omp_set_num_threads(2)
    results = []
    for ds in a.datasets.split(","):
        if ds == "fashion":
            corpus, base, workload, queries = fashion(a.work, [int(c) for c in a.hot_classes.split(",")], a.seed)
            factory = a.fashion_factory
        else:
            corpus, base, workload, queries = zipf_mixture(a.work, a.zipf, a.seed, a.zipf_spread)
            factory = a.zipf_factory
        wpath, qpath = os.path.join(a.work, ds + "-workload.fvecs"), os.path.join(a.work, ds + "-queries.fvecs")
        write_fvecs(wpath, workload)
        # The searched file repeats the queries (--tile times) so that a timed batch lasts long
        # enough on a noisy machine; recall and codes per query are the same for every copy.
        write_fvecs(qpath, np.tile(queries, (a.tile, 1)))
        truth = ground_truth(base, queries)
        for ranks in [int(r) for r in a.ranks.split(",")]:
            row = {"dataset": ds, "factory": factory, "ranks": ranks, "queries": len(queries),
                   "searched": len(queries) * a.tile}
            model_nprobe = None
            for layout in ("count", "workload"):
                out = os.path.join(a.work, f"{ds}-{layout}-s{ranks}")
                cfg = os.path.join(a.work, f"{ds}-{layout}-s{ranks}.yaml")
                with open(cfg, "w") as f:
                    json.dump({"input": {"paths": [corpus]}, "index": {"factory": factory},
                               "output": {"dir": out}, "seed": 1234,
                               "partition": {"shards": ranks,
                                             "workload": wpath if layout == "workload" else "",
                                             "nprobe": model_nprobe or 16,
                                             "tiers": a.tiers},
                               "search": {"queries": qpath, "k": 10}}, f)
                run(mpirun(2, a.binary, "build", cfg), log)
                nprobe, rec, at_target = tune(out + "/index.faiss", queries, truth, a.target)
                if layout == "count":
                    model_nprobe = nprobe
                row[layout] = {"cfg": cfg, "out": out, "nprobe": nprobe, "recall@10": rec,
                               "codes_at_target": at_target,
                               "plan": json.load(open(out + "/plan.json"))["repartition"]}
            # Interleaved repeats: count, workload, count, workload, ...
            tiled = np.tile(queries, (a.tile, 1))
            for layout in ("count", "workload"):
                row[layout]["runs"] = []
                row[layout]["faiss_runs"] = []
                row[layout]["faiss_index"] = faiss.read_index(row[layout]["out"] + "/index.faiss")
                faiss.extract_index_ivf(row[layout]["faiss_index"]).nprobe = row[layout]["nprobe"]
            for _ in range(a.repeats):
                for layout in ("count", "workload"):
                    r = row[layout]
                    # The peer: python3-faiss's own search of the merged index, 1 thread, same
                    # queries and nprobe (one core, where shardforge uses `ranks`).
                    faiss.omp_set_num_threads(1)
                    t0 = time.perf_counter()
                    r["faiss_index"].search(tiled, 10)
                    r["faiss_runs"].append(len(tiled) / (time.perf_counter() - t0))
                    faiss.omp_set_num_threads(2)
                    run(mpirun(ranks, a.binary, "search", r["cfg"], "--set", f"search.nprobe={r['nprobe']}"), log)
                    j = json.load(open(r["out"] + "/search.json"))
                    with h5py.File(r["out"] + "/search.h5", "r") as f:
                        r["search_recall@10"] = recall(f["ids"][:len(queries)], truth)
                    r["runs"].append(j)
            for layout in ("count", "workload"):
                r = row[layout]
                shard = r["runs"][0]["per_shard_codes_scanned"]
                r["shard_max_over_mean"] = max(shard) / (sum(shard) / len(shard))
                r["per_shard_codes_scanned"] = shard
                r["codes_per_query"] = r["runs"][0]["codes_scanned_per_query"]
                r["shards_per_query"] = r["runs"][0].get("shards_per_query", 0)
                r["qps_median"] = statistics.median(x["qps"] for x in r["runs"])
                r["qps_all"] = [round(x["qps"], 1) for x in r["runs"]]
                r["faiss_qps_median"] = statistics.median(r["faiss_runs"])
                r["faiss_qps_all"] = [round(x, 1) for x in r["faiss_runs"]]
                del r["runs"], r["faiss_runs"], r["faiss_index"]
            c, w = row["count"], row["workload"]
            row["codes_reduction"] = 1 - w["codes_per_query"] / c["codes_per_query"]
            row["codes_reduction_at_target"] = 1 - w["codes_at_target"] / c["codes_at_target"]
            row["qps_ratio"] = w["qps_median"] / c["qps_median"]
            results.append(row)
            print(json.dumps(row), flush=True)
    print()
    print(f"| dataset | ranks | layout | nprobe | recall@10 | codes/query | codes/query at recall {a.target} (interp.) | shard max/mean | shards/query | QPS (median) | python3-faiss 1 thread QPS (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        for layout in ("count", "workload"):
            r = row[layout]
            print(f"| {row['dataset']} {row['factory']} | {row['ranks']} | {layout} | {r['nprobe']} | "
                  f"{r['search_recall@10']:.4f} | {r['codes_per_query']:.0f} | {r['codes_at_target']:.0f} | "
                  f"{r['shard_max_over_mean']:.3f} | {r['shards_per_query']:.2f} | {r['qps_median']:.0f} | "
                  f"{r['faiss_qps_median']:.0f} |")
        print(f"| | | **workload / count** | | | {1 - row['codes_reduction']:.3f} | "
              f"{1 - row['codes_reduction_at_target']:.3f} ({100 * row['codes_reduction_at_target']:.0f}% fewer) "
              f"| | | {row['qps_ratio']:.2f}x | {row['workload']['faiss_qps_median'] / row['count']['faiss_qps_median']:.2f}x |")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
