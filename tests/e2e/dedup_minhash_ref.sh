# MinHash signatures against the Python reference (bench/minhash_ref.py: Python's
# unicodedata NFKC + casefold, xxhash, numpy, datasketch's permutations and arithmetic): the
# signatures of build/bench/dedup_sketch_bench --dump must be identical, on generated JSONL
# (with non-ASCII text) and on real fortune cookies.
source "$(dirname "$0")/lib.bash"
sf_init "$@"
BENCH="$(dirname "$SF")/../bench/dedup_sketch_bench"
[[ -x $BENCH ]] || fail "$BENCH is not built"
"$PY" -c "import xxhash" || fail "python3-xxhash is missing (scripts/install-deps.sh installs it)"

check "generated JSONL with Unicode text"
"$PY" "$SRC/tests/e2e/dedupdata.py" planted "$WORK/corpus" --docs 200 --seed 9
cat "$WORK/corpus/a.jsonl" "$WORK/corpus/b.jsonl" "$WORK/corpus/c.jsonl" >"$WORK/all.jsonl"
"$BENCH" "$WORK/all.jsonl" --dump 100000 >"$WORK/cpp.jsonl"
inputs=("$WORK/all.jsonl")
FORTUNES=/usr/share/games/fortunes
if [[ -r $FORTUNES/fortunes && -r $FORTUNES/literature ]]; then
  "$BENCH" --format fortune "$FORTUNES/fortunes" "$FORTUNES/literature" --dump 100000 >"$WORK/cpp_f.jsonl"
else
  sf_skip_part "the fortune signatures: fortunes (fortunes, literature) not installed ($FORTUNES)"
fi
"$PY" - "$SRC/bench" "$WORK" "$FORTUNES" <<'PYEOF'
import json, os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import minhash_ref as m
work, fortunes = sys.argv[2], sys.argv[3]
a, b = m.permutations(112, 1)
def sig(text):
    h = m.shingle_hashes(m.normalise(text), 5)
    if not h:
        return [0xffffffff] * 112
    hv = np.array(h, dtype=np.uint64)[:, None]
    with np.errstate(over="ignore"):
        v = ((hv * a + b) % np.uint64(m.MERSENNE)) & np.uint64(0xffffffff)
    return [int(x) for x in v.min(axis=0)]
def compare(name, texts, path):
    cpp = [json.loads(l) for l in open(path)]
    assert len(cpp) == len(texts), (name, len(cpp), len(texts))
    bad = [i for i, (t, c) in enumerate(zip(texts, cpp)) if sig(t) != c]
    assert not bad, f"{name}: {len(bad)} of {len(texts)} signatures differ, first: {texts[bad[0]]!r}"
    print(f"   {name}: {len(texts)} signatures identical")
compare("generated", [json.loads(l)["text"] for l in open(work + "/all.jsonl")], work + "/cpp.jsonl")
if os.path.exists(work + "/cpp_f.jsonl"):
    recs = []
    for f in ("fortunes", "literature"):
        cur = []
        data = open(os.path.join(fortunes, f), encoding="utf-8").read()
        for line in data.split("\n")[:-1] if data.endswith("\n") else data.split("\n"):
            if line == "%":
                if "".join(cur).strip():
                    recs.append("".join(cur))
                cur = []
            else:
                cur.append(line + "\n")
        if "".join(cur).strip():
            recs.append("".join(cur))
    compare("fortunes", recs, work + "/cpp_f.jsonl")
PYEOF
ok
sf_done
