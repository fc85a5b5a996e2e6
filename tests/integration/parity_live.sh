#!/usr/bin/env bash
# tests/integration/parity_live.sh TEST_PARITY PARITY_SCRIPTS_DIR — regenerates the
# parity fixtures with the installed torch/transformers into a temp dir and runs the
# C parity test on them. Exit 77 (skip) when the python packages are missing.
set -u
python3 -c "import torch, transformers, safetensors" 2>/dev/null || { echo "skip: no torch/transformers"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$2/make_fixtures.py" "$tmp" >/dev/null || { echo "make_fixtures.py failed"; exit 1; }
"$1" "$tmp/llama" "$tmp/qwen2" "$tmp/qwen3"
