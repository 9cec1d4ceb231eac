#!/usr/bin/python3
"""Generates a JSONL text corpus with planted exact and near duplicates, and the truth.

    /usr/bin/python3 bench/gen_text_corpus.py --out /tmp/corpus --size-mb 1024 [--gzip]

Writes OUT/corpus-NNNNN.jsonl (or .jsonl.gz), --files files in row order, each line
{"id": "d000000123", "text": "...", "kind": "original"|"exact"|"near"}; OUT/truth.jsonl, one
line per planted duplicate {"id", "of", "kind", "target", "jaccard"}; OUT/summary.json.

Originals: sentences of words drawn from a Zipf-like vocabulary of synthetic words (lognormal
lengths, ~1.6 KB per document), capitalised and punctuated. Planted, each of an earlier
original still in a pool of recent ones (so pairs span files):
  - exact (--exact-rate): the same words, rendered differently: other capitalisation,
    doubled spaces and line breaks, commas and other punctuation. Identical after the dedup's
    normalisation (NFKC + case folding, punctuation removed, whitespace folded).
  - near (--near-rate): word edits (70% replace, 15% insert, 15% delete at random places) of
    a count chosen to hit a target word-n-gram Jaccard from --near-levels (k edits keep about
    exp(-n k / S) of S shingles); the truth records
    the exact Jaccard of the n-gram sets of the normalised words (n = --ngram).
Deterministic for a given --seed.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ["a", "e", "i", "o", "u", "ai", "ou"]]


def make_vocabulary(size, rng):
    words, seen = [], set()
    while len(words) < size:
        n = int(rng.integers(1, 4))
        w = "".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), n))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return np.array(words, dtype=object)


def ngram_set(words, n):
    if len(words) < n:
        return {tuple(words)} if words else set()
    return set(zip(*(words[i:len(words) - n + 1 + i] for i in range(n))))


def jaccard(a, b, n):
    sa, sb = ngram_set(a, n), ngram_set(b, n)
    if not sa and not sb:
        return 1.0
    common = len(sa & sb)
    return common / (len(sa) + len(sb) - common)


class Renderer:
    """Turns word indices into text with sentences; exact copies get another rendering."""

    def __init__(self, vocab, rng):
        self.vocab = vocab
        self.rng = rng

    def render(self, idx, variant=False):
        words = self.vocab[idx].tolist()
        rng = self.rng
        n = len(words)
        # sentence ends every 8..20 words
        ends = np.cumsum(rng.integers(8, 21, n // 8 + 2))
        ends = ends[ends < n]
        for e in ends:
            words[e - 1] += "."
            if e < n:
                words[e] = words[e].capitalize()
        if n:
            words[0] = words[0].capitalize()
            if not words[-1].endswith("."):
                words[-1] += "."
        if variant:  # same words after normalisation: case, spacing, punctuation differ
            for i in rng.integers(0, max(n, 1), max(n // 10, 1)):
                if i < n:
                    words[i] = words[i].upper()
            for i in rng.integers(0, max(n, 1), max(n // 15, 1)):
                if i < n:
                    words[i] += rng.choice([",", ";", " -", "!", "?", ":"])
            seps = rng.choice([" ", "  ", "\n", " \t "], size=max(n - 1, 0),
                              p=[0.85, 0.07, 0.05, 0.03])
            out = [words[0]] if n else []
            for w, s in zip(words[1:], seps):
                out.append(s)
                out.append(w)
            return "".join(out)
        return " ".join(words)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size-mb", type=float, default=1024)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--exact-rate", type=float, default=0.05)
    ap.add_argument("--near-rate", type=float, default=0.10)
    ap.add_argument("--near-levels", default="0.5,0.7,0.8,0.9,0.95")
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--mean-words", type=float, default=250)
    ap.add_argument("--vocab", type=int, default=50000)
    ap.add_argument("--pool", type=int, default=20000, help="recent originals to copy from")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    vocab = make_vocabulary(args.vocab, rng)
    ranks = np.arange(1, args.vocab + 1, dtype=np.float64)
    zipf = 1.0 / (ranks + 2.7)
    zipf /= zipf.sum()
    levels = [float(x) for x in args.near_levels.split(",")]
    render = Renderer(vocab, rng)
    os.makedirs(args.out, exist_ok=True)

    target_bytes = int(args.size_mb * 1e6)
    per_file = target_bytes // args.files + 1
    suffix = ".jsonl.gz" if args.gzip else ".jsonl"
    truth = open(os.path.join(args.out, "truth.jsonl"), "w")
    pool_ids, pool_words = [], []
    counts = {"original": 0, "exact": 0, "near": 0}
    near_by_level = {str(l): 0 for l in levels}
    total_bytes, row, file_no = 0, 0, 0
    started = time.time()
    out, out_bytes = None, 0

    def open_next():
        nonlocal out, out_bytes, file_no
        if out:
            out.close()
        path = os.path.join(args.out, "corpus-%05d%s" % (file_no, suffix))
        out = gzip.open(path, "wt", compresslevel=1) if args.gzip else open(path, "w")
        out_bytes = 0
        file_no += 1

    open_next()
    batch = 4096
    while total_bytes < target_bytes:
        lengths = np.maximum(5, rng.lognormal(np.log(args.mean_words) - 0.18, 0.6, batch)
                             .astype(np.int64))
        draws = rng.choice(args.vocab, size=int(lengths.sum()), p=zipf)
        kinds = rng.random(batch)
        at = 0
        for k in range(batch):
            doc_id = "d%09d" % row
            roll = kinds[k]
            record = None
            if pool_ids and roll < args.exact_rate:
                src = int(rng.integers(0, len(pool_ids)))
                words = pool_words[src]
                text = render.render(words, variant=True)
                record = {"id": doc_id, "of": pool_ids[src], "kind": "exact", "target": 1.0,
                          "jaccard": 1.0}
                kind = "exact"
            elif pool_ids and roll < args.exact_rate + args.near_rate:
                src = int(rng.integers(0, len(pool_ids)))
                base = pool_words[src]
                target = levels[int(rng.integers(0, len(levels)))]
                shingles = max(len(base) - args.ngram + 1, 1)
                # k random edits keep ~exp(-n k / S) of the S shingles: J = f / (2 - f)
                keep = 2 * target / (1 + target)
                edits = max(1, int(round(-shingles / args.ngram * np.log(keep))))
                words = base.copy()
                for _ in range(edits):
                    op = rng.random()
                    pos = int(rng.integers(0, len(words)))
                    new = rng.integers(0, args.vocab)
                    if op < 0.70:
                        words[pos] = new
                    elif op < 0.85:
                        words = np.insert(words, pos, new)
                    elif len(words) > args.ngram + 1:
                        words = np.delete(words, pos)
                text = render.render(words)
                j = jaccard(base.tolist(), words.tolist(), args.ngram)
                record = {"id": doc_id, "of": pool_ids[src], "kind": "near", "target": target,
                          "jaccard": round(j, 6)}
                near_by_level[str(target)] += 1
                kind = "near"
            else:
                words = draws[at:at + lengths[k]]
                text = render.render(words)
                kind = "original"
                if len(pool_ids) < args.pool:
                    pool_ids.append(doc_id)
                    pool_words.append(words)
                else:
                    slot = int(rng.integers(0, args.pool))
                    pool_ids[slot], pool_words[slot] = doc_id, words
            at += lengths[k]
            counts[kind] += 1
            line = json.dumps({"id": doc_id, "text": text, "kind": kind}) + "\n"
            out.write(line)
            n = len(line)  # ASCII only
            out_bytes += n
            total_bytes += n
            if record:
                truth.write(json.dumps(record) + "\n")
            row += 1
            if out_bytes >= per_file and total_bytes < target_bytes:
                open_next()
            if total_bytes >= target_bytes:
                break
        print("\r%d docs, %.0f MB, %.0f s" % (row, total_bytes / 1e6, time.time() - started),
              end="", file=sys.stderr)
    out.close()
    truth.close()
    print(file=sys.stderr)
    summary = {"docs": row, "bytes": total_bytes, "files": file_no, "gzip": args.gzip,
               "counts": counts, "near_by_target": near_by_level, "ngram": args.ngram,
               "exact_rate": args.exact_rate, "near_rate": args.near_rate,
               "seed": args.seed, "seconds": round(time.time() - started, 1)}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
