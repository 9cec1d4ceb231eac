#!/usr/bin/python3
"""Clough & Stevenson corpus: which embedding design finds each answer's original as its
nearest neighbour, and what is the best any design can reach?

    /usr/bin/python3 bench/clough_embed_study.py [--data tests/data/clough] [--misses]

The measure is the issue's: for each `cut` (and `light`, `heavy`) answer, among the OTHER
texts of the same task (the original and every other answer of that task, all categories),
is the nearest one the original? (hit@1; a tie with the original counts as a miss.)

1. Ceiling. For each answer: the distinct features (word n-grams, character 5-grams) it
   shares with the original and with the best other answer of its task. When another answer
   shares strictly more ("lose"), no similarity that grows with shared content can rank the
   original first; "tie": only the lengths (norms) decide. Ceiling = (clear + tie) / answers.
2. Designs, each as a similarity matrix over the 100 texts: cosine of exact tf-idf vectors
   (feature families and weightings), cosine of signed feature hashing into 256 buckets (the C++
   `hashed` design: per-bucket idf, and per-feature idf; mean over 4 hash seeds), the inner
   product of the same hashed vectors left unnormalised (their length kept), the
   intersection count of distinct n-grams (containment, not a cosine), and passages (windows of
   50 words, stride 25) with the document score = best passage pair or the mean over the
   answer's passages of their best match (Chamfer, several vectors per document); BM25 with
   and without length normalisation. Baseline: the longest text of the task, content unseen.
   Control: `non` answers (written independently): a design that favours long texts finds
   "the original" for them too.
3. --misses: for the C++ design's features with exact tf-idf cosine, each missed cut answer,
   its nearest text and the shared-content counts.

Texts are normalised like `run` with dedup.* defaults (lower case, string.punctuation removed,
whitespace runs as one word break; non-ASCII text NFKC + casefold, as utf8proc approximately).
Needs numpy. About 30 s of CPU.
"""
import argparse
import collections
import csv
import hashlib
import math
import os
import string
import unicodedata

import numpy as np

_DROP = str.maketrans("", "", string.punctuation)


def normalise(text):
    text = unicodedata.normalize("NFKC", text).casefold().translate(_DROP)
    return " ".join(text.split())


def load(data):
    texts = []
    with open(os.path.join(data, "file_information.csv"), newline="") as f:
        for row in csv.DictReader(f):
            if not row["File"]:
                continue
            with open(os.path.join(data, row["File"]), "rb") as t:
                raw = t.read().decode("utf-8", "replace")
            texts.append({"file": row["File"], "task": row["Task"], "cat": row["Category"],
                          "text": normalise(raw)})
    return texts


def word_ngrams(text, n):
    w = text.split()
    return [" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))]


def char_ngrams(text, sizes):
    p = " " + text + " "
    return [p[i:i + n] for n in sizes for i in range(len(p) - n + 1)]


FEATURES = {
    # the C++ `hashed` feature families: word unigrams + bigrams + character 3-5-grams
    "w1+w2+c3-5 (hashed's)":
        lambda t: word_ngrams(t, 1) + word_ngrams(t, 2) + char_ngrams(t, (3, 4, 5)),
    "w1": lambda t: word_ngrams(t, 1),
    "w3": lambda t: word_ngrams(t, 3),
    "w5 (shingles)": lambda t: word_ngrams(t, 5),
    "c5": lambda t: char_ngrams(t, (5,)),
}


class Study:
    def __init__(self, texts):
        self.texts = texts
        self.n = len(texts)
        self.orig = {t["task"]: i for i, t in enumerate(texts) if t["cat"] == "orig"}

    def candidates(self, a):
        task = self.texts[a]["task"]
        return [b for b in range(self.n) if b != a and self.texts[b]["task"] == task]

    def hits(self, sim, cat):
        """hit@1 of category `cat`: the original strictly the most similar of the candidates."""
        answers = [a for a in range(self.n) if self.texts[a]["cat"] == cat]
        hit = 0
        for a in answers:
            o = self.orig[self.texts[a]["task"]]
            if all(sim[a, o] > sim[a, b] for b in self.candidates(a) if b != o):
                hit += 1
        return hit, len(answers)

    def row(self, name, sim):
        cells = []
        for cat in ("cut", "light", "heavy", "non"):
            h, n = self.hits(sim, cat)
            cells.append(f"{h:2d}/{n} {h / n:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def counters(texts, featfn):
    return [collections.Counter(featfn(t["text"])) for t in texts]


def document_frequency(docs):
    df = collections.Counter()
    for d in docs:
        df.update(d.keys())
    return df


def smooth_idf(n):
    return lambda df: math.log((1 + n) / (1 + df)) + 1


def exact_vectors(docs, df, weight):
    vocab = {f: i for i, f in enumerate(df)}
    x = np.zeros((len(docs), len(vocab)))
    for i, d in enumerate(docs):
        for f, c in d.items():
            x[i, vocab[f]] = (1 + math.log(c)) * weight(df[f])
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)


def hashed_vectors(docs, df, weight, dim, seed, per_bucket_idf, n, normalise=True):
    """Signed feature hashing of sublinear tf (bucket-level sublinear tf, as the C++ code)."""
    key = seed.to_bytes(8, "little")
    x = np.zeros((len(docs), dim))
    for i, d in enumerate(docs):
        for f, c in d.items():
            digest = hashlib.blake2b(f.encode(), digest_size=8, key=key).digest()
            h = int.from_bytes(digest, "little")
            w = 1.0 if per_bucket_idf else weight(df[f])
            x[i, h % dim] += (-1 if h >> 63 else 1) * c * w
    x = np.sign(x) * np.where(x != 0, 1 + np.log(np.maximum(np.abs(x), 1e-30)), 0)
    idf_range = None
    if per_bucket_idf:
        bucket_df = (x != 0).sum(axis=0)
        idf = np.log((1 + n) / (1 + bucket_df)) + 1
        idf_range = (idf.min(), idf.max(), (bucket_df == n).mean())
        x = x * idf
    if not normalise:
        return x, idf_range
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30), idf_range


def passages(text, size, stride):
    w = text.split()
    out, i = [], 0
    while True:
        out.append(" ".join(w[i:i + size]))
        if i + size >= len(w):
            return out
        i += stride


def passage_sims(texts, featfn, size, stride):
    n = len(texts)
    docs = counters(texts, featfn)
    df = document_frequency(docs)
    weight = smooth_idf(n)
    owner, pdocs = [], []
    for i, t in enumerate(texts):
        for p in passages(t["text"], size, stride):
            owner.append(i)
            pdocs.append(collections.Counter(featfn(p)))
    x = exact_vectors(pdocs, df, weight)
    ps = x @ x.T
    owner = np.array(owner)
    best, chamfer = np.zeros((n, n)), np.zeros((n, n))
    rows = [np.where(owner == i)[0] for i in range(n)]
    for a in range(n):
        for b in range(n):
            sub = ps[np.ix_(rows[a], rows[b])]
            best[a, b] = sub.max()
            chamfer[a, b] = sub.max(axis=1).mean()
    return best, chamfer


def bm25_sims(docs, df, n, k1, b):
    """BM25 of text a (the query: its distinct features) against text d. Not symmetric, not a
    cosine: d's vector (saturated, length-normalised tf x idf) dotted with a's 0/1 vector."""
    lengths = np.array([sum(d.values()) for d in docs], dtype=float)
    avg = lengths.mean()
    sims = np.zeros((n, n))
    for j, d in enumerate(docs):
        norm = k1 * (1 - b + b * lengths[j] / avg)
        w = {f: math.log(1 + (n - df[f] + 0.5) / (df[f] + 0.5)) * c * (k1 + 1) / (c + norm)
             for f, c in d.items()}
        for i, q in enumerate(docs):
            sims[i, j] = sum(w.get(f, 0.0) for f in q)
    return sims


def ceiling(study, sets, cat):
    tally = collections.Counter()
    for a in range(study.n):
        if study.texts[a]["cat"] != cat:
            continue
        o = study.orig[study.texts[a]["task"]]
        with_orig = len(sets[a] & sets[o])
        other = max(len(sets[a] & sets[b]) for b in study.candidates(a) if b != o)
        tally["clear" if with_orig > other else "tie" if with_orig == other else "lose"] += 1
    return tally


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(here, "..", "tests", "data", "clough"))
    ap.add_argument("--misses", action="store_true")
    args = ap.parse_args()
    texts = load(args.data)
    study = Study(texts)
    n = study.n

    print("## 1. Ceiling: distinct features shared with the original vs the best other answer\n")
    print("| features | cut: clear / tie / lose | cut ceiling "
          "| light: clear / tie / lose | light ceiling |")
    print("|---|---|---:|---|---:|")
    for name, fn in [("w1", FEATURES["w1"]), ("w3", FEATURES["w3"]),
                     ("w5", FEATURES["w5 (shingles)"]),
                     ("w8", lambda t: word_ngrams(t, 8)), ("c5", FEATURES["c5"])]:
        sets = [set(fn(t["text"])) for t in texts]
        cells = []
        for cat in ("cut", "light"):
            c = ceiling(study, sets, cat)
            total = sum(c.values())
            cells += [f"{c['clear']} / {c['tie']} / {c['lose']}",
                      f"{(c['clear'] + c['tie']) / total:.3f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")

    print("\n## 2. hit@1 per design\n")
    print("| design | cut | light | heavy | non (control) |")
    print("|---|---:|---:|---:|---:|")
    words = np.array([len(t["text"].split()) for t in texts], dtype=float)
    study.row("the longest text (no content at all)", np.tile(words, (n, 1)))
    weights = {"smooth idf": smooth_idf(n), "no idf": lambda df: 1.0,
               "1/df^1.5": lambda df: df ** -1.5}
    for fname, fn in FEATURES.items():
        docs = counters(texts, fn)
        df = document_frequency(docs)
        for wname, w in weights.items():
            x = exact_vectors(docs, df, w)
            study.row(f"cosine, exact tf-idf, {fname}, {wname}", x @ x.T)
    for fname in ("w1+w2+c3-5 (hashed's)", "w3", "w5 (shingles)"):
        docs = counters(texts, FEATURES[fname])
        df = document_frequency(docs)
        for label, per_bucket, w, unit in [
                ("per-bucket idf (C++ now)", True, None, True),
                ("per-feature idf", False, smooth_idf(n), True),
                ("per-feature 1/df^1.5", False, weights["1/df^1.5"], True),
                ("per-bucket idf, not normalised", True, None, False)]:
            for dim in (256, 4096):
                sims, ranges = [], []
                for seed in range(4):
                    x, r = hashed_vectors(docs, df, w, dim, seed, per_bucket, n, unit)
                    sims.append(x @ x.T)
                    ranges.append(r)
                cells = []
                for cat in ("cut", "light", "heavy", "non"):
                    hs = [study.hits(s, cat) for s in sims]
                    cells.append(f"{np.mean([h for h, _ in hs]):.2f}/{hs[0][1]} "
                                 f"{np.mean([h / m for h, m in hs]):.3f}")
                measure = "cosine" if unit else "inner product"
                print(f"| {measure}, hashed dim {dim}, {fname}, {label} (4 seeds) | "
                      + " | ".join(cells) + " |")
                if per_bucket and unit and dim == 256 and fname.startswith("w1+w2"):
                    lo, hi, full = ranges[0]
                    idf_note = (f"per-bucket idf at dim 256 ({fname}): {lo:.3f} .. {hi:.3f}, "
                                f"{full:.0%} of buckets non-zero in every text")
    for fname in ("w1", "w5 (shingles)", "c5"):
        sets = [set(FEATURES[fname](t["text"])) for t in texts]
        inter = np.array([[len(sets[a] & sets[b]) for b in range(n)] for a in range(n)],
                         dtype=float)
        study.row(f"intersection count (not a cosine), {fname}", inter)
    for fname in ("w1", "c5"):
        docs = counters(texts, FEATURES[fname])
        df = document_frequency(docs)
        for b in (0.0, 0.75):
            study.row(f"BM25 k1=1.2 b={b} (not a cosine), {fname}", bm25_sims(docs, df, n, 1.2, b))
    for fname in ("w1+w2+c3-5 (hashed's)", "w5 (shingles)"):
        best, chamfer = passage_sims(texts, FEATURES[fname], 50, 25)
        study.row(f"passages 50/25 words, best pair, {fname}", best)
        study.row(f"passages 50/25 words, Chamfer (multi-vector), {fname}", chamfer)
    print(f"\n{idf_note}")

    if args.misses:
        print("\n## 3. Missed cut answers, cosine of exact tf-idf, hashed's features\n")
        docs = counters(texts, FEATURES["w1+w2+c3-5 (hashed's)"])
        x = exact_vectors(docs, document_frequency(docs), smooth_idf(n))
        sim = x @ x.T
        w5 = [set(word_ngrams(t["text"], 5)) for t in texts]
        print("| answer | words | nearest (category) | cos nearest | cos original | "
              "5-grams shared: with nearest / with original / nearest's, original's |")
        print("|---|---:|---|---:|---:|---|")
        for a in range(n):
            if texts[a]["cat"] != "cut":
                continue
            o = study.orig[texts[a]["task"]]
            b = max(study.candidates(a), key=lambda c: (sim[a, c], c == o))
            if b == o:
                continue
            print(f"| {texts[a]['file']} | {len(texts[a]['text'].split())} | {texts[b]['file']} "
                  f"({texts[b]['cat']}) | {sim[a, b]:.3f} | {sim[a, o]:.3f} | "
                  f"{len(w5[a] & w5[b])} / {len(w5[a] & w5[o])} / {len(w5[b])}, {len(w5[o])} |")


if __name__ == "__main__":
    main()
