#!/usr/bin/env bash
# One command for the test suite: install dependencies, build, fetch the real models
# the tests compare against, run every test. GPU tests skip cleanly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh
scripts/fetch-models.sh all
export EMBER_MODELS_DIR=${EMBER_MODELS_DIR:-$PWD/models}
export EMBER_REQUIRE_MODELS=1
export EMBER_PYTHON=$PWD/.venv/bin/python
ctest --test-dir "${EMBER_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
