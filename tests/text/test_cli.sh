#!/usr/bin/env bash
# tests/text/test_cli.sh — `rlvr tokenize` and `rlvr template` as scripts use them: outputs
# must equal, byte for byte, what the PyPI tokenizers/transformers packages give (fixtures
# from make_fixtures.py); bad arguments exit 2, bad input lines exit 1 naming the line.
# usage: test_cli.sh RLVR FIXTURES_DIR
set -u
rlvr=$1
fx=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name, command status, expected status
  if [ "$2" != "$3" ]; then echo "FAIL $1: exit status $2, expected $3"; fail=1; else echo "ok   $1"; fi
}

"$rlvr" tokenize --tokenizer "$fx/qwen3" <"$fx/cli_encode_in.jsonl" >"$tmp/enc"
check "tokenize runs" $? 0
cmp -s "$tmp/enc" "$fx/cli_encode_qwen3.jsonl"
check "tokenize output equals HF ids ($(wc -l <"$fx/cli_encode_in.jsonl") lines)" $? 0
"$rlvr" tokenize --tokenizer "$fx/qwen3/tokenizer.json" --decode <"$fx/cli_encode_qwen3.jsonl" >"$tmp/dec"
check "tokenize --decode runs" $? 0
cmp -s "$tmp/dec" "$fx/cli_decode_qwen3.jsonl"
check "tokenize --decode output equals HF decode" $? 0
"$rlvr" template --tokenizer "$fx/qwen3" --template auto <"$fx/chat_qwen3.jsonl" >"$tmp/tpl"
check "template runs" $? 0
cmp -s "$tmp/tpl" "$fx/cli_template_qwen3.jsonl"
check "template output equals transformers apply_chat_template" $? 0
"$rlvr" template --tokenizer "$fx/qwen3" --template qwen3 <"$fx/chat_qwen3.jsonl" | cmp -s - "$fx/cli_template_qwen3.jsonl"
check "template --template qwen3 equals auto" $? 0
out=$(echo '{"messages": "hi"}' | "$rlvr" template --tokenizer "$fx/qwen3" --enable-thinking false)
[ "$out" = '{"text": "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"}' ]
check "template string prompt + --enable-thinking false" $? 0
out=$(printf '{"text": "a\\u0001b\\"c\\\\"}\n' | "$rlvr" tokenize --tokenizer "$fx/gpt2" | "$rlvr" tokenize --tokenizer "$fx/gpt2" --decode)
[ "$out" = '{"text": "a\u0001b\"c\\"}' ]
check "control characters and escapes round-trip" $? 0

"$rlvr" tokenize --help >/dev/null; check "tokenize --help" $? 0
"$rlvr" template --help >/dev/null; check "template --help" $? 0
"$rlvr" tokenize </dev/null 2>"$tmp/err"; check "tokenize without --tokenizer" $? 2
grep -q -- "--tokenizer PATH is required" "$tmp/err"; check "  ... says what is expected" $? 0
"$rlvr" tokenize --tokenizer "$fx/qwen3" --bogus </dev/null 2>/dev/null; check "tokenize --bogus" $? 2
"$rlvr" tokenize --tokenizer </dev/null 2>/dev/null; check "tokenize --tokenizer without value" $? 2
"$rlvr" template --tokenizer "$fx/qwen3" --template jinja </dev/null 2>"$tmp/err"; check "template unknown name" $? 2
grep -q "unknown chat template 'jinja'" "$tmp/err"; check "  ... names it" $? 0
"$rlvr" template --tokenizer "$fx/qwen3" --enable-thinking maybe </dev/null 2>/dev/null; check "template --enable-thinking maybe" $? 2
"$rlvr" tokenize --tokenizer "$tmp/none" </dev/null 2>"$tmp/err"; check "tokenize missing tokenizer file" $? 1
grep -q "$tmp/none" "$tmp/err"; check "  ... names the path" $? 0
printf '{"text": "ok"}\n{"txt": "bad"}\n' | "$rlvr" tokenize --tokenizer "$fx/qwen3" >/dev/null 2>"$tmp/err"
check "tokenize bad line" $? 1
grep -q "stdin line 2: expected {\"text\": string}" "$tmp/err"; check "  ... names line 2" $? 0
printf '{"ids": [1, "x"]}\n' | "$rlvr" tokenize --tokenizer "$fx/qwen3" --decode >/dev/null 2>"$tmp/err"
check "decode bad ids" $? 1
printf 'not json\n' | "$rlvr" template --tokenizer "$fx/qwen3" >/dev/null 2>"$tmp/err"; check "template bad JSON" $? 1
printf '{"messages": [{"role": "user"}]}\n' | "$rlvr" template --tokenizer "$fx/qwen3" >/dev/null 2>"$tmp/err"
check "template message without content" $? 1
grep -q 'stdin line 1: messages\[0\]: missing "content"' "$tmp/err"; check "  ... names the field" $? 0
printf '{"text": "a\\u0000b"}\n' | "$rlvr" tokenize --tokenizer "$fx/qwen3" >/dev/null 2>"$tmp/err"
check "tokenize refuses \\u0000 (cJSON would cut the string)" $? 1
exit $fail
