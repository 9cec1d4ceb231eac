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
(cd build && timeout --signal=KILL 4000 ctest --output-on-failure --timeout 900 ${LABEL:+-L "$LABEL"})

if [[ "${SANITIZE:-1}" != 0 ]]; then
  echo "== ASan + UBSan build: unit and MPI tests"
  SHARDFORGE_CMAKE_ARGS=-DSHARDFORGE_SANITIZE=ON scripts/build.sh build-asan Debug
  # Open MPI's own allocations are reported as leaks at exit: leak checking is off.
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  (cd build-asan && timeout --signal=KILL 1500 ctest --output-on-failure --timeout 600 -L "unit|mpi")
fi
