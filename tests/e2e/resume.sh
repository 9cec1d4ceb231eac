# --resume and completion markers: what is skipped, what is redone and why.
#  - a finished build resumed: every stage skipped, index.faiss untouched;
#  - a key the index does not depend on (input.batch_rows, threads): still skipped;
#  - resumed with 2 threads per rank where the first build had 1: the redone stages (add and
#    merge on the first build's training; then train too) give a byte-identical index.faiss;
#  - a key training depends on (index.kmeans_iterations): train, add and merge redone, and the
#    result equals a fresh build with that key; the log names the changed key;
#  - index.faiss deleted: the add and merge redone from the saved trained index;
#  - trained.faiss truncated: train redone;
#  - eval --resume: skipped while index and eval keys are unchanged, redone when eval.nprobe
#    changes or the index is rebuilt.
source "$(dirname "$0")/lib.bash"
sf_init "$@"

check "data: 20000 x 16, IVF32,PQ4np; a 2-rank build"
sfdata gen "$WORK/base.fvecs" --rows 20000 --dim 16 --seed 5
sfdata gen "$WORK/q.fvecs" --rows 50 --dim 16 --seed 6
write_config "$WORK/build.yaml" "$WORK/run" "IVF32,PQ4np" "$WORK/base.fvecs"
printf 'eval:\n  queries: "%s"\n  nprobe: [1, 8]\n' "$WORK/q.fvecs" >>"$WORK/build.yaml"
SETS=(--set output.piece_rows=4096)
# threads_used RUN: the threads per rank of the last build in RUN (its run.json).
threads_used() {
  "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['commands']['build']['threads_per_rank'])" "$1/run.json"
}
run_ok 2 "$WORK/first.log" build "$WORK/build.yaml" "${SETS[@]}"
cp "$WORK/run/index.faiss" "$WORK/first.faiss"
[[ $(threads_used "$WORK/run") == 1 ]] || fail "the first build did not run 1 thread per rank"
ok

# Two threads per rank need cores of their own: Open MPI binds each of two ranks to one core
# unless told --bind-to none (this variable is that option).
export OMPI_MCA_hwloc_base_binding_policy=none
check "finished build resumed (also with another input.batch_rows and threads): all skipped, index untouched"
before=$(stat -c %Y.%s "$WORK/run/index.faiss")
run_ok 2 "$WORK/again.log" build "$WORK/build.yaml" "${SETS[@]}" --resume --set input.batch_rows=1000 --set threads=2
grep -q "merge: complete (marker verified), skipped" "$WORK/again.log" || { show "$WORK/again.log"; fail "merge not skipped"; }
if grep -q "train: k-means\|build: add" "$WORK/again.log"; then show "$WORK/again.log"; fail "work was redone"; fi
[[ $(stat -c %Y.%s "$WORK/run/index.faiss") == "$before" ]] || fail "index.faiss was rewritten"
ok

check "resumed with 2 threads per rank (the first build had 1), index.faiss deleted: train skipped, add and merge redone, byte-identical"
rm "$WORK/run/index.faiss"
run_ok 2 "$WORK/threads2.log" build "$WORK/build.yaml" "${SETS[@]}" --resume --set threads=2
grep -q "train: complete (marker verified), skipped" "$WORK/threads2.log" || { show "$WORK/threads2.log"; fail "train redone"; }
grep -q "add: 0 of 20000 rows are in verified pieces" "$WORK/threads2.log" || { show "$WORK/threads2.log"; fail "add not redone"; }
grep -q "2 rank(s) x 2 thread(s)" "$WORK/threads2.log" || { show "$WORK/threads2.log"; fail "the log does not say 2 threads per rank"; }
[[ $(threads_used "$WORK/run") == 2 ]] || fail "the resume did not run 2 threads per rank"
cmp "$WORK/first.faiss" "$WORK/run/index.faiss" || fail "index.faiss differs after a resume with 2 threads per rank"
ok

check "trained.faiss and index.faiss deleted, resumed with 2 threads per rank: train, add and merge redone, byte-identical"
rm "$WORK/run/trained.faiss" "$WORK/run/index.faiss"
run_ok 2 "$WORK/threads2-train.log" build "$WORK/build.yaml" "${SETS[@]}" --resume --set threads=2
grep -q "train: redo: trained.faiss" "$WORK/threads2-train.log" || { show "$WORK/threads2-train.log"; fail "train not redone"; }
cmp "$WORK/first.faiss" "$WORK/run/index.faiss" || fail "index.faiss differs after train redone with 2 threads per rank"
ok

check "index.kmeans_iterations changed: train, add and merge redone (the log names the key), equal to a fresh build"
run_ok 2 "$WORK/changed.log" build "$WORK/build.yaml" "${SETS[@]}" --resume --set index.kmeans_iterations=4
grep -qE "merge: redo: stage (add|partition|train) changed" "$WORK/changed.log" || { show "$WORK/changed.log"; fail "merge not redone"; }
grep -q "train: redo: index.kmeans_iterations changed from '10' to '4'" "$WORK/changed.log" || { show "$WORK/changed.log"; fail "the changed key is not named"; }
grep -q "add: 0 of 20000 rows are in verified pieces" "$WORK/changed.log" || { show "$WORK/changed.log"; fail "pieces of the old training were reused"; }
run_ok 2 "$WORK/fresh.log" build "$WORK/build.yaml" "${SETS[@]}" --set index.kmeans_iterations=4 --set "output.dir=$WORK/fresh"
cmp "$WORK/fresh/index.faiss" "$WORK/run/index.faiss" || fail "differs from a fresh build with the changed key"
ok

check "index.faiss deleted: train skipped, add and merge redone from trained.faiss"
rm "$WORK/run/index.faiss"
run_ok 2 "$WORK/noindex.log" build "$WORK/build.yaml" "${SETS[@]}" --resume --set index.kmeans_iterations=4
grep -q "merge: redo: index.faiss: No such file" "$WORK/noindex.log" || { show "$WORK/noindex.log"; fail "missing index not reported"; }
grep -q "train: complete (marker verified), skipped" "$WORK/noindex.log" || { show "$WORK/noindex.log"; fail "train redone"; }
cmp "$WORK/fresh/index.faiss" "$WORK/run/index.faiss" || fail "rebuilt index differs"
ok

check "trained.faiss truncated (and index.faiss gone): train redone"
rm "$WORK/run/index.faiss"
truncate -s 100 "$WORK/run/trained.faiss"
run_ok 2 "$WORK/badtrain.log" build "$WORK/build.yaml" "${SETS[@]}" --resume --set index.kmeans_iterations=4
grep -q "train: redo: trained.faiss: 100 bytes, the marker says" "$WORK/badtrain.log" || { show "$WORK/badtrain.log"; fail "truncated trained.faiss not reported"; }
cmp "$WORK/fresh/index.faiss" "$WORK/run/index.faiss" || fail "rebuilt index differs"
ok

check "eval --resume: skipped when nothing changed, redone for a new eval.nprobe"
run_ok 2 "$WORK/eval1.log" eval "$WORK/build.yaml" --set index.kmeans_iterations=4
cp "$WORK/run/eval.json" "$WORK/eval1.json"
run_ok 2 "$WORK/eval2.log" eval "$WORK/build.yaml" --set index.kmeans_iterations=4 --resume
grep -q "eval.json is complete (marker verified), skipped" "$WORK/eval2.log" || { show "$WORK/eval2.log"; fail "eval not skipped"; }
grep -q "recall@1" "$WORK/eval2.log" || fail "the skipped eval does not print the table"
cmp "$WORK/eval1.json" "$WORK/run/eval.json" || fail "eval.json changed"
run_ok 2 "$WORK/eval3.log" eval "$WORK/build.yaml" --set index.kmeans_iterations=4 --resume --set 'eval.nprobe=[2]'
if grep -q "skipped" "$WORK/eval3.log"; then show "$WORK/eval3.log"; fail "eval skipped after eval.nprobe changed"; fi
grep -q '"nprobe": 2' "$WORK/run/eval.json" || fail "eval.json not redone"
ok

sf_done
