# `eval` against an ann-benchmarks HDF5 file (queries in `test`, ground truth in `neighbors`),
# against plain fvecs queries (exact ground truth computed across the ranks) and against an
# ivecs ground-truth file, at 1 and 2 ranks; eval.json, the printed table, run.json, `info`,
# the recommended nprobe (eval.target_recall: eval.json, stored in index.faiss, --resume skips),
# and --help / --version.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

ROWS=4000
NQ=200
DIM=32
NLIST=16
NPROBES="1,4,16"

check "generating ann.h5 (train ${ROWS} x ${DIM}, test ${NQ}, neighbors = numpy brute-force top-100), queries.fvecs, gt.ivecs"
sfdata ann "$WORK/ann.h5" --rows $ROWS --queries $NQ --dim $DIM --seed 3 --spread 1.0 \
  --queries-fvecs "$WORK/queries.fvecs" --gt-ivecs "$WORK/gt.ivecs"
ok

OUT="$WORK/run"
write_config "$WORK/eval.yaml" "$OUT" "IVF${NLIST},Flat" "$WORK/ann.h5"
cat >>"$WORK/eval.yaml" <<EOF
eval:
  queries: "$WORK/ann.h5"
  target_recall: 0.995  # between the curve's nprobe 1 and 16: found by bisection
EOF

# since START: seconds from START (an $EPOCHREALTIME) to now, the wall time of a run.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

check "build IVF${NLIST},Flat from ann.h5 (dataset train) with 2 ranks; run.json has one value per rank"
start=$EPOCHREALTIME
run_ok 2 "$WORK/build.log" build "$WORK/eval.yaml"
[[ -f "$OUT/index.faiss" ]] || fail "no $OUT/index.faiss"
sfdata runjson "$OUT/run.json" --command build --ranks 2 --stages open,train,add,merge --within "$(since "$start")"
ok
cp "$OUT/index.faiss" "$WORK/built.faiss"

# check_table LOG TRUTH: the table on stdout (once, not on stderr), with one row per nprobe.
check_table() {
  local log=$1 truth=$2
  local header='nprobe +recall@1 +recall@10 +recall@100 +qps'
  local n
  n=$(grep -cE "$header" "$log.stdout" || true)
  [[ $n -eq 1 ]] || { show "$log"; fail "$log: the results table header appears $n times on stdout, expected once"; }
  if grep -qE "$header" "$log.stderr"; then fail "$log: the results table went to stderr"; fi
  grep -qF "$NQ queries, ground truth: $truth" "$log.stdout" ||
    { show "$log"; fail "$log: stdout lacks '$NQ queries, ground truth: $truth'"; }
  local p
  for p in ${NPROBES//,/ }; do
    grep -qE "^ +$p +[01]\.[0-9]{4} +[01]\.[0-9]{4} +[01]\.[0-9]{4} +[0-9.]+$" "$log.stdout" ||
      { show "$log"; fail "$log: no table row for nprobe $p on stdout"; }
  done
}

for np in 1 2; do
  check "eval with ann.h5 (test + neighbors) at $np rank(s), --set eval.nprobe=[${NPROBES}]"
  start=$EPOCHREALTIME
  run_ok $np "$WORK/eval-h5-np$np.log" eval "$WORK/eval.yaml" --set "eval.nprobe=[${NPROBES}]"
  within=$(since "$start")
  cp "$OUT/eval.json" "$WORK/eval-h5-np$np.json"
  sfdata eval "$WORK/eval-h5-np$np.json" --nprobe "$NPROBES" --nlist $NLIST --flat-full
  check_table "$WORK/eval-h5-np$np.log" "$WORK/ann.h5"
  sfdata runjson "$OUT/run.json" --command eval --ranks $np --stages load,search --within "$within"
  ok

  check "the recommended nprobe at $np rank(s): eval.json, the table, index.faiss stores it (only those bytes change)"
  # The same for any rank count: the first eval's.
  sfdata recommended "$OUT/eval.json" "$OUT/index.faiss" --before "$WORK/built.faiss" ${recommended:+--expect $recommended}
  recommended=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["recommended"]["nprobe"])' "$OUT/eval.json")
  grep -qE "^recommended nprobe $recommended: recall@10 [01]\.[0-9]{4} \(target 0\.995\), qps [0-9.]+$" \
    "$WORK/eval-h5-np$np.log.stdout" || { show "$WORK/eval-h5-np$np.log"; fail "no recommended line in the table"; }
  ok "nprobe $recommended"

  check "eval --resume at $np rank(s) with nothing changed skips (the stored nprobe does not redo it)"
  run_ok $np "$WORK/eval-resume-np$np.log" eval "$WORK/eval.yaml" --set "eval.nprobe=[${NPROBES}]" --resume
  grep -q "eval.json is complete (marker verified), skipped" "$WORK/eval-resume-np$np.log" ||
    { show "$WORK/eval-resume-np$np.log"; fail "eval --resume did not skip"; }
  grep -q "^recommended nprobe $recommended:" "$WORK/eval-resume-np$np.log.stdout" ||
    { show "$WORK/eval-resume-np$np.log"; fail "the skipped eval's table lacks the recommended line"; }
  ok

  check "eval with plain fvecs queries (exact ground truth across ranks) at $np rank(s)"
  start=$EPOCHREALTIME
  run_ok $np "$WORK/eval-exact-np$np.log" eval "$WORK/eval.yaml" --set "eval.nprobe=[${NPROBES}]" \
    --set "eval.queries=$WORK/queries.fvecs"
  within=$(since "$start")
  cp "$OUT/eval.json" "$WORK/eval-exact-np$np.json"
  sfdata eval "$WORK/eval-exact-np$np.json" --nprobe "$NPROBES" --nlist $NLIST --flat-full
  check_table "$WORK/eval-exact-np$np.log" exact
  sfdata runjson "$OUT/run.json" --command eval --ranks $np --stages load,"ground truth",search --within "$within"
  ok
done

check "eval with fvecs queries and eval.ground_truth=gt.ivecs at 2 ranks"
run_ok 2 "$WORK/eval-ivecs.log" eval "$WORK/eval.yaml" --set "eval.nprobe=[${NPROBES}]" \
  --set "eval.queries=$WORK/queries.fvecs" --set "eval.ground_truth=$WORK/gt.ivecs"
cp "$OUT/eval.json" "$WORK/eval-ivecs.json"
sfdata eval "$WORK/eval-ivecs.json" --nprobe "$NPROBES" --nlist $NLIST --flat-full
check_table "$WORK/eval-ivecs.log" "$WORK/gt.ivecs"
ok

check "the ground-truth routes agree on recall (HDF5 neighbors, exact, ivecs; 1 and 2 ranks)"
sfdata same-recall "$WORK/eval-h5-np1.json" "$WORK/eval-h5-np2.json"
sfdata same-recall "$WORK/eval-exact-np1.json" "$WORK/eval-exact-np2.json"
sfdata same-recall "$WORK/eval-h5-np1.json" "$WORK/eval-ivecs.json"
# numpy's float64 brute force and FAISS's float32 one may order a near tie differently.
sfdata same-recall "$WORK/eval-h5-np1.json" "$WORK/eval-exact-np2.json" --tol 0.002
ok

check "nprobe is applied: recall@10 at nprobe=1 is below recall@10 at nprobe=nlist"
"$PY" - "$WORK/eval-h5-np1.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
if not r[0]["recall@10"] < r[-1]["recall@10"]:
    sys.exit("FAIL: recall@10 %r at nprobe %d is not below %r at nprobe %d"
             % (r[0]["recall@10"], r[0]["nprobe"], r[-1]["recall@10"], r[-1]["nprobe"]))
print("  recall@10: %.4f at nprobe %d, %.4f at nprobe %d"
      % (r[0]["recall@10"], r[0]["nprobe"], r[-1]["recall@10"], r[-1]["nprobe"]))
EOF
ok

check "eval.k and eval.max_queries: k=5, 50 queries"
run_ok 1 "$WORK/eval-k5.log" eval "$WORK/eval.yaml" --set "eval.nprobe=[${NLIST}]" --set eval.k=5 \
  --set eval.max_queries=50
"$PY" - "$OUT/eval.json" <<'EOF'
import json, sys
e = json.load(open(sys.argv[1]))
if e["k"] != 5 or e["queries"] != 50 or len(e["results"]) != 1 or e["results"][0]["nprobe"] != 16:
    sys.exit("FAIL: eval.json with k=5, max_queries=50, nprobe=[16]: %r" % e)
EOF
ok

check "info prints the index shape, list balance, stage times and recall"
run_ok 1 "$WORK/info.log" info "$WORK/eval.yaml"
for want in "vectors      $ROWS x $DIM dims, metric l2" "ivf          nlist $NLIST, code size $((DIM * 4)) bytes, stored nprobe " \
  "lists        min" "build: 2 rank(s)" "eval: 1 rank(s)" "eval (k=5, 50 queries)" \
  "  recommended nprobe "; do
  grep -qF "$want" "$WORK/info.log.stdout" || { show "$WORK/info.log"; fail "info: stdout lacks '$want'"; }
done
ok

check "info on an empty run directory says there is no index (and exits 0)"
run_ok 1 "$WORK/info-empty.log" info "$WORK/eval.yaml" --set "output.dir=$WORK/nothing"
grep -qF "none yet" "$WORK/info-empty.log.stdout" || { show "$WORK/info-empty.log"; fail "info: no 'none yet' line"; }
ok

check "--version and --help (top level and under mpirun)"
"$SF" --version >"$WORK/v.out" 2>&1 || fail "shardforge --version exited $?"
grep -qE '^shardforge [0-9]+\.[0-9]+\.[0-9]+' "$WORK/v.out" || fail "--version printed: $(cat "$WORK/v.out")"
"$SF" --help >"$WORK/h.out" 2>&1 || fail "shardforge --help exited $?"
for cmd in build eval info; do
  grep -qE "^ +$cmd " "$WORK/h.out" || fail "--help does not list '$cmd': $(cat "$WORK/h.out")"
done
run_ok 1 "$WORK/v-mpi.log" --version
grep -qE '^shardforge [0-9]+\.[0-9]+\.[0-9]+' "$WORK/v-mpi.log.stdout" || fail "mpirun -np 1 shardforge --version"
ok "$(cat "$WORK/v.out")"

for cmd in build eval info; do
  check "shardforge $cmd --help"
  "$SF" $cmd --help >"$WORK/h-$cmd.out" 2>&1 || { cat "$WORK/h-$cmd.out" >&2; fail "shardforge $cmd --help exited non-zero"; }
  grep -q "config" "$WORK/h-$cmd.out" && grep -q -- "--set" "$WORK/h-$cmd.out" ||
    fail "shardforge $cmd --help does not describe config and --set: $(cat "$WORK/h-$cmd.out")"
  ok
done

# Last, so that a failure here does not hide the checks above.
for cmd in build eval info; do
  check "shardforge $cmd --version prints the version and exits 0"
  rc=0
  "$SF" $cmd --version >"$WORK/v-$cmd.out" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] && grep -qE '^shardforge [0-9]+\.[0-9]+\.[0-9]+' "$WORK/v-$cmd.out" ||
    fail "shardforge $cmd --version exited $rc and printed: $(cat "$WORK/v-$cmd.out")"
  ok
done

sf_done
