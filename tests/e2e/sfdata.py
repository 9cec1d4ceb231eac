#!/usr/bin/python3
"""Test data and checks for the shardforge end-to-end tests (run with /usr/bin/python3).

Data:
  gen OUT [OUT ...] --rows N --dim D [--seed S] [--centers C] [--split N1,N2..] [--h5-queries Q]
      A float32 gaussian mixture of N rows, split in order across the OUT files (evenly, or as
      --split says). The format follows each extension: .fvecs, .npy, .h5 (dataset `train`;
      with --h5-queries also `test` and exact top-100 `neighbors`, as ann-benchmarks has).
  ann OUT.h5 --rows N --queries Q --dim D [--seed S] [--topk K] [--spread S] [--queries-fvecs F]
      [--gt-ivecs G]
      An ann-benchmarks style file: `train`, `test` (queries from the same mixture) and
      `neighbors` (exact top-K by float64 numpy brute force, int32). Optionally also the
      queries as fvecs and the ground truth as ivecs.
  poison IN.fvecs OUT.fvecs --row R --value nan|inf|-inf [--col C]
  h5bad OUT.h5 string|3d|missing [--dataset train]
Checks (exit 1 with a message on failure):
  index INDEX --rows N [--corpus FILE ...] [--flat] [--search]
  eval EVAL.json --nprobe 1,4,16 --nlist L [--flat-full]
  runjson RUN.json --command build --ranks R
  same-recall A.json B.json [--tol T]
"""
import argparse
import json
import sys

import numpy as np


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# ------------------------------------------------------------------------------------------
# Writers and readers.

def write_fvecs(path, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    out = np.empty((n, d + 1), dtype=np.float32)
    out[:, 0] = np.array([d], dtype=np.int32).view(np.float32)[0]
    out[:, 1:] = x
    out.tofile(path)


def write_ivecs(path, x):
    x = np.ascontiguousarray(x, dtype=np.int32)
    n, d = x.shape
    out = np.empty((n, d + 1), dtype=np.int32)
    out[:, 0] = d
    out[:, 1:] = x
    out.tofile(path)


def read_fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=np.float32)
    d = int(raw[0])
    return raw.reshape(-1, d + 1)[:, 1:].copy().view(np.float32)


def read_any(path, dataset="train"):
    if path.endswith(".fvecs"):
        return read_fvecs(path)
    if path.endswith(".npy"):
        return np.load(path).astype(np.float32)
    if path.endswith(".h5") or path.endswith(".hdf5"):
        import h5py
        with h5py.File(path, "r") as f:
            return np.asarray(f[dataset], dtype=np.float32)
    fail("read_any: unknown extension: " + path)


def write_any(path, x, queries=None):
    if path.endswith(".fvecs"):
        write_fvecs(path, x)
    elif path.endswith(".npy"):
        np.save(path, np.ascontiguousarray(x, dtype=np.float32))
    elif path.endswith(".h5") or path.endswith(".hdf5"):
        import h5py
        with h5py.File(path, "w") as f:
            f.create_dataset("train", data=np.ascontiguousarray(x, dtype=np.float32))
            if queries is not None:  # ann-benchmarks layout
                f.create_dataset("test", data=queries)
                f.create_dataset("neighbors", data=exact_topk(x, queries, 100))
                f.attrs["distance"] = "euclidean"
    else:
        fail("write_any: unknown extension: " + path)


def mixture(rows, dim, seed, centers, spread=4.0):
    rng = np.random.default_rng(seed)
    c = rng.normal(0.0, spread, size=(centers, dim))
    labels = rng.integers(0, centers, size=rows)
    x = c[labels] + rng.normal(0.0, 1.0, size=(rows, dim))
    return x.astype(np.float32)


def exact_topk(base, queries, k):
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    d2 = (q * q).sum(1)[:, None] - 2.0 * q @ b.T + (b * b).sum(1)[None, :]
    k = min(k, base.shape[0])
    idx = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return idx.astype(np.int32)


# ------------------------------------------------------------------------------------------
# Commands.

def cmd_gen(a):
    x = mixture(a.rows, a.dim, a.seed, a.centers)
    if a.split:
        sizes = [int(s) for s in a.split.split(",")]
        if len(sizes) != len(a.out) or sum(sizes) != a.rows:
            fail("gen: --split must list one size per output, summing to --rows")
    else:
        sizes = [len(p) for p in np.array_split(np.arange(a.rows), len(a.out))]
    queries = mixture(a.h5_queries, a.dim, a.seed + 1000, a.centers) if a.h5_queries else None
    begin = 0
    for path, n in zip(a.out, sizes):
        write_any(path, x[begin:begin + n], queries)
        begin += n


def cmd_ann(a):
    import h5py
    x = mixture(a.rows + a.queries, a.dim, a.seed, a.centers, a.spread)
    train, test = x[:a.rows], x[a.rows:]
    nn = exact_topk(train, test, a.topk)
    with h5py.File(a.out, "w") as f:
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        f.create_dataset("neighbors", data=nn)
        f.attrs["distance"] = "euclidean"
    if a.queries_fvecs:
        write_fvecs(a.queries_fvecs, test)
    if a.gt_ivecs:
        write_ivecs(a.gt_ivecs, nn)


def cmd_poison(a):
    x = read_fvecs(a.inp)
    x[a.row, a.col] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[a.value]
    write_fvecs(a.out, x)


def cmd_h5bad(a):
    import h5py
    with h5py.File(a.out, "w") as f:
        if a.kind == "string":
            f.create_dataset(a.dataset, data=np.array([b"alpha", b"beta", b"gamma", b"delta"] * 25,
                                                      dtype="S8").reshape(50, 2))
        elif a.kind == "3d":
            f.create_dataset(a.dataset, data=np.zeros((50, 4, 8), dtype=np.float32))
        elif a.kind == "missing":
            f.create_dataset("other", data=np.zeros((50, 8), dtype=np.float32))


def cmd_index(a):
    import faiss
    index = faiss.read_index(a.index)
    if index.ntotal != a.rows:
        fail("ntotal %d != rows %d" % (index.ntotal, a.rows))
    try:
        ivf = faiss.extract_index_ivf(index)
    except Exception as e:  # noqa: BLE001
        fail("not an IVF index: %s (%s)" % (type(index).__name__, e))
    print("  index: %s, d=%d, ntotal=%d, nlist=%d, code_size=%d" %
          (type(ivf).__name__, index.d, index.ntotal, ivf.nlist, ivf.code_size))
    invlists = ivf.invlists
    seen = np.zeros(a.rows, dtype=np.int64)
    flat_codes = {}
    for l in range(ivf.nlist):
        n = invlists.list_size(l)
        if n == 0:
            continue
        ids = faiss.rev_swig_ptr(invlists.get_ids(l), n).copy()
        if ids.min() < 0 or ids.max() >= a.rows:
            fail("list %d holds ids outside [0, %d): min %d max %d" % (l, a.rows, ids.min(), ids.max()))
        if np.any(np.diff(ids) <= 0):
            bad = int(np.argmax(np.diff(ids) <= 0))
            fail("list %d: ids do not strictly ascend (position %d: %d then %d)" %
                 (l, bad, ids[bad], ids[bad + 1]))
        np.add.at(seen, ids, 1)
        if a.flat:
            codes = faiss.rev_swig_ptr(invlists.get_codes(l), n * ivf.code_size).copy()
            flat_codes[l] = (ids, codes.view(np.float32).reshape(n, index.d))
    if np.any(seen != 1):
        missing = np.flatnonzero(seen == 0)
        dup = np.flatnonzero(seen > 1)
        fail("ids not each present once: %d missing (first %s), %d duplicated (first %s)" %
             (missing.size, missing[:5].tolist(), dup.size, dup[:5].tolist()))
    print("  every id in [0, %d) appears exactly once; ids ascend within each of %d lists" %
          (a.rows, ivf.nlist))
    if a.corpus:
        corpus = np.concatenate([read_any(p) for p in a.corpus])
        if corpus.shape[0] != a.rows:
            fail("corpus files hold %d rows, expected %d" % (corpus.shape[0], a.rows))
        if a.flat:
            for l, (ids, vecs) in flat_codes.items():
                if not np.array_equal(vecs, corpus[ids]):
                    bad = ids[np.flatnonzero(np.any(vecs != corpus[ids], axis=1))[0]]
                    fail("list %d: the stored vector of id %d is not corpus row %d "
                         "(global ids across files wrong?)" % (l, bad, bad))
            print("  IVF-Flat codes: the vector stored under id i is corpus row i")
            # Each vector's list is its nearest centroid (up to float ties).
            _, assign = ivf.quantizer.search(corpus, 1)
            wrong = 0
            for l, (ids, _) in flat_codes.items():
                wrong += int(np.sum(assign[ids, 0] != l))
            if wrong > a.rows // 1000:
                fail("%d vectors are not in the list of their nearest centroid" % wrong)
            print("  each vector sits in its nearest centroid's list (%d float-tie exceptions)"
                  % wrong)
        if a.search:
            faiss.extract_index_ivf(index).nprobe = ivf.nlist
            rng = np.random.default_rng(5)
            probe = rng.choice(a.rows, size=min(200, a.rows), replace=False)
            _, I = index.search(corpus[probe], 5)
            if a.flat:
                # Exact duplicates in the corpus could tie: accept an id whose row is identical.
                bad = [int(p) for p, row in zip(probe, I)
                       if row[0] != p and not np.array_equal(corpus[row[0]], corpus[p])]
                if bad:
                    fail("nprobe=nlist search: nearest neighbour of corpus row(s) %s is not "
                         "itself (got %s)" % (bad[:5], [int(I[np.flatnonzero(probe == b)[0], 0])
                                                        for b in bad[:5]]))
                print("  nprobe=nlist: the nearest neighbour of each of %d corpus rows is itself"
                      % probe.size)
            else:
                hit = np.mean([p in row for p, row in zip(probe, I)])
                if hit < 0.9:
                    fail("nprobe=nlist search: only %.3f of corpus rows find themselves in the "
                         "top 5" % hit)
                print("  nprobe=nlist: %.3f of %d corpus rows find themselves in the top 5"
                      % (hit, probe.size))


def cmd_eval(a):
    with open(a.json) as f:
        ev = json.load(f)
    if ev.get("k") != 10:
        fail("eval.json k is %r, expected 10" % ev.get("k"))
    res = ev.get("results")
    nprobes = [int(x) for x in a.nprobe.split(",")]
    if not isinstance(res, list) or len(res) != len(nprobes):
        fail("eval.json results: expected %d entries, got %r" % (len(nprobes), res))
    for want, r in zip(nprobes, res):
        for key in ("nprobe", "recall@1", "recall@10", "recall@100", "qps"):
            if key not in r:
                fail("eval.json results entry lacks %r: %r" % (key, r))
        if r["nprobe"] != want:
            fail("eval.json nprobe %r, expected %d" % (r["nprobe"], want))
        for key in ("recall@1", "recall@10", "recall@100"):
            v = r[key]
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                fail("nprobe %d: %s = %r is not within [0, 1]" % (want, key, v))
        if not isinstance(r["qps"], (int, float)) or not r["qps"] > 0:
            fail("nprobe %d: qps = %r is not > 0" % (want, r["qps"]))
    for lo, hi in zip(res, res[1:]):
        if hi["recall@10"] + 1e-9 < lo["recall@10"]:
            fail("recall@10 falls as nprobe grows: %r then %r" % (lo, hi))
    if a.flat_full:
        full = [r for r in res if r["nprobe"] >= a.nlist]
        if not full:
            fail("no nprobe >= nlist %d in the results" % a.nlist)
        for r in full:
            for key in ("recall@1", "recall@10", "recall@100"):
                if r[key] != 1.0:
                    fail("IVF-Flat with nprobe %d >= nlist: %s = %r, expected 1.0" %
                         (r["nprobe"], key, r[key]))
    print("  " + "; ".join("nprobe %d: R@1 %.4f R@10 %.4f R@100 %.4f" %
                           (r["nprobe"], r["recall@1"], r["recall@10"], r["recall@100"])
                           for r in res))


def cmd_runjson(a):
    with open(a.json) as f:
        run = json.load(f)
    entry = run.get("commands", {}).get(a.command)
    if entry is None:
        fail("run.json has no commands.%s" % a.command)
    if entry.get("ranks") != a.ranks:
        fail("run.json commands.%s.ranks = %r, expected %d" % (a.command, entry.get("ranks"), a.ranks))
    stages = entry.get("stages")
    if not stages:
        fail("run.json commands.%s has no stages" % a.command)
    for s in stages:
        for key in ("seconds", "peak_rss_mib"):
            v = s.get(key)
            if not isinstance(v, list) or len(v) != a.ranks:
                fail("run.json %s stage %r: %s = %r, expected a list of %d values" %
                     (a.command, s.get("name"), key, v, a.ranks))
            if not all(isinstance(x, (int, float)) and x >= 0 for x in v):
                fail("run.json %s stage %r: %s has a bad value: %r" % (a.command, s.get("name"), key, v))
        if not all(x > 0 for x in s["peak_rss_mib"]):
            fail("run.json %s stage %r: peak_rss_mib not positive: %r" %
                 (a.command, s.get("name"), s["peak_rss_mib"]))
    # The stages are timed: on each rank they took some time, and (with --within, the command's
    # wall time as the test measured it) no more than the whole command.
    for r in range(a.ranks):
        total = sum(s["seconds"][r] for s in stages)
        if not total > 0:
            fail("run.json %s: the stages of rank %d took %r s in all, expected > 0" % (a.command, r, total))
        if a.within is not None and total > a.within:
            fail("run.json %s: the stages of rank %d took %.3f s in all, more than the command's %.3f s" %
                 (a.command, r, total, a.within))
    if a.stages:
        names = [s.get("name") for s in stages]
        for want in a.stages.split(","):
            if want not in names:
                fail("run.json %s: no stage %r (have %r)" % (a.command, want, names))
    print("  run.json %s: %d rank(s), stages %s" %
          (a.command, a.ranks, ", ".join(s["name"] for s in stages)))


def cmd_same_recall(a):
    with open(a.a) as f:
        ra = json.load(f)["results"]
    with open(a.b) as f:
        rb = json.load(f)["results"]
    if len(ra) != len(rb):
        fail("%s and %s have different numbers of results" % (a.a, a.b))
    for x, y in zip(ra, rb):
        for key in ("recall@1", "recall@10", "recall@100"):
            if x[key] is None or y[key] is None or abs(x[key] - y[key]) > a.tol:
                fail("nprobe %d %s: %r (%s) vs %r (%s) differ by more than %g" %
                     (x["nprobe"], key, x[key], a.a, y[key], a.b, a.tol))


def cmd_recommended(a):
    """eval.json's recommended nprobe: recall@k at it reaches target_recall, no smaller nprobe of
    the curve does, and index.faiss stores it (read by stock FAISS); with --before (index.faiss
    before eval), the file differs from it in the 8 bytes of that field at most."""
    import faiss
    with open(a.json) as f:
        ev = json.load(f)
    key = "recall@%d" % ev["k"]
    target, rec = ev.get("target_recall"), ev.get("recommended")
    if not isinstance(target, (int, float)) or not isinstance(rec, dict):
        fail("eval.json: no target_recall / recommended: %r" % ev)
    n = rec.get("nprobe")
    if not isinstance(n, int) or n < 1 or not rec.get(key, -1) >= target:
        fail("eval.json recommended %r does not reach %s %r" % (rec, key, target))
    if not rec.get("qps", 0) > 0:
        fail("eval.json recommended qps: %r" % rec)
    for r in ev["results"]:
        if r.get(key) is not None and r["nprobe"] < n and r[key] >= target:
            fail("nprobe %d of the curve reaches %s %r, below the recommended %d" %
                 (r["nprobe"], key, target, n))
        if r.get(key) is not None and r["nprobe"] == n and r[key] != rec[key]:
            fail("recommended %s %r differs from the curve's %r at nprobe %d" % (key, rec[key], r[key], n))
    if a.expect and n != a.expect:
        fail("recommended nprobe %d, expected %d" % (n, a.expect))
    flags = faiss.IO_FLAG_ONDISK_SAME_DIR if a.ondisk else 0
    stored = faiss.extract_index_ivf(faiss.read_index(a.index, flags)).nprobe
    if stored != n:
        fail("%s stores nprobe %d, eval.json recommends %d" % (a.index, stored, n))
    if a.before:
        old = np.fromfile(a.before, dtype=np.uint8)
        new = np.fromfile(a.index, dtype=np.uint8)
        if old.size != new.size:
            fail("%s: %d bytes, %d before eval" % (a.index, new.size, old.size))
        diff = np.nonzero(old != new)[0]
        if diff.size and diff[-1] - diff[0] >= 8:
            fail("%s differs from before eval at bytes %d..%d: more than the nprobe field" %
                 (a.index, diff[0], diff[-1]))
    print("  recommended nprobe %d: %s %.4f >= target %g, qps %.0f; %s stores it" %
          (n, key, rec[key], target, rec["qps"], a.index))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out", nargs="+")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--dim", type=int, required=True)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--centers", type=int, default=20)
    g.add_argument("--split", default="")
    g.add_argument("--h5-queries", type=int, default=0)
    g = sub.add_parser("ann")
    g.add_argument("out")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--queries", type=int, required=True)
    g.add_argument("--dim", type=int, required=True)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--centers", type=int, default=20)
    g.add_argument("--topk", type=int, default=100)
    g.add_argument("--spread", type=float, default=4.0, help="std of the centres (noise: 1)")
    g.add_argument("--queries-fvecs", default="")
    g.add_argument("--gt-ivecs", default="")
    g = sub.add_parser("poison")
    g.add_argument("inp")
    g.add_argument("out")
    g.add_argument("--row", type=int, required=True)
    g.add_argument("--col", type=int, default=0)
    g.add_argument("--value", choices=["nan", "inf", "-inf"], required=True)
    g = sub.add_parser("h5bad")
    g.add_argument("out")
    g.add_argument("kind", choices=["string", "3d", "missing"])
    g.add_argument("--dataset", default="train")
    g = sub.add_parser("index")
    g.add_argument("index")
    g.add_argument("--rows", type=int, required=True)
    g.add_argument("--corpus", nargs="*", default=[])
    g.add_argument("--flat", action="store_true")
    g.add_argument("--search", action="store_true")
    g = sub.add_parser("eval")
    g.add_argument("json")
    g.add_argument("--nprobe", required=True)
    g.add_argument("--nlist", type=int, default=0)
    g.add_argument("--flat-full", action="store_true")
    g = sub.add_parser("recommended")
    g.add_argument("json")
    g.add_argument("index")
    g.add_argument("--before", default="")
    g.add_argument("--expect", type=int, default=0)
    g.add_argument("--ondisk", action="store_true")
    g = sub.add_parser("runjson")
    g.add_argument("json")
    g.add_argument("--command", required=True)
    g.add_argument("--ranks", type=int, required=True)
    g.add_argument("--stages", default="")
    g.add_argument("--within", type=float, default=None,
                   help="wall seconds of the command: each rank's stage seconds add up to no more")
    g = sub.add_parser("same-recall")
    g.add_argument("a")
    g.add_argument("b")
    g.add_argument("--tol", type=float, default=0.0)
    a = p.parse_args()
    {"gen": cmd_gen, "ann": cmd_ann, "poison": cmd_poison, "h5bad": cmd_h5bad,
     "index": cmd_index, "eval": cmd_eval, "runjson": cmd_runjson,
     "recommended": cmd_recommended,
     "same-recall": cmd_same_recall}[a.cmd](a)


if __name__ == "__main__":
    main()
