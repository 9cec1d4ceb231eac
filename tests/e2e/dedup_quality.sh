# dedup.write_pairs and shardforge dedup-quality end to end, on a generated JSONL corpus with
# planted exact and near duplicates plus near-threshold variants. pairs.jsonl must be the same
# for 1, 2 and 4 ranks, published whole (no pairs.tmp/ left), hold every planted duplicate
# with its reason, and join only documents of one cluster. dedup-quality's figures must equal
# an independent Python count (exact Jaccard of word 5-gram sets over all pairs).
source "$(dirname "$0")/lib.bash"
sf_init "$@"
DD="$SRC/tests/e2e/dedupdata.py"

check "generating a corpus with planted duplicates and near-threshold variants"
"$PY" "$DD" planted "$WORK/corpus" --docs 250 --seed 11
# Variants with 2..8 of 120 words replaced: 5-gram Jaccard from ~0.85 down to ~0.55, so some
# pairs fall on each side of the threshold and the figures are not all 1.
"$PY" - "$WORK/corpus" <<'PYEOF'
import json, random, sys
d = sys.argv[1]
rng = random.Random(5)
origs = [json.loads(l) for l in open(d + "/a.jsonl")]
with open(d + "/c.jsonl", "a") as out:
    for i, o in enumerate(origs[-60:]):
        w = o["text"].split(" ")
        for k in rng.sample(range(len(w)), 2 + i % 7):
            w[k] = "qq" + str(rng.randrange(10**6))
        out.write(json.dumps({"id": f"var-{i}", "text": " ".join(w)}) + "\n")
PYEOF
inputs=("$WORK/corpus/a.jsonl" "$WORK/corpus/b.jsonl" "$WORK/corpus/c.jsonl")
dedup_config() {  # FILE OUTDIR
  {
    echo "input:"
    echo "  format: jsonl"
    echo "  paths:"
    local p
    for p in "${inputs[@]}"; do echo "    - \"$p\""; done
    echo "dedup:"
    echo "  threshold: 0.7"
    echo "  write_pairs: true"
    echo "output:"
    echo "  dir: \"$2\""
  } >"$1"
}
ok "$(cat "${inputs[@]}" | wc -l) documents"

for np in 1 2 4; do
  check "dedup with dedup.write_pairs, $np rank(s)"
  dedup_config "$WORK/c$np.yaml" "$WORK/run$np"
  run_ok "$np" "$WORK/dedup$np.log" dedup "$WORK/c$np.yaml"
  [[ -s "$WORK/run$np/pairs.jsonl" ]] || fail "no pairs.jsonl"
  [[ ! -e "$WORK/run$np/pairs.tmp" ]] || fail "pairs.tmp/ left behind"
  if [[ $np -gt 1 ]]; then
    cmp -s "$WORK/run1/pairs.jsonl" "$WORK/run$np/pairs.jsonl" ||
      fail "pairs.jsonl differs between 1 and $np ranks"
  fi
  ok "$(wc -l <"$WORK/run$np/pairs.jsonl") verified pairs; same as 1 rank"
done

check "pairs.jsonl: planted duplicates present, ends in one cluster, similarities"
"$PY" - "$WORK/corpus" "$WORK/run1" <<'PYEOF'
import json, sys
corpus, run = sys.argv[1:]
planted = json.load(open(corpus + "/planted.json"))
pairs = [json.loads(l) for l in open(run + "/pairs.jsonl")]
got = {(p["a"], p["b"]): p for p in pairs}
assert len(got) == len(pairs), "a pair is listed twice"
for dup, orig in planted["exact"].items():
    p = got.get((dup, orig))
    assert p and p["reason"] == "exact" and p["similarity"] == 1.0, (dup, orig, p)
for dup, orig in planted["near"].items():
    if dup.startswith("chain-"):
        # chain-near-i and chain-near-copy-i are exact copies: the one read first is the
        # exact survivor with the near pair to the original, the other its exact duplicate.
        copy = dup.replace("chain-near-", "chain-near-copy-")
        near = [p for p in pairs if p["b"] == orig and p["a"] in (dup, copy)]
        exact = [p for p in pairs if {p["a"], p["b"]} == {dup, copy}]
        assert len(near) == 1 and near[0]["reason"] == "near", (dup, near)
        assert len(exact) == 1 and exact[0]["reason"] == "exact" and exact[0]["b"] == near[0]["a"], exact
        continue
    p = got.get((dup, orig))
    assert p and p["reason"] == "near" and p["similarity"] >= 0.7, (dup, orig, p)
for p in pairs:
    assert p["similarity"] >= 0.7, p
cluster = {}
for l in open(run + "/duplicates.jsonl"):
    d = json.loads(l)
    cluster[d["id"]] = d["cluster"]
for p in pairs:
    ca, cb = cluster.get(p["a"], p["a"]), cluster.get(p["b"], p["b"])
    assert ca == cb, ("pair ends in different clusters", p, ca, cb)
dj = json.load(open(run + "/dedup.json"))
assert dj["params"]["write_pairs"] is True, dj["params"]
near = sum(p["reason"] == "near" for p in pairs)
assert near == dj["near"]["verified_edges"], (near, dj["near"])
assert sum(p["reason"] == "exact" for p in pairs) == dj["exact_duplicates"]
print(f"   {len(pairs)} pairs ({near} near)")
PYEOF
ok

check "dedup-quality against an independent all-pairs count"
run_ok 1 "$WORK/quality.log" dedup-quality "$WORK/c1.yaml"
"$PY" - "$WORK/run1" "${inputs[@]}" <<'PYEOF'
import itertools, json, re, string, sys
run, files = sys.argv[1], sys.argv[2:]
t = 0.7
docs = [json.loads(l) for f in files for l in open(f)]
ids = [d["id"] for d in docs]
def shingles(text):
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    w = text.split()
    return {tuple(w[i:i + 5]) for i in range(max(1, len(w) - 4))} if w else set()
sets = [shingles(d["text"]) for d in docs]
row = {x: i for i, x in enumerate(ids)}
rep, cluster = {}, list(range(len(docs)))
parent = list(range(len(docs)))
def find(x):
    while parent[x] != x:
        x = parent[x]
    return x
for l in open(run + "/duplicates.jsonl"):
    d = json.loads(l)
    r = row[d["id"]]
    rep[r] = row[d["representative"]]
    for o in (row[d["cluster"]], rep[r]):
        a, b = find(r), find(o)
        parent[max(a, b)] = min(a, b)
cl = [find(i) for i in range(len(docs))]
def jac(a, b):
    A, B = sets[a], sets[b]
    return 1.0 if not A and not B else len(A & B) / len(A | B)
true = [(a, b) for a, b in itertools.combinations(range(len(docs)), 2) if jac(a, b) >= t]
found = sum(cl[a] == cl[b] for a, b in true)
pairs = {tuple(sorted((row[p["a"]], row[p["b"]]))) for p in map(json.loads, open(run + "/pairs.jsonl"))}
claimed_true = sum(jac(a, b) >= t for a, b in pairs)
sizes = {}
for c in cl:
    sizes[c] = sizes.get(c, 0) + 1
same = sum(k * (k - 1) // 2 for k in sizes.values())
kept = [i not in rep for i in range(len(docs))]
to_kept = sum(any(kept[b] and jac(r, b) >= t for b in range(len(docs)) if b != r) for r in rep)
q = json.load(open(run + "/quality.json"))
want = {"true_pairs": len(true), "true_pairs_in_one_cluster": found, "verified_pairs": len(pairs),
        "verified_true": claimed_true, "pairs_in_one_cluster": same, "removed": len(rep),
        "removed_with_a_kept_true_duplicate": to_kept}
for k, v in want.items():
    assert q[k] == v, (k, q[k], v)
assert q["format_version"] == 2 and "precision" in q["definitions"], q.keys()
assert abs(q["precision"] - claimed_true / len(pairs)) < 1e-12
assert abs(q["recall"] - found / len(true)) < 1e-12
assert q["true_pairs"] > q["true_pairs_in_one_cluster"] or q["verified_true"] < q["verified_pairs"] \
    or q["transitive_precision"] < 1, "the corpus should not be trivially perfect"
print("   true pairs %d, precision %.4f, recall %.4f, transitive %.4f" % (
    len(true), q["precision"], q["recall"], q["transitive_precision"]))
PYEOF
ok

check "without dedup.write_pairs: no pairs.jsonl (stale one removed); dedup-quality says why"
run_ok 2 "$WORK/nopairs.log" dedup "$WORK/c1.yaml" --set dedup.write_pairs=false
[[ ! -e "$WORK/run1/pairs.jsonl" ]] || fail "a stale pairs.jsonl survived a run without write_pairs"
sf_mpirun 1 "$WORK/q2.log" dedup-quality "$WORK/c1.yaml"
[[ $SF_RC -eq 1 ]] || { show "$WORK/q2.log"; fail "dedup-quality without pairs.jsonl exited $SF_RC, expected 1"; }
grep -q "pairs.jsonl.*dedup.write_pairs" "$WORK/q2.log" || { show "$WORK/q2.log"; fail "no clear message"; }
ok

sf_done
