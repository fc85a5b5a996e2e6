#!/usr/bin/env bash
# tests/demo/arith_tokenize.sh — the demo tokenizer (examples/arith) through `rlvr
# tokenize` gives the ids the PyPI tokenizers package gave for the committed fixture
# (tests/demo/arith_tokens.*.jsonl, written by check_arith_files.py fixture); no Python.
# usage: arith_tokenize.sh RLVR REPO_ROOT
set -euo pipefail
rlvr=$1 root=$2
"$rlvr" tokenize --tokenizer "$root/examples/arith" < "$root/tests/demo/arith_tokens.in.jsonl" |
  diff - "$root/tests/demo/arith_tokens.ids.jsonl"
# EOS / PAD come from generation_config.json and tokenizer_config.json.
eos=$(printf '{"ids": [261]}\n' | "$rlvr" tokenize --tokenizer "$root/examples/arith" --decode)
[ "$eos" = '{"text": "<|endoftext|>"}' ] || { echo "id 261 decodes to $eos"; exit 1; }
echo "arith tokenizer: $(wc -l < "$root/tests/demo/arith_tokens.in.jsonl") fixture lines match"
