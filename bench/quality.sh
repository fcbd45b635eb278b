#!/bin/sh
# Quantization quality table (bench/RESULTS.md): perplexity and KL divergence of NVFP4 /
# MXFP4 (+ low-rank compensation) against the unquantized model, on the CPU.
#   bench/quality.sh [EMBER] [WORK_DIR]
# The reference ("bf16") is the GGUF dequantized and written unquantized by
# `ember quantize --scheme bf16`; every other row is quantized from the same GGUF.
# Environment: MODELS (default: SmolLM2-135M-Instruct.Q4_1 gemma-3-270m-q4_k_m),
# EMBER_MODELS_DIR (default models/), CTX (512), CHUNKS (8), THREADS (0 = all cores),
# CONFIGS (default below: "scheme:rank:method[:calib]" items; calib = --calib with
# CALIB, default data/corpus/kjv-matthew-1-10.txt, CALIB_TOKENS 2048 of it).
set -eu
ember="${1:-build/bin/ember}"
work="${2:-/tmp/ember-quality}"
dir="${EMBER_MODELS_DIR:-models}"
corpus="$(dirname "$0")/../data/corpus/kjv-genesis-exodus.txt"
ctx="${CTX:-512}"
chunks="${CHUNKS:-8}"
threads="${THREADS:-0}"
models="${MODELS:-SmolLM2-135M-Instruct.Q4_1 gemma-3-270m-q4_k_m}"
configs="${CONFIGS:-nvfp4:0:- nvfp4:32:error-svd nvfp4:32:svdquant nvfp4:16:error-svd:calib nvfp4:32:error-svd:calib nvfp4:64:error-svd:calib nvfp4:16:svdquant:calib nvfp4:32:svdquant:calib nvfp4:64:svdquant:calib mxfp4:0:- mxfp4:32:error-svd:calib mxfp4:32:svdquant:calib}"
calib="${CALIB:-$(dirname "$0")/../data/corpus/kjv-matthew-1-10.txt}"
calib_tokens="${CALIB_TOKENS:-2048}"
mkdir -p "$work"

ppl() { "$ember" perplexity -m "$1" -f "$corpus" -c "$ctx" --chunks "$chunks" -t "$threads" --cpu "$2" "$3" 2>>"$work/log"; }
val() { sed -n "s/^$1: *\([0-9.-]*\).*/\1/p" "$2"; }

echo "| model | weights | rank | method | PPL | ΔPPL vs bf16 | gap closed | mean KL | top-1 % | weight SNR dB |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for name in $models; do
  gguf="$dir/$name.gguf"
  out="$work/$name"
  mkdir -p "$out"
  if [ ! -f "$out/base.kl" ]; then  # a rerun into the same WORK_DIR reuses the reference
    "$ember" quantize "$gguf" "$out/bf16" --scheme bf16 -t "$threads" 2>>"$work/log"
    ppl "$out/bf16" --kl-divergence-base "$out/base.kl" >"$out/bf16.txt"
    ppl "$gguf" --kl-divergence "$out/base.kl" >"$out/gguf.txt"
  fi
  base_ppl="$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$out/bf16.txt")"
  echo "| $name | bf16 (reference) | - | - | $base_ppl | 0 | - | 0 | 100 | - |"
  echo "| $name | GGUF as shipped | - | - | $(val 'PPL(this)' "$out/gguf.txt") | | | $(val 'Mean KLD' "$out/gguf.txt") | $(val 'Same top-1' "$out/gguf.txt") | - |"
  for cfg in $configs; do
    scheme="$(echo "$cfg" | cut -d: -f1)"; rank="$(echo "$cfg" | cut -d: -f2)"
    method="$(echo "$cfg" | cut -d: -f3)"; use_calib="$(echo "$cfg" | cut -d: -f4)"
    q="$out/$scheme-$rank-$method$use_calib"
    set -- --scheme "$scheme"
    [ "$rank" -gt 0 ] && set -- "$@" --lowrank-rank "$rank" --lowrank-method "$method"
    [ "$use_calib" = calib ] && set -- "$@" --calib "$calib" --calib-tokens "$calib_tokens" && method="$method + calib"
    "$ember" quantize "$gguf" "$q" "$@" -t "$threads" --report "$q.json" 2>>"$work/log"
    ppl "$q" --kl-divergence "$out/base.kl" >"$q.txt"
    p="$(val 'PPL(this)' "$q.txt")"
    snr="$(sed -n 's/.*"mean_snr_db_compensated": \([0-9.]*\).*/\1/p' "$q.json")"
    [ "$rank" -eq 0 ] && echo "$p" >"$out/plain-$scheme.ppl"
    plain="$(cat "$out/plain-$scheme.ppl" 2>/dev/null || true)"
    gap="$(awk -v b="$base_ppl" -v z="$plain" -v p="$p" -v r="$rank" \
      'BEGIN { if (r == 0 || z == "" || z - b <= 0) print "-"; else printf "%.0f%%", 100 * (z - p) / (z - b) }')"
    delta="$(awk -v b="$base_ppl" -v p="$p" 'BEGIN { printf "%+.3f", p - b }')"
    echo "| $name | $scheme | $rank | $method | $p | $delta | $gap | $(val 'Mean KLD' "$q.txt") | $(val 'Same top-1' "$q.txt") | $(printf '%.2f' "$snr") |"
    rm -rf "$q"
  done
done
