#!/usr/bin/env bash
# Real corpora for the dedup quality checks, as JSONL in data/dedup/ (or $1):
#   spdx.jsonl    the SPDX licence texts of the npm package spdx-license-list (npm pack: a
#                 data download, no code is run); {"id": "<SPDX id>", "name", "text"}
#   clough.jsonl  the Clough & Stevenson corpus of tests/data/clough (or $CLOUGH_DIR):
#                 {"id": "<file name>", "task", "category": orig|cut|light|heavy|non, "text"}
# The fortune cookies need no conversion (input.format: fortune). Needs npm
# (scripts/install-deps.sh installs it) and /usr/bin/python3.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/dedup}
clough=${CLOUGH_DIR:-tests/data/clough}
[[ -f $clough/file_information.csv ]] || { echo "$0: no $clough/file_information.csv" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd "$tmp" && npm pack --silent spdx-license-list >/dev/null && tar xzf spdx-license-list-*.tgz)
/usr/bin/python3 - "$tmp/package/licenses" "$out/spdx.jsonl.tmp" <<'PYEOF'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
with open(dst, "w", encoding="utf-8") as f:
    for name in sorted(os.listdir(src)):
        if name.endswith(".json"):
            lic = json.load(open(os.path.join(src, name), encoding="utf-8"))
            f.write(json.dumps({"id": name[:-5], "name": lic.get("name", ""),
                                "text": lic["licenseText"]}, ensure_ascii=False) + "\n")
PYEOF
mv "$out/spdx.jsonl.tmp" "$out/spdx.jsonl"

/usr/bin/python3 - "$clough" "$out/clough.jsonl.tmp" <<'PYEOF'
import csv, json, os, sys
src, dst = sys.argv[1], sys.argv[2]
def text(name):
    raw = open(os.path.join(src, name), "rb").read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")  # a few answers are Windows-1252
rows = list(csv.DictReader(open(os.path.join(src, "file_information.csv"))))
rows.sort(key=lambda r: r["Category"] != "orig")  # the originals first: keep: first keeps them
with open(dst, "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps({"id": r["File"], "task": r["Task"], "category": r["Category"],
                            "text": text(r["File"])}, ensure_ascii=False) + "\n")
PYEOF
mv "$out/clough.jsonl.tmp" "$out/clough.jsonl"
wc -l "$out"/*.jsonl
