#!/usr/bin/env bash
# One command for a newcomer: install dependencies, build, fetch the default model
# (SmolLM2-135M-Instruct) and ask it a question. Runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
EMBER_BUILD_TARGET=ember scripts/build.sh
scripts/fetch-models.sh smollm2
prompt=${1:-"What is the capital of France?"}
exec build/bin/ember run -m "${EMBER_MODELS_DIR:-models}/SmolLM2-135M-Instruct.Q4_1.gguf" -n 96 --temp 0 \
  -p "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n${prompt}<|im_end|>\n<|im_start|>assistant\n"
