#!/usr/bin/env bash
# Configures and builds shardforge, warnings as errors:
#   scripts/build.sh                  ./build, RelWithDebInfo
#   scripts/build.sh DIR TYPE         ./DIR with CMAKE_BUILD_TYPE=TYPE (scripts/test.sh: Release)
# SHARDFORGE_CMAKE_ARGS adds cmake options.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
type=${2:-RelWithDebInfo}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DSHARDFORGE_WERROR=ON ${SHARDFORGE_CMAKE_ARGS:-} >/dev/null
cmake --build "$dir" -j "$(nproc)"
