# Workload-aware partitioning end to end: build with a workload -> plan.json + shards/ ->
# `search` at 1, 2 and 4 ranks equal to a python3-faiss search of index.faiss at the same
# nprobe -> `info` shows the plan; a build without a workload balances counts; bad inputs
# (missing workload file, dimension mismatch, more shards than lists, search without a plan,
# queries of the wrong dimension) fail with messages naming the key or file.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

ROWS=6000
NQ=300
DIM=32
NLIST=32
NPROBE=4

check "generating ann.h5 (train ${ROWS} x ${DIM}, test ${NQ}) and a skewed workload (queries near 2 corpus rows)"
sfdata ann "$WORK/ann.h5" --rows $ROWS --queries $NQ --dim $DIM --seed 5 --spread 1.0 \
  --queries-fvecs "$WORK/queries.fvecs"
"$PY" - "$WORK/ann.h5" "$WORK/workload.fvecs" "$WORK/wrongdim.fvecs" <<'PY'
import sys, h5py, numpy as np
x = h5py.File(sys.argv[1], "r")["train"][:]
rng = np.random.default_rng(1)
near = np.concatenate([np.argsort(((x - x[c]) ** 2).sum(1))[:200] for c in (0, 1)])
w = x[near] + rng.normal(0, 0.1, (near.size, x.shape[1])).astype(np.float32)
def fvecs(path, a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    out = np.empty((a.shape[0], a.shape[1] + 1), dtype=np.float32)
    out[:, 0] = np.array([a.shape[1]], dtype=np.int32).view(np.float32)[0]
    out[:, 1:] = a
    out.tofile(path)
fvecs(sys.argv[2], w)
fvecs(sys.argv[3], w[:, :16])
PY
ok

OUT="$WORK/run"
write_config "$WORK/p.yaml" "$OUT" "IVF${NLIST},Flat" "$WORK/ann.h5"
cat >>"$WORK/p.yaml" <<EOF
partition:
  workload: "$WORK/workload.fvecs"
  shards: 3
  nprobe: $NPROBE
  replicate_hot: 1
  # Pinned (a / b = 16 codes, as calibrated on the machine this test was written on): the plan's
  # shape checked below depends on lambda, which a calibration on a loaded machine may move.
  # The calibration itself: the "calibrated" check below; its noise robustness: unit tests.
  scan_cost: [8.0e-8, 5.0e-9]
search:
  queries: "$WORK/ann.h5"
  nprobe: $NPROBE
EOF

check "build with a workload on 2 ranks: index.faiss, plan.json (format_version 1), 3 shard files"
run_ok 2 "$WORK/build.log" build "$WORK/p.yaml"
for f in index.faiss plan.json shards/shard-0000.faiss shards/shard-0001.faiss shards/shard-0002.faiss; do
  [[ -f "$OUT/$f" ]] || { show "$WORK/build.log"; fail "no $OUT/$f"; }
done
"$PY" - "$OUT" $NLIST <<'PY' || fail "plan.json or the shard files are wrong"
import json, sys, faiss
out, nlist = sys.argv[1], int(sys.argv[2])
p = json.load(open(out + "/plan.json"))
assert p["format_version"] == 1, p["format_version"]
assert p["shards"] == 3 and p["nlist"] == nlist, (p["shards"], p["nlist"])
assert p["balance"] in ("cost", "count")
assert p["max_over_mean_cost"] <= p["count_balanced_max_over_mean_cost"] + 1e-12
assert p["scan_cost"]["source"] == "config" and p["scan_cost"]["b_seconds_per_code"] == 5e-9, p["scan_cost"]
r = p["repartition"]
assert r["applied"] and r["splits"] > 0 and r["splits"] == r["merges"], r  # same nlist budget
assert sum(r["tiers"]["lists_after"]) == nlist and r["tiers"]["lists_after"][0] > r["tiers"]["lists_before"][0], r
lists = p["lists"]
assert len(lists["size"]) == nlist and len(lists["shards"]) == nlist
assert sum(len(s) > 1 for s in lists["shards"]) == 1, "replicate_hot 1: one list on two shards"
assert abs(sum(lists["access"]) - 4) < 1e-6, sum(lists["access"])  # sums to nprobe
c = p["colocation"]
assert 1 <= c["shards_per_query"] <= c["lpt_shards_per_query"] <= 3, c
assert c["applied"] and c["shards_per_query"] < c["lpt_shards_per_query"], c  # local workload
merged = faiss.read_index(out + "/index.faiss")
ivf = faiss.extract_index_ivf(merged)
total = 0
for s in range(3):
    shard = faiss.read_index(out + "/shards/shard-%04d.faiss" % s)  # keep: owns the IVF
    sh = faiss.extract_index_ivf(shard)
    for j in range(nlist):
        held = s in lists["shards"][j]
        n = sh.invlists.list_size(j)
        assert n == (ivf.invlists.list_size(j) if held else 0), (s, j, n)
        assert lists["size"][j] == ivf.invlists.list_size(j)
    total += sh.ntotal
extra = sum(lists["size"][j] for j in range(nlist) if len(lists["shards"][j]) > 1)
assert total == merged.ntotal + extra, (total, merged.ntotal, extra)
print("plan: balance by %s, max/mean cost %.3f (count %.3f), hot tiers +%d lists, cold tiers -%d" % (
    p["balance"], p["max_over_mean_cost"], p["count_balanced_max_over_mean_cost"],
    p["repartition"]["splits"], p["repartition"]["merges"]))
PY
ok

for np in 1 2 4; do
  check "search at $np rank(s): search.h5 equals python3-faiss index.faiss search at nprobe $NPROBE; search.json"
  run_ok $np "$WORK/search-np$np.log" search "$WORK/p.yaml"
  grep -q "qps" "$WORK/search-np$np.log.stdout" || { show "$WORK/search-np$np.log"; fail "no qps line"; }
  "$PY" - "$OUT" "$WORK/ann.h5" $NPROBE $np <<'PY' || fail "search at $np rank(s) differs from the merged index"
import json, sys, h5py, numpy as np, faiss
out, ann, nprobe, np_ = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
q = h5py.File(ann, "r")["test"][:]
index = faiss.read_index(out + "/index.faiss")
faiss.extract_index_ivf(index).nprobe = nprobe
# FAISS's search of each query on its own, as `search` computes it: coarse distances by FAISS's
# reference loop (a call of 20+ queries takes a GEMM, whose rounding changes IVFPQ's distances)
# and vector transforms on one row.
D, I = (np.concatenate(a) for a in zip(*(index.search(q[i:i + 1], 10) for i in range(len(q)))))
with h5py.File(out + "/search.h5", "r") as f:
    assert f.attrs["format_version"] == 1
    ids, dis = f["ids"][:], f["distances"][:]
assert ids.shape == (q.shape[0], 10), ids.shape
# Distances bit for bit; an id may differ only where its distance ties the k-th of its query
# (which rows at the k-th distance make the list depends on the scan order).
assert dis.dtype == np.float32 and D.dtype == np.float32
bits, ref_bits = dis.view(np.uint32), D.view(np.uint32)
bad = np.argwhere(bits != ref_bits)
assert bad.size == 0, "%d distances differ from FAISS's, first (query, rank) %s: %r vs %r" % (
    len(bad), tuple(bad[0]), dis[tuple(bad[0])], D[tuple(bad[0])])
diff = ids != I
not_tie = np.argwhere(diff & (ref_bits != ref_bits[:, -1:]))
assert not_tie.size == 0, "%d ids differ away from the k-th distance, first (query, rank) %s" % (
    len(not_tie), tuple(not_tie[0]))
nn = h5py.File(ann, "r")["neighbors"][:, :10]
rec = lambda r: np.mean([len(set(a) & set(b)) / 10 for a, b in zip(r, nn)])
assert rec(ids) == rec(I), (rec(ids), rec(I))
j = json.load(open(out + "/search.json"))
assert j["format_version"] == 1 and j["ranks"] == np_ and j["queries"] == q.shape[0]
assert len(j["per_shard_codes_scanned"]) == 3 and j["qps"] > 0
ivf = faiss.extract_index_ivf(index)
_, L = ivf.quantizer.search(q, nprobe)
codes = sum(ivf.invlists.list_size(int(l)) for l in L.ravel())
assert sum(j["per_shard_codes_scanned"]) == codes, (j["per_shard_codes_scanned"], codes)
assert abs(j["codes_scanned_per_query"] - codes / q.shape[0]) < 1e-9
# Each query goes to the distinct shards of its probed lists (a replicated list: copy qid % 2).
plan_shards = json.load(open(out + "/plan.json"))["lists"]["shards"]
reached = sum(len({plan_shards[int(l)][qi % len(plan_shards[int(l)])] for l in L[qi]})
              for qi in range(q.shape[0]))
assert abs(j["shards_per_query"] - reached / q.shape[0]) < 1e-9, (j["shards_per_query"], reached)
print("np %d: recall@10 %.4f (merged index %.4f), %d ids differ (ties at the k-th distance), %.1f codes/query, shard max/mean %.3f" % (
    np_, rec(ids), rec(I), diff.sum(), j["codes_scanned_per_query"], j["shard_codes_max_over_mean"]))
PY
  ok
done

check "PCA16,IVF32,PQ8x4np: search at 2 ranks equals python3-faiss's search of each query bit for bit"
write_config "$WORK/pq.yaml" "$WORK/pq" "PCA16,IVF32,PQ8x4np" "$WORK/ann.h5"
cat >>"$WORK/pq.yaml" <<EOF
partition:
  shards: 3
  nprobe: $NPROBE
  scan_cost: [1.0e-7, 1.0e-8]
search:
  queries: "$WORK/ann.h5"
  nprobe: $NPROBE
EOF
run_ok 2 "$WORK/pq-build.log" build "$WORK/pq.yaml"
run_ok 2 "$WORK/pq-search.log" search "$WORK/pq.yaml"
"$PY" - "$WORK/pq" "$WORK/ann.h5" $NPROBE <<'PY' || fail "PCA16,IVF32,PQ8x4np search differs from FAISS's"
import sys, h5py, numpy as np, faiss
out, ann, nprobe = sys.argv[1], sys.argv[2], int(sys.argv[3])
q = h5py.File(ann, "r")["test"][:]
index = faiss.read_index(out + "/index.faiss")
faiss.extract_index_ivf(index).nprobe = nprobe
D, I = (np.concatenate(a) for a in zip(*(index.search(q[i:i + 1], 10) for i in range(len(q)))))
with h5py.File(out + "/search.h5", "r") as f:
    ids, dis = f["ids"][:], f["distances"][:]
bits, ref_bits = dis.view(np.uint32), D.view(np.uint32)
assert (bits == ref_bits).all(), "%d distances differ from FAISS's" % (bits != ref_bits).sum()
diff = ids != I
assert not (diff & (ref_bits != ref_bits[:, -1:])).any(), "ids differ away from the k-th distance"
print("%d ids differ (ties at the k-th distance)" % diff.sum())
PY
ok

check "info shows the plan and the search"
run_ok 1 "$WORK/info.log" info "$WORK/p.yaml"
for pat in "plan .*format_version 1.*3 shard" "workload .*workload.fvecs" "scan cost .*config" \
           "balance +expected shard cost" "co-location +(applied|not kept)" "hottest lists" "tier 0: access" "^search \(k=10, nprobe $NPROBE"; do
  grep -qE "$pat" "$WORK/info.log.stdout" || { show "$WORK/info.log"; fail "info lacks /$pat/"; }
done
ok

check "without a workload the lists are placed by count"
run_ok 2 "$WORK/count.log" build "$WORK/p.yaml" --set partition.workload= --set output.dir="$WORK/count"
"$PY" -c "
import json; p = json.load(open('$WORK/count/plan.json'))
assert p['balance'] == 'count' and p['workload']['source'] == '' and p['repartition']['splits'] == 0, p
" || fail "count-balanced plan is wrong"
ok

check "with scan_cost calibrated (not pinned): the fit of its timings is in plan.json and info; a cost- or count-balanced plan"
grep -v "scan_cost:" "$WORK/p.yaml" >"$WORK/p-calibrated.yaml"
run_ok 2 "$WORK/calibrated.log" build "$WORK/p-calibrated.yaml" --set output.dir="$WORK/calibrated"
"$PY" - "$WORK/calibrated/plan.json" $NLIST <<'PY' || fail "the calibrated plan.json is wrong"
import json, math, sys
p, nlist = json.load(open(sys.argv[1])), int(sys.argv[2])
c = p["scan_cost"]
assert c["source"] == "calibrated" and c["b_seconds_per_code"] > 0 and c["a_seconds"] >= 0, c
assert len(c["sizes"]) == len(c["seconds_per_query"]) >= 2 and min(c["seconds_per_query"]) > 0, c
overhead = c["a_seconds"] / c["b_seconds_per_code"]  # snapped: 0 or a power of two
assert overhead == 0 or abs(math.log2(overhead) - round(math.log2(overhead))) < 1e-9, c
# Whatever lambda the timings gave, the plan is whole: every list placed, never worse than by count.
assert p["balance"] in ("cost", "count") and len(p["lists"]["shards"]) == nlist
assert p["max_over_mean_cost"] <= p["count_balanced_max_over_mean_cost"] + 1e-12
print("calibrated: lambda(s) = %.3g + %.3g s (overhead %g codes)" % (c["a_seconds"], c["b_seconds_per_code"], overhead))
PY
run_ok 1 "$WORK/info-calibrated.log" info "$WORK/p-calibrated.yaml" --set output.dir="$WORK/calibrated"
grep -qE "scan cost .*calibrated" "$WORK/info-calibrated.log.stdout" || { show "$WORK/info-calibrated.log"; fail "info lacks the calibrated scan cost"; }
ok

# expect_fail NP RC PATTERN ARGS...: the run exits RC and its stderr matches PATTERN.
expect_fail() {
  local np=$1 rc=$2 pat=$3
  shift 3
  sf_mpirun $np "$WORK/bad.log" "$@"
  [[ $SF_RC -eq $rc ]] || { show "$WORK/bad.log"; fail "$* exited $SF_RC, expected $rc"; }
  grep -qE "$pat" "$WORK/bad.log.stderr" || { show "$WORK/bad.log"; fail "$*: stderr lacks /$pat/"; }
}

check "bad inputs: missing workload, wrong workload dimension, more shards than lists, no plan, wrong query dimension"
expect_fail 2 1 "partition.workload.*$WORK/nope.fvecs" build "$WORK/p.yaml" \
  --set partition.workload="$WORK/nope.fvecs" --set output.dir="$WORK/bad1"
[[ ! -f "$WORK/bad1/index.faiss" && ! -f "$WORK/bad1/plan.json" ]] || fail "a failed build left results"
expect_fail 2 1 "wrongdim.fvecs: partition.workload has dimension 16, the corpus .* 32" build "$WORK/p.yaml" \
  --set partition.workload="$WORK/wrongdim.fvecs" --set output.dir="$WORK/bad2"
expect_fail 2 1 "partition.shards 40 is more than the 32 lists" build "$WORK/p.yaml" \
  --set partition.shards=40 --set output.dir="$WORK/bad3"
expect_fail 2 1 "plan.json: cannot open the partition plan" search "$WORK/p.yaml" --set output.dir="$WORK/bad3"
expect_fail 2 1 "search.queries have dimension 16, the index .* 32" search "$WORK/p.yaml" \
  --set search.queries="$WORK/wrongdim.fvecs"
expect_fail 1 2 "search.queries is required" search "$WORK/p.yaml" --set search.queries=
ok

sf_done
