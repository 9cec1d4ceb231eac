#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test (unit, MPI at 1/2/4 ranks, end to
# end) under a timeout so that a hang fails. As root on a fresh Debian 12 machine.
#   scripts/test.sh                 all tests
#   LABEL=mpi scripts/test.sh       one label: unit | mpi | e2e
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd build
timeout --signal=KILL 4800 ctest --output-on-failure --timeout 900 ${LABEL:+-L "$LABEL"}
