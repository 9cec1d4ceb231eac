# Issue 12, "never touch what the user owns" (3): a run directory belongs to the command that
# made it. dedup into a build directory, build or run into a dedup directory, eval on a dedup
# directory, dedup-quality on a build directory: refused (exit 2) naming the command, the
# directory left as it was. In a directory shardforge never made, unrelated files stay and a
# user's index.faiss is not replaced (exit 2).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/run_dir_lib.bash"
sf_init "$@"

check "data: a JSONL corpus with planted duplicates, 3000 x 8 vectors"
run_dir_data
ok

check "a build"
write_config "$WORK/b.yaml" "$WORK/b" "IVF8,Flat" "$WORK/base.fvecs"
run_ok 1 "$WORK/b1.log" build "$WORK/b.yaml"
ok

check "a dedup"
dedup_config "$WORK/d.yaml" "$WORK/d" "$WORK/corpus.jsonl"
run_ok 1 "$WORK/d1.log" dedup "$WORK/d.yaml"
ok

check "a build directory and a dedup directory do not mix: each refusal names the command, nothing changes"
echo "mine" >"$WORK/b/notes.txt"
b_before=$(tree_sum "$WORK/b")
d_before=$(tree_sum "$WORK/d")
expect_refused "$WORK/mix1.log" "is the run directory of a \`shardforge build\`" 2 dedup "$WORK/d.yaml" --set "output.dir=$WORK/b"
expect_refused "$WORK/mix2.log" "is the run directory of a \`shardforge dedup\`" 1 build "$WORK/b.yaml" --set "output.dir=$WORK/d"
expect_refused "$WORK/mix3.log" "is the run directory of a \`shardforge dedup\`.*choose another output.dir" 1 eval "$WORK/b.yaml" --set "output.dir=$WORK/d" --set "eval.queries=$WORK/base.fvecs"
expect_refused "$WORK/mix4.log" "is the run directory of a \`shardforge build\`" 1 dedup-quality "$WORK/d.yaml" --set "output.dir=$WORK/b"
expect_refused "$WORK/mix5.log" "is the run directory of a \`shardforge dedup\`" 1 run "$WORK/d.yaml" --set "output.dir=$WORK/d"
[[ $(tree_sum "$WORK/b") == "$b_before" ]] || fail "the build directory changed"
[[ $(tree_sum "$WORK/d") == "$d_before" ]] || fail "the dedup directory changed"
ok

check "a directory shardforge never made: unrelated files stay; a user's index.faiss is not replaced"
mkdir -p "$WORK/u"
echo "mine" >"$WORK/u/notes.txt"
write_config "$WORK/u.yaml" "$WORK/u" "IVF8,Flat" "$WORK/base.fvecs"
run_ok 1 "$WORK/u1.log" build "$WORK/u.yaml"
[[ -f $WORK/u/notes.txt && -f $WORK/u/index.faiss ]] || fail "notes.txt removed or no index"
mkdir -p "$WORK/v"
echo "my own index" >"$WORK/v/index.faiss"
write_config "$WORK/v.yaml" "$WORK/v" "IVF8,Flat" "$WORK/base.fvecs"
expect_refused "$WORK/v.log" "index.faiss exists and shardforge did not write it" 1 build "$WORK/v.yaml"
[[ $(cat "$WORK/v/index.faiss") == "my own index" ]] || fail "the user's index.faiss was replaced"
ok

sf_done
