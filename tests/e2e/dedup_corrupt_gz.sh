# shardforge dedup on a corrupt (not truncated) .gz: two members, the second damaged (a byte of
# its CRC, or of its deflate data). The damaged member's records never reach kept/: by default
# they are dropped and counted as "corrupt" in dedup.json and the warning, which name the file
# and the member's byte offset; with input.strict: true the run fails (exit 1) with one error.
# Regression (issue 12): a damaged record reached kept/ and the warning said "truncated".
source "$(dirname "$0")/lib.bash"
sf_init "$@"

check "generating a.jsonl.gz: member 1 = docs 0-99, member 2 = docs 100-299; crc.jsonl.gz and data.jsonl.gz damage member 2"
"$PY" - "$WORK" <<'PYEOF'
import gzip, json, sys
w = sys.argv[1]
docs = "".join(json.dumps({"id": f"d{i}", "text": f"document {i} says {i * 7919 % 10007} things"}) + "\n"
               for i in range(300))
cut = sum(len(l) + 1 for l in docs.split("\n")[:100])
first, second = gzip.compress(docs[:cut].encode()), gzip.compress(docs[cut:].encode())
open(w + "/member1.bytes", "w").write(str(len(first)))
for name, at in (("crc", len(second) - 8), ("data", len(second) // 2)):
    bad = bytearray(second)
    bad[at] ^= 0x55
    open(f"{w}/{name}.jsonl.gz", "wb").write(first + bytes(bad))
PYEOF
member1=$(cat "$WORK/member1.bytes")
ok "member 2 starts at byte $member1"

dedup_config() {  # FILE OUTDIR STRICT INPUT
  printf 'input:\n  strict: %s\n  paths: ["%s"]\noutput:\n  dir: "%s"\n' "$3" "$4" "$2" >"$1"
}

for name in crc data; do
  for np in 1 2; do
    check "$name: member 2 dropped and counted as corrupt, $np rank(s)"
    dedup_config "$WORK/c.yaml" "$WORK/run-$name-$np" false "$WORK/$name.jsonl.gz"
    run_ok "$np" "$WORK/lenient-$name-$np.log" dedup "$WORK/c.yaml"
    grep -F "[warning] input: $WORK/$name.jsonl.gz: " "$WORK/lenient-$name-$np.log" | grep -qF corrupt ||
      { show "$WORK/lenient-$name-$np.log"; fail "no warning naming the file and 'corrupt'"; }
    ! grep -qF truncated "$WORK/lenient-$name-$np.log" || { show "$WORK/lenient-$name-$np.log"; fail "reported as truncated"; }
    "$PY" - "$WORK/run-$name-$np" "$WORK/$name.jsonl.gz" "$name" <<'PYEOF'
import json, os, sys
run, path, name = sys.argv[1:]
r = json.load(open(run + "/dedup.json"))
e = r["bad_input"][path]
assert list(e["counts"]) == ["corrupt"], e
assert e["first_lines"]["corrupt"][0] == 101, e  # the first line of member 2
if name == "crc":
    assert e["counts"]["corrupt"] == 200, e  # every line of member 2
import subprocess
kept = [json.loads(l)["id"] for p in sorted(os.listdir(run + "/kept"))
        for l in subprocess.run(["zstd", "-dc", run + "/kept/" + p], check=True,
                                capture_output=True).stdout.splitlines()]
assert kept == [f"d{i}" for i in range(100)], kept[95:105]
assert r["docs_in"] == 100, r
PYEOF
    ok
  done
  check "$name: input.strict: true fails with one error naming the file, the member's byte and 'corrupt'"
  dedup_config "$WORK/s.yaml" "$WORK/strict-$name" true "$WORK/$name.jsonl.gz"
  sf_mpirun 2 "$WORK/strict-$name.log" dedup "$WORK/s.yaml"
  [[ $SF_RC -eq 1 ]] || { show "$WORK/strict-$name.log"; fail "exit $SF_RC, expected 1"; }
  errors=$(grep -F '[error]' "$WORK/strict-$name.log" || true)
  [[ $(grep -cF '[error]' "$WORK/strict-$name.log") -eq 1 ]] || { show "$WORK/strict-$name.log"; fail "expected one [error] line"; }
  for p in "$WORK/$name.jsonl.gz:101" corrupt "gzip member at byte $member1" strict; do
    grep -qF -- "$p" <<<"$errors" || { show "$WORK/strict-$name.log"; fail "the error does not say '$p': $errors"; }
  done
  [[ ! -e "$WORK/strict-$name/kept" ]] || fail "a failed run left kept/"
  ok "${errors#*\[error\] }"
done

sf_done
