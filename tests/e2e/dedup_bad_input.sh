# shardforge dedup on bad input: a malformed JSON line, a missing text field, invalid UTF-8,
# an empty text, a 100 MB document, an empty file and a .gz cut short. By default each is
# counted and reported per file with its line numbers (dedup.json, a warning) and the run
# succeeds without them; with input.strict: true the run fails with one error naming the file
# and line, and leaves no kept/. Bad configs exit 2 naming the key.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

check "generating bad inputs"
"$PY" - "$WORK" <<'PYEOF'
import gzip, json, sys
w = sys.argv[1]
lines = [
    json.dumps({"id": "g1", "text": "the first good document has enough words to shingle"}),
    json.dumps({"id": "g2", "text": "the second good document is different from the first"}),
    '{"id": "bad-json", "text": "no closing quote}',
    json.dumps({"id": "g3", "text": "the third good document"}),
    json.dumps({"id": "no-text", "body": "the text is under another key"}),
    json.dumps({"id": "g4", "text": "the first good document has enough words to shingle"}),
    '{"id": "bad-utf8", "text": "caf\xe9"}',
    json.dumps({"id": "g5", "text": "the fifth good document"}),
    json.dumps({"id": "empty", "text": " \n "}),
    json.dumps({"id": "g6", "text": "the sixth good document"}),
]
with open(w + "/mixed.jsonl", "wb") as f:
    for l in lines:
        f.write((l.encode("latin-1") if "bad-utf8" in l else l.encode()) + b"\n")
with open(w + "/huge.jsonl", "w") as f:
    f.write(json.dumps({"id": "h1", "text": "before the huge one"}) + "\n")
    f.write('{"id": "huge", "text": "' + "x" * (100 << 20) + '"}\n')
    f.write(json.dumps({"id": "h2", "text": "after the huge one"}) + "\n")
open(w + "/empty.jsonl", "w").close()
data = gzip.compress("".join(json.dumps({"id": f"z{i}", "text": f"compressed document number {i} " * 3}) + "\n"
                             for i in range(2000)).encode())
open(w + "/cut.jsonl.gz", "wb").write(data[: len(data) // 2])
PYEOF
ok

dedup_config() {  # FILE OUTDIR STRICT INPUT...
  local file=$1 out=$2 strict=$3
  shift 3
  {
    echo "input:"
    echo "  strict: $strict"
    echo "  paths:"
    local p
    for p in "$@"; do echo "    - \"$p\""; done
    echo "output:"
    echo "  dir: \"$out\""
  } >"$file"
}

inputs=("$WORK/mixed.jsonl" "$WORK/huge.jsonl" "$WORK/empty.jsonl" "$WORK/cut.jsonl.gz")
sums_before=$(sha256sum "${inputs[@]}")
for np in 1 2; do
  check "bad input counted and reported, $np rank(s)"
  dedup_config "$WORK/c.yaml" "$WORK/run$np" false "${inputs[@]}"
  run_ok "$np" "$WORK/lenient$np.log" dedup "$WORK/c.yaml"
  for f in mixed.jsonl huge.jsonl empty.jsonl cut.jsonl.gz; do
    grep -q "\[warning\] input: $WORK/$f: " "$WORK/lenient$np.log" || { show "$WORK/lenient$np.log"; fail "no warning for $f"; }
  done
  "$PY" - "$WORK/run$np" "$WORK" <<'PYEOF'
import json, sys
run, w = sys.argv[1], sys.argv[2]
r = json.load(open(run + "/dedup.json"))
bad = r["bad_input"]
def expect(f, kind, lines):
    e = bad[w + "/" + f]
    assert e["counts"].get(kind) == len(lines), (f, kind, e)
    assert e["first_lines"][kind] == lines, (f, kind, e)
expect("mixed.jsonl", "malformed_json", [3])
expect("mixed.jsonl", "missing_text", [5])
expect("mixed.jsonl", "invalid_utf8", [7])
expect("mixed.jsonl", "empty_text", [9])
assert bad[w + "/mixed.jsonl"]["bad_records"] == 4, bad
expect("huge.jsonl", "too_long", [2])
expect("empty.jsonl", "empty_file", [1])
cut = bad[w + "/cut.jsonl.gz"]
assert cut["counts"] == {"truncated": 1}, cut
assert r["bad_records"] == 7, r["bad_records"]
import subprocess
kept = [json.loads(l)["id"] for p in sorted(__import__("os").listdir(run + "/kept"))
        for l in subprocess.run(["zstd", "-dc", run + "/kept/" + p], check=True,
                                capture_output=True).stdout.splitlines()]
n_cut = cut["first_lines"]["truncated"][0] - 1  # records before the cut
assert 0 < n_cut < 2000, cut
assert kept == ["g1", "g2", "g3", "g5", "g6", "h1", "h2"] + [f"z{i}" for i in range(n_cut)], kept[:10]
dups = [json.loads(l) for l in open(run + "/duplicates.jsonl")]
assert [(d["id"], d["representative"], d["reason"]) for d in dups] == [("g4", "g1", "exact")], dups
assert r["docs_in"] == 8 + n_cut and r["docs_out"] == 7 + n_cut, r
PYEOF
  ok
done
[[ "$(sha256sum "${inputs[@]}")" == "$sums_before" ]] || fail "input files changed"

# expect_error NAME NP CONFIG RC PATTERN...: exits RC with exactly one [error] line holding
# every PATTERN, no MPI_ABORT, and no kept/ in the run directory.
expect_error() {
  local name=$1 np=$2 cfg=$3 rc=$4
  shift 4
  check "$name ($np rank(s))"
  local log="$WORK/err-${name//[^A-Za-z0-9]/_}-$np.log"
  sf_mpirun "$np" "$log" dedup "$cfg"
  [[ $SF_RC -eq $rc ]] || { show "$log"; fail "$name: exit $SF_RC, expected $rc"; }
  local n errors
  n=$(grep -cF '[error]' "$log" || true)
  errors=$(grep -F '[error]' "$log" || true)
  [[ $n -eq 1 ]] || { show "$log"; fail "$name: expected one [error] line, got $n"; }
  ! grep -q MPI_ABORT "$log" || { show "$log"; fail "$name: MPI_ABORT"; }
  local p
  for p in "$@"; do grep -qF -- "$p" <<<"$errors" || { show "$log"; fail "$name: error does not name '$p': $errors"; }; done
  [[ ! -e "$WORK/strict/kept" && ! -e "$WORK/strict/dedup.json" ]] || fail "$name: a failed run left kept/ or dedup.json"
  ok "${errors#*\[error\] }"
}

# A good run first: the failing runs must remove its kept/.
dedup_config "$WORK/s.yaml" "$WORK/strict" false "$WORK/mixed.jsonl"
run_ok 1 "$WORK/s-good.log" dedup "$WORK/s.yaml"
[[ -d "$WORK/strict/kept" ]] || fail "no kept/ after a good run"
for np in 1 2; do
  dedup_config "$WORK/s.yaml" "$WORK/strict" true "$WORK/mixed.jsonl"
  expect_error "strict: malformed JSON" "$np" "$WORK/s.yaml" 1 "$WORK/mixed.jsonl:3" malformed_json strict
  dedup_config "$WORK/s.yaml" "$WORK/strict" true "$WORK/huge.jsonl"
  expect_error "strict: 100 MB document" "$np" "$WORK/s.yaml" 1 "$WORK/huge.jsonl:2" too_long
  dedup_config "$WORK/s.yaml" "$WORK/strict" true "$WORK/cut.jsonl.gz"
  expect_error "strict: truncated gzip" "$np" "$WORK/s.yaml" 1 "$WORK/cut.jsonl.gz" truncated
  dedup_config "$WORK/s.yaml" "$WORK/strict" true "$WORK/huge.jsonl" "$WORK/empty.jsonl"
  expect_error "strict: empty file (2nd)" "$np" "$WORK/s.yaml" 1 "$WORK/huge.jsonl:2" too_long
  dedup_config "$WORK/s.yaml" "$WORK/strict" false "$WORK/missing.jsonl"
  expect_error "missing input file" "$np" "$WORK/s.yaml" 1 "$WORK/missing.jsonl" "cannot open"
done
dedup_config "$WORK/s.yaml" "$WORK/strict" false "$WORK/mixed.jsonl"
echo "dedup: {keep: biggest}" >>"$WORK/s.yaml"
expect_error "bad dedup.keep" 2 "$WORK/s.yaml" 2 "dedup.keep" "biggest"
dedup_config "$WORK/s.yaml" "$WORK/strict" false "$WORK/mixed.jsonl"
echo "dedup: {num_perm: 112, bands: 20, rows: 8}" >>"$WORK/s.yaml"
expect_error "bands x rows > num_perm" 2 "$WORK/s.yaml" 2 "dedup.bands" "num_perm"
dedup_config "$WORK/s.yaml" "$WORK/strict" false "$WORK/mixed.jsonl"
sed -i 's/^input:/input:\n  format: hdf5/' "$WORK/s.yaml"
expect_error "vector format for dedup" 1 "$WORK/s.yaml" 2 "input.format" "hdf5"
sf_done
