# Issue 12, "never touch what the user owns" (5): after a failure (input.strict: true and a
# bad line; a full disk while dedup writes kept/) neither dedup nor run leaves *.tmp* files
# or folders in output.dir.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/run_dir_lib.bash"
sf_init "$@"

check "data: a JSONL corpus with planted duplicates, 3000 x 8 vectors"
run_dir_data
ok

check "strict dedup and run failing on a bad line: exit 1, no *.tmp* left"
cp "$WORK/corpus.jsonl" "$WORK/bad.jsonl"
echo '{"id": "broken", "text": ' >>"$WORK/bad.jsonl"
dedup_config "$WORK/s.yaml" "$WORK/s" "$WORK/bad.jsonl"
sf_mpirun 2 "$WORK/s.log" dedup "$WORK/s.yaml" --set input.strict=true
[[ $SF_RC -eq 1 ]] || { show "$WORK/s.log"; fail "strict dedup exited $SF_RC, expected 1"; }
left=$(find "$WORK/s" -name '*.tmp*')
[[ -z $left ]] || fail "dedup left: $left"
sf_mpirun 2 "$WORK/r.log" run "$WORK/s.yaml" --set input.strict=true --set "output.dir=$WORK/r"
[[ $SF_RC -eq 1 ]] || { show "$WORK/r.log"; fail "strict run exited $SF_RC, expected 1"; }
left=$(find "$WORK/r" -name '*.tmp*')
[[ -z $left ]] || fail "run left: $left"
ok

check "dedup on a 3 MB tmpfs: the sketch fits, kept/ does not (ENOSPC): exit 1, no *.tmp* left"
SMALL="$WORK/small"
mkdir -p "$SMALL"
trap 'umount "$SMALL" 2>/dev/null || true; rm -rf "$WORK"' EXIT
if err=$(mount -t tmpfs -o size=3m tmpfs "$SMALL" 2>&1); then
  "$PY" - "$WORK/big.jsonl" <<'PYEOF'
import json, random, sys
rng = random.Random(1)
words = ["w%d" % i for i in range(5000)]
with open(sys.argv[1], "w") as f:  # 3000 distinct documents, 2.6 MB
    for i in range(3000):
        f.write(json.dumps({"id": i, "text": " ".join(rng.choice(words) for _ in range(150))}) + "\n")
PYEOF
  dedup_config "$WORK/full.yaml" "$SMALL/out" "$WORK/big.jsonl"
  # Uncompressed kept/ (2.6 MB): compressed it would fit.
  sf_mpirun 1 "$WORK/full.log" dedup "$WORK/full.yaml" --set output.compression=none
  [[ $SF_RC -eq 1 ]] || { show "$WORK/full.log"; fail "dedup on a full disk exited $SF_RC, expected 1"; }
  grep -q "No space left on device" "$WORK/full.log" || { show "$WORK/full.log"; fail "no ENOSPC error"; }
  left=$(find "$SMALL/out" -name '*.tmp*')
  [[ -z $left ]] || fail "dedup on a full disk left: $left"
  for _ in $(seq 50); do umount "$SMALL" 2>/dev/null && break; sleep 0.1; done  # may be busy a moment
  ok
else
  echo "   skipped: cannot mount a tmpfs (needs root and mount rights): $err"
fi

sf_done
