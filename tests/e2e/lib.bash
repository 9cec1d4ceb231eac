# Shared helpers for the end-to-end tests (sourced, not a test itself: no .sh suffix).
#
# Usage at the top of a test:   source "$(dirname "$0")/lib.bash"; sf_init "$@"
# Arguments: <path-to-shardforge-binary> <project-source-dir>, as tests/CMakeLists.txt passes.
# Gives: $SF (binary), $SRC, $WORK (temporary, removed on exit), $PY (python with numpy, h5py,
# faiss), $SFDATA (tests/e2e/sfdata.py), $DATA (tests/data:
# real samples shipped in the repository).

set -euo pipefail

# Direct runs (outside ctest) as root need these too; ctest sets them already.
export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}"
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
export OMPI_MCA_rmaps_base_oversubscribe="${OMPI_MCA_rmaps_base_oversubscribe:-1}"

# Seconds per shardforge run: a hang is a failure. Generous (a loaded machine runs a test's few-
# second builds many times slower), and below the per-test TIMEOUT of tests/CMakeLists.txt.
SF_TIMEOUT="${SF_TIMEOUT:-300}"
SF_CHECKS=0

sf_init() {
  if [[ $# -lt 2 ]]; then
    echo "usage: $0 <path-to-shardforge> <project-source-dir>" >&2
    exit 2
  fi
  SF="$(realpath "$1")"
  SRC="$(realpath "$2")"
  [[ -x "$SF" ]] || { echo "FAIL: $SF is not an executable" >&2; exit 2; }
  PY=/usr/bin/python3
  SFDATA="$SRC/tests/e2e/sfdata.py"
  DATA="$SRC/tests/data"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/sf-e2e-$(basename "$0" .sh).XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  echo "== $(basename "$0"): shardforge=$SF work=$WORK"
}

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Prints what is being checked; pairs with ok.
check() { echo "-- $*"; }
ok() {
  SF_CHECKS=$((SF_CHECKS + 1))
  echo "   ok${1:+: $1}"
}

# sf_skip REASON: this test cannot run here: prints "SKIPPED: REASON" and exits 77, which ctest
# reports as a skip (SKIP_RETURN_CODE, tests/CMakeLists.txt). In CI (CI=true) a skip is a
# failure: scripts/install-deps.sh installs what every test needs.
sf_skip() {
  [[ ${CI:-} != true ]] || fail "CI=true, and this test would skip: $*"
  echo "SKIPPED: $*"
  exit 77
}

# sf_skip_part REASON: as sf_skip for one part of a test; the rest still runs, and sf_done then
# ends the test skipped (77), naming the parts left out, instead of passed.
SF_SKIPPED=()
sf_skip_part() {
  [[ ${CI:-} != true ]] || fail "CI=true, and a part of this test would skip: $*"
  echo "-- SKIPPED: $*"
  SF_SKIPPED+=("$*")
}

sf_done() {
  if [[ ${#SF_SKIPPED[@]} -gt 0 ]]; then
    local parts
    printf -v parts '%s; ' "${SF_SKIPPED[@]}"
    echo "== $(basename "$0"): $SF_CHECKS checks passed; SKIPPED: ${parts%; }"
    exit 77
  fi
  echo "== $(basename "$0"): all $SF_CHECKS checks passed"
}

# Shows the tail of a captured output file (for failure messages).
show() {
  echo "---- $1 (last 40 lines) ----" >&2
  tail -n 40 "$1" >&2 || true
  echo "----" >&2
}

# expect_one_error NAME LOG PATTERN...: LOG, the output of a failed shardforge run, holds exactly
# one "[error]" line, holding every PATTERN (fixed strings), and the ranks agreed on it (no
# MPI_ABORT). Sets ERROR_LINE to that line.
expect_one_error() {
  local name=$1 log=$2
  shift 2
  ERROR_LINE=$(grep -F '[error]' "$log" || true)
  local n
  n=$(grep -cF '[error]' "$log" || true)
  if [[ $n -ne 1 ]]; then
    show "$log"
    fail "$name: expected exactly one [error] line, got $n"
  fi
  if grep -q 'MPI_ABORT' "$log"; then
    show "$log"
    fail "$name: the ranks did not agree on the error (MPI_ABORT)"
  fi
  local pattern
  for pattern in "$@"; do
    if ! grep -qF -- "$pattern" <<<"$ERROR_LINE"; then
      show "$log"
      fail "$name: the error line does not name '$pattern': $ERROR_LINE"
    fi
  done
}

# sf_mpirun NP OUTFILE ARGS...: runs shardforge ARGS under mpirun with NP ranks and a timeout,
# stdout in OUTFILE.stdout, stderr in OUTFILE.stderr, both in OUTFILE. Sets SF_RC; exits
# (fails the test) only on a timeout.
sf_mpirun() {
  local np=$1 out=$2
  shift 2
  set +e
  timeout --kill-after=10 "$SF_TIMEOUT" \
    mpirun -np "$np" --oversubscribe -x OMP_NUM_THREADS=1 "$SF" "$@" \
    >"$out.stdout" 2>"$out.stderr"
  SF_RC=$?
  set -e
  cat "$out.stdout" "$out.stderr" >"$out"
  if [[ $SF_RC -eq 124 || $SF_RC -eq 137 ]]; then
    show "$out"
    fail "shardforge $* with $np rank(s) did not finish within ${SF_TIMEOUT}s (hang?)"
  fi
}

# run_ok NP OUTFILE ARGS...: as sf_mpirun, and fails the test unless the run exits 0.
run_ok() {
  local np=$1 out=$2
  sf_mpirun "$@"
  if [[ $SF_RC -ne 0 ]]; then
    show "$out"
    fail "shardforge ${*:3} with $np rank(s) exited $SF_RC, expected 0 (output: $out)"
  fi
}

# rss_run NAME NP ARGS...: shardforge ARGS on NP ranks (one thread each), each rank under
# /usr/bin/time -f %M (the kernel's ru_maxrss of the rank: its peak over the whole job, which
# shardforge's per-stage peaks do not reset); fails the test unless it exits 0. Output in
# $WORK/NAME.log. Sets RSS_KIB to the largest rank's peak RSS in KiB.
rss_run() {
  local name=$1 np=$2
  shift 2
  export RSS_PREFIX=$WORK/$name.rss
  rm -f "$RSS_PREFIX".*
  set +e
  timeout --kill-after=10 "$SF_TIMEOUT" mpirun -np "$np" --oversubscribe -x OMP_NUM_THREADS=1 \
    -x RSS_PREFIX bash -c '/usr/bin/time -f %M -o "$RSS_PREFIX.$OMPI_COMM_WORLD_RANK" "$@"' \
    bash "$SF" "$@" >"$WORK/$name.log" 2>&1
  local rc=$?
  set -e
  [[ $rc -eq 0 ]] || { show "$WORK/$name.log"; fail "$name: shardforge $* on $np rank(s) exited $rc"; }
  RSS_KIB=$(tail -q -n 1 "$RSS_PREFIX".* | sort -n | tail -n 1)
}

# stage_peak_kib FILE COMMAND [STAGE]: the largest per-stage peak_rss_mib any rank reported in
# FILE (run.json: COMMAND's stages; dedup.json: COMMAND "dedup"), in KiB; STAGE: that stage only.
stage_peak_kib() {
  "$PY" - "$@" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1]))
stages = j["stages"] if "commands" not in j else j["commands"][sys.argv[2]]["stages"]
only = sys.argv[3] if len(sys.argv) > 3 else None
print(int(max(max(s["peak_rss_mib"]) for s in stages if only in (None, s["name"])) * 1024))
PYEOF
}

# traced NP LOG TRACE INJECT ARGS...: shardforge ARGS on NP ranks with rank 0 under strace,
# which logs its renames to TRACE and applies INJECT (strace options, e.g. "-e inject=rename:
# signal=KILL:when=3"; "" for none); sets SF_RC, fails the test on a timeout. Needs strace.
traced() {
  local np=$1 out=$2
  export STRACE_LOG=$3 STRACE_INJECT=$4
  shift 4
  if [[ ! -f $WORK/rank0.sh ]]; then
    cat >"$WORK/rank0.sh" <<'SH'
if [[ $OMPI_COMM_WORLD_RANK == 0 ]]; then
  exec strace -f -qq -o "$STRACE_LOG" -e trace=rename,renameat,renameat2 $STRACE_INJECT "$@"
fi
exec "$@"
SH
  fi
  set +e
  timeout --kill-after=10 "$SF_TIMEOUT" mpirun -np "$np" --oversubscribe -x OMP_NUM_THREADS=1 \
    -x STRACE_LOG -x STRACE_INJECT bash "$WORK/rank0.sh" "$SF" "$@" >"$out" 2>&1
  SF_RC=$?
  set -e
  [[ $SF_RC -ne 124 ]] || { show "$out"; fail "timed out: $*"; }
}
# traced_targets TRACE DIR: the paths rank 0 renamed to, in order, relative to DIR.
traced_targets() { sed -n 's/.*rename[a-z0-9]*(.*, "\([^"]*\)".*/\1/p' "$1" | sed "s|^$2/||"; }
# traced_renames LOG TRACE DIR ARGS...: `traced 2 LOG TRACE "" ARGS`, which must succeed, for
# the renames of a run without a fault: sets NAMES (traced_targets TRACE DIR) and calls (the
# one rename system call rank 0 makes, to inject the kill into).
traced_renames() {
  local log=$1 trace=$2 dir=$3
  shift 3
  traced 2 "$log" "$trace" "" "$@"
  [[ $SF_RC -eq 0 ]] || { show "$log"; fail "traced $1 exited $SF_RC"; }
  mapfile -t NAMES < <(traced_targets "$trace" "$dir")
  calls=$(sed -n 's/^[0-9]* *\(rename[a-z0-9]*\)(.*/\1/p' "$trace" | sort -u)
  [[ $(wc -w <<<"$calls") -eq 1 ]] || fail "expected one rename system call, saw: ${calls:-none}"
}

# write_config FILE OUTDIR FACTORY INPUT... : a minimal build config.
write_config() {
  local file=$1 outdir=$2 factory=$3
  shift 3
  {
    echo "input:"
    echo "  paths:"
    local p
    for p in "$@"; do echo "    - \"$p\""; done
    echo "index:"
    echo "  factory: \"$factory\""
    echo "output:"
    echo "  dir: \"$outdir\""
    echo "seed: 4321"
  } >"$file"
}

# query_finds_itself RUN_DIR CORPUS ID: `shardforge query RUN_DIR` (-k 3, --nprobe 4) of the
# text of the record with id ID in the JSONL file CORPUS finds that record first, at cosine
# 1.0000, with its file and line; fails the test otherwise. The output is in $WORK/q.out, the
# text in QUERY_TEXT.
query_finds_itself() {
  local run=$1 corpus=$2 id=$3
  QUERY_TEXT=$("$PY" -c "import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d['id'] == sys.argv[2]: print(d['text'])" "$corpus" "$id")
  "$SF" query "$run" "$QUERY_TEXT" -k 3 --nprobe 4 >"$WORK/q.out" 2>&1 ||
    { show "$WORK/q.out"; fail "query exited non-zero"; }
  grep -q "^ 1\. cosine 1\.0000  id \"$id\"  $corpus:" "$WORK/q.out" ||
    { show "$WORK/q.out"; fail "query of $id's text did not find $id first"; }
}

# sfdata ARGS...: tests/e2e/sfdata.py (data generators and checks).
sfdata() { OMP_NUM_THREADS=1 "$PY" "$SFDATA" "$@"; }
