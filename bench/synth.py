"""Synthetic vector corpora for the benchmarks (numpy only: runs where FAISS is not installed).

usage: synth.py BASE.fvecs QUERIES.fvecs [--rows N] [--dim D] [--clusters C] [--queries Q]
"""
import argparse

import numpy as np


def write_fvecs(path, x):
    n, d = x.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = x.view(np.int32)
    out.tofile(path)


def synthetic(path_base, path_queries, n=1_000_000, d=128, clusters=2000, nq=1000, seed=7):
    """A Gaussian mixture with Zipf-skewed cluster sizes: harder than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (clusters, d)).astype(np.float32)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.7
    weights /= weights.sum()
    base = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        m = min(step, n - s)
        which = rng.choice(clusters, size=m, p=weights)
        base[s:s + m] = centres[which] + rng.normal(0, 1, (m, d)).astype(np.float32)
    which = rng.choice(clusters, size=nq, p=weights)
    queries = centres[which] + rng.normal(0, 1, (nq, d)).astype(np.float32)
    write_fvecs(path_base, base)
    write_fvecs(path_queries, queries)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base")
    ap.add_argument("queries")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--nq", type=int, default=1000)
    args = ap.parse_args()
    synthetic(args.base, args.queries, args.rows, args.dim, args.clusters, args.nq)
