#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/ and runs each
# for SECONDS (default 60) from its committed seed corpus (copied, so the repo stays
# clean), as many at once as there are cores (FUZZ_JOBS). Any crash leaves its input in
# build-fuzz/crashes/ and fails the script.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
all_targets=(gguf_fuzz tokenize_fuzz template_fuzz safetensors_fuzz hf_config_fuzz tokenizer_json_fuzz
             output_parser_fuzz openai_request_fuzz json_schema_fuzz)

if ! command -v clang++ >/dev/null; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1  # cache hits across checkouts
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DEMBER_FUZZ=ON -DEMBER_CUDA=OFF -DEMBER_TESTS=ON >/dev/null
if [ ${#targets[@]} -eq 0 ]; then
  # openai_request_fuzz exists only when the server library is built (cpp-httplib found).
  known=$(cmake --build build-fuzz --target help)
  for t in "${all_targets[@]}"; do
    if grep -q "^$t:" <<<"$known"; then targets+=("$t"); else echo "$t: not built here, skipped"; fi
  done
fi
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"

export EMBER_MODELS_DIR=${EMBER_MODELS_DIR:-$PWD/models}
mkdir -p build-fuzz/crashes

# Runs one target; prints one line (and the log's tail on failure); exit status 1 on a crash.
fuzz_one() {
  local t=$1 seeds
  case $t in
    gguf_fuzz) seeds=tests/fuzz/corpus/gguf ;;
    tokenize_fuzz) seeds=tests/fuzz/corpus/text ;;
    template_fuzz) seeds=tests/fixtures/templates ;;
    safetensors_fuzz) seeds=tests/fuzz/corpus/safetensors ;;
    hf_config_fuzz) seeds=tests/fuzz/corpus/hf_config ;;
    tokenizer_json_fuzz) seeds=tests/fuzz/corpus/tokenizer_json ;;
    output_parser_fuzz) seeds=tests/fuzz/corpus/output ;;
    openai_request_fuzz) seeds=tests/fuzz/corpus/openai ;;
    json_schema_fuzz) seeds=tests/fuzz/corpus/json_schema_fuzz ;;
    *) echo "unknown target $t" >&2; return 2 ;;
  esac
  local work=build-fuzz/corpus-$t log=build-fuzz/$t.log dict=()
  mkdir -p "$work"
  cp -n "$seeds"/* "$work"/ 2>/dev/null || true
  [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  if build-fuzz/tests/fuzz/$t "${dict[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
       -artifact_prefix=build-fuzz/crashes/$t- "$work" >"$log" 2>&1; then
    echo "$t: clean, $(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+') execs in ${seconds}s"
  else
    echo "$t: FAILED (see $log)"; tail -30 "$log"; return 1
  fi
}

jobs_max=${FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
  rm -f "build-fuzz/$t.rc"
  { rc=0; fuzz_one "$t" || rc=1; echo $rc >"build-fuzz/$t.rc"; } >"build-fuzz/$t.result" 2>&1 &
done
wait
status=0
for t in "${targets[@]}"; do
  cat "build-fuzz/$t.result"
  [ "$(cat "build-fuzz/$t.rc" 2>/dev/null)" = 0 ] || status=1
done
exit $status
