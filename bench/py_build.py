"""The peer: build an index with python3-faiss in one process, the way FAISS users do.

usage: py_build.py DATA FORMAT FACTORY METRIC OUT.faiss
Reads the corpus (fvecs or gzipped IDX), trains on it (FAISS subsamples to 256 x nlist
itself), adds it, writes the index. Prints one JSON line with the phase times.
"""
import gzip
import json
import sys
import time

import faiss
import numpy as np


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    n = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data[16:], dtype=np.uint8).reshape(n, -1).astype(np.float32)


def main():
    path, fmt, factory, metric, out = sys.argv[1:6]
    t0 = time.time()
    x = read_fvecs(path) if fmt == "fvecs" else read_idx(path)
    t1 = time.time()
    index = faiss.index_factory(x.shape[1], factory,
                                faiss.METRIC_INNER_PRODUCT if metric == "ip" else faiss.METRIC_L2)
    index.train(x)
    t2 = time.time()
    index.add(x)
    t3 = time.time()
    faiss.write_index(index, out)
    t4 = time.time()
    print(json.dumps({"read": t1 - t0, "train": t2 - t1, "add": t3 - t2, "write": t4 - t3}))


if __name__ == "__main__":
    main()
