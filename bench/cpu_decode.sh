#!/usr/bin/env bash
# CPU decode/prefill throughput of the real models (benchmark, not a test).
# Usage: bench/cpu_decode.sh [runs=3] [n_predict=128]. Prints one line per run and the
# median generation tokens/s per model. Build first (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
n=${2:-128}
models=${EMBER_MODELS_DIR:-models}
prompt="The history of the printing press begins in the fifteenth century, when"
for m in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
  [ -f "$models/$m" ] || { echo "skip $m (not fetched)"; continue; }
  rates=()
  for ((r = 0; r < runs; r++)); do
    line=$(build/bin/ember run -m "$models/$m" -p "$prompt" -n "$n" --temp 0 --ignore-eos 2>&1 >/dev/null | grep -E '^(prompt|gen):' | tr '\n' ' ')
    echo "$m run $r: $line"
    rates+=("$(sed -E 's/.*gen: .*= +([0-9.]+) tokens\/s.*/\1/' <<<"$line")")
  done
  median=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$m: median decode $median tokens/s over $runs runs of $n tokens ($(nproc) threads)"
done
