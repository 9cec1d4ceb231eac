#!/usr/bin/python3
"""Writes the real text sets as JSONL corpus directories that dedup_bench.py can run on.

    /usr/bin/python3 bench/real_corpora.py --out /tmp/real [--spdx PATH/spdx-full.json]

OUT/fortunes/: every fortune of /usr/share/games/fortunes (Debian `fortunes`, `fortunes-min`;
records separated by a line holding `%`), one JSONL line each {"id": "file:n", "text"}.
OUT/spdx/: every SPDX licence text of spdx-full.json (npm `spdx-license-list`; fetched with
`npm pack spdx-license-list` into OUT when --spdx is not given), {"id": licence id, "text"}.
Each directory gets corpus-00000.jsonl, summary.json (docs, bytes) and an empty truth.jsonl
(nothing is planted: dedup_bench.py then reports what each contender removed).
"""
import argparse
import glob
import json
import os
import subprocess
import tarfile


def write_corpus(out_dir, records):
    os.makedirs(out_dir, exist_ok=True)
    nbytes = 0
    with open(os.path.join(out_dir, "corpus-00000.jsonl"), "w") as f:
        for rid, text in records:
            line = json.dumps({"id": rid, "text": text}, ensure_ascii=False) + "\n"
            f.write(line)
            nbytes += len(line.encode())
    open(os.path.join(out_dir, "truth.jsonl"), "w").close()
    summary = {"docs": len(records), "bytes": nbytes, "files": 1, "gzip": False}
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f)
    print(out_dir, json.dumps(summary))


def fortunes(root="/usr/share/games/fortunes"):
    records = []
    for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
        if os.path.isdir(path) or os.path.splitext(path)[1] in (".dat", ".u8") or \
                os.path.islink(path):
            continue
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        name = os.path.relpath(path, root)
        n = 0
        for record in text.split("\n%\n"):
            record = record.strip("%\n")
            if record.strip():
                records.append(("%s:%d" % (name, n), record))
                n += 1
    return records


def spdx(path, out):
    if not path:
        subprocess.run(["npm", "pack", "spdx-license-list", "--pack-destination", out],
                       check=True, capture_output=True)
        tgz = sorted(glob.glob(os.path.join(out, "spdx-license-list-*.tgz")))[-1]
        with tarfile.open(tgz) as t:
            t.extract("package/spdx-full.json", out)
        path = os.path.join(out, "package", "spdx-full.json")
    data = json.load(open(path))
    return [(lid, v["licenseText"]) for lid, v in sorted(data.items()) if v.get("licenseText")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--spdx", help="spdx-full.json (default: npm pack spdx-license-list)")
    args = ap.parse_args()
    write_corpus(os.path.join(args.out, "fortunes"), fortunes())
    write_corpus(os.path.join(args.out, "spdx"), spdx(args.spdx, args.out))


if __name__ == "__main__":
    main()
