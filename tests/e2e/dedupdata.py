#!/usr/bin/env python3
"""Data and checks for the dedup end-to-end tests (standard library only).

  dedupdata.py planted DIR [--docs N] [--seed S]
      DIR/a.jsonl, DIR/b.jsonl, DIR/c.jsonl (the caller compresses b and c) and
      DIR/planted.json: {"exact": {dup_id: original_id}, "near": {dup_id: original_id},
      "near_via_exact": {dup_id: original_id}}.
      Originals are random 120-word texts in a.jsonl; exact copies differ only in case,
      punctuation and spacing; near copies have one word replaced (5-gram Jaccard ~0.93).
      Chains: an original with an exact copy and a near copy, the near copy with an exact
      copy of its own (removed as a near duplicate of the original through its exact group).
      Every record has extra fields (a nested object, a score) that kept/ must keep.
  dedupdata.py check DIR RUNDIR [--keep first|longest|field:score]
      Checks RUNDIR (a dedup run on DIR) against planted.json and the input lines.
"""
import argparse
import json
import os
import random
import sys


def words(rng, n):
    return [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(3, 9)))
            for _ in range(n)]


def planted(args):
    rng = random.Random(args.seed)
    originals, files = [], {"a": [], "b": [], "c": []}
    planted = {"exact": {}, "near": {}, "near_via_exact": {}}
    for i in range(args.docs):
        text = ' '.join(words(rng, 120))
        doc = {"id": f"orig-{i}", "meta": {"source": "gen", "n": i}, "score": rng.random(),
               "text": text}
        originals.append(doc)
        files["a"].append(doc)
    for i in range(args.docs // 5):
        src = originals[rng.randrange(len(originals))]
        w = src["text"].split(' ')
        variant = rng.randrange(3)
        if variant == 0:
            text = ' '.join(x.upper() if k % 7 == 0 else x for k, x in enumerate(w))
        elif variant == 1:
            text = '  '.join(w) + ' !!!'
        else:
            text = ', '.join(w[:60]) + '.\n' + ' '.join(w[60:]) + '?'
        dup = {"id": f"exact-{i}", "score": rng.random(), "text": text, "extra": [1, 2, 3]}
        planted["exact"][dup["id"]] = src["id"]
        files[rng.choice("bc")].append(dup)
    used = set(planted["exact"].values())
    fresh = [d for d in originals if d["id"] not in used]
    for i in range(min(args.docs // 5, len(fresh))):
        src = fresh[i]  # each original at most once: clusters stay pairs
        w = src["text"].split(' ')
        w[rng.randrange(10, 110)] = "zzz" + words(rng, 1)[0]
        dup = {"id": f"near-{i}", "score": rng.random(), "text": ' '.join(w)}
        planted["near"][dup["id"]] = src["id"]
        files[rng.choice("bc")].append(dup)
    for i, src in enumerate(fresh[len(planted["near"]):][:10]):
        w = src["text"].split(' ')
        w[rng.randrange(10, 110)] = "yyy" + words(rng, 1)[0]
        near = ' '.join(w)
        for kind, dup_id, text in (("exact", f"chain-exact-{i}", src["text"].upper()),
                                   ("near", f"chain-near-{i}", near),
                                   ("near_via_exact", f"chain-near-copy-{i}", near + " !")):
            planted[kind][dup_id] = src["id"]
            files[rng.choice("bc")].append({"id": dup_id, "score": rng.random(), "text": text})
    # Unicode and escapes, kept byte-identical: a unique text.
    files["b"].append({"id": "unicode", "text": "Caf\u00e9 \u201cquoted\u201d \\ \"esc\" \u6f22\u5b57 "
                       + ' '.join(words(rng, 30)), "score": 0.5})
    rng.shuffle(files["b"])
    rng.shuffle(files["c"])
    os.makedirs(args.dir, exist_ok=True)
    for name, docs in files.items():
        with open(os.path.join(args.dir, name + ".jsonl"), "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=(name != "b")) + "\n")
    with open(os.path.join(args.dir, "planted.json"), "w") as f:
        json.dump(planted, f)


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def read_input_lines(d):
    import gzip
    import subprocess
    lines = []
    for name in ("a.jsonl", "b.jsonl.gz", "c.jsonl.zst"):
        path = os.path.join(d, name)
        if name.endswith(".gz"):
            data = gzip.open(path, "rb").read()
        elif name.endswith(".zst"):
            data = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
        else:
            data = open(path, "rb").read()
        lines += data.split(b"\n")[:-1]
    return lines


def read_kept(run):
    """kept/'s shards (00000.jsonl.zst, .jsonl.gz or .jsonl), decompressed, in order."""
    import gzip
    import subprocess
    data = b""
    for name in sorted(os.listdir(os.path.join(run, "kept"))):
        path = os.path.join(run, "kept", name)
        if name.endswith(".gz"):
            data += gzip.open(path, "rb").read()
        elif name.endswith(".zst"):
            data += subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
        else:
            data += open(path, "rb").read()
    return data


def check(args):
    planted = json.load(open(os.path.join(args.dir, "planted.json")))
    lines = read_input_lines(args.dir)
    docs = [json.loads(l) for l in lines]
    by_id = {d["id"]: d for d in docs}
    dups = [json.loads(l) for l in open(os.path.join(args.run, "duplicates.jsonl"))]
    removed = {d["id"]: d for d in dups}
    kept = read_kept(args.run).split(b"\n")[:-1]
    report = json.load(open(os.path.join(args.run, "dedup.json")))

    # kept/ = the input lines of the records not removed, byte for byte, in corpus order.
    expected_kept = [l for l, d in zip(lines, docs) if d["id"] not in removed]
    if kept != expected_kept:
        fail(f"kept/ holds {len(kept)} lines; expected the {len(expected_kept)} input lines not removed")
    if report["docs_in"] != len(docs) or report["docs_out"] != len(kept):
        fail(f"dedup.json docs_in/out {report['docs_in']}/{report['docs_out']}, expected {len(docs)}/{len(kept)}")
    if report["bytes_out"] != sum(len(l) + 1 for l in kept):
        fail("dedup.json bytes_out does not match kept/")

    # Every removed doc is in one cluster with its representative, which is kept.
    kept_ids = {json.loads(l)["id"] for l in kept}
    for d in dups:
        if d["representative"] not in kept_ids:
            fail(f"{d['id']}: representative {d['representative']} is not kept")
        if d["reason"] not in ("exact", "near"):
            fail(f"{d['id']}: reason {d['reason']}")

    if args.keep == "first":
        want = {**{k: ("exact", v) for k, v in planted["exact"].items()},
                **{k: ("near", v) for k, v in planted["near"].items()},
                **{k: ("near", v) for k, v in planted["near_via_exact"].items()}}
        got = {k: (d["reason"], d["representative"]) for k, d in removed.items()}
        if got != want:
            missing = sorted(set(want) - set(got))[:5]
            extra = sorted(set(got) - set(want))[:5]
            wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:5]
            fail(f"removed set differs from the planted duplicates: missing {missing}, "
                 f"extra {extra}, wrong reason/representative {wrong}")
        for d in dups:
            if d["cluster"] != d["representative"]:  # the originals are the smallest rows
                fail(f"{d['id']}: cluster {d['cluster']}, representative {d['representative']}")
            if d["reason"] == "exact" and d["similarity"] != 1.0:
                fail(f"{d['id']}: exact with similarity {d['similarity']}")
            if d["reason"] == "near" and not 0.8 <= d["similarity"] < 1.0:
                fail(f"{d['id']}: near with similarity {d['similarity']}")
    else:
        # The representative wins the keep policy within its cluster (ties: earlier row).
        row = {d["id"]: i for i, d in enumerate(docs)}
        def score(i):
            return len(by_id[i]["text"]) if args.keep == "longest" else by_id[i]["score"]
        clusters = {}
        for d in dups:
            clusters.setdefault(d["representative"], set()).add(d["id"])
        exact_groups = 0
        for rep, members in clusters.items():
            for m in members:
                if removed[m]["reason"] == "exact":
                    exact_groups += 1
                    if (score(m), -row[m]) > (score(rep), -row[rep]):
                        fail(f"keep {args.keep}: {m} beats its representative {rep}")
        if exact_groups == 0:
            fail("no exact clusters to check the keep policy on")
        n_planted = sum(len(v) for v in planted.values())
        if len(dups) != n_planted:
            fail(f"{len(dups)} removed, expected {n_planted}")
    print(f"ok: {len(dups)} removed ({sum(d['reason'] == 'exact' for d in dups)} exact), "
          f"{len(kept)} kept, keep={args.keep}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("planted")
    a.add_argument("dir")
    a.add_argument("--docs", type=int, default=400)
    a.add_argument("--seed", type=int, default=1)
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("run")
    c.add_argument("--keep", default="first")
    args = p.parse_args()
    {"planted": planted, "check": check}[args.cmd](args)


if __name__ == "__main__":
    main()
