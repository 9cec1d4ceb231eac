#!/usr/bin/env bash
# Installs the dependencies, builds (RelWithDebInfo, and Release into build-release/ so that
# -O3's warnings fail too; both with warnings as errors), and runs every test (unit, MPI at
# 1/2/4 ranks, end to end) under a timeout so that a hang fails; then rebuilds with ASan +
# UBSan and runs the unit and MPI tests again. As root on a fresh Debian 12 machine.
#   scripts/test.sh                     all tests, then the sanitizer pass
#   LABEL=mpi scripts/test.sh           one label: unit | mpi | e2e
#   SANITIZE=0 scripts/test.sh          skip the sanitizer pass
#   RELEASE=0 scripts/test.sh           skip the Release build
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
if [[ "${RELEASE:-1}" != 0 ]]; then
  echo "== Release build (build-release/, warnings as errors; its tests are built, not run)"
  scripts/build.sh build-release Release
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# Time limits, from the inside out (CI gives .ci/run 90 min in all, installs and three builds
# included):
#   one shardforge run in an e2e script   SF_TIMEOUT 300 s (tests/e2e/lib.bash): a hang
#   one test                              TIMEOUT in tests/CMakeLists.txt: unit 300 s, MPI 600 s,
#                                         e2e 600 s, e2e_slurm 900 s (ctest --timeout 600 for any
#                                         test without one)
#   the whole suite                       SUITE_CAP 2400 s: ~10 min of tests, twice that on a
#                                         loaded machine, plus one hung test reaching its own
#                                         limit (900 s), so a hang fails that test, named by ctest
#   the sanitizer pass                    ASAN_CAP 1200 s: a few minutes of unit and MPI tests,
#                                         twice that, plus one hung MPI test (600 s)
# 40 + 20 min of tests leaves CI 30 min for the installs and the builds. A cap is the backstop
# for what the per-test limits cannot catch (ctest itself stuck): when one fires, run_ctest
# names the tests that had started and not finished.
SUITE_CAP=${SUITE_CAP:-2400}
ASAN_CAP=${ASAN_CAP:-1200}

# run_ctest DIR CAP ARGS...: ctest ARGS in DIR, ended (SIGTERM to ctest and the tests it runs,
# SIGKILL 30 s later) after CAP seconds; its output is also in DIR/ctest-output.log. On the cap,
# prints which tests were running and exits 124.
run_ctest() {
  local dir=$1 cap=$2 rc=0
  shift 2
  (cd "$dir" && timeout --signal=TERM --kill-after=30 "$cap" ctest --output-on-failure --timeout 600 "$@") 2>&1 |
    tee "$dir/ctest-output.log" || rc=$?
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "== FAIL: the tests in $dir ran past their cap of ${cap}s; running then:" >&2
    awk '/^ *Start +[0-9]+: / { n = $2; sub(/:$/, "", n); name[n] = $3; order[++k] = n }
         /^ *[0-9]+\/[0-9]+ Test +#[0-9]+: / { n = $0; sub(/.*Test +#/, "", n); sub(/:.*/, "", n); done[n] = 1 }
         END { for (i = 1; i <= k; ++i) if (!(order[i] in done)) print "   " name[order[i]] }' \
      "$dir/ctest-output.log" >&2
    exit 124
  fi
  return "$rc"
}

run_ctest build "$SUITE_CAP" ${LABEL:+-L "$LABEL"}

if [[ "${SANITIZE:-1}" != 0 ]]; then
  echo "== ASan + UBSan build: unit and MPI tests"
  SHARDFORGE_CMAKE_ARGS=-DSHARDFORGE_SANITIZE=ON scripts/build.sh build-asan Debug
  # Open MPI's own allocations are reported as leaks at exit: leak checking is off.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  run_ctest build-asan "$ASAN_CAP" -L "unit|mpi"
fi
