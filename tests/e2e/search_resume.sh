# `search --resume`: search.h5 and search.json have a completion marker; a resumed search is
# skipped while the search keys, the query file and the layout it read are unchanged, and
# redone when one changes (a key, the queries, or the shards of a new build).
source "$(dirname "$0")/lib.bash"
sf_init "$@"

check "a sharded build (IVF32,Flat, 3 shards) and a search at 2 ranks"
sfdata ann "$WORK/ann.h5" --rows 4000 --queries 200 --dim 16 --seed 8 --queries-fvecs "$WORK/q.fvecs"
OUT="$WORK/run"
write_config "$WORK/s.yaml" "$OUT" "IVF32,Flat" "$WORK/ann.h5"
printf 'partition:\n  shards: 3\nsearch:\n  queries: "%s"\n  nprobe: 4\n' "$WORK/q.fvecs" >>"$WORK/s.yaml"
run_ok 2 "$WORK/build.log" build "$WORK/s.yaml"
run_ok 2 "$WORK/s1.log" search "$WORK/s.yaml"
[[ -f $OUT/checkpoints/search.json ]] || fail "no search marker"
cp "$OUT/search.json" "$WORK/search1.json"
cp "$OUT/search.h5" "$WORK/search1.h5"
ok

check "--resume with nothing changed: skipped, the summary printed from search.json"
run_ok 2 "$WORK/s2.log" search "$WORK/s.yaml" --resume
grep -q "search.h5 and search.json are complete (marker verified), skipped" "$WORK/s2.log" || { show "$WORK/s2.log"; fail "not skipped"; }
grep -q "^qps " "$WORK/s2.log.stdout" || { show "$WORK/s2.log"; fail "no summary"; }
cmp "$WORK/search1.json" "$OUT/search.json" && cmp "$WORK/search1.h5" "$OUT/search.h5" || fail "outputs changed"
ok

check "--resume with a new search.k: redone"
run_ok 2 "$WORK/s3.log" search "$WORK/s.yaml" --resume --set search.k=5
grep -q "search: redo: search.k changed from '10' to '5'" "$WORK/s3.log" || { show "$WORK/s3.log"; fail "no redo reason"; }
"$PY" -c "import h5py,sys; s=h5py.File(sys.argv[1])['ids'].shape; assert s==(200,5), s" "$OUT/search.h5" || fail "not redone with k 5"
ok

check "--resume after a resumed build with another seed (new shards): the layout changed, redone"
run_ok 2 "$WORK/build2.log" build "$WORK/s.yaml" --set seed=99 --resume
run_ok 2 "$WORK/s5.log" search "$WORK/s.yaml" --set search.k=5 --resume
grep -q "search: redo: layout changed" "$WORK/s5.log" || { show "$WORK/s5.log"; fail "a new layout did not redo the search"; }
ok

check "without the build's merge marker the layout is named by checksums: still skipped when unchanged"
rm "$OUT/checkpoints/merge.json"
run_ok 2 "$WORK/s6.log" search "$WORK/s.yaml" --set search.k=5 --resume
grep -q "search: redo: layout changed" "$WORK/s6.log" || { show "$WORK/s6.log"; fail "not redone"; }
run_ok 2 "$WORK/s7.log" search "$WORK/s.yaml" --set search.k=5 --resume
grep -q "marker verified), skipped" "$WORK/s7.log" || { show "$WORK/s7.log"; fail "not skipped"; }
ok

sf_done
