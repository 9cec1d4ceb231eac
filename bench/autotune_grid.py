#!/usr/bin/python3
"""The python3-faiss side of the auto-index benchmark (issue 17; bench/autotune_bench.sh).

  autotune_grid.py grid  NAME BASE QUERIES WORK --budgets 16MiB,64MiB [--target 0.9] ...
      IVF{nlist} x {Flat, SQ8, SQ6, SQ4, PQ{m}np} on BASE: build wall time, size
      (len(serialize_index)), the smallest nprobe reaching recall@k >= target on QUERIES
      (doubling, then bisection) and single-thread QPS there (median of 3 timed runs, CPU time:
      the machine is shared; wall time beside it), the codes
      scanned per query (indexIVF_stats.ndis) and so the time per scanned code. Writes
      WORK/NAME.grid.json and prints a table per budget with the best in-budget point by QPS.
  autotune_grid.py costs NAME BASE QUERIES WORK [--cost-nlists 256,2048] [--codes ...]
      Each code's single-thread search cost per code scanned and per list probed: the slope of
      search time between two nprobe values (per-query costs cancel) at two nlists.
  autotune_grid.py report NAME BASE QUERIES WORK --budgets 16MiB,32MiB
      The tables again from WORK/NAME.grid.json for other budgets (up to the grid's largest).
  autotune_grid.py index NAME BASE QUERIES WORK --index F --budget B [--run-json F] ...
      A finished index.faiss (shardforge's): size, stored nprobe, recall@k there, single-thread
      QPS with the grid's timing code, and the ratio to the best grid point in the same budget.

Ground truth: exact top-k (IndexFlatL2) of QUERIES in BASE, cached in WORK. The coarse quantizer
of each nlist is trained once (faiss.Clustering as IndexIVF::train runs it: 10 iterations) and
shared by the codes of that nlist; each point's build time counts it in full, as if built alone.
Centroids and built indexes are kept in WORK (a rerun tunes and times again without building;
the build seconds are the first build's).
PQ is written PQ{m}np: without np the factory turns on polysemous training, which changes no
distance (codes are only renumbered) but costs minutes.
"""
import argparse
import gzip
import json
import os
import statistics
import sys
import time

import faiss
import numpy as np


def read_vectors(path):
    """fvecs, or gzipped IDX images (uint8 pixels as float32, as shardforge reads them)."""
    if path.endswith('.fvecs'):
        raw = np.fromfile(path, dtype='int32')
        d = int(raw[0])
        return raw.reshape(-1, d + 1)[:, 1:].copy().view('float32')
    with (gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb')) as f:
        head = np.frombuffer(f.read(16), dtype='>i4')
        assert head[0] == 2051, f'{path}: not an IDX image file'
        n, rows, cols = (int(v) for v in head[1:])
        pix = np.frombuffer(f.read(n * rows * cols), dtype='uint8')
    return pix.reshape(n, rows * cols).astype('float32')


def parse_size(text):
    units = {'': 1, 'B': 1, 'KIB': 1 << 10, 'MIB': 1 << 20, 'GIB': 1 << 30,
             'KB': 1000, 'MB': 1000**2, 'GB': 1000**3}
    t = text.strip().upper()
    num = t.rstrip('KMGIB')
    return int(float(num) * units[t[len(num):]])


def human(nbytes):
    for unit, scale in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if nbytes >= scale:
            return f'{nbytes / scale:.2f} {unit}'
    return f'{nbytes} B'


def ground_truth(work, name, xb, xq, k):
    path = os.path.join(work, f'{name}.gt{k}.npy')
    if os.path.exists(path):
        gt = np.load(path)
        if gt.shape == (len(xq), k):
            return gt
    flat = faiss.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    _, gt = flat.search(xq, k)
    np.save(path, gt)
    return gt


def recall_at(index, xq, gt, k, nprobe):
    faiss.extract_index_ivf(index).nprobe = nprobe
    _, found = index.search(xq, k)
    hits = sum(len(np.intersect1d(found[i], gt[i])) for i in range(len(xq)))
    return hits / (len(xq) * k)


def smallest_nprobe(index, xq, gt, k, target, nlist):
    """Smallest nprobe in 1..nlist with recall >= target (recall taken as monotone in nprobe):
    doubling, then bisection. Returns (nprobe or None, recall there or the best seen, searches)."""
    seen = {}

    def rec(p):
        if p not in seen:
            seen[p] = recall_at(index, xq, gt, k, p)
        return seen[p]

    lo, hi = 0, 1  # rec(lo) < target (lo = 0: none tried), rec(hi) >= target once found
    while rec(hi) < target:
        if hi >= nlist:
            return None, rec(hi), len(seen)
        lo, hi = hi, min(2 * hi, nlist)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if rec(mid) >= target:
            hi = mid
        else:
            lo = mid
    return hi, rec(hi), len(seen)


def tune(index, xq, gt, k, target, nlist, tune_queries):
    """smallest_nprobe on the first tune_queries queries to narrow the range, then on all
    queries from there (the answer is the smallest nprobe for all queries)."""
    searches = 0
    start = 1
    if 0 < tune_queries < len(xq):
        p, _, searches = smallest_nprobe(index, xq[:tune_queries], gt[:tune_queries], k,
                                         target, nlist)
        if p is None:
            # The subset never reaches it: check all queries at nlist only.
            r = recall_at(index, xq, gt, k, nlist)
            if r < target:
                return None, r, searches + 1
            p = nlist
        start = p
    # Walk from the subset's answer on all queries: down while still >= target, else up.
    r = recall_at(index, xq, gt, k, start)
    searches += 1
    if r >= target:
        hi, rhi, lo = start, r, 0
        step = 1
        while hi - step >= 1:  # doubling down
            r2 = recall_at(index, xq, gt, k, hi - step)
            searches += 1
            if r2 < target:
                lo = hi - step
                break
            hi, rhi = hi - step, r2
            step *= 2
    else:
        lo, hi, step = start, None, 1
        while True:
            cand = min(lo + step, nlist)
            r2 = recall_at(index, xq, gt, k, cand)
            searches += 1
            if r2 >= target:
                hi, rhi = cand, r2
                break
            if cand >= nlist:
                return None, r2, searches
            lo, step = cand, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        r2 = recall_at(index, xq, gt, k, mid)
        searches += 1
        if r2 >= target:
            hi, rhi = mid, r2
        else:
            lo = mid
    return hi, rhi, searches


MIN_RUN_S = 0.3  # a timed run searches all queries, repeated until it lasts this long


def timed_search(index, xq, k, nprobe, runs=3):
    """Single-thread search of all queries at nprobe: the median over `runs` timed runs of the
    CPU seconds per pass over all queries (the calling thread's CPU time: with one OpenMP thread
    FAISS searches in it, and CPU time does not count the time other processes on a shared
    machine take from it), the median wall seconds, and the codes scanned per query
    (indexIVF_stats.ndis). A run repeats the pass until it lasts MIN_RUN_S."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        faiss.extract_index_ivf(index).nprobe = nprobe
        index.search(xq[:min(len(xq), 100)], k)  # warm: tables, caches
        cpu, wall, passes = [], [], 0
        faiss.cvar.indexIVF_stats.reset()
        for _ in range(runs):
            t, c, reps = time.perf_counter(), time.thread_time(), 0
            while True:
                index.search(xq, k)
                reps += 1
                elapsed = time.perf_counter() - t
                if elapsed >= MIN_RUN_S:
                    break
            cpu.append((time.thread_time() - c) / reps)
            wall.append(elapsed / reps)
            passes += reps
        ndis = faiss.cvar.indexIVF_stats.ndis / (passes * len(xq))
    finally:
        faiss.omp_set_num_threads(threads)
    return statistics.median(cpu), statistics.median(wall), ndis


def code_names(d, codes, pq_divs):
    names = []
    for c in codes:
        if c == 'PQ':
            for div in pq_divs:
                if d % div == 0:
                    names.append(f'PQ{d // div}np')
        else:
            names.append(c)
    return names


def train_quantizer(args, xb, nlist):
    """The coarse centroids IndexIVF::train would compute (Level1Quantizer's clustering
    parameters: FAISS's defaults with 10 iterations) and the seconds it took; kept in WORK, so
    that `costs` and `grid` train each nlist once (the seconds are the first training's)."""
    path = os.path.join(args.work, f'{args.name}.ivf{nlist}.npz')
    if os.path.exists(path):
        saved = np.load(path)
        if saved['centroids'].shape == (nlist, xb.shape[1]):
            return saved['centroids'], float(saved['seconds'])
    t = time.perf_counter()
    d = xb.shape[1]
    quantizer = faiss.IndexFlatL2(d)
    clus = faiss.Clustering(d, nlist)
    clus.niter = 10
    clus.train(xb, quantizer)
    centroids, seconds = quantizer.reconstruct_n(0, nlist), time.perf_counter() - t
    np.savez(path, centroids=centroids, seconds=seconds)
    return centroids, seconds


def cached_point(args, xb, centroids, nlist, code):
    """build_point, or the index it wrote to WORK before (and the seconds it took then)."""
    rows = args.code_train_rows if 0 < args.code_train_rows < len(xb) else len(xb)
    path = os.path.join(args.work, f'{args.name}.IVF{nlist}.{code}.r{rows}.faiss')
    if os.path.exists(path) and os.path.exists(path + '.json'):
        with open(path + '.json') as f:
            return faiss.read_index(path), json.load(f)['code_s']
    index, code_s = build_point(xb, centroids, nlist, code, rows)
    faiss.write_index(index, path)
    with open(path + '.json', 'w') as f:
        json.dump(dict(code_s=code_s), f)
    return index, code_s


def build_point(xb, centroids, nlist, code, train_rows=0):
    """IVF{nlist},{code} with the given coarse centroids, its codebooks trained on all of xb or
    on a seeded sample of train_rows: (index, code train + add seconds)."""
    d = xb.shape[1]
    xt = xb
    if 0 < train_rows < len(xb):
        xt = xb[np.random.default_rng(1234).choice(len(xb), train_rows, replace=False)]
    t = time.perf_counter()
    index = faiss.index_factory(d, f'IVF{nlist},{code}')
    ivf = faiss.extract_index_ivf(index)
    ivf.quantizer.add(centroids)  # nlist centroids: IndexIVF::train skips the coarse k-means
    index.train(xt)
    index.add(xb)
    return index, time.perf_counter() - t


def load(args):
    t = time.perf_counter()
    xb = read_vectors(args.base)
    xq = read_vectors(args.queries)
    gt = ground_truth(args.work, args.name, xb, xq, args.k)
    nq = len(xq)
    if 0 < args.eval_queries < nq:
        xq, gt = xq[:args.eval_queries], gt[:args.eval_queries]
    print(f'{args.name}: base {xb.shape[0]} x {xb.shape[1]}, exact top-{args.k} of {nq} queries '
          f'({time.perf_counter() - t:.1f} s); recall and QPS on the first {len(xq)}', flush=True)
    return xb, xq, gt


def cmd_grid(args):
    faiss.omp_set_num_threads(args.threads)
    xb, xq, gt = load(args)
    n, d = xb.shape
    budgets = [parse_size(b) for b in args.budgets.split(',')]
    top = max(budgets)
    names = code_names(d, args.codes.split(','), [int(v) for v in args.pq_divs.split(',')])
    points, refused = [], []
    grid_start = time.perf_counter()
    for nlist in [int(v) for v in args.nlists.split(',')]:
        centroids, quant_s = train_quantizer(args, xb, nlist)
        print(f'IVF{nlist}: coarse k-means {quant_s:.1f} s', flush=True)
        for code in names:
            # The size from the formula first: a point over every budget is not built.
            est = estimate_size(n, d, nlist, code)
            if est > top * 1.05:
                points.append(dict(nlist=nlist, code=code, size=est, estimated=True))
                continue
            try:
                index, code_s = cached_point(args, xb, centroids, nlist, code)
            except RuntimeError as e:
                refused.append(dict(factory=f'IVF{nlist},{code}', error=str(e).splitlines()[0]))
                print(f'  IVF{nlist},{code}: refused by FAISS: {refused[-1]["error"]}', flush=True)
                continue
            size = len(faiss.serialize_index(index))
            t = time.perf_counter()
            nprobe, rec, searches = tune(index, xq, gt, args.k, args.target, nlist,
                                         args.tune_queries)
            tune_s = time.perf_counter() - t
            pt = dict(nlist=nlist, code=code, size=size, build_s=quant_s + code_s,
                      quantizer_s=quant_s, code_s=code_s, tune_s=tune_s, searches=searches,
                      nprobe=nprobe, recall=rec)
            if nprobe is not None:
                secs, wall, ndis = timed_search(index, xq, args.k, nprobe)
                pt.update(qps=len(xq) / secs, qps_wall=len(xq) / wall, ndis=ndis,
                          ns_per_code=1e9 * secs / len(xq) / ndis)
            points.append(pt)
            print('  ' + row(pt), flush=True)
            del index
    grid_s = time.perf_counter() - grid_start
    as_if_alone = sum(p['build_s'] + p['tune_s'] for p in points if 'build_s' in p)
    out = dict(name=args.name, n=n, d=d, nq=len(xq), k=args.k, target=args.target,
               budgets=budgets, points=points, refused=refused, grid_wall_s=grid_s,
               grid_as_if_alone_s=as_if_alone, threads=args.threads,
               code_train_rows=args.code_train_rows or n)
    out['best'] = {str(b): best_point(points, b) for b in budgets}
    with open(os.path.join(args.work, f'{args.name}.grid.json'), 'w') as f:
        json.dump(out, f, indent=1)
    report(out)


def best_point(points, budget):
    """The grid point with the highest QPS among those within budget that reach the target."""
    fit = [p for p in points if p['size'] <= budget and p.get('qps')]
    return max(fit, key=lambda p: p['qps']) if fit else None


def cmd_report(args):
    """The tables again from WORK/NAME.grid.json, for --budgets (any budget up to the largest
    the grid was built for: points over it were not built)."""
    with open(os.path.join(args.work, f'{args.name}.grid.json')) as f:
        out = json.load(f)
    built_for = max(out['budgets'])
    out['budgets'] = [parse_size(b) for b in args.budgets.split(',')]
    for b in out['budgets']:
        if b > built_for:
            sys.exit(f'budget {human(b)}: over the grid\'s largest, {human(built_for)}')
    out['best'] = {str(b): best_point(out['points'], b) for b in out['budgets']}
    report(out)


def estimate_size(n, d, nlist, code):
    per = {'Flat': 4 * d, 'SQ8': d, 'SQ6': (6 * d + 7) // 8, 'SQ4': (4 * d + 7) // 8}
    bytes_per = per[code] if code in per else int(code[2:].rstrip('np'))
    return n * (bytes_per + 8) + nlist * d * 4


def row(p):
    head = f'IVF{p["nlist"]},{p["code"]}'
    if 'build_s' not in p:
        return f'{head:<18} {human(p["size"]):>11}  (over every budget: not built)'
    if p['nprobe'] is None:
        return (f'{head:<18} {human(p["size"]):>11}  build {p["build_s"]:6.1f} s  '
                f'never reaches the target (best recall {p["recall"]:.4f} at nprobe={p["nlist"]})')
    return (f'{head:<18} {human(p["size"]):>11}  build {p["build_s"]:6.1f} s  '
            f'tune {p["tune_s"]:5.1f} s  nprobe {p["nprobe"]:4d}  recall {p["recall"]:.4f}  '
            f'QPS(1t) {p["qps"]:8.1f} (wall {p["qps_wall"]:8.1f})  codes/q {p["ndis"]:6.0f}  '
            f'{p["ns_per_code"]:6.1f} ns/code')


def report(out):
    print(f'\n== {out["name"]}: {out["n"]} x {out["d"]}, {out["nq"]} queries, target recall@'
          f'{out["k"]} >= {out["target"]}; codebooks trained on {out["code_train_rows"]} rows ==')
    for b in out['budgets']:
        print(f'\n-- budget {human(b)} --')
        for p in out['points']:
            if p['size'] <= b:
                print('  ' + row(p))
        best = out['best'][str(b)]
        print('  best in budget: ' + (row(best) if best else 'none'))
        percode = {}
        for p in out['points']:
            if p['size'] <= b and p.get('qps') and (
                    p['code'] not in percode or p['qps'] > percode[p['code']]['qps']):
                percode[p['code']] = p
        print('  best per code: ' + (', '.join(
            f'IVF{p["nlist"]},{c} {p["qps"]:.0f} QPS (nprobe {p["nprobe"]})'
            for c, p in percode.items()) or 'none'))
    for r in out['refused']:
        print(f'refused by FAISS 1.7.3: {r["factory"]}: {r["error"]}')
    print(f'\ngrid total (build + tune + timing, {out["threads"]} threads, quantizer shared per '
          f'nlist): {out["grid_wall_s"]:.1f} s wall; built one by one: '
          f'{out["grid_as_if_alone_s"]:.1f} s build + tune')


def cmd_costs(args):
    """Per code, single-thread search time per list probed at two nlists (the slope between two
    nprobe values: per-query costs cancel), then solved for the two terms of
        seconds per list probed = per_list + codes_per_list * per_code
    (per_list: residual and PQ distance tables; per_code: decoding and the distance)."""
    faiss.omp_set_num_threads(args.threads)
    xb, xq, gt = load(args)
    n, d = xb.shape
    xq = xq[:args.cost_queries]
    p1, p2 = (int(v) for v in args.cost_nprobe.split(','))
    nlists = [int(v) for v in args.cost_nlists.split(',')]
    quant = {nl: train_quantizer(args, xb, nl)[0] for nl in nlists}
    names = code_names(d, args.codes.split(','), [int(v) for v in args.pq_divs.split(',')])
    lines = []
    for code in names:
        slopes = []  # (codes per list probed, seconds per list probed)
        for nl in nlists:
            try:
                index, _ = cached_point(args, xb, quant[nl], nl, code)
            except RuntimeError as e:
                print(f'  IVF{nl},{code}: refused by FAISS: {str(e).splitlines()[0]}')
                break
            s1, _, n1 = timed_search(index, xq, args.k, p1, runs=5)
            s2, _, n2 = timed_search(index, xq, args.k, p2, runs=5)
            slopes.append(((n2 - n1) / (p2 - p1), (s2 - s1) / len(xq) / (p2 - p1)))
            del index
        if len(slopes) != 2:
            continue
        (l1, t1), (l2, t2) = slopes
        per_code = (t1 - t2) / (l1 - l2)
        per_list = t1 - l1 * per_code
        lines.append(f'd={d:<4} {code:<8} per code {1e9 * per_code:8.1f} ns '
                     f'({1e9 * per_code / d:5.2f} ns/dim)  per list probed '
                     f'{1e6 * per_list:7.2f} us   [IVF{nlists[0]}: '
                     f'{1e9 * t1 / l1:7.1f} ns/code all-in at {l1:.0f} codes/list; IVF{nlists[1]}: '
                     f'{1e9 * t2 / l2:7.1f} at {l2:.0f}]')
        print('  ' + lines[-1], flush=True)
    print(f'\n{args.name} d={d}: single-thread costs, {len(xq)} queries, nprobe {p1} vs {p2} at '
          f'IVF{nlists[0]} and IVF{nlists[1]} (median of 5 runs each)')
    for line in lines:
        print('  ' + line)


def cmd_index(args):
    faiss.omp_set_num_threads(args.threads)
    xb, xq, gt = load(args)
    size = os.path.getsize(args.index)
    index = faiss.read_index(args.index)
    ivf = faiss.extract_index_ivf(index)
    nprobe = ivf.nprobe
    rec = recall_at(index, xq, gt, args.k, nprobe)
    secs, wall, ndis = timed_search(index, xq, args.k, nprobe)
    qps = len(xq) / secs
    budget = parse_size(args.budget)
    factory = args.factory or '?'
    line = (f'shardforge {factory} (IVF{ivf.nlist}, code {ivf.code_size} B): size {human(size)}, '
            f'stored nprobe {nprobe}, recall@{args.k} {rec:.4f}, QPS(1t, CPU time) {qps:.1f} '
            f'(wall {len(xq) / wall:.1f}), codes/q {ndis:.0f}')
    grid_path = os.path.join(args.work, f'{args.name}.grid.json')
    best = None
    verdict = [f'within budget {human(budget)}: {"yes" if size <= budget else "NO"}',
               f'recall >= {args.target}: {"yes" if rec >= args.target else "NO"}']
    if os.path.exists(grid_path):
        grid = json.load(open(grid_path))
        best = best_point(grid['points'], budget)
        if best:
            verdict.append(f'{qps / best["qps"]:.2f}x the QPS of the best grid point '
                           f'(IVF{best["nlist"]},{best["code"]} {best["qps"]:.1f} QPS)'
                           + ('' if rec >= args.target else ' at its stored nprobe'))
        else:
            verdict.append('no grid point reaches the target within this budget')
        if args.build_s:
            verdict.append(f'build {args.build_s:.1f} s vs grid {grid["grid_wall_s"]:.1f} s '
                           f'({args.build_s / grid["grid_wall_s"]:.2f}x)')
    if rec < args.target:
        need, rneed, _ = tune(index, xq, gt, args.k, args.target, ivf.nlist, args.tune_queries)
        if need is None:
            verdict.append(f'this index never reaches {args.target} (recall {rneed:.4f} at '
                           f'nprobe {ivf.nlist})')
        else:
            s2, _, _ = timed_search(index, xq, args.k, need)
            verdict.append(f'it needs nprobe {need} (recall {rneed:.4f}, QPS(1t) '
                           f'{len(xq) / s2:.1f}' + (f', {len(xq) / s2 / best["qps"]:.2f}x the grid'
                                                    if best else '') + ')')
    if args.run_json and os.path.exists(args.run_json):
        verdict.append(stage_share(args.run_json))
    print(line)
    print('  ' + '; '.join(verdict))


def stage_share(path):
    """tune seconds / total build seconds from run.json (commands.build.stages: each stage's
    seconds per rank; a stage takes its slowest rank's)."""
    run = json.load(open(path))
    stages = run.get('commands', {}).get('build', {}).get('stages', [])
    secs = {s['name']: max(s['seconds']) for s in stages if s.get('seconds')}
    total = sum(secs.values())
    if not total:
        return 'run.json: no per-stage seconds found'
    stages_txt = ', '.join(f'{k} {v:.1f}' for k, v in secs.items())
    if 'tune' not in secs:
        return f'tune stage: none in run.json (stages, s: {stages_txt})'
    return (f'tune {secs["tune"]:.1f} s of {total:.1f} s = {100 * secs["tune"] / total:.1f} % '
            f'(stages, s: {stages_txt})')


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('cmd', choices=['grid', 'costs', 'index', 'report'])
    ap.add_argument('name')
    ap.add_argument('base')
    ap.add_argument('queries')
    ap.add_argument('work')
    ap.add_argument('--index', help='index: the index.faiss to measure')
    ap.add_argument('--factory', help='index: the factory shardforge chose (for the print)')
    ap.add_argument('--run-json', help='index: the run.json with per-stage seconds')
    ap.add_argument('--build-s', type=float, help='index: shardforge build wall seconds')
    ap.add_argument('--budgets', default='16MiB,64MiB')
    ap.add_argument('--budget', default='64MiB')
    ap.add_argument('--target', type=float, default=0.9)
    ap.add_argument('--k', type=int, default=10)
    ap.add_argument('--nlists', default='256,512,1024,2048')
    ap.add_argument('--codes', default='Flat,SQ8,SQ6,SQ4,PQ')
    ap.add_argument('--pq-divs', default='2,4,8,16', help='PQ m = d / each (when it divides d)')
    ap.add_argument('--code-train-rows', type=int, default=0,
                    help='train SQ/PQ codebooks on a seeded sample of N rows (0: all rows)')
    ap.add_argument('--threads', type=int, default=1, help='threads to build and tune')
    ap.add_argument('--eval-queries', type=int, default=0,
                    help='measure recall and QPS on the first N queries (0: all)')
    ap.add_argument('--tune-queries', type=int, default=0,
                    help='narrow nprobe on the first N queries before all (0: all)')
    ap.add_argument('--cost-nlists', default='256,2048')
    ap.add_argument('--cost-queries', type=int, default=1000)
    ap.add_argument('--cost-nprobe', default='4,16')
    args = ap.parse_args()
    {'grid': cmd_grid, 'costs': cmd_costs, 'index': cmd_index, 'report': cmd_report}[args.cmd](args)


if __name__ == '__main__':
    sys.exit(main())
