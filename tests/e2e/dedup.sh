# shardforge dedup end to end: a generated JSONL corpus (plain, .gz and .zst files) with planted
# exact and near duplicates, and the real fortune cookies. The kept set, duplicates.jsonl and
# the clusters must be the same for 1, 2 and 4 ranks; kept/ must hold the input lines byte
# for byte; the keep policies must pick the right representative; input files are unchanged.
source "$(dirname "$0")/lib.bash"
sf_init "$@"
DD="$SRC/tests/e2e/dedupdata.py"

check "generating a JSONL corpus with planted duplicates"
"$PY" "$DD" planted "$WORK/corpus" --docs 400 --seed 3
gzip "$WORK/corpus/b.jsonl"
zstd -q --rm "$WORK/corpus/c.jsonl"
sums_before=$(cd "$WORK/corpus" && sha256sum a.jsonl b.jsonl.gz c.jsonl.zst)
ok "$(wc -l <"$WORK/corpus/a.jsonl") originals; $(ls "$WORK/corpus")"

# dedup_config FILE OUTDIR FORMAT KEEP INPUT...
dedup_config() {
  local file=$1 out=$2 format=$3 keep=$4
  shift 4
  {
    echo "input:"
    echo "  format: $format"
    echo "  paths:"
    local p
    for p in "$@"; do echo "    - \"$p\""; done
    echo "dedup:"
    echo "  keep: \"$keep\""
    echo "output:"
    echo "  dir: \"$out\""
    [[ -z ${OUTPUT_EXTRA:-} ]] || echo "$OUTPUT_EXTRA"
  } >"$file"
}

# shard_sums RUN: kept/'s file names and sha256s.
shard_sums() { (cd "$1/kept" && sha256sum -- *); }

inputs=("$WORK/corpus/a.jsonl" "$WORK/corpus/b.jsonl.gz" "$WORK/corpus/c.jsonl.zst")
# Small shards (output.max_file_bytes) so that shards span ranks: the same files, byte for byte,
# for 1, 2 and 4 ranks.
for np in 1 2 4; do
  check "planted corpus, keep first, $np rank(s), kept/ in shards of 20000 bytes"
  OUTPUT_EXTRA="  max_file_bytes: 20000" \
    dedup_config "$WORK/c$np.yaml" "$WORK/run$np" jsonl first "${inputs[@]}"
  run_ok "$np" "$WORK/dedup$np.log" dedup "$WORK/c$np.yaml"
  [[ $(ls "$WORK/run$np/kept" | wc -l) -ge 4 ]] || fail "kept/ should hold several shards"
  [[ -f "$WORK/run$np/kept/00000.jsonl.zst" ]] || fail "no kept/00000.jsonl.zst"
  [[ ! -e "$WORK/run$np/kept.tmp" && ! -e "$WORK/run$np/duplicates.tmp" ]] || fail "temporary output left"
  "$PY" "$DD" check "$WORK/corpus" "$WORK/run$np" --keep first || { show "$WORK/dedup$np.log"; fail "check"; }
  shard_sums "$WORK/run$np" >"$WORK/kept$np"
  if [[ $np -gt 1 ]]; then
    cmp -s "$WORK/kept1" "$WORK/kept$np" || fail "kept/ files differ between 1 and $np ranks"
    cmp -s "$WORK/run1/duplicates.jsonl" "$WORK/run$np/duplicates.jsonl" ||
      fail "duplicates.jsonl differs between 1 and $np ranks"
  fi
  ! grep -q '"file"' "$WORK/run$np/duplicates.jsonl" || fail "duplicates.jsonl names files although every record has an id"
  ok "$(wc -l <"$WORK/run$np/duplicates.jsonl") removed, $(ls "$WORK/run$np/kept" | wc -l) shards; same files as 1 rank"
done

check "kept/ shards: at most max_file_bytes + one record each; every shard a whole number of lines"
"$PY" - "$WORK/run2" <<'PYEOF'
import os, subprocess, sys
run = sys.argv[1]
names = sorted(os.listdir(run + "/kept"))
assert names == [f"{i:05d}.jsonl.zst" for i in range(len(names))], names
for name in names:
    data = subprocess.run(["zstd", "-dc", run + "/kept/" + name], check=True, capture_output=True).stdout
    lines = data.split(b"\n")
    assert data.endswith(b"\n"), name
    assert len(data) - len(lines[-2]) - 1 < 20000, (name, len(data))
PYEOF
ok

for c in gzip none; do
  for np in 1 4; do
    check "output.compression: $c, $np rank(s): the same records; the same files for 1 and 4 ranks"
    OUTPUT_EXTRA=$(printf '  max_file_bytes: 20000\n  compression: %s' "$c") \
      dedup_config "$WORK/c-$c-$np.yaml" "$WORK/run-$c-$np" jsonl first "${inputs[@]}"
    run_ok "$np" "$WORK/dedup-$c-$np.log" dedup "$WORK/c-$c-$np.yaml"
    "$PY" "$DD" check "$WORK/corpus" "$WORK/run-$c-$np" --keep first || fail "check"
    ext=$([[ $c == gzip ]] && echo .jsonl.gz || echo .jsonl)
    [[ -f "$WORK/run-$c-$np/kept/00000$ext" ]] || fail "no kept/00000$ext"
    [[ $(ls "$WORK/run-$c-$np/kept" | wc -l) -eq $(ls "$WORK/run1/kept" | wc -l) ]] ||
      fail "another shard count than with zstd"
  done
  cmp -s <(shard_sums "$WORK/run-$c-1") <(shard_sums "$WORK/run-$c-4") || fail "$c: 1 and 4 ranks differ"
  ok
done

check "kept/ read back as input (a folder of .jsonl.zst): every record, none a duplicate"
dedup_config "$WORK/back.yaml" "$WORK/back" jsonl first "$WORK/run4/kept"
run_ok 2 "$WORK/back.log" dedup "$WORK/back.yaml"
"$PY" - "$WORK/run4/dedup.json" "$WORK/back/dedup.json" <<'PYEOF'
import json, sys
first, back = (json.load(open(p)) for p in sys.argv[1:])
assert back["docs_in"] == first["docs_out"] and back["bytes_in"] == first["bytes_out"], (first, back)
assert back["exact_duplicates"] == 0, back
PYEOF
ok

check "dedup.json: counts, stages per rank"
"$PY" - "$WORK/run4/dedup.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["format_version"] == 1 and r["ranks"] == 4, r
assert r["exact_duplicates"] > 0 and r["near_duplicates"] > 0, r
assert r["docs_in"] - r["docs_out"] == r["exact_duplicates"] + r["near_duplicates"], r
assert r["clusters"] > 0 and r["largest_cluster"] >= 2, r
assert r["bad_records"] == 0 and r["bad_input"] == {}, r
names = [s["name"] for s in r["stages"]]
assert names == ["read+sketch", "exact", "near", "verdicts", "write"], names
for s in r["stages"]:
    assert len(s["seconds"]) == 4 and len(s["peak_rss_mib"]) == 4, s
    assert all(m > 0 for m in s["peak_rss_mib"]), s
sk = r["sketch"]
assert all(len(v) == 4 for v in sk.values()), sk
assert sum(sk["text_bytes"]) > 0 and 0 < sum(sk["signature_text_bytes"]) <= sum(sk["text_bytes"]), sk
PYEOF
ok

for keep in longest field:score; do
  check "keep $keep, 2 ranks"
  dedup_config "$WORK/k.yaml" "$WORK/runk" jsonl "$keep" "${inputs[@]}"
  run_ok 2 "$WORK/keep.log" dedup "$WORK/k.yaml"
  "$PY" "$DD" check "$WORK/corpus" "$WORK/runk" --keep "$keep" || fail "keep $keep"
  ok
done

for np in 1 4; do
  check "exact Jaccard verification, star clusters, bands x rows from the threshold, $np rank(s)"
  dedup_config "$WORK/v.yaml" "$WORK/runv$np" jsonl first "${inputs[@]}"
  run_ok "$np" "$WORK/verify$np.log" dedup "$WORK/v.yaml" --set dedup.verify=exact \
    --set dedup.clusters=star --set dedup.bands=0 --set dedup.rows=0 --set dedup.threshold=0.7
  "$PY" "$DD" check "$WORK/corpus" "$WORK/runv$np" --keep first || fail "verify exact"
  "$PY" - "$WORK/runv$np/dedup.json" <<'PYEOF'
import json, sys
p = json.load(open(sys.argv[1]))["params"]
assert p["verify"] == "exact" and p["clusters"] == "star" and p["threshold"] == 0.7, p
assert p["bands"] * p["rows"] <= p["num_perm"] and (p["bands"], p["rows"]) != (14, 8), p
PYEOF
  ok
done
cmp -s "$WORK/runv1/duplicates.jsonl" "$WORK/runv4/duplicates.jsonl" || fail "verify exact: 1 and 4 ranks differ"

check "a rerun replaces the earlier results; input files unchanged"
dedup_config "$WORK/c1.yaml" "$WORK/run1" jsonl first "${inputs[@]}"
echo stale >"$WORK/run1/kept/00042.jsonl.zst"
echo stale >"$WORK/run1/kept/part-00009.jsonl"  # an older shardforge's
run_ok 1 "$WORK/rerun.log" dedup "$WORK/c1.yaml"
[[ ! -e "$WORK/run1/kept/00042.jsonl.zst" && ! -e "$WORK/run1/kept/part-00009.jsonl" ]] ||
  fail "stale kept/ file survived a rerun"
[[ $(ls "$WORK/run1/kept") == 00000.jsonl.zst ]] || fail "kept/ should hold one shard: $(ls "$WORK/run1/kept")"
[[ "$(cd "$WORK/corpus" && sha256sum a.jsonl b.jsonl.gz c.jsonl.zst)" == "$sums_before" ]] ||
  fail "input files changed"
ok

FORTUNES=/usr/share/games/fortunes
if [[ -r $FORTUNES/fortunes ]]; then
  mapfile -t ffiles < <(ls "$FORTUNES"/* | grep -v -E '\.(dat|u8)$')
  for np in 1 2 4; do
    check "fortunes (${#ffiles[@]} files), $np rank(s)"
    dedup_config "$WORK/f$np.yaml" "$WORK/frun$np" fortune first "${ffiles[@]}"
    run_ok "$np" "$WORK/fortune$np.log" dedup "$WORK/f$np.yaml"
    cat "$WORK/frun$np"/kept/* >"$WORK/fkept$np"
    if [[ $np -gt 1 ]]; then
      cmp -s "$WORK/fkept1" "$WORK/fkept$np" || fail "fortunes kept/ differs between 1 and $np ranks"
      cmp -s "$WORK/frun1/duplicates.jsonl" "$WORK/frun$np/duplicates.jsonl" ||
        fail "fortunes duplicates.jsonl differs between 1 and $np ranks"
    fi
    ok "$(grep -o '"docs_in": [0-9]*' "$WORK/frun$np/dedup.json"), $(wc -l <"$WORK/frun$np/duplicates.jsonl") removed"
  done
  check "fortunes: kept records are the input records not removed; duplicates.jsonl names each duplicate's and representative's file and line (no id field)"
  "$PY" - "$WORK/frun2" "${ffiles[@]}" <<'PYEOF'
import json, sys
run, files = sys.argv[1], sys.argv[2:]
records, where = [], []  # where: (file, 1-based line of the record's first line)
for f in files:
    cur, data = [], open(f, "rb").read()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    start = 1
    for n, line in enumerate(lines, 1):
        if line == b"%":
            records.append(b"".join(cur)); where.append((f, start)); cur = []; start = n + 1
        else:
            cur.append(line + b"\n")
    if cur:
        records.append(b"".join(cur)); where.append((f, start))
where = [w for r, w in zip(records, where) if r.strip()]
records = [r for r in records if r.strip()]
dups = [json.loads(l) for l in open(run + "/duplicates.jsonl")]
for d in dups:
    assert (d["file"], d["line"]) == where[d["id"]], (d, where[d["id"]])
    assert (d["representative_file"], d["representative_line"]) == where[d["representative"]], d
    assert list(d)[:5] == ["id", "cluster", "representative", "reason", "similarity"], d
removed = {d["id"] for d in dups}
expected = b"".join(r + b"%\n" for i, r in enumerate(records) if i not in removed)
import os, subprocess
assert sorted(os.listdir(run + "/kept")) == ["00000.zst"], os.listdir(run + "/kept")
kept = subprocess.run(["zstd", "-dc", run + "/kept/00000.zst"], check=True, capture_output=True).stdout
assert kept == expected, (len(kept), len(expected))
r = json.load(open(run + "/dedup.json"))
assert r["docs_in"] == len(records), (r["docs_in"], len(records))
assert r["exact_duplicates"] > 50 and r["near_duplicates"] > 10, r
PYEOF
  ok
else
  sf_skip_part "the fortune runs: fortunes not installed ($FORTUNES)"
fi
sf_done
