#!/usr/bin/python3
"""A small Python reference dedup (numpy + xxhash): the peer `shardforge dedup` is timed against.

    /usr/bin/python3 bench/minhash_ref.py FILE... [--limit-mb 200] [--removed out.jsonl]

The same steps and the same algorithms as `shardforge dedup` with its defaults, on one core:
  read JSONL (plain or .gz) -> normalise (NFKC + case folding, Unicode punctuation, symbols and
  format characters removed, whitespace and control characters separate words; ASCII text
  takes str.lower/translate) -> exact dedup on the
  XXH3-128 of the normalised text (keep the first row) -> word n-gram shingles hashed with
  XXH3-64 -> datasketch's MinHash: permutations from numpy RandomState(seed) exactly as
  datasketch.MinHash(num_perm, seed) draws them, value = ((a*h + b) mod 2^64 mod (2^61-1)) &
  0xffffffff (numpy's uint64 arithmetic, as datasketch's update_batch), minimum per
  permutation -> LSH: bands of `rows` values, each bucket joins its members to its smallest
  row (datasketch MinHashLSH's buckets, star edges as shardforge) -> edges kept when the
  estimated Jaccard >= threshold -> connected components (vectorised label propagation) ->
  every member but the smallest row is removed.
MinHash runs vectorised over batches of documents (np.minimum.reduceat), which is faster than
datasketch's per-document update_batch: a strong peer, not a strawman.

Prints one JSON object: docs, bytes (JSONL bytes read), seconds per step, MB/s of the
signature step and of the whole run, exact/near removed. --removed writes the removed ids.
"""
import argparse
import gzip
import json
import string
import sys
import time
import unicodedata

import numpy as np
import xxhash

MERSENNE = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)
# ASCII: punctuation removed, control characters (Cc) separate words as whitespace does.
ASCII_TABLE = str.maketrans({**{c: None for c in string.punctuation},
                             **{chr(i): " " for i in list(range(32)) + [127]}})


def permutations(num_perm, seed):
    """datasketch.MinHash._init_permutations."""
    gen = np.random.RandomState(seed)
    return np.array([(gen.randint(1, MERSENNE, dtype=np.uint64),
                      gen.randint(0, MERSENNE, dtype=np.uint64)) for _ in range(num_perm)],
                    dtype=np.uint64).T


def normalise(text):
    if text.isascii():
        return " ".join(text.lower().translate(ASCII_TABLE).split())
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    out = []
    for c in text:
        cat = unicodedata.category(c)
        if cat[0] in "PS" or cat == "Cf":  # punctuation, symbols, format (ignorable) dropped
            continue
        out.append(" " if cat[0] == "Z" or cat == "Cc" else c)
    return " ".join("".join(out).split())


def shingle_hashes(normalised, n):
    words = normalised.split(" ") if normalised else []
    if not words:
        return []
    if len(words) < n:
        return [xxhash.xxh3_64_intdigest(normalised.encode())]
    return [xxhash.xxh3_64_intdigest(" ".join(words[i:i + n]).encode())
            for i in range(len(words) - n + 1)]


def signatures(texts, ngram, a, b, times, chunk=8192):
    """MinHash of each text's shingles, rows of num_perm uint32 values. Works through the texts
    in groups of about `chunk` shingles (the (shingles x num_perm) product stays in cache);
    adds the seconds spent shingling and min-hashing to times."""
    num_perm = a.shape[0]
    out = np.full((len(texts), num_perm), MAX_HASH, dtype=np.uint64)
    start = 0
    while start < len(texts):
        t0 = time.perf_counter()
        group, lists, total = [], [], 0
        while start < len(texts) and (total == 0 or total < chunk):
            hashes = shingle_hashes(texts[start], ngram)
            if hashes:
                group.append(start)
                lists.append(hashes)
                total += len(hashes)
            start += 1
        t1 = time.perf_counter()
        times["shingles"] = times.get("shingles", 0.0) + t1 - t0
        if not group:
            continue
        hv = np.fromiter((h for hs in lists for h in hs), dtype=np.uint64, count=total)
        lengths = np.array([len(hs) for hs in lists])
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        with np.errstate(over="ignore"):
            phv = ((hv[:, None] * a[None, :] + b[None, :]) % MERSENNE) & MAX_HASH
        out[group] = np.minimum.reduceat(phv, offsets, axis=0)
        times["minhash"] = times.get("minhash", 0.0) + time.perf_counter() - t1
    return out.astype(np.uint32)


def components(n, u, v):
    """Smallest member of each node's component, by min-label propagation + pointer jumping."""
    label = np.arange(n)
    while True:
        before = label.copy()
        lu, lv = label[u], label[v]
        low = np.minimum(lu, lv)
        np.minimum.at(label, lu, low)
        np.minimum.at(label, lv, low)
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):
            return label


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--id-field", default="id")
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--num-perm", type=int, default=112)
    ap.add_argument("--bands", type=int, default=14)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit-mb", type=float, default=0, help="stop after this many MB")
    ap.add_argument("--removed", help="write removed ids here (JSONL)")
    args = ap.parse_args()
    times = {}
    t0 = time.perf_counter()

    # Read + normalise + exact hash.
    ids, texts, nbytes = [], [], 0
    limit = args.limit_mb * 1e6 if args.limit_mb > 0 else float("inf")
    for path in args.files:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            for line in f:
                if nbytes >= limit:
                    break
                nbytes += len(line)
                rec = json.loads(line)
                ids.append(str(rec.get(args.id_field, len(ids))))
                texts.append(normalise(rec[args.text_field]))
        if nbytes >= limit:
            break
    t1 = time.perf_counter()
    times["read_normalise"] = t1 - t0

    seen, survivors, removed = {}, [], []
    for row, text in enumerate(texts):
        h = xxhash.xxh3_128_intdigest(text.encode())
        first = seen.setdefault(h, row)
        if first == row:
            survivors.append(row)
        else:
            removed.append({"id": ids[row], "cluster": ids[first], "reason": "exact"})
    exact_removed = len(removed)
    t2 = time.perf_counter()
    times["exact"] = t2 - t1

    # Shingles + MinHash signatures of the survivors.
    a, b = permutations(args.num_perm, args.seed)
    sig32 = signatures([texts[r] for r in survivors], args.ngram, a, b, times)
    del texts
    t3 = time.perf_counter()

    # LSH buckets -> star edges to each bucket's smallest row -> verify -> components.
    n = len(survivors)
    us, vs = [], []
    for band in range(args.bands):
        part = np.ascontiguousarray(sig32[:, band * args.rows:(band + 1) * args.rows])
        keys = part.view(np.dtype((np.void, 4 * args.rows))).ravel()
        _, inverse = np.unique(keys, return_inverse=True)
        smallest = np.full(inverse.max() + 1 if n else 0, n, dtype=np.int64)
        np.minimum.at(smallest, inverse, np.arange(n))
        target = smallest[inverse]
        member = np.nonzero(target != np.arange(n))[0]
        us.append(member)
        vs.append(target[member])
    u = np.concatenate(us) if us else np.zeros(0, dtype=np.int64)
    v = np.concatenate(vs) if vs else np.zeros(0, dtype=np.int64)
    pairs = np.unique(np.stack([u, v], axis=1), axis=0) if len(u) else np.zeros((0, 2), int)
    candidates = len(pairs)
    if candidates:
        similar = (sig32[pairs[:, 0]] == sig32[pairs[:, 1]]).mean(axis=1) >= args.threshold
        pairs = pairs[similar]
    label = components(n, pairs[:, 0], pairs[:, 1]) if len(pairs) else np.arange(n)
    for i in np.nonzero(label != np.arange(n))[0]:
        removed.append({"id": ids[survivors[i]], "cluster": ids[survivors[label[i]]],
                        "reason": "near"})
    t4 = time.perf_counter()
    times["lsh_components"] = t4 - t3
    total = t4 - t0

    if args.removed:
        with open(args.removed, "w") as f:
            for r in removed:
                f.write(json.dumps(r) + "\n")
    mb = nbytes / 1e6
    print(json.dumps({
        "docs": len(ids), "bytes": nbytes, "seconds": {k: round(x, 3) for k, x in times.items()},
        "total_seconds": round(total, 3),
        "signature_mb_per_s": round(mb / (t3 - t2), 2) if t3 > t2 else None,
        "mb_per_s": round(mb / total, 2), "exact_removed": exact_removed,
        "near_removed": len(removed) - exact_removed, "candidate_pairs": int(candidates),
        "verified_edges": int(len(pairs)),
        "params": {"ngram": args.ngram, "num_perm": args.num_perm, "bands": args.bands,
                   "rows": args.rows, "threshold": args.threshold, "seed": args.seed}}))


if __name__ == "__main__":
    sys.exit(main())
