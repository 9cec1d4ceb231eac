#!/usr/bin/python3
"""How far can re-sizing IVF lists (same nlist budget) lower the codes scanned per query at
recall@10 = 0.9 on partition_bench.py's Zipf mixture? Python-only (faiss), exact per-query
recall/codes curves (a list = the rows nearest to its centroid), one global nprobe as in
`shardforge search`. Sections (results in bench/RESULTS.md, "Workload-aware partitioning"):
  nlist    uniform k-means with 128 .. 2048 lists (what finer cells buy at all)
  tiers    shardforge's tier re-sizing, emulated, for several tier counts / split exponents
  oracle   the rows of the m most popular clusters (true labels) given f x their share of lists
  region   the lists holding X of the workload's true neighbours given f x more lists
  probe    the k-means lists, searched with a per-query nprobe instead of one global nprobe:
           distance-ratio probing (lists within (1+eps) of the nearest centroid) and a
           per-region nprobe learned on the workload (region = the query's nearest list)
  spill    the k-means lists with rows also stored in a second list (SOAR-style spilling):
           all rows, rows near a boundary, or only the rows of the workload's hot lists
usage: bench/zipf_layouts.py [nlist,tiers,oracle,region,probe,spill]   (~15 min on 1 core)
"""
import sys

import faiss
import numpy as np

def zipf_mixture(s=1.1, seed=1, spread=0.75, n=100_000, d=48, clusters=400, nq=2000):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (clusters, d)).astype(np.float32)
    lab = rng.integers(0, clusters, n)
    base = centres[lab] + rng.normal(0, 1, (n, d)).astype(np.float32)
    p = 1.0 / np.arange(1, clusters + 1) ** s
    p /= p.sum()
    popular = rng.permutation(clusters)
    rank_of = np.empty(clusters, int); rank_of[popular] = np.arange(clusters)
    def draw(m):
        r = rng.choice(clusters, m, p=p)
        return centres[popular[r]] + rng.normal(0, 1, (m, d)).astype(np.float32), r
    w, wr = draw(nq); q, qr = draw(nq)
    return dict(base=base, lab=lab, rank_of=rank_of, centres=centres, work=w, wrank=wr, q=q, qrank=qr)

def gt(base, q, k=10):
    ix = faiss.IndexFlatL2(base.shape[1]); ix.add(base); return ix.search(q, k)[1]

def kmeans(x, k, seed=1234, niter=10, weights=None):
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, max_points_per_centroid=100000)
    km.train(x, weights=weights)
    return km.centroids

def curve(cent, base, q, truth, pmax=None, assign=None):
    """per nprobe p: mean recall, mean codes. Exact (lists = nearest centroid)."""
    nl = cent.shape[0]
    quant = faiss.IndexFlatL2(cent.shape[1]); quant.add(cent)
    if assign is None: assign = quant.search(base, 1)[1][:, 0]
    sizes = np.bincount(assign, minlength=nl)
    pmax = pmax or nl
    _, L = quant.search(q, pmax)
    # rank of each list for each query
    rank = np.full((len(q), nl), pmax + 1, dtype=np.int32)
    rows = np.repeat(np.arange(len(q)), pmax)
    rank[rows, L.ravel()] = np.tile(np.arange(pmax), len(q))
    nbr_rank = np.take_along_axis(rank, assign[truth], 1)  # nq x k
    codes = np.cumsum(sizes[L], 1)  # nq x pmax
    rec = np.stack([(nbr_rank < p).mean(1) for p in range(1, pmax + 1)], 1)  # nq x pmax
    return rec, codes, sizes

def at_target(rec, codes, target=0.9, mask=None):
    if mask is not None: rec, codes = rec[mask], codes[mask]
    r = rec.mean(0); c = codes.mean(0)
    i = np.searchsorted(r, target)  # r increasing
    if i >= len(r): return float('nan'), len(r)
    if i == 0: return c[0], 1
    return c[i-1] + (c[i] - c[i-1]) * (target - r[i-1]) / (r[i] - r[i-1]), i + 1

def access(cent, q, nprobe):
    quant = faiss.IndexFlatL2(cent.shape[1]); quant.add(cent)
    _, L = quant.search(q, nprobe)
    return np.bincount(L.ravel(), minlength=cent.shape[0]) / len(q)

def plan_tiers(acc, sizes, tiers, nlist_after, min_list=16, gamma=0.5, coarsen=4):
    n = len(sizes); total = acc.sum()
    dens = np.where(sizes > 0, acc / np.maximum(sizes, 1), 0)
    order = np.argsort(-dens, kind='stable')
    cum = 0; raw = np.empty(n, int)
    for j in order:
        raw[j] = min(tiers - 1, int(cum / total * tiers)) if acc[j] > 0 else tiers - 1
        cum += acc[j]
    used = sorted(set(raw)); ren = {t: i for i, t in enumerate(used)}
    tier = np.array([ren[t] for t in raw]); T = len(used)
    Q = np.bincount(tier, acc, T); N = np.bincount(tier, sizes, T); before = np.bincount(tier, minlength=T)
    w = (Q * N) ** gamma; ideal = nlist_after * w / w.sum()
    hi = np.maximum(1, N // min_list).astype(int); lo = np.minimum(hi, np.maximum(1, (before + coarsen - 1) // coarsen))
    after = np.clip(np.floor(ideal).astype(int), lo, hi)
    while after.sum() != nlist_after:
        if after.sum() < nlist_after:
            g = np.where(after < hi, ideal - after, -np.inf); after[np.argmax(g)] += 1
        else:
            g = np.where(after > lo, after - ideal, -np.inf); after[np.argmax(g)] -= 1
    return tier, before, after

def retier(base, cent, assign, tier, before, after, seed=1234, sample=128):
    keep = [cent[j] for j in range(len(cent)) if before[tier[j]] == after[tier[j]]]
    new = [np.array(keep).reshape(-1, cent.shape[1])]
    rng = np.random.default_rng(seed)
    for t in range(len(before)):
        if before[t] == after[t]: continue
        rows = base[tier[assign] == t]
        cap = sample * after[t]
        if len(rows) > cap: rows = rows[rng.choice(len(rows), cap, replace=False)]
        new.append(kmeans(rows, int(min(after[t], len(rows))), seed=seed + t))
    return np.concatenate(new).astype(np.float32)

def report(name, cent, D, truth, hot):
    rec, codes, _ = curve(cent, D['base'], D['q'], truth, pmax=min(len(cent), 300))
    a, p = at_target(rec, codes)
    print(f"{name}: codes@0.9 {a:.0f} (nprobe {p}) | top-10-cluster queries {at_target(rec, codes, mask=hot)[0]:.0f}, "
          f"others {at_target(rec, codes, mask=~hot)[0]:.0f}", flush=True)


def main():
    parts = (sys.argv[1].split(",") if len(sys.argv) > 1
             else ["nlist", "tiers", "oracle", "region", "probe", "spill"])
    faiss.omp_set_num_threads(1)
    D = zipf_mixture()
    base = D['base']
    truth = gt(base, D['q'])
    hot = D['qrank'] < 10
    print(f"queries from the 10 most popular of 400 clusters: {hot.mean():.3f}")
    c0 = kmeans(base, 512)
    quant = faiss.IndexFlatL2(base.shape[1]); quant.add(c0)
    a0 = quant.search(base, 1)[1][:, 0]
    sizes = np.bincount(a0, minlength=512)
    report("k-means 512 (count layout)", c0, D, truth, hot)
    if "nlist" in parts:
        for nl in [128, 256, 1024, 2048]:
            report(f"k-means {nl}", kmeans(base, nl), D, truth, hot)
    if "probe" in parts:
        probe_section(D, c0, truth)
    if "spill" in parts:
        spill_section(D, c0, truth)
    if "tiers" in parts:
        acc = access(c0, D['work'], 40)
        for T, gamma in [(4, 0.5), (4, 0.25), (2, 0.5), (8, 0.5)]:
            tier, before, after = plan_tiers(acc, sizes, T, 512, gamma=gamma)
            report(f"tiers {T}, n ~ (QN)^{gamma}: {list(before)} -> {list(after)}",
                   retier(base, c0, a0, tier, before, after), D, truth, hot)
    if "oracle" in parts:
        rk = D['rank_of'][D['lab']]
        for m in [5, 10, 25, 50]:
            H = rk < m
            for f in [2, 4]:
                kh = int(round(f * 512 * H.mean()))
                report(f"oracle: {m} hottest clusters ({H.mean():.3f} of rows) x{f}: {kh}+{512 - kh} lists",
                       np.concatenate([kmeans(base[H], kh), kmeans(base[~H], 512 - kh)]), D, truth, hot)
    if "region" in parts:
        gw = gt(base, D['work'])
        NA = np.bincount(a0[gw].ravel(), minlength=512).astype(float)
        order = np.argsort(-NA / np.maximum(sizes, 1))
        cum = np.cumsum(NA[order]) / NA.sum()
        for X in [0.3, 0.5, 0.7]:
            nH = int(np.searchsorted(cum, X)) + 1
            Hl = order[:nH]; H = np.isin(a0, Hl)
            for f in [1.5, 2, 3]:
                kh = int(round(f * nH))
                if kh > 480: continue
                report(f"region: {nH} lists ({H.mean():.3f} of rows) hold {X} of the workload's neighbours, x{f}",
                       np.concatenate([kmeans(base[H], kh), kmeans(base[~H], 512 - kh)]), D, truth, hot)
            report(f"  over budget: that region x3, the rest untouched",
                   np.concatenate([kmeans(base[H], 3 * nH), c0[np.setdiff1d(np.arange(512), Hl)]]), D, truth, hot)


def probe_section(D, c0, truth, pmax=160):
    """Per-query nprobe on the k-means lists (same layout, another search)."""
    base, q, w = D['base'], D['q'], D['work']
    rq, cq, _ = curve(c0, base, q, truth, pmax=pmax)
    rw, cw, _ = curve(c0, base, w, gt(base, w), pmax=pmax)
    quant = faiss.IndexFlatL2(base.shape[1]); quant.add(c0)
    dq, Lq = quant.search(q, pmax)
    _, Lw = quant.search(w, pmax)
    rows = np.arange(len(q))
    for pmin in (1, 8, 16):
        pts = []
        for eps in np.linspace(0.0, 3.0, 301):
            n = np.clip((dq <= dq[:, :1] * (1 + eps)).sum(1), pmin, pmax)
            pts.append((rq[rows, n - 1].mean(), cq[rows, n - 1].mean()))
        pts.sort()
        r = np.array([p[0] for p in pts]); c = np.array([p[1] for p in pts])
        i = int(np.searchsorted(r, 0.9))
        at = c[i - 1] + (c[i] - c[i - 1]) * (0.9 - r[i - 1]) / (r[i] - r[i - 1])
        print(f"probe: lists within (1+eps) x the nearest centroid's distance, nprobe >= {pmin}: "
              f"codes@0.9 {at:.0f}", flush=True)
    # Per region (the query's nearest list): the nprobe minimising the workload's expected codes
    # for a mean recall target (Lagrangian sweep), curves shrunk to the global one (prior 20).
    nl = c0.shape[0]
    reg_w, reg_q = Lw[:, 0], Lq[:, 0]
    cnt = np.bincount(reg_w, minlength=nl)
    gr, gc = rw.mean(0), cw.mean(0)
    R = np.array([(rw[reg_w == j].sum(0) + 20 * gr) / (cnt[j] + 20) for j in range(nl)])
    C = np.array([(cw[reg_w == j].sum(0) + 20 * gc) / (cnt[j] + 20) for j in range(nl)])
    share = (cnt + 1e-3) / (cnt.sum() + 1e-3 * nl)
    for target in (0.9, 0.905, 0.91):
        for lam in np.geomspace(1e2, 1e7, 400):
            p = np.argmax(lam * R - C, 1)
            if (share * R[np.arange(nl), p]).sum() >= target: break
        n = p[reg_q]
        print(f"probe: per-region nprobe learned on the workload for recall {target}: searched "
              f"queries recall {rq[rows, n].mean():.4f}, codes {cq[rows, n].mean():.0f}", flush=True)


def spill_section(D, c0, truth, pmax=160):
    """Rows stored in a second list too; a query finds a neighbour in any of its lists."""
    base, q = D['base'], D['q']
    nl = c0.shape[0]
    quant = faiss.IndexFlatL2(base.shape[1]); quant.add(c0)
    dB, aB = quant.search(base, 8)
    _, Lq = quant.search(q, pmax)
    rank = np.full((len(q), nl), pmax + 1, np.int32)
    rank[np.repeat(np.arange(len(q)), pmax), Lq.ravel()] = np.tile(np.arange(pmax), len(q))

    def report_spill(name, second):
        lists = [aB[:, 0], second]
        sizes = np.bincount(np.concatenate([l[l >= 0] for l in lists]), minlength=nl)
        codes = np.cumsum(sizes[Lq], 1)
        best = np.full(truth.shape, pmax + 1)
        for l in lists:
            lt = l[truth]
            best = np.minimum(best, np.where(lt >= 0, np.take_along_axis(rank, np.maximum(lt, 0), 1), pmax + 1))
        rec = np.stack([(best < p).mean(1) for p in range(1, pmax + 1)], 1)
        at, p = at_target(rec, codes)
        print(f"spill: {name}: {sizes.sum() / len(base):.2f}x the codes stored, codes@0.9 {at:.0f} "
              f"(nprobe {p})", flush=True)

    report_spill("none", np.full(len(base), -1))
    report_spill("every row also in its 2nd nearest list", aB[:, 1])
    for r in (1.05, 1.1, 1.2):
        m = dB[:, 1] <= dB[:, 0] * r
        report_spill(f"rows with d2 <= {r} d1 ({m.mean():.2f} of rows)", np.where(m, aB[:, 1], -1))
    # SOAR (Sun et al. 2023): the second list minimises |r'|^2 + lambda <r, r'>^2 / |r|^2.
    r0 = base - c0[aB[:, 0]]
    score = np.empty((len(base), 7), np.float32)
    for j in range(1, 8):
        rj = base - c0[aB[:, j]]
        score[:, j - 1] = (rj * rj).sum(1) + ((r0 * rj).sum(1) ** 2) / np.maximum((r0 * r0).sum(1), 1e-9)
    soar = aB[np.arange(len(base)), 1 + score.argmin(1)]
    report_spill("every row, SOAR lambda 1", soar)
    a0 = aB[:, 0]
    sizes0 = np.bincount(a0, minlength=nl)
    NA = np.bincount(a0[gt(base, D['work'])].ravel(), minlength=nl).astype(float)
    order = np.argsort(-NA / np.maximum(sizes0, 1)); cum = np.cumsum(NA[order]) / NA.sum()
    for X in (0.5, 0.7, 0.9):
        H = np.isin(a0, order[:int(np.searchsorted(cum, X)) + 1])
        report_spill(f"SOAR, rows of the lists holding {X} of the workload's neighbours "
                     f"({H.mean():.2f} of rows)", np.where(H, soar, -1))


if __name__ == "__main__":
    main()
