# shardforge run end to end: a generated JSONL corpus (plain, .gz, .zst) with planted exact,
# near and semantic duplicates, and the real fortune cookies. index.faiss, ids.jsonl and
# duplicates.jsonl must be the same bytes for 1, 2 and 4 ranks; ids.jsonl must point at the
# right records; planted semantic duplicates are found; `query` finds a document from its own
# text; the stage switches; bad input counted or (strict) fatal with nothing published; bad
# configs exit 2 naming the key.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

# query_fails RC ARGS...: `shardforge query ARGS` exits RC (docs/commands.md, "Exit codes"), output in
# $WORK/q.out.
query_fails() {
  local rc=$1
  shift
  set +e
  "$SF" query "$@" >"$WORK/q.out" 2>&1
  local got=$?
  set -e
  [[ $got -eq $rc ]] || { show "$WORK/q.out"; fail "shardforge query $* exited $got, expected $rc"; }
}

DD="$SRC/tests/e2e/dedupdata.py"

check "generating a JSONL corpus with planted exact, near and semantic duplicates"
"$PY" "$DD" planted "$WORK/corpus" --docs 400 --seed 3
"$PY" - "$WORK/corpus" <<'PYEOF'
import json, random, sys
d = sys.argv[1]
rng = random.Random(7)
orig = [json.loads(l) for l in open(d + "/a.jsonl")]
vocab = sorted({w for o in orig for w in o["text"].split()})
with open(d + "/sem.jsonl", "w") as out:
    # One word in 30 replaced: 5-gram Jaccard far below dedup.threshold, cosine about 0.95.
    for i, o in enumerate(orig[200:240]):
        w = o["text"].split(" ")
        for k in range(3, len(w), 30):
            w[k] = rng.choice(vocab)
        out.write(json.dumps({"id": f"sem-{i}", "of": o["id"], "text": " ".join(w)}) + "\n")
PYEOF
gzip "$WORK/corpus/b.jsonl"
zstd -q --rm "$WORK/corpus/c.jsonl"
ok

# run_config FILE OUTDIR EXTRA-YAML INPUT... (EXTRA: other sections than input and output)
# Every run: --set "${COMMON[@]}".
COMMON=(--set index.metric=ip --set semdedup.eps=0.1)
run_config() {
  local file=$1 out=$2 extra=$3
  shift 3
  {
    echo "input:"
    echo "  format: jsonl"
    echo "  paths:"
    local p
    for p in "$@"; do echo "    - \"$p\""; done
    echo "output:"
    echo "  dir: \"$out\""
    printf '%s\n' "$extra"
  } >"$file"
}

inputs=("$WORK/corpus/a.jsonl" "$WORK/corpus/b.jsonl.gz" "$WORK/corpus/c.jsonl.zst" "$WORK/corpus/sem.jsonl")
for np in 1 2 4; do
  check "planted corpus, $np rank(s)"
  run_config "$WORK/c$np.yaml" "$WORK/run$np" "" "${inputs[@]}"
  run_ok "$np" "$WORK/run$np.log" run "$WORK/c$np.yaml" "${COMMON[@]}"
  [[ ! -e "$WORK/run$np/run.tmp" ]] || fail "run.tmp/ left behind"
  for f in index.faiss ids.jsonl duplicates.jsonl embedder.json run.json config.yaml; do
    [[ -s "$WORK/run$np/$f" ]] || fail "$f missing"
  done
  if [[ $np -gt 1 ]]; then
    for f in index.faiss ids.jsonl duplicates.jsonl embedder.json; do
      cmp -s "$WORK/run1/$f" "$WORK/run$np/$f" || fail "$f differs between 1 and $np ranks"
    done
  fi
  ok "same index.faiss, ids.jsonl, duplicates.jsonl as 1 rank"
done

check "ids.jsonl points at the records; index and counts agree; semantic duplicates found"
"$PY" - "$WORK/run1" "$WORK/corpus" <<'PYEOF' || fail "run outputs"
import faiss, gzip, json, subprocess, sys
run, corpus = sys.argv[1], sys.argv[2]
def lines_of(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt").read().splitlines()
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], capture_output=True, text=True, check=True).stdout.splitlines()
    return open(path).read().splitlines()
cache = {}
ids = [json.loads(l) for l in open(run + "/ids.jsonl")]
for k, e in enumerate(ids):
    assert e["index_id"] == k, e
    if e["file"] not in cache:
        cache[e["file"]] = lines_of(e["file"])
    rec = json.loads(cache[e["file"]][e["line"] - 1])
    assert rec["id"] == e["id"], (e, rec["id"])
dups = [json.loads(l) for l in open(run + "/duplicates.jsonl")]
summary = json.load(open(run + "/run.json"))["commands"]["run"]["summary"]
index = faiss.read_index(run + "/index.faiss")
assert index.ntotal == len(ids) == summary["docs_kept"], (index.ntotal, len(ids), summary["docs_kept"])
kept = {e["id"] for e in ids}
removed = {d["id"] for d in dups}
assert not kept & removed
assert len(kept) + len(removed) == summary["docs_in"], (len(kept), len(removed), len(ids), len(dups), summary["docs_in"])
assert summary["docs_in"] - summary["exact_duplicates"] - summary["near_duplicates"] == summary["docs_embedded"]
reasons = {r: sum(d["reason"] == r for d in dups) for r in ("exact", "near", "semantic")}
# (an exact copy of a near duplicate is reported "near", as `dedup` does)
assert reasons["exact"] + reasons["near"] == summary["exact_duplicates"] + summary["near_duplicates"]
assert reasons["semantic"] == summary["semantic_duplicates"]
sem = {json.loads(l)["id"]: json.loads(l)["of"] for l in open(corpus + "/sem.jsonl")}
for d in dups:
    if d["reason"] == "semantic":  # no false positives: only planted ones, with their original
        assert d["id"] in sem and d["representative"] == sem[d["id"]], d
found = sum(1 for d in dups if d["reason"] == "semantic")
assert found >= 0.8 * len(sem), f"{found} of {len(sem)} planted semantic duplicates found"
print(f"{len(ids)} indexed, {reasons}, {found}/{len(sem)} planted semantic found")
PYEOF
ok

check "query: a document's own text finds it first"
for id in orig-3 orig-150 orig-399; do
  query_finds_itself "$WORK/run2" "$WORK/corpus/a.jsonl" "$id"
done
text=$QUERY_TEXT  # orig-399's, for query --json below
query_fails 2 "$WORK/nowhere" "text"  # no config.yaml: the config file cannot be read
grep -q "nowhere/config.yaml" "$WORK/q.out" || { show "$WORK/q.out"; fail "message should name the file"; }
ok

check "query --json: one JSON object per hit per line; an empty query text is an error (exit 2)"
"$SF" query "$WORK/run2" "$text" -k 3 --nprobe 4 --json >"$WORK/qj.out" 2>"$WORK/qj.err" ||
  { show "$WORK/qj.err"; fail "query --json exited non-zero"; }
"$PY" - "$WORK/qj.out" "$id" "$WORK/corpus/a.jsonl" "$WORK/run2/ids.jsonl" "$text" <<'PYEOF' || { show "$WORK/qj.out"; fail "query --json"; }
import json, sys
out, want, path, ids_path, text = sys.argv[1:]
hits = [json.loads(line) for line in open(out)]
ids = [json.loads(line) for line in open(ids_path)]
assert [h["rank"] for h in hits] == [1, 2, 3], hits
for h in hits:
    assert set(h) == {"rank", "score", "index_id", "id", "file", "line", "text"}, h
    e = ids[h["index_id"]]
    assert (e["id"], e["file"], e["line"]) == (h["id"], h["file"], h["line"]), (h, e)
top = hits[0]
assert top["id"] == want and top["file"] == path and abs(top["score"] - 1) < 1e-4, top
assert text.startswith(top["text"].removesuffix("...")), top
print(f"{len(hits)} hits, top {top['id']} at {top['score']:.4f}")
PYEOF
query_fails 2 "$WORK/run2" ""
grep -q "the query text is empty" "$WORK/q.out" || { show "$WORK/q.out"; fail "an empty query needs its message"; }
query_fails 2 "$WORK/run2" $' \t\n ' --json
grep -q "the query text is empty" "$WORK/q.out" || { show "$WORK/q.out"; fail "a blank query needs its message"; }
ok

check "stage switches"
run_config "$WORK/s1.yaml" "$WORK/nosem" "run: {semdedup: false}" "${inputs[@]}"
run_ok 2 "$WORK/nosem.log" run "$WORK/s1.yaml" "${COMMON[@]}"
! grep -q semantic "$WORK/nosem/duplicates.jsonl" || fail "semantic duplicates with run.semdedup false"
[[ $(wc -l <"$WORK/nosem/ids.jsonl") -eq $(($(wc -l <"$WORK/run1/ids.jsonl") + $(grep -c semantic "$WORK/run1/duplicates.jsonl"))) ]] ||
  fail "run.semdedup false should index the semantic duplicates too"
run_config "$WORK/s2.yaml" "$WORK/nodedup" "run: {dedup: false, semdedup: false}" "${inputs[@]}"
run_ok 2 "$WORK/nodedup.log" run "$WORK/s2.yaml" "${COMMON[@]}"
[[ ! -s "$WORK/nodedup/duplicates.jsonl" ]] || fail "duplicates with run.dedup and run.semdedup false"
[[ $(wc -l <"$WORK/nodedup/ids.jsonl") -eq $(($(wc -l <"$WORK/run1/ids.jsonl") + $(wc -l <"$WORK/run1/duplicates.jsonl"))) ]] ||
  fail "run.dedup false should index every document"
run_config "$WORK/s3.yaml" "$WORK/noindex" "run: {index: false}" "${inputs[@]}"
run_ok 2 "$WORK/noindex.log" run "$WORK/s3.yaml" "${COMMON[@]}"
[[ ! -e "$WORK/noindex/index.faiss" ]] || fail "index.faiss with run.index false"
cmp -s "$WORK/run1/duplicates.jsonl" "$WORK/noindex/duplicates.jsonl" || fail "run.index false changed the duplicates"
"$PY" -c "import json,sys; s=[x['name'] for x in json.load(open(sys.argv[1]))['commands']['run']['stages']]; assert 'add' not in s and 'semdedup' in s, s" \
  "$WORK/noindex/run.json" || fail "stages of run.index false"
query_fails 1 "$WORK/noindex" "text"  # the run made no index.faiss
ok

check "run.write_kept: kept/ as dedup writes it (the same files), for 1 and 4 ranks; listed in the outputs marker"
for np in 1 4; do
  run_config "$WORK/k$np.yaml" "$WORK/kept$np" "run: {write_kept: true}" "${inputs[@]}"
  run_ok "$np" "$WORK/kept$np.log" run "$WORK/k$np.yaml" "${COMMON[@]}" --set output.max_file_bytes=20000
  [[ ! -e "$WORK/kept$np/run.tmp" ]] || fail "run.tmp/ left behind"
done
run_config "$WORK/kd.yaml" "$WORK/keptd" "" "${inputs[@]}"
run_ok 2 "$WORK/keptd.log" dedup "$WORK/kd.yaml" --set output.max_file_bytes=20000
[[ $(ls "$WORK/keptd/kept" | wc -l) -ge 4 ]] || fail "dedup's kept/ should hold several shards"
for np in 1 4; do
  diff <(cd "$WORK/keptd/kept" && sha256sum -- *) <(cd "$WORK/kept$np/kept" && sha256sum -- *) ||
    fail "run.write_kept at $np rank(s): kept/ differs from dedup's"
done
grep -q '"kept/00000.jsonl.zst"' "$WORK/kept1/checkpoints/outputs.json" || fail "the outputs marker does not list kept/"
run_ok 1 "$WORK/kept1b.log" run "$WORK/k1.yaml" "${COMMON[@]}" --resume --set output.max_file_bytes=20000
grep -q "nothing to do" "$WORK/kept1b.log" || { show "$WORK/kept1b.log"; fail "a complete run.write_kept run was redone"; }
rm "$WORK/kept1/kept/00001.jsonl.zst"
run_ok 1 "$WORK/kept1c.log" run "$WORK/k1.yaml" "${COMMON[@]}" --resume --set output.max_file_bytes=20000
grep -q "outputs: redo" "$WORK/kept1c.log" || { show "$WORK/kept1c.log"; fail "a lost kept/ shard was not noticed"; }
diff <(cd "$WORK/keptd/kept" && sha256sum -- *) <(cd "$WORK/kept1/kept" && sha256sum -- *) ||
  fail "the redone kept/ differs"
ok

check "run.eval: recall of the index for its own documents"
run_ok 2 "$WORK/eval.log" run "$WORK/s3.yaml" "${COMMON[@]}" --set run.index=true --set run.eval=true \
  --set output.dir="$WORK/evalrun" --set "eval.nprobe=[1,64]"
"$PY" -c "
import json, sys
e = json.load(open(sys.argv[1]))
r = {p['nprobe']: p for p in e['results']}
indexed = sum(1 for _ in open(sys.argv[1].replace('eval.json', 'ids.jsonl')))
# eval.max_queries unset: min(1000, the indexed documents) of them are the queries.
assert e['queries'] == min(indexed, 1000), (e['queries'], indexed)
assert r[64]['recall@1'] == 1.0 and r[64]['recall@10'] > 0.999, r[64]
assert r[1]['recall@10'] <= r[64]['recall@10'], r
print(e['queries'], 'queries;', {n: (p['recall@1'], round(p['recall@10'], 4)) for n, p in r.items()})
" "$WORK/evalrun/eval.json" || fail "eval.json"
grep -q "recall@10" "$WORK/eval.log" || fail "the recall table is printed"
sf_mpirun 2 "$WORK/cfg.log" run "$WORK/s3.yaml" --set run.eval=true
[[ $SF_RC -eq 2 ]] && grep -q "run.eval needs run.index" "$WORK/cfg.log" || { show "$WORK/cfg.log"; fail "run.eval without run.index"; }
ok

check "run.eval: the recommended nprobe is in eval.json, stored in index.faiss, query's default; --resume skips"
sfdata recommended "$WORK/evalrun/eval.json" "$WORK/evalrun/index.faiss"
rec=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["recommended"]["nprobe"])' "$WORK/evalrun/eval.json")
grep -q "^recommended nprobe $rec: recall@10 " "$WORK/eval.log.stdout" || { show "$WORK/eval.log"; fail "no recommended line"; }
"$SF" query "$WORK/evalrun" "some words" -k 1 >"$WORK/qr.out" 2>&1 || { show "$WORK/qr.out"; fail "query exited non-zero"; }
grep -q "query: nprobe $rec (from eval.json (recommended)" "$WORK/qr.out" || { show "$WORK/qr.out"; fail "query's default nprobe is not eval's"; }
"$SF" query "$WORK/evalrun" "some words" -k 1 --nprobe 3 >"$WORK/qr.out" 2>&1 || { show "$WORK/qr.out"; fail "query --nprobe 3"; }
if grep -q "query: nprobe" "$WORK/qr.out"; then show "$WORK/qr.out"; fail "query --nprobe 3 took a default"; fi
"$SF" query "$WORK/run2" "some words" -k 1 >"$WORK/qr.out" 2>&1 || { show "$WORK/qr.out"; fail "query of a run without eval"; }
grep -q "query: nprobe 8 (from the default" "$WORK/qr.out" || { show "$WORK/qr.out"; fail "query without eval.json: nprobe 8"; }
run_ok 2 "$WORK/eval-resume.log" run "$WORK/s3.yaml" "${COMMON[@]}" --set run.index=true --set run.eval=true \
  --set output.dir="$WORK/evalrun" --set "eval.nprobe=[1,64]" --resume
grep -q "nothing to do" "$WORK/eval-resume.log" || { show "$WORK/eval-resume.log"; fail "run --resume after eval did not skip"; }
# Another target: eval (and outputs) redone on the stored index, not the merge; then skipped.
run_ok 2 "$WORK/eval-target.log" run "$WORK/s3.yaml" "${COMMON[@]}" --set run.index=true --set run.eval=true \
  --set output.dir="$WORK/evalrun" --set "eval.nprobe=[1,64]" --set eval.target_recall=0.99 --resume
grep -q "merge: complete" "$WORK/eval-target.log" && grep -q "eval: redo: eval.target_recall changed" "$WORK/eval-target.log" ||
  { show "$WORK/eval-target.log"; fail "run --resume with another eval.target_recall: eval only"; }
sfdata recommended "$WORK/evalrun/eval.json" "$WORK/evalrun/index.faiss"
run_ok 2 "$WORK/eval-target2.log" run "$WORK/s3.yaml" "${COMMON[@]}" --set run.index=true --set run.eval=true \
  --set output.dir="$WORK/evalrun" --set "eval.nprobe=[1,64]" --set eval.target_recall=0.99 --resume
grep -q "nothing to do" "$WORK/eval-target2.log" || { show "$WORK/eval-target2.log"; fail "the second --resume did not skip"; }
ok "nprobe $rec"

check "precomputed vectors from a JSONL field"
"$PY" - "$WORK/vec.jsonl" <<'PYEOF'
import json, random, sys
rng = random.Random(1)
with open(sys.argv[1], "w") as f:
    for i in range(300):
        f.write(json.dumps({"id": i, "text": f"document {i}", "vec": [rng.gauss(0, 1) for _ in range(8)]}) + "\n")
PYEOF
run_config "$WORK/p.yaml" "$WORK/pre" "embed: {method: precomputed, vectors_field: vec}" "$WORK/vec.jsonl"
run_ok 2 "$WORK/pre.log" run "$WORK/p.yaml" "${COMMON[@]}" --set index.factory=IVF4,Flat
[[ $(($(wc -l <"$WORK/pre/ids.jsonl") + $(grep -c semantic "$WORK/pre/duplicates.jsonl"))) -eq 300 ]] ||
  fail "precomputed: the 300 documents are indexed or semantic duplicates"
"$PY" -c "import faiss,sys; i=faiss.read_index(sys.argv[1]); assert i.d == 8, i.d" "$WORK/pre/index.faiss" ||
  fail "precomputed: dimension 8"
query_fails 1 "$WORK/pre" "document 3"  # the run's vectors came with its data
grep -q "precomputed" "$WORK/q.out" || { show "$WORK/q.out"; fail "message should say why"; }
ok

check "precomputed: a record whose vector has the wrong length fails the run (exit 1) with the embedder's error, not a write error; nothing published, run.tmp/ gone"
cp "$WORK/vec.jsonl" "$WORK/vecbad.jsonl"
echo '{"id": 300, "text": "document 300", "vec": [1, 2, 3]}' >>"$WORK/vecbad.jsonl"
run_config "$WORK/pb.yaml" "$WORK/prebad" "embed: {method: precomputed, vectors_field: vec}" "$WORK/vecbad.jsonl"
sf_mpirun 2 "$WORK/prebad.log" run "$WORK/pb.yaml" "${COMMON[@]}" --set index.factory=IVF4,Flat
[[ $SF_RC -eq 1 ]] || { show "$WORK/prebad.log"; fail "exit $SF_RC, expected 1"; }
grep '\[error\]' "$WORK/prebad.log" | grep -q "row 300: embed.vectors_field 'vec' has 3 values, expected 8" ||
  { show "$WORK/prebad.log"; fail "the error should name the row, the field and the lengths"; }
grep '\[error\]' "$WORK/prebad.log" | grep -q "cannot write" &&
  { show "$WORK/prebad.log"; fail "a bad record is not a write error"; }
for f in index.faiss ids.jsonl run.tmp; do
  [[ ! -e "$WORK/prebad/$f" ]] || fail "a failed embed left $f"
done
ok "$(grep '\[error\]' "$WORK/prebad.log" | head -1 | sed 's/^.*\[error\] //')"

check "bad input: counted and reported; strict: fatal, nothing published"
cp "$WORK/corpus/a.jsonl" "$WORK/bad.jsonl"
printf '{"id": "broken", "text": "no end\n{"id": "blank", "text": "  "}\n' >>"$WORK/bad.jsonl"
run_config "$WORK/b.yaml" "$WORK/bad" "" "$WORK/bad.jsonl"
run_ok 2 "$WORK/bad.log" run "$WORK/b.yaml" "${COMMON[@]}"
"$PY" -c "import json,sys; s=json.load(open(sys.argv[1]))['commands']['run']['summary']; assert s['bad_records']==2, s['bad_records']; f=s['bad_input'][sys.argv[2]]; assert f['first_lines']=={'malformed_json':[401],'empty_text':[402]}, f" \
  "$WORK/bad/run.json" "$WORK/bad.jsonl" || fail "bad input report"
grep -q "bad.jsonl: 2 bad record(s) skipped" "$WORK/bad.log" || fail "warning for bad input"
sf_mpirun 2 "$WORK/bads.log" run "$WORK/b.yaml" "${COMMON[@]}" --set input.strict=true --set output.dir="$WORK/bads"
[[ $SF_RC -eq 1 ]] || { show "$WORK/bads.log"; fail "strict: exit $SF_RC, expected 1"; }
grep -q "bad.jsonl:401: malformed_json" "$WORK/bads.log" || { show "$WORK/bads.log"; fail "strict: message"; }
for f in index.faiss ids.jsonl duplicates.jsonl run.json embedder.json; do
  [[ ! -e "$WORK/bads/$f" ]] || fail "strict failure published $f"
done
ok

check "too few documents for the index: a clear error"
head -20 "$WORK/corpus/a.jsonl" >"$WORK/tiny.jsonl"
run_config "$WORK/t.yaml" "$WORK/tiny" "" "$WORK/tiny.jsonl"
sf_mpirun 2 "$WORK/tiny.log" run "$WORK/t.yaml" "${COMMON[@]}" --set index.factory=IVF64,Flat
[[ $SF_RC -eq 1 ]] || { show "$WORK/tiny.log"; fail "tiny: exit $SF_RC, expected 1"; }
grep -q "only 20 document(s) left after dedup" "$WORK/tiny.log" || { show "$WORK/tiny.log"; fail "tiny: message"; }
[[ ! -e "$WORK/tiny/index.faiss" && ! -e "$WORK/tiny/run.json" ]] || fail "tiny: published"
ok

check "bad configs exit 2 naming the key"
for bad in "embed.method=bogus:embed.method" "embed.dim=-1:embed.dim" "semdedup.eps=3:semdedup.eps" \
           "embed.method=precomputed:embed.vectors" "index.factory=IVF8,Bogus:IVF8,Bogus"; do
  set=${bad%%:*} key=${bad#*:}
  sf_mpirun 2 "$WORK/cfg.log" run "$WORK/c1.yaml" --set "$set" --set output.dir="$WORK/cfg"
  [[ $SF_RC -eq 2 ]] || { show "$WORK/cfg.log"; fail "--set $set: exit $SF_RC, expected 2"; }
  grep -q "$key" "$WORK/cfg.log" || { show "$WORK/cfg.log"; fail "--set $set: message should name $key"; }
done
ok

if [[ -r /usr/share/games/fortunes/fortunes ]]; then
  check "the fortune cookies (configs/fortunes-run.yaml): same bytes at 1 and 2 ranks"
  for np in 1 2; do
    run_ok "$np" "$WORK/f$np.log" run "$SRC/configs/fortunes-run.yaml" --set output.dir="$WORK/f$np"
  done
  for f in index.faiss ids.jsonl duplicates.jsonl; do
    cmp -s "$WORK/f1/$f" "$WORK/f2/$f" || fail "fortunes: $f differs between 1 and 2 ranks"
  done
  # No id field: every duplicate (semantic ones too) named by file and line, as ids.jsonl does.
  "$PY" - "$WORK/f1" <<'PYEOF' || fail "fortunes: duplicates.jsonl file and line"
import json, sys
dups = [json.loads(l) for l in open(sys.argv[1] + "/duplicates.jsonl")]
assert {d["reason"] for d in dups} == {"exact", "near", "semantic"}, {d["reason"] for d in dups}
for d in dups:
    assert d["file"].startswith("/usr/share/games/fortunes/") and d["line"] >= 1, d
    assert d["representative_file"].startswith("/usr/share/games/fortunes/"), d
    assert d["representative_line"] >= 1, d
PYEOF
  "$SF" query "$WORK/f2" "Computers are useless. They can only give you answers." -k 1 >"$WORK/q.out"
  grep -q "Pablo Picasso" "$WORK/q.out" || { show "$WORK/q.out"; fail "fortunes query"; }
  ok "$(wc -l <"$WORK/f1/ids.jsonl") indexed, $(grep -c semantic "$WORK/f1/duplicates.jsonl") semantic duplicates"
fi
sf_done
