#!/usr/bin/env bash
# Configures and builds ember into build/ (Release). Extra arguments go to cmake.
# CUDA is built when nvcc is found (on PATH or in /usr/local/cuda), for sm_90a.
# EMBER_BUILD_TARGET=ember builds only the binary (default: everything, tests included).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1  # cache hits across checkouts (CI clones)
build_dir=${EMBER_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${EMBER_BUILD_TARGET:-all}"
