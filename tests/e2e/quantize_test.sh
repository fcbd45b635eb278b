#!/bin/sh
# ember quantize end to end (docs/quant.md), every quantizer check for nvfp4 and mxfp4:
#   quantize_test.sh EMBER SRC_DIR        argument errors; SmolLM2 GGUF -> bf16 / FP4 dirs
#                                         (rank 0 and 32): ember run, KL vs the GGUF, tokens
#   quantize_test.sh EMBER SRC_DIR ct     the same FP4 dirs checked by compressed-tensors
#                                         (scripts/check_compressed_tensors.py, .venv python)
# Exit 77 (skipped) when the SmolLM2 GGUF, or for `ct` the Python packages, are missing.
set -u
ember="$1"
src="$2"
mode="${3:-}"
model="${EMBER_MODELS_DIR:-$src/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
corpus="$src/data/corpus/kjv-genesis-exodus.txt"
[ -f "$model" ] || { echo "SKIP: $model not found (EMBER_MODELS_DIR)"; exit 77; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
calib="$src/data/corpus/kjv-matthew-1-10.txt"
# Bounds from SmolLM2-135M Q4_1 on 2 x 256-token chunks of the corpus (bench/RESULTS.md has
# the full table). Measured: bf16 export vs the GGUF top-1 98.8%, KL 0.0001; nvfp4 plain
# top-1 70%, KL 0.46; mxfp4 plain 63%, KL 0.92; rank 32 + --calib roughly halves the KL.
# A wrong layout (nibble order, scale convention, q/k order) gives KL > 3 and top-1 < 20%.
min_top1_bf16=95
max_kl_bf16=0.005
min_top1_fp4=55
max_kl_fp4=1.4

if [ "$mode" = ct ]; then
  py="${EMBER_PYTHON:-$src/.venv/bin/python}"
  [ -x "$py" ] || py=python3
  "$py" -c "import compressed_tensors, torch" 2>/dev/null || { echo "SKIP: compressed-tensors not installed for $py"; exit 77; }
  "$ember" quantize "$model" "$tmp/bf16" --scheme bf16 2>"$tmp/log" || { cat "$tmp/log"; fail "bf16 export"; }
  for scheme in nvfp4 mxfp4; do
    out="$tmp/$scheme"
    "$ember" quantize "$model" "$out" --scheme $scheme --lowrank-rank 32 --exclude '*.layers.3.mlp.*' --report "$out.json" 2>"$tmp/log" ||
      { cat "$tmp/log"; fail "$scheme quantize"; }
    "$py" "$src/scripts/check_compressed_tensors.py" "$out" --reference "$tmp/bf16" --report "$out.json" ||
      fail "$scheme: check_compressed_tensors.py"
  done
  echo "PASS: compressed-tensors reads nvfp4 and mxfp4 output"
  exit 0
fi

# 1. The rank must be a positive multiple of 16: an argument error (exit 2) that says so.
for scheme in nvfp4 mxfp4; do
  for arg in "--lowrank-rank=0" "--lowrank-rank=20" "--lowrank-rank=-16" "--lowrank-rank=abc"; do
    "$ember" quantize "$model" "$tmp/never" --scheme $scheme "$arg" >"$tmp/out" 2>&1
    rc=$?
    [ $rc -eq 2 ] || fail "$scheme $arg: exit code $rc, expected 2"
    grep -q "positive multiple of 16" "$tmp/out" || fail "$scheme $arg: message: $(cat "$tmp/out")"
  done
  [ ! -e "$tmp/never" ] || fail "$scheme: an argument error still created the output directory"
done

# 1b. Mixture-of-experts models are refused (exit 2) with a message that says so.
"$ember" quantize "$src/tests/fixtures/moe/qwen3moe/hf" "$tmp/never" --scheme nvfp4 >"$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "MoE: exit code $rc, expected 2"
grep -q "mixture-of-experts" "$tmp/out" || fail "MoE: message: $(cat "$tmp/out")"
[ ! -e "$tmp/never" ] || fail "MoE: a refused model still created the output directory"

# top1 / KL of a --kl-divergence run's output.
stat() { sed -n "s/^$1: *\([0-9.]*\).*/\1/p" "$2"; }
check_kl() {  # name dir min_top1 max_kl
  "$ember" perplexity -m "$2" -f "$corpus" -c 256 --chunks 2 --cpu --kl-divergence "$tmp/base.kl" >"$tmp/kl.out" 2>"$tmp/kl.err" ||
    { cat "$tmp/kl.err"; fail "$1: perplexity --kl-divergence"; }
  top1="$(stat "Same top-1" "$tmp/kl.out")"
  kl="$(stat "Mean KLD" "$tmp/kl.out")"
  echo "$1: top-1 agreement $top1%, mean KL $kl"
  awk -v t="$top1" -v k="$kl" -v mt="$3" -v mk="$4" 'BEGIN { exit !(t != "" && k != "" && t >= mt && k <= mk) }' ||
    fail "$1: top-1 $top1% (min $3), KL $kl (max $4)"
}

# 2. The reference: the GGUF itself.
"$ember" perplexity -m "$model" -f "$corpus" -c 256 --chunks 2 --cpu --kl-divergence-base "$tmp/base.kl" >"$tmp/base.out" 2>"$tmp/log" ||
  { cat "$tmp/log"; fail "perplexity --kl-divergence-base"; }

# 3. bf16 export: config.json synthesis, q/k un-permutation and tokenizer.json must be exact
#    enough that the logits barely move (the KL run also fails if the tokens differ).
"$ember" quantize "$model" "$tmp/bf16" --scheme bf16 2>"$tmp/log" || { cat "$tmp/log"; fail "bf16 export"; }
check_kl bf16 "$tmp/bf16" $min_top1_bf16 $max_kl_bf16

# 4. FP4 with and without rank-32 compensation (+ --calib): loads, generates, stays close
#    to the GGUF; the low-rank term raises the weight SNR and lowers the KL.
for scheme in nvfp4 mxfp4; do
  for rank in 0 32; do
    out="$tmp/$scheme-r$rank"
    extra=""
    [ $rank -gt 0 ] && extra="--lowrank-rank $rank --calib $calib --calib-tokens 1024"
    "$ember" quantize "$model" "$out" --scheme $scheme $extra --report "$out.json" 2>"$tmp/log" ||
      { cat "$tmp/log"; fail "$scheme rank $rank: quantize"; }
    grep -q "layer  30/30 done" "$tmp/log" || fail "$scheme rank $rank: no per-layer progress on stderr"
    grep -q "\"format\": \"$scheme-pack-quantized\"" "$out/config.json" || fail "$scheme: config.json format"
    "$ember" run -m "$out" --cpu -p "The capital of France is" -n 24 --temp 0 >"$tmp/run.out" 2>"$tmp/log" ||
      { cat "$tmp/log"; fail "$scheme rank $rank: ember run"; }
    echo "$scheme rank $rank: $(tr '\n' ' ' <"$tmp/run.out")"
    [ "$(wc -w <"$tmp/run.out")" -ge 1 ] || fail "$scheme rank $rank: no text generated"
    check_kl "$scheme-r$rank" "$out" $min_top1_fp4 $max_kl_fp4
    if [ $rank -eq 0 ]; then
      kl_plain="$kl"
    else
      awk -v p="$kl_plain" -v k="$kl" 'BEGIN { exit !(k < 0.9 * p) }' ||
        fail "$scheme: rank $rank + calib KL $kl is not below 0.9 x the plain $kl_plain"
    fi
    before="$(sed -n 's/.*"mean_snr_db_quantized": \([0-9.]*\).*/\1/p' "$out.json")"
    after="$(sed -n 's/.*"mean_snr_db_compensated": \([0-9.]*\).*/\1/p' "$out.json")"
    if [ $rank -gt 0 ]; then
      awk -v b="$before" -v a="$after" 'BEGIN { exit !(a > b + 0.5) }' ||
        fail "$scheme rank $rank: mean weight SNR $before -> $after dB does not improve"
      grep -q "svdquant_lora_a" "$out/model.safetensors" || fail "$scheme rank $rank: no svdquant_lora_a tensors"
    fi
  done
done
# 5. Hugging Face input (the bf16 directory) with --exclude: mixed precision, the excluded
#    modules listed in quantization_config.ignore and stored as plain bf16 weights.
"$ember" quantize "$tmp/bf16" "$tmp/hf-nvfp4" --scheme nvfp4 --exclude 're:model\.layers\.0\.' --exclude '*.down_proj' \
  2>"$tmp/log" || { cat "$tmp/log"; fail "HF input with --exclude"; }
for m in model.layers.0.self_attn.q_proj model.layers.7.mlp.down_proj lm_head; do
  grep -q "\"$m\"" "$tmp/hf-nvfp4/config.json" || fail "--exclude: $m is not in the ignore list"
done
grep -q "model.layers.7.mlp.down_proj.weight\"" "$tmp/hf-nvfp4/model.safetensors" || fail "--exclude: no bf16 down_proj weight"
grep -q "model.layers.1.self_attn.q_proj.weight_packed" "$tmp/hf-nvfp4/model.safetensors" || fail "layer 1 q_proj not quantized"
cmp -s "$tmp/bf16/tokenizer.json" "$tmp/hf-nvfp4/tokenizer.json" || fail "HF input: tokenizer.json not copied"
check_kl hf-nvfp4-excluded "$tmp/hf-nvfp4" $min_top1_fp4 $max_kl_fp4
echo "PASS"
