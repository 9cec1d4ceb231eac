# Helpers for the dedup and run fault tests (sourced after lib.bash and fault_lib.bash; no .sh
# suffix: not a test itself).

FORTUNES=${FORTUNES:-/usr/share/games/fortunes}

# fortune_corpus OUT.jsonl COPIES: every fortune cookie of $FORTUNES as a JSONL record, COPIES
# times over; copy k > 0 of a cookie gets one word appended (a near duplicate of long cookies,
# a distinct document for short ones) and every 7th copy is exact. Skips the test (sf_skip)
# where fortunes is not installed (scripts/install-deps.sh installs it).
fortune_corpus() {
  local out=$1 copies=$2
  [[ -r $FORTUNES/fortunes ]] || sf_skip "fortunes not installed ($FORTUNES)"
  "$PY" - "$FORTUNES" "$out" "$copies" <<'PYEOF'
import json, os, sys
root, out, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
cookies = []
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name)
    if "." in name or os.path.islink(path) or not os.path.isfile(path):
        continue
    with open(path, encoding="utf-8", errors="replace") as f:
        cookies += [c.strip() for c in f.read().split("\n%\n") if c.strip()]
with open(out, "w") as f:
    n = 0
    for k in range(copies):
        for i, c in enumerate(cookies):
            text = c if k == 0 or k % 7 == 0 else c + " variant" + str(k)
            f.write(json.dumps({"id": f"c{i}-{k}", "text": text}) + "\n")
            n += 1
print(f"{n} records from {len(cookies)} cookies")
PYEOF
}

# text_config FILE OUTDIR INPUT...: a dedup / run config for a JSONL corpus.
text_config() {
  local file=$1 out=$2
  shift 2
  printf 'input:\n  format: jsonl\n  paths:\n' >"$file"
  printf '    - "%s"\n' "$@" >>"$file"
  printf 'output:\n  dir: "%s"\n' "$out" >>"$file"
}

# signal_rank SIGNAL RANK: sends SIGNAL to that rank of the background run.
signal_rank() {
  local pid
  pid=$(rank_pid "$2")
  [[ -n $pid ]] || fail "rank $2 not found"
  kill "-$1" "$pid"
}

# has_markers DIR GLOB N: at least N completion markers match checkpoints/GLOB.
has_markers() {
  local n
  n=$(compgen -G "$1/checkpoints/$2" | wc -l)
  [[ $n -ge $3 ]]
}

# same_outputs REF RUN FILE...: each FILE (relative) is byte-identical in both run directories.
same_outputs() {
  local ref=$1 run=$2 f
  shift 2
  for f in "$@"; do
    cmp "$ref/$f" "$run/$f" || fail "$f of the resumed run differs from the uninterrupted one"
  done
}
