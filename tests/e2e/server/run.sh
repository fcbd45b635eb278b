#!/bin/sh
# ctest entry: the server's end-to-end suite with $EMBER_PYTHON (scripts/test.sh sets it),
# else the repository's .venv (scripts/install-deps.sh makes it), else python3.
here="$(cd "$(dirname "$0")" && pwd)"
py="${EMBER_PYTHON:-}"
if [ -z "$py" ]; then
  py=python3
  [ -x "$here/../../../.venv/bin/python" ] && py="$here/../../../.venv/bin/python"
fi
cd "$here" && exec "$py" -m pytest . -q -p no:cacheprovider
