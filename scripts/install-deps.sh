#!/usr/bin/env bash
# Installs what ember needs to build and test on Debian/Ubuntu (idempotent; fast when
# everything is present). The CUDA toolkit is optional and never installed here.
set -euo pipefail

pkgs=(build-essential cmake ninja-build ccache pkg-config nlohmann-json3-dev libcli11-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev unicode-data unzip python3 python3-pip python3-venv
      ca-certificates clang libclang-rt-14-dev chromium fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python packages for the tests (pytest, the openai client, prometheus_client) in .venv;
# compressed-tensors (pulls torch, ~5 GB) checks `ember quantize` output (scripts/check_compressed_tensors.py);
# playwright drives Debian's chromium for the web page test (its own browser download is not used);
# jsonschema validates structured outputs (tests/e2e/server/test_structured.py).
py_pkgs=(pytest==8.3.4 openai==1.58.1 prometheus_client==0.21.1 compressed-tensors==0.20.0 safetensors numpy playwright==1.65.2 jsonschema==4.26.0)
venv="$(cd "$(dirname "$0")/.." && pwd)/.venv"
if ! "$venv/bin/python" -c "import pytest, openai, prometheus_client, compressed_tensors, safetensors, numpy, playwright, jsonschema" 2>/dev/null; then
  echo "install-deps: creating $venv with ${py_pkgs[*]}" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${py_pkgs[@]}"
fi
