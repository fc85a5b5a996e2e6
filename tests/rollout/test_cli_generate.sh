#!/usr/bin/env bash
# tests/rollout/test_cli_generate.sh RLVR MAKE_MODEL TOKENIZER_DIR — `rlvr generate`
# end to end on a random model with a real byte-level BPE tokenizer: the output lines
# and fields, G per prompt, the chat template, stop strings, determinism by seed, and
# clear errors for bad arguments and bad input lines.
set -u
rlvr=$1; make_model=$2; tokdir=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
vocab=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1]+'/tokenizer.json')); print(max(list(d['model']['vocab'].values())+[a['id'] for a in d['added_tokens']])+1)" "$tokdir")
"$make_model" tiny-qwen3 "$vocab" "$tmp/model" 3 || fail "make_model"
cp "$tokdir"/tokenizer*.json "$tmp/model/"
cat > "$tmp/in.jsonl" <<'IN'
{"prompt": "The quick brown fox"}
{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+3?"}]}
{"prompt_ids": [5, 6, 7]}
IN
"$rlvr" generate --model "$tmp/model" --input "$tmp/in.jsonl" -n 3 --max-new-tokens 12 --seed 7 \
  --template chatml > "$tmp/out1.jsonl" 2> "$tmp/err" || { cat "$tmp/err"; fail "generate"; }
"$rlvr" generate --model "$tmp/model" --input "$tmp/in.jsonl" -n 3 --max-new-tokens 12 --seed 7 \
  --template chatml > "$tmp/out2.jsonl" || fail "generate (rerun)"
cmp -s "$tmp/out1.jsonl" "$tmp/out2.jsonl" || fail "same seed gave different output"
python3 - "$tmp/out1.jsonl" "$tokdir" <<'PY' || exit 1
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 9, f"expected 9 completions, got {len(rows)}"
for i, r in enumerate(rows):
    assert set(r) == {"prompt_index", "sample_index", "prompt_ids", "ids", "text", "logprobs",
                      "finish_reason"}, r.keys()
    assert (r["prompt_index"], r["sample_index"]) == (i // 3, i % 3)
    assert len(r["ids"]) == len(r["logprobs"]) <= 12 and r["finish_reason"] in ("eos", "stop", "length")
    assert all(lp <= 0 for lp in r["logprobs"])
assert rows[2 * 3]["prompt_ids"] == [5, 6, 7]
try:
    from tokenizers import Tokenizer
except ImportError:
    sys.exit(0)
tok = Tokenizer.from_file(sys.argv[2] + "/tokenizer.json")
want = "<|im_start|>user\nThe quick brown fox<|im_end|>\n<|im_start|>assistant\n"
assert rows[0]["prompt_ids"] == tok.encode(want, add_special_tokens=False).ids, "templated prompt ids"
for r in rows:
    assert r["text"] == tok.decode(r["ids"], skip_special_tokens=True), "text = decode(ids)"
print("generate output checked against the tokenizers package")
PY
# a stop string taken from the middle of a completion cuts the text before it
stop=$(python3 -c "import json,sys; t=[json.loads(l)['text'] for l in open(sys.argv[1])][0]; print(t[3:6])" "$tmp/out1.jsonl")
if [ -n "$(echo "$stop" | tr -d ' ')" ]; then
  "$rlvr" generate --model "$tmp/model" --input "$tmp/in.jsonl" -n 3 --max-new-tokens 12 --seed 7 \
    --template chatml --stop "$stop" > "$tmp/out3.jsonl" || fail "generate --stop"
  python3 - "$tmp/out3.jsonl" "$stop" <<'PY' || exit 1
import json, sys
r = json.loads(open(sys.argv[1]).readline())
assert r["finish_reason"] == "stop" and sys.argv[2] not in r["text"], r
print("stop string", repr(sys.argv[2]), "-> text", repr(r["text"]))
PY
fi
# errors: bad option value, bad input line (names file:line), missing model
"$rlvr" generate --model "$tmp/model" --input "$tmp/in.jsonl" -n 0 2>"$tmp/e1"; [ $? -eq 2 ] && grep -q "expected an integer" "$tmp/e1" || fail "-n 0"
printf '{"prompt": "ok"}\n{"nope": 1}\n' > "$tmp/bad.jsonl"
"$rlvr" generate --model "$tmp/model" --input "$tmp/bad.jsonl" 2>"$tmp/e2"; [ $? -eq 1 ] && grep -q "bad.jsonl:2" "$tmp/e2" || { cat "$tmp/e2"; fail "bad line"; }
"$rlvr" generate --model "$tmp/nope" --input "$tmp/in.jsonl" 2>"$tmp/e3"; [ $? -eq 1 ] && grep -q "config.json" "$tmp/e3" || { cat "$tmp/e3"; fail "missing model"; }
echo "rlvr generate CLI checks passed"
