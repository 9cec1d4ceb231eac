# output.layout: ondisk: index.faiss + index.ivfdata (FAISS's OnDiskInvertedLists), the same
# bytes for 1 to 4 ranks; stock faiss (python) reads it, in the run directory and moved, and
# finds what the in-memory layout finds; eval, search (sharded) and query work on it.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

ROWS=4000
DIM=24

check "generating a ${ROWS} x ${DIM} gaussian mixture and 50 queries"
sfdata gen "$WORK/base.fvecs" --rows $ROWS --dim $DIM --seed 31
sfdata gen "$WORK/q.fvecs" --rows 50 --dim $DIM --seed 32
ok

check "IVF32,Flat in memory (2 ranks) and on disk (1, 2, 3, 4 ranks): the on-disk files are the same bytes"
write_config "$WORK/c.yaml" "$WORK/mem" "IVF32,Flat" "$WORK/base.fvecs"
printf 'eval:\n  queries: "%s"\n  nprobe: [4]\n' "$WORK/q.fvecs" >>"$WORK/c.yaml"
run_ok 2 "$WORK/mem.log" build "$WORK/c.yaml"
for np in 1 2 3 4; do
  run_ok $np "$WORK/od$np.log" build "$WORK/c.yaml" --set output.layout=ondisk --set "output.dir=$WORK/od$np"
  [[ -f $WORK/od$np/index.ivfdata ]] || fail "$np rank(s): no index.ivfdata"
  [[ ! -e $WORK/od$np/index.faiss.tmp && ! -e $WORK/od$np/index.ivfdata.tmp ]] || fail "temporary files left"
done
for np in 2 3 4; do
  cmp "$WORK/od1/index.faiss" "$WORK/od$np/index.faiss" || fail "index.faiss differs between 1 and $np ranks"
  cmp "$WORK/od1/index.ivfdata" "$WORK/od$np/index.ivfdata" || fail "index.ivfdata differs between 1 and $np ranks"
done
ok

check "stock faiss: the on-disk index (default read in its folder; IO_FLAG_ONDISK_SAME_DIR from elsewhere, also moved) finds what the in-memory one finds (also read with IO_FLAG_MMAP)"
mv "$WORK/od3" "$WORK/moved"
(cd "$WORK/od2" && "$PY" - "$WORK/mem/index.faiss" "$WORK/od2/index.faiss" "$WORK/moved/index.faiss" "$WORK/q.fvecs" <<'EOF') || fail "stock faiss"
import sys, numpy as np, faiss
mem, od, moved, qpath = sys.argv[1:]
raw = np.fromfile(qpath, dtype="int32")
d = raw[0]
q = raw.reshape(-1, d + 1)[:, 1:].copy().view("float32")
def search(index):
    faiss.extract_index_ivf(index).nprobe = 4
    return index.search(q, 10)
ref_d, ref_i = search(faiss.read_index(mem))
reads = {
    "memory, IO_FLAG_MMAP": faiss.read_index(mem, faiss.IO_FLAG_MMAP),
    "ondisk, default read from its folder": faiss.read_index("index.faiss"),
    "ondisk, IO_FLAG_ONDISK_SAME_DIR": faiss.read_index(od, faiss.IO_FLAG_ONDISK_SAME_DIR),
    "ondisk moved, IO_FLAG_ONDISK_SAME_DIR | IO_FLAG_READ_ONLY":
        faiss.read_index(moved, faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY),
}
for name, index in reads.items():
    if "ondisk" in name:
        il = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists)
        assert type(il).__name__ == "OnDiskInvertedLists", (name, type(il).__name__)
    dd, ii = search(index)
    if not (np.array_equal(ii, ref_i) and np.array_equal(dd, ref_d)):
        sys.exit("FAIL: %s: results differ from the in-memory layout's" % name)
    print("  %s: %d vectors, same top-10 as in memory" % (name, index.ntotal))
EOF
ok

check "eval on the moved on-disk run gives the in-memory layout's recall"
run_ok 2 "$WORK/evm.log" eval "$WORK/c.yaml"
run_ok 2 "$WORK/evo.log" eval "$WORK/c.yaml" --set output.layout=ondisk --set "output.dir=$WORK/moved"
"$PY" - "$WORK/mem/eval.json" "$WORK/moved/eval.json" <<'EOF' || fail "eval recall differs"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
strip = lambda e: [{k: v for k, v in p.items() if k.startswith("recall")} for p in e["results"]]
assert strip(a) == strip(b), (strip(a), strip(b))
EOF
ok

check "eval's recommended nprobe is stored in the on-disk index.faiss too (the same as in memory)"
rec=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["recommended"]["nprobe"])' "$WORK/mem/eval.json")
sfdata recommended "$WORK/moved/eval.json" "$WORK/moved/index.faiss" --ondisk --expect "$rec"
ok

check "sharded and on disk (2 ranks): shards/ and plan.json as in memory; search finds the same"
run_ok 2 "$WORK/sm.log" build "$WORK/c.yaml" --set partition.shards=3 --set "output.dir=$WORK/sm"
run_ok 2 "$WORK/so.log" build "$WORK/c.yaml" --set partition.shards=3 --set output.layout=ondisk --set "output.dir=$WORK/so"
for f in shards/shard-0000.faiss shards/shard-0001.faiss shards/shard-0002.faiss; do
  cmp "$WORK/sm/$f" "$WORK/so/$f" || fail "$f differs between the layouts"
done
[[ ! -e $WORK/so/shards.tmp ]] || fail "shards.tmp left"
for run in sm so; do
  run_ok 2 "$WORK/s$run.log" search "$WORK/c.yaml" --set "output.dir=$WORK/$run" \
    --set "search.queries=$WORK/q.fvecs" --set search.nprobe=4
done
"$PY" - "$WORK/sm/search.h5" "$WORK/so/search.h5" <<'EOF' || fail "search results differ"
import h5py, sys, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
assert np.array_equal(a["ids"][:], b["ids"][:]) and np.array_equal(a["distances"][:], b["distances"][:])
EOF
ok

check "search without search.nprobe takes eval's recommended nprobe (sharded layout)"
run_ok 2 "$WORK/esm.log" eval "$WORK/c.yaml" --set "output.dir=$WORK/sm"
rec=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["recommended"]["nprobe"])' "$WORK/sm/eval.json")
run_ok 2 "$WORK/ssd.log" search "$WORK/c.yaml" --set "output.dir=$WORK/sm" --set "search.queries=$WORK/q.fvecs"
grep -q "search: nprobe $rec (from eval.json (recommended)" "$WORK/ssd.log" || { show "$WORK/ssd.log"; fail "search's default nprobe"; }
"$PY" -c 'import json,sys; n = json.load(open(sys.argv[1]))["nprobe"]; assert n == int(sys.argv[2]), n' \
  "$WORK/sm/search.json" "$rec" || fail "search.json nprobe is not eval's recommended $rec"
ok "nprobe $rec"

check "run on disk (2 ranks): eval and query read the mapped index; query finds a document's own text first"
"$PY" "$SRC/tests/e2e/dedupdata.py" planted "$WORK/corpus" --docs 400 --seed 3
printf 'input:\n  format: jsonl\n  paths:\n    - "%s"\noutput:\n  dir: "%s"\n  layout: ondisk\n' \
  "$WORK/corpus/a.jsonl" "$WORK/run" >"$WORK/r.yaml"
run_ok 2 "$WORK/run.log" run "$WORK/r.yaml" --set index.metric=ip --set run.eval=true
[[ -f $WORK/run/index.ivfdata && -f $WORK/run/eval.json ]] || fail "run: no index.ivfdata or eval.json"
query_finds_itself "$WORK/run" "$WORK/corpus/a.jsonl" orig-150
sfdata recommended "$WORK/run/eval.json" "$WORK/run/index.faiss" --ondisk
ok

sf_done
