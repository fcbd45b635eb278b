#!/usr/bin/env bash
# End-to-end checks of `ember chat`: bad input exits 2 with a message; with the real
# SmolLM2 model (skipped, or failed under EMBER_REQUIRE_MODELS=1, when absent) a
# two-turn conversation through --json (the second answer needs the first turn), the
# same through the interactive loop on piped stdin (KV reuse), and the commands.
# Usage: chat_test.sh EMBER_BINARY SOURCE_DIR
set -uo pipefail
ember=$1
src=$2
models=${EMBER_MODELS_DIR:-$src/models}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() {  # name, expected exit code, stdin file, command...
  local name=$1 want=$2 input=$3
  shift 3
  "$@" <"$input" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL $name: exit $got, want $want"; cat "$tmp/err"; fi
}
expect_in() {  # name, file, pattern
  if grep -qE "$3" "$2"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL $1: /$3/ not in $2:"; cat "$2"; fi
}
expect_not_in() {  # name, file, pattern
  if ! grep -qE "$3" "$2"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL $1: /$3/ in $2:"; cat "$2"; fi
}

: >"$tmp/empty"
check chat-missing-model 2 "$tmp/empty" "$ember" chat -m "$tmp/nope.gguf" --json
expect_in chat-missing-model-message "$tmp/err" "nope.gguf"
check chat-bad-flag 2 "$tmp/empty" "$ember" chat -m "$tmp/nope.gguf" --temp -1

smol=$models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$smol" ]; then
  chat=("$ember" chat -m "$smol" --temp 0 -c 1024)
  u1='{"role": "user", "content": "My name is Ada. Please remember it."}'
  u2='{"role": "user", "content": "What is my name?"}'
  echo "[$u1]" >"$tmp/turn1.json"
  check json-turn1 0 "$tmp/turn1.json" "${chat[@]}" -n 48 --json
  expect_in json-turn1-shape "$tmp/out" '^\{"role":"assistant","content":".+","reasoning_content":null,"tool_calls":\[\],"finish_reason":"(stop|length)"\}$'
  # One JSON object per line: the user turn, the model's own reply, the question.
  { echo "$u1"; cat "$tmp/out"; echo "$u2"; } >"$tmp/turn2.jsonl"
  check json-turn2 0 "$tmp/turn2.jsonl" "${chat[@]}" -n 48 --json
  expect_in json-turn2-remembers "$tmp/out" '"content":"[^"]*Ada'

  printf 'My name is Ada. Please remember it.\nWhat is my name?\n' >"$tmp/two_turns.txt"
  check interactive-two-turns 0 "$tmp/two_turns.txt" "${chat[@]}" -n 48 --timings
  expect_in interactive-remembers "$tmp/out" "Ada"
  expect_in interactive-kv-reuse "$tmp/err" "prompt: [0-9]+ tokens \([1-9][0-9]* reused\)"
  expect_in interactive-template "$tmp/err" "chat template: tokenizer.chat_template"

  printf 'Hi\n/reset\n/system You are a pirate.\n/exit\nnot answered\n' >"$tmp/commands.txt"
  check interactive-commands 0 "$tmp/commands.txt" "${chat[@]}" -n 4 --timings
  expect_in commands-reset "$tmp/err" "conversation cleared"
  expect_in commands-system "$tmp/err" "system prompt set"
  [ "$(grep -c '^\[prompt:' "$tmp/err")" -eq 1 ] && pass=$((pass + 1)) || {
    fail=$((fail + 1)); echo "FAIL commands-exit: expected exactly one reply"; cat "$tmp/err"; }

  printf 'not json\n' >"$tmp/bad.jsonl"
  check json-bad-input 2 "$tmp/bad.jsonl" "${chat[@]}" -n 48 --json
  expect_in json-bad-input-message "$tmp/err" "stdin line 1"
  echo '[{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]' >"$tmp/image.json"
  check json-unsupported-part 2 "$tmp/image.json" "${chat[@]}" -n 48 --json
  expect_in json-unsupported-part-message "$tmp/err" "image_url"
  echo '[{"role": "user", "content": "hi"}]' >"$tmp/hi.json"
  check json-unknown-template 2 "$tmp/hi.json" "${chat[@]}" -n 8 --json --chat-template nope
  expect_in json-unknown-template-message "$tmp/err" "'nope'.*names: default"
  printf '{%% for m in messages %%}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%% endfor %%}<|im_start|>assistant\n' >"$tmp/t.jinja"
  check json-template-file 0 "$tmp/hi.json" "${chat[@]}" -n 8 --json --chat-template "$tmp/t.jinja"
  expect_in json-template-file-origin "$tmp/err" "chat template: $tmp/t.jinja"
  expect_not_in json-template-file-no-fallback "$tmp/err" "built-in ChatML"
elif [ "${EMBER_REQUIRE_MODELS:-0}" = 1 ]; then
  echo "FAIL models missing in $models"; fail=$((fail + 1))
else
  echo "models not found in $models: real-model checks skipped"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
