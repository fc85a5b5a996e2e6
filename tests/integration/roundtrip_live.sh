#!/usr/bin/env bash
# tests/integration/roundtrip_live.sh SAVE_MODEL FIXTURES CHECK_PY — for each parity
# model: rlvr loads and saves it (single file and sharded), transformers loads both
# and must find every tensor identical to the original. Exit 77 without torch.
set -u
python3 -c "import torch, transformers" 2>/dev/null || { echo "skip: no torch/transformers"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for arch in llama qwen2 qwen3; do
  "$1" "$2/$arch/model" "$tmp/$arch" || exit 1
  python3 "$3" "$2/$arch/model" "$tmp/$arch" || exit 1
  "$1" "$2/$arch/model" "$tmp/$arch-sharded" 100000 || exit 1
  ls "$tmp/$arch-sharded/model.safetensors.index.json" >/dev/null || exit 1
  python3 "$3" "$2/$arch/model" "$tmp/$arch-sharded" || exit 1
done
echo "round trip identical in transformers (single file and sharded)"
