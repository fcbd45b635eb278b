#!/usr/bin/env bash
# On a CUDA machine: build ember for sm_90a, run the GPU kernel tests, then generate
# random-weight models of a real shape (in /tmp, one at a time: an 8B f16 file is 16 GB)
# and benchmark them with `ember bench`. Logs and tables go to $OUT (or /tmp/ember-gpu-bench).
#
# Environment: SHAPE (llama3-8b), TYPES ("q4_k_m q8_0 f16"), TESTS (1: run the Cuda tests;
# sanitize: also under compute-sanitizer), BENCH ("-p 512,2048 -n 128 -r 3"), AB (settings such
# as "EMBER_CUDA_GRAPH=0 EMBER_CUDA_PDL=0": tg128 again under each), PROFILE (1: ncu per kernel).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/ember-gpu-bench}
mkdir -p "$out"
shape=${SHAPE:-llama3-8b}
types=${TYPES:-q4_k_m q8_0 f16}
bench_args=${BENCH:--p 512,2048 -n 128 -r 3}
build_dir=${EMBER_BUILD_DIR:-build-gpu}
summary=()

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader \
  >"$out/gpu.txt" 2>&1
summary+=("gpu: $(head -1 "$out/gpu.txt")")

t0=$(date +%s)
if ! { cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
         -DCMAKE_CUDA_ARCHITECTURES=90a && \
       cmake --build "$build_dir" -j "$(nproc)" --target ember test_kernels_cuda; } >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  echo "build FAILED"
  exit 1
fi
summary+=("build: ok ($(($(date +%s) - t0)) s)")
ember="$build_dir/bin/ember"

if [ "${TESTS:-1}" != 0 ]; then
  "$build_dir/tests/test_kernels_cuda" >"$out/gpu-tests.log" 2>&1
  summary+=("gpu tests: $(grep -E '^\[  PASSED  \]|FAILED TEST' "$out/gpu-tests.log" | head -3 | tr '\n' ' ')")
  grep -E '^\[  FAILED' "$out/gpu-tests.log" | head -20
  if [ "${TESTS}" = sanitize ]; then
    compute-sanitizer --tool memcheck --error-exitcode 9 "$build_dir/tests/test_kernels_cuda" \
      --gtest_filter='CudaGemv.*:CudaDecoder.*:CudaAttention.*:CudaRopeStore.*:CudaNorm.*' >"$out/memcheck.log" 2>&1 \
      && summary+=("memcheck: clean") || summary+=("memcheck: ERRORS (see memcheck.log)")
  fi
fi

for t in $types; do
  f="/tmp/$shape-$t.gguf"
  t1=$(date +%s)
  if ! "$ember" gen-random --shape "$shape" --type "$t" -o "$f" 2>>"$out/gen.log"; then
    summary+=("gen $t: FAILED"); continue
  fi
  summary+=("gen $shape $t: $(($(date +%s) - t1)) s, $(du -h "$f" | cut -f1)")
  if [ "${PROFILE:-0}" = 1 ]; then  # per-kernel durations of a few decode steps
    ncu --graph-profiling node --clock-control none -c "${PROFILE_KERNELS:-2000}" \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum --print-summary per-kernel \
      "$ember" bench -m "$f" -p 0 -n 2 -r 1 >"$out/ncu-$t.txt" 2>&1
    summary+=("ncu $t: $(grep -c 'gpu__time_duration' "$out/ncu-$t.txt") kernels summarised")
  fi
  # shellcheck disable=SC2086
  "$ember" bench -m "$f" $bench_args 2>>"$out/bench-$t.log" | tee -a "$out/bench.md" | tail -n +3 >>"$out/rows.md"
  for ab in ${AB:-}; do  # e.g. AB="EMBER_CUDA_GRAPH=0 EMBER_CUDA_PDL=0": tg128 once per setting
    env "$ab" "$ember" bench -m "$f" -p 0 -n 128 -r 3 2>>"$out/bench-$t.log" | tail -n +3 \
      | sed "s/| tg128 |/| tg128 ($ab) |/" >>"$out/rows.md"
  done
  rm -f "$f"
done

echo "=== gpu-bench summary ==="
printf '%s\n' "${summary[@]}"
echo "| model | size | params | backend | test | t/s | GB/s | % of 3.03 TB/s | TFLOP/s |"
echo "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
cat "$out/rows.md" 2>/dev/null
