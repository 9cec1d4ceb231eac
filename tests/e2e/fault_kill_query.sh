# SIGKILL of a rank during `eval` (in its exact ground-truth scan) and during `search` (in its
# search rounds), then --resume: neither keeps a partial result (no eval.json / search.h5, no
# marker), status.json keeps `running` in the stage, and the resumed command completes with
# eval.json's recall figures (not its QPS) and search.h5's ids and distances equal to those
# of an uninterrupted run. The rank is caught in the stage by freezing it (SIGSTOP) once
# status.json names the stage, so the kill lands there however loaded the machine is.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/fault_lib.bash"
sf_init "$@"

check "data: 100000 x 32 (IVF64,Flat, 3 shards), 3000 fvecs queries; a 2-rank build, then an uninterrupted eval and search"
sfdata gen "$WORK/base.fvecs" --rows 100000 --dim 32 --seed 9
sfdata gen "$WORK/q.fvecs" --rows 3000 --dim 32 --seed 10
write_config "$WORK/q.yaml" "$WORK/unused" "IVF64,Flat" "$WORK/base.fvecs"
printf 'partition:\n  shards: 3\neval:\n  queries: "%s"\n  nprobe: [1, 4, 16, 64]\nsearch:\n  queries: "%s"\n  nprobe: 16\n  k: 20\n' \
  "$WORK/q.fvecs" "$WORK/q.fvecs" >>"$WORK/q.yaml"
run_ok 2 "$WORK/build.log" build "$WORK/q.yaml" --set "output.dir=$WORK/built"
for d in ref eval search; do cp -a "$WORK/built" "$WORK/$d"; done
run_ok 2 "$WORK/ref-eval.log" eval "$WORK/q.yaml" --set "output.dir=$WORK/ref"
run_ok 2 "$WORK/ref-search.log" search "$WORK/q.yaml" --set "output.dir=$WORK/ref"
ok

# kill_in_stage STAGE LOG ARGS...: runs ARGS in the background at 2 ranks; once status.json says
# STAGE, freezes rank 1, checks the run is still in STAGE, and SIGKILLs rank 1.
kill_in_stage() {
  local stage=$1 log=$2 dir=$3
  shift 3
  start_bg 2 "$log" "$@" --set "output.dir=$dir"
  wait_until 60 in_stage "$dir" "$stage"
  local pid
  pid=$(rank_pid 1)
  [[ -n $pid ]] || fail "rank 1 not found"
  kill -STOP "$pid"
  grep -q '"state": "running"' "$dir/status.json" && in_stage "$dir" "$stage" ||
    { kill -CONT "$pid"; fail "the run left stage '$stage' before rank 1 was frozen: $(cat "$dir/status.json")"; }
  kill -KILL "$pid"
  wait_bg
  [[ $BG_RC -ne 0 ]] || { show "$log"; fail "the run finished despite the kill"; }
  grep -q '"state": "running"' "$dir/status.json" && in_stage "$dir" "$stage" ||
    fail "status.json after the kill: $(cat "$dir/status.json")"
}

# recalls FILE: eval.json's recall figures, one line per nprobe (QPS left out).
recalls() {
  "$PY" -c '
import json, sys
doc = json.load(open(sys.argv[1]))
rows = doc["results"] if isinstance(doc, dict) else doc
for r in rows:
    print(r["nprobe"], r.get("recall@1"), r.get("recall@10"), r.get("recall@100"))
' "$1"
}

check "SIGKILL of rank 1 in eval's exact ground-truth scan: no eval.json, no marker; --resume: the same recall figures"
kill_in_stage "ground truth" "$WORK/eval-kill.log" "$WORK/eval" eval "$WORK/q.yaml"
[[ ! -e $WORK/eval/eval.json && ! -e $WORK/eval/checkpoints/eval.json ]] || fail "a killed eval left eval.json or its marker"
run_ok 2 "$WORK/eval-resume.log" eval "$WORK/q.yaml" --set "output.dir=$WORK/eval" --resume
[[ -f $WORK/eval/checkpoints/eval.json ]] || fail "no eval marker after the resume"
diff <(recalls "$WORK/ref/eval.json") <(recalls "$WORK/eval/eval.json") || fail "recall figures differ from the uninterrupted eval"
ok "$(recalls "$WORK/eval/eval.json" | wc -l) nprobe values"

check "SIGKILL of rank 1 in search's rounds: no search.h5, no marker; --resume: the same ids and distances"
kill_in_stage search "$WORK/search-kill.log" "$WORK/search" search "$WORK/q.yaml"
[[ ! -e $WORK/search/search.h5 && ! -e $WORK/search/checkpoints/search.json ]] || fail "a killed search left search.h5 or its marker"
run_ok 2 "$WORK/search-resume.log" search "$WORK/q.yaml" --set "output.dir=$WORK/search" --resume
[[ -f $WORK/search/checkpoints/search.json ]] || fail "no search marker after the resume"
"$PY" - "$WORK/ref/search.h5" "$WORK/search/search.h5" <<'PYEOF' || fail "search.h5 differs from the uninterrupted search"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert sorted(a.keys()) == sorted(b.keys()), (list(a.keys()), list(b.keys()))
for name in a.keys():
    if isinstance(a[name], h5py.Dataset):
        assert np.array_equal(a[name][()], b[name][()]), name
PYEOF
ok "$(cmp -s "$WORK/ref/search.h5" "$WORK/search/search.h5" && echo "byte-identical" || echo "same datasets")"

sf_done
