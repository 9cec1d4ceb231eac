#!/usr/bin/env bash
# Installs everything shardforge needs to build, test and benchmark, from Debian 12's
# package registry only. Run as root (or with sudo) on a fresh Debian 12 machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  build-essential cmake pkg-config ca-certificates \
  openmpi-bin libopenmpi-dev \
  libhdf5-dev hdf5-tools \
  libfaiss-dev libopenblas0-openmp libopenblas-openmp-dev \
  libspdlog-dev libfmt-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev zlib1g-dev \
  libxxhash-dev libboost-serialization-dev \
  libgtest-dev \
  libutf8proc-dev libxxhash-dev libzstd-dev zstd \
  python3 python3-faiss python3-h5py python3-numpy \
  python3-xxhash \
  dataset-fashion-mnist fortunes fortunes-min \
  slurm-wlm \
  procps time strace \
  libjs-chart.js
# The report test (tests/e2e/report.sh) opens `shardforge report`'s page in a headless browser
# and checks its screenshot.
apt-get install -y -q --no-install-recommends chromium python3-pil
# npm fetches the SPDX licence texts (scripts/fetch-dedup-data.sh); a nodejs from outside
# Debian brings its own npm and conflicts with Debian's package, so only when there is none.
command -v npm >/dev/null || apt-get install -y -q --no-install-recommends npm
# FAISS needs a fast BLAS at run time: the reference BLAS is ~13x slower at k-means.
if update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep -q openblas-openmp; then
  update-alternatives --set libblas.so.3-x86_64-linux-gnu \
    /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 >/dev/null
  update-alternatives --set liblapack.so.3-x86_64-linux-gnu \
    /usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3 >/dev/null
fi
