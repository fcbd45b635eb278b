#!/usr/bin/env bash
# The batched GPU decoder on a CUDA machine, from binaries built elsewhere (docs/kv.md "GPU"):
#   1. kernel and decoder tests (CudaGemmRows, CudaPagedAttention, CudaBatchDecoder);
#   2. the engine test (16 mixed requests alone vs batched) on gen-random models;
#   3. bench/serve_bench.py against `ember serve` on a llama3-8b-shaped f16 model:
#      64 streams x 1024-token prompts x 256 outputs, then TTFT at 16 concurrent.
# Usage: scripts/gpu-batch-check.sh [BIN_DIR]  (BIN_DIR holds ember and test_kernels_cuda,
# default .carry; BIN_DIR/lib and BIN_DIR/site may hold shared libraries and httpx).
# Logs go to $OUT (or /tmp/ember-batch-check). SKIP_BENCH=1 stops after step 2; SKIP_TESTS=1
# starts at step 3. The server runs with EMBER_BATCH_PROFILE=1 (per-step GPU times in serve.log).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-.carry}")
out=${OUT:-/tmp/ember-batch-check}
mkdir -p "$out"
export LD_LIBRARY_PATH="$bin/lib:${LD_LIBRARY_PATH:-}" PYTHONPATH="$bin/site:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

if [ "${SKIP_TESTS:-0}" != 1 ]; then
timeout 180 "$bin/test_kernels_cuda" --gtest_filter='CudaGemmRows.*:CudaPagedAttention.*:CudaBatchDecoder.*' \
  >"$out/kernels.log" 2>&1
echo "kernel tests: rc=$? $(grep -cE '^\[       OK' "$out/kernels.log") ok, $(grep -cE '^\[  FAILED  \] Cuda' "$out/kernels.log") failed"
grep -E 'Failure|error|normalised|differ' "$out/kernels.log" | head -20

"$bin/ember" gen-random --shape llama3-1b --type q4_k_m --layers 4 -o /tmp/llama1b-l4.gguf >"$out/gen.log" 2>&1
"$bin/ember" gen-random --shape qwen3-8b --type q8_0 --layers 2 -o /tmp/qwen8b-l2.gguf >>"$out/gen.log" 2>&1
EMBER_BATCH_TEST_MODELS=/tmp/llama1b-l4.gguf,/tmp/qwen8b-l2.gguf timeout 240 "$bin/test_kernels_cuda" \
  --gtest_filter='GpuBatchEngine.*' >"$out/engine.log" 2>&1
echo "engine test: rc=$?"
grep -E 'identical|Failure|differs|OK \]|FAILED \]' "$out/engine.log" | head -20
fi
[ "${SKIP_BENCH:-0}" = 1 ] && exit 0

model=/tmp/llama3-8b-f16.gguf
[ -f $model ] || "$bin/ember" gen-random --shape llama3-8b --type f16 -o $model >>"$out/gen.log" 2>&1
EMBER_BATCH_PROFILE=1 "$bin/ember" serve -m $model --port 8090 --max-seqs 64 --ctx-size 1536 --kv-cache-gb 24 --token-budget 2048 \
  >"$out/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 180); do curl -sf http://127.0.0.1:8090/health >/dev/null && break; sleep 1; done
grep -E 'engine|gpu|device' "$out/serve.log"
bench() { timeout 200 python3 bench/serve_bench.py --url http://127.0.0.1:8090 --prompt-tokens 1024 "$@" | tee -a "$out/bench.jsonl"; }
bench --concurrency 64 --requests 64 --max-tokens 256 --label c64-p1024-o256
bench --concurrency 16 --requests 32 --max-tokens 32 --seed 1 --label ttft-c16-p1024  # new prompts: no prefix hits
curl -s http://127.0.0.1:8090/metrics | grep -E '^ember_(kv|preempt|requests_finished)' | tee "$out/metrics.txt"
kill "$server"
wait "$server"
grep profile "$out/serve.log" | tail -8
tail -3 "$out/serve.log"
