# index.factory: auto on the real SIFT sample (5,000 x 128): the choice, the index and its
# stored nprobe are the same bytes at 1, 2 and 4 ranks; the index fits index.memory_budget and
# is the size tune.json estimated; the stored nprobe is tune.json's; run.json, the log and
# `info` say what was chosen and why; --resume reuses the choice; a budget no candidate fits and
# a target no candidate reaches exit 2 naming the key, the size or recall that would do, and
# leave no index.faiss; OPQ is chosen where a rotation pays; `run` on text chooses too.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

# auto_config FILE OUTDIR BUDGET TARGET: a build of the SIFT sample with index.factory auto.
auto_config() {
  cat >"$1" <<EOC
input:
  paths: ["$DATA/sift-5k.fvecs"]
index:
  factory: auto
  memory_budget: $3
  target_recall: $4
  tune_rows: 3000
  tune_queries: 300
output:
  dir: "$2"
seed: 4321
EOC
}

for np in 1 2 4; do
  check "auto at 1 MiB, $np rank(s): a choice within the budget"
  auto_config "$WORK/c$np.yaml" "$WORK/out$np" 1MiB 0.9
  run_ok "$np" "$WORK/np$np.log" build "$WORK/c$np.yaml"
  grep -q "tune: chose IVF" "$WORK/np$np.log" || { show "$WORK/np$np.log"; fail "no choice logged"; }
  ok "$(grep -o 'tune: chose.*' "$WORK/np$np.log")"
done

check "the same index.faiss and tune.json choice at 1, 2 and 4 ranks"
for np in 2 4; do
  cmp "$WORK/out1/index.faiss" "$WORK/out$np/index.faiss" || fail "index.faiss differs at $np ranks"
  "$PY" - "$WORK/out1/tune.json" "$WORK/out$np/tune.json" <<'PYEOF' || fail "tune.json's measurements differ at $np ranks"
import json, sys
def decisive(path):
    t = json.load(open(path))
    keep = ("factory", "index_bytes", "fits", "measured", "nprobe", "recall", "codes_per_query", "cost_ns")
    return t["factory"], t["nprobe"], [{k: c[k] for k in keep} for c in t["candidates"]]
sys.exit(decisive(sys.argv[1]) != decisive(sys.argv[2]))
PYEOF
done
ok

check "the index fits the budget, is the size tune.json estimated, and stores the chosen nprobe"
"$PY" - "$WORK/out1" <<'PYEOF' || fail "index.faiss does not match tune.json"
import json, os, sys
import faiss
d = sys.argv[1]
t = json.load(open(d + "/tune.json"))
run = json.load(open(d + "/run.json"))["commands"]["build"]["summary"]
size = os.path.getsize(d + "/index.faiss")
chosen = [c for c in t["candidates"] if c["factory"] == t["factory"]][0]
assert size <= 1 << 20, size
assert size == chosen["index_bytes"], (size, chosen["index_bytes"])
assert chosen["recall"] >= 0.9 and chosen["nprobe"] == t["nprobe"] >= 1, chosen
flat = [c for c in t["candidates"] if c["factory"].endswith(",Flat")][0]
assert not flat["fits"] and not flat["measured"], flat  # 2.6 MB of floats
assert run["factory"] == t["factory"] and run["index_choice"]["factory"] == t["factory"], run["factory"]
ivf = faiss.extract_index_ivf(faiss.read_index(d + "/index.faiss"))
assert ivf.nprobe == t["nprobe"], (ivf.nprobe, t["nprobe"])
assert ivf.ntotal == 5000
print(f"   {t['factory']}: {size} bytes, nprobe {ivf.nprobe}, sample recall {chosen['recall']:.3f}")
PYEOF
ok

check "info shows the choice"
"$SF" info "$WORK/out1" >"$WORK/info.out" 2>&1 || { show "$WORK/info.out"; fail "info exited non-zero"; }
grep -q "index choice IVF[0-9]*," "$WORK/info.out" || { show "$WORK/info.out"; fail "info does not show the choice"; }
ok "$(grep 'index choice' "$WORK/info.out")"

check "--resume reuses the choice: no second tuning, the same index.faiss"
cp "$WORK/out2/index.faiss" "$WORK/before.faiss"
auto_config "$WORK/c2.yaml" "$WORK/out2" 1MiB 0.9
run_ok 2 "$WORK/resume.log" build "$WORK/c2.yaml" --resume
grep -q "tune: chose" "$WORK/resume.log" && { show "$WORK/resume.log"; fail "--resume tuned again"; }
cmp "$WORK/before.faiss" "$WORK/out2/index.faiss" || fail "index.faiss changed on --resume"
ok

check "a budget below every candidate: exit 2 naming index.memory_budget and the smallest size"
auto_config "$WORK/small.yaml" "$WORK/small" 100KiB 0.9
sf_mpirun 2 "$WORK/small.log" build "$WORK/small.yaml"
[[ $SF_RC -eq 2 ]] || { show "$WORK/small.log"; fail "exit $SF_RC, expected 2"; }
expect_one_error "budget" "$WORK/small.log" "index.memory_budget 100KiB" "the smallest, IVF128,PQ8np" "raise index.memory_budget"
[[ -e "$WORK/small/index.faiss" ]] && fail "index.faiss after a failed build"
ok "${ERROR_LINE#*\[error\] }"

check "a target no candidate reaches within the budget: exit 2 naming the best recall and its size"
auto_config "$WORK/far.yaml" "$WORK/far" 300KiB 0.99
sf_mpirun 2 "$WORK/far.log" build "$WORK/far.yaml"
[[ $SF_RC -eq 2 ]] || { show "$WORK/far.log"; fail "exit $SF_RC, expected 2"; }
expect_one_error "target" "$WORK/far.log" "index.target_recall 0.99 is not reached within index.memory_budget" "the best candidate that fits" "recall@10" "lower index.target_recall"
[[ -e "$WORK/far/index.faiss" ]] && fail "index.faiss after a failed build"
ok "${ERROR_LINE#*\[error\] }"

check "OPQ where it pays: variance in 8 of 32 dims, a budget only PQ4/PQ2 and their OPQs fit"
# PQ4's sub-quantizers see nearly all the variance in two of them and plateau near recall 0.6;
# OPQ4 spreads it and reaches ~0.8. The index is the chosen OPQ with the rotation the tuning
# measured (tune-opq.faiss), the size tune.json estimated, with the chosen nprobe.
"$PY" - "$WORK/tail.fvecs" <<'PYEOF'
import sys
import numpy as np
rng = np.random.default_rng(5)
d, n = 32, 6000
x = rng.normal(size=(40, d))[rng.integers(0, 40, n)] * 3 + rng.normal(size=(n, d))
x = (x * np.where(np.arange(d) < 8, 1.0, 0.05)).astype(np.float32)
with open(sys.argv[1], "wb") as f:
    np.hstack([np.full((n, 1), d, np.int32).view(np.float32), x]).tofile(f)
PYEOF
cat >"$WORK/opq.yaml" <<EOC
input:
  paths: ["$WORK/tail.fvecs"]
index:
  factory: auto
  memory_budget: 127KiB
  target_recall: 0.78
  tune_rows: 3000
  tune_queries: 300
output:
  dir: "$WORK/opq"
seed: 4321
EOC
run_ok 2 "$WORK/opq.log" build "$WORK/opq.yaml"
"$PY" - "$WORK/opq" <<'PYEOF' || { show "$WORK/opq.log"; fail "the OPQ choice is not what tune.json says"; }
import json, os, sys
import faiss
d = sys.argv[1]
t = json.load(open(d + "/tune.json"))
by = {c["factory"]: c for c in t["candidates"]}
assert t["factory"].startswith("OPQ"), t["factory"]
chosen = by[t["factory"]]
pq = by[t["factory"].split(",", 1)[1]]  # the same PQ without the rotation
assert pq["measured"] and pq["nprobe"] == 0 and pq["recall"] < 0.78 <= chosen["recall"], (pq, chosen)
assert os.path.getsize(d + "/index.faiss") == chosen["index_bytes"] <= 127 * 1024
index = faiss.read_index(d + "/index.faiss")
opq = faiss.downcast_VectorTransform(faiss.downcast_index(index).chain.at(0))  # FAISS writes an OPQMatrix as a LinearTransform
assert opq.d_in == opq.d_out == 32 and opq.A.size() == 32 * 32, (opq.d_in, opq.d_out)
raw = faiss.read_VectorTransform(d + "/tune-opq.faiss")  # owns it: the downcast does not
tuned = faiss.downcast_VectorTransform(raw)
assert faiss.vector_to_array(opq.A).tobytes() == faiss.vector_to_array(tuned.A).tobytes()
assert faiss.extract_index_ivf(index).nprobe == t["nprobe"]
print(f"   {t['factory']}: recall {chosen['recall']:.3f} at nprobe {t['nprobe']}; {pq['factory']} {pq['recall']:.3f} at most")
PYEOF
# --resume with only tune's checkpoint left: tune's is read back (its rotation and turned
# k-means), and train gives the same index.
cp "$WORK/opq/index.faiss" "$WORK/opq-first.faiss"
find "$WORK/opq/checkpoints" -name '*.json' ! -name tune.json -delete
run_ok 2 "$WORK/opq-resume.log" build "$WORK/opq.yaml" --resume
grep -q "tune: chose" "$WORK/opq-resume.log" && { show "$WORK/opq-resume.log"; fail "--resume tuned again"; }
grep -q "train: redo" "$WORK/opq-resume.log" || { show "$WORK/opq-resume.log"; fail "--resume did not train again"; }
cmp "$WORK/opq-first.faiss" "$WORK/opq/index.faiss" || fail "train from tune's checkpoint gave another index"
"$SF" info "$WORK/opq" >"$WORK/opq-info.out" 2>&1 || { show "$WORK/opq-info.out"; fail "info exited non-zero"; }
grep -q "index choice OPQ" "$WORK/opq-info.out" || { show "$WORK/opq-info.out"; fail "info does not show the OPQ choice"; }
ok "$(grep -o 'tune: chose.*' "$WORK/opq.log")"

check "run on text with index.factory auto chooses too"
"$PY" "$SRC/tests/e2e/dedupdata.py" planted "$WORK/corpus" --docs 400 --seed 3
cat >"$WORK/run.yaml" <<EOC
input:
  paths: ["$WORK/corpus"]
index:
  factory: auto
  target_recall: 0.8
output:
  dir: "$WORK/run"
run:
  semdedup: false
EOC
run_ok 2 "$WORK/run.log" run "$WORK/run.yaml"
"$PY" - "$WORK/run" <<'PYEOF' || fail "run's index is not tune.json's choice"
import json, sys
import faiss
d = sys.argv[1]
t = json.load(open(d + "/tune.json"))
run = json.load(open(d + "/run.json"))["commands"]["run"]["summary"]
assert run["factory"] == t["factory"], (run["factory"], t["factory"])
ivf = faiss.extract_index_ivf(faiss.read_index(d + "/index.faiss"))
assert ivf.nprobe == t["nprobe"]
PYEOF
ok "$(grep -o 'tune: chose.*' "$WORK/run.log")"

sf_done
