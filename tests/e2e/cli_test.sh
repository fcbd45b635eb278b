#!/usr/bin/env bash
# End-to-end checks of the ember binary: exit codes for bad input, and real answers
# from the real models (skipped, or failed under EMBER_REQUIRE_MODELS=1, when absent).
# Usage: cli_test.sh EMBER_BINARY SOURCE_DIR
set -uo pipefail
ember=$1
src=$2
models=${EMBER_MODELS_DIR:-$src/models}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() {  # name, expected exit code, command...
  local name=$1 want=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL $name: exit $got, want $want"; cat "$tmp/err"; fi
}
expect_in() {  # name, file, pattern
  if grep -qiE "$3" "$2"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL $1: /$3/ not in $2:"; cat "$2"; fi
}

check missing-model 2 "$ember" run -m "$tmp/nope.gguf" -p hi
expect_in missing-model-message "$tmp/err" "nope.gguf"
printf 'GGUF\x09\x00\x00\x00' >"$tmp/bad.gguf"
check bad-version 2 "$ember" info -m "$tmp/bad.gguf"
expect_in bad-version-message "$tmp/err" "version"
check bad-flag 2 "$ember" run -m "$tmp/bad.gguf" -p hi --top-p 7
check no-subcommand 2 "$ember"

# Mixture-of-experts shapes from gen-random (3-D expert tensors) load and generate; without
# --cpu a CUDA build's GPU decoder refuses MoE and ember falls back to the CPU.
for shape in qwen3-moe-tiny mixtral-tiny; do
  for t in q4_k_m q8_0 f16; do
    check "gen-random-$shape-$t" 0 "$ember" gen-random --shape "$shape" --type "$t" -o "$tmp/moe.gguf" -t 2
    check "run-$shape-$t" 0 "$ember" run -m "$tmp/moe.gguf" -p "the cat" -n 4
  done
done
expect_in moe-run-device "$tmp/err" "device: CPU|mixture-of-experts"

tiny=$src/tests/fuzz/corpus/gguf/tiny_llama.gguf
check dump-tensors 0 "$ember" run --cpu -m "$tiny" -p "the the" -n 3 --dump-tensors "$tmp/dump" --dump-layers 0
expect_in dump-index "$tmp/dump/index.tsv" "^l_out	0	32$"
rows=$(( $(stat -c %s "$tmp/dump/l_out.L0.f32") / 128 ))  # 32 floats per row
if [ "$rows" -ge 3 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL dump-rows: $rows rows"; fi
check dump-layer-filter 0 "$ember" run --cpu -m "$tiny" -p "the" -n 1 --dump-tensors "$tmp/dump5" --dump-layers 5
if [ -e "$tmp/dump5/inp_embd.f32" ] && [ ! -e "$tmp/dump5/l_out.L0.f32" ]; then pass=$((pass + 1)); else
  fail=$((fail + 1)); echo "FAIL dump-layer-filter: layer 0 dumped though only layer 5 was asked for"; fi

smol=$models/SmolLM2-135M-Instruct.Q4_1.gguf
gemma=$models/gemma-3-270m-q4_k_m.gguf
if [ -f "$smol" ] && [ -f "$gemma" ]; then
  check smollm2-answer 0 "$ember" run -m "$smol" -n 48 --temp 0 \
    -p "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
  expect_in smollm2-paris "$tmp/out" "Paris"
  expect_in smollm2-timings "$tmp/err" "gen: .* tokens/s"
  check gemma3-continues 0 "$ember" run -m "$gemma" -n 16 --temp 0 -p "Monday, Tuesday, Wednesday,"
  expect_in gemma3-weekdays "$tmp/out" "Thursday, Friday"
  check info 0 "$ember" info -m "$gemma"
  expect_in info-arch "$tmp/out" "architecture: +gemma3"
  expect_in info-types "$tmp/out" "Q4_K"
  printf 'The quick brown fox jumps over the lazy dog. %.0s' $(seq 1 80) >"$tmp/text.txt"
  check perplexity 0 "$ember" perplexity -m "$smol" -f "$tmp/text.txt" -c 128 --chunks 2
  expect_in perplexity-final "$tmp/out" "Final estimate: PPL = [0-9.]+"
elif [ "${EMBER_REQUIRE_MODELS:-0}" = 1 ]; then
  echo "FAIL models missing in $models"; fail=$((fail + 1))
else
  echo "models not found in $models: real-model checks skipped"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
