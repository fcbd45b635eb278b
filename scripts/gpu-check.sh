#!/usr/bin/env bash
# On a CUDA machine: build for sm_90a, run the GPU kernel tests (and the whole suite),
# and print a short summary last. Logs go to $OUT (or /tmp/ember-gpu-check).
# Usage: scripts/gpu-check.sh [--sanitize]   (--sanitize: GPU tests under compute-sanitizer)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/ember-gpu-check}
mkdir -p "$out"
summary=()

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" 2>&1
summary+=("gpu: $(head -1 "$out/gpu.txt")")

export EMBER_BUILD_DIR=${EMBER_BUILD_DIR:-build-gpu}
if scripts/build.sh -DEMBER_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a >"$out/build.log" 2>&1; then
  summary+=("build: ok")
else
  summary+=("build: FAILED (see build.log)"); tail -30 "$out/build.log"; printf '%s\n' "${summary[@]}"; exit 1
fi

status=0
ctest --test-dir "$EMBER_BUILD_DIR" -R 'Cuda' --output-on-failure >"$out/gpu-tests.log" 2>&1 || status=1
summary+=("gpu tests: $(grep -E 'tests passed|tests failed' "$out/gpu-tests.log" | tail -1)")
if grep -q 'Skipped' "$out/gpu-tests.log"; then summary+=("WARNING: GPU tests skipped on a GPU machine"); status=1; fi

if [ "${1:-}" = "--sanitize" ] && command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 9 "$EMBER_BUILD_DIR/tests/test_kernels_cuda" >"$out/memcheck.log" 2>&1 \
    && summary+=("memcheck: clean") || { summary+=("memcheck: ERRORS (see memcheck.log)"); status=1; }
fi

ctest --test-dir "$EMBER_BUILD_DIR" -E 'Cuda' -j 8 --output-on-failure >"$out/cpu-tests.log" 2>&1 || status=1
summary+=("cpu tests: $(grep -E 'tests passed|tests failed' "$out/cpu-tests.log" | tail -1)")

echo "=== gpu-check summary ==="
printf '%s\n' "${summary[@]}"
exit $status
