#!/usr/bin/env bash
# tests/demo/sft_cli.sh — `rlvr sft` on small inputs: the same seed gives byte-identical
# weights, the saved directory is what `rlvr generate` loads, and every bad input gets a
# clear message (exit 1 for bad data/model, 2 for bad arguments) — never a crash.
# usage: sft_cli.sh RLVR REPO_ROOT WORK_DIR
set -uo pipefail
rlvr=$1 root=$2 work=$3
ex=$root/examples/arith
rm -rf "$work" && mkdir -p "$work"
fail=0
base=(--init builtin:tiny-qwen2 --tokenizer "$ex" --steps 8 --batch-tokens 256 --log-every 4
      --threads 1)
head -n 40 "$ex/sft.jsonl" > "$work/small.jsonl"

run() { # run NAME EXPECTED_STATUS EXPECTED_MESSAGE_FRAGMENT ARGS...
  local name=$1 want=$2 frag=$3; shift 3
  "$rlvr" sft "$@" > "$work/$name.out" 2> "$work/$name.err"
  local rc=$?
  if [ "$rc" != "$want" ] || ! grep -qF -- "$frag" "$work/$name.err" "$work/$name.out"; then
    echo "FAIL $name: status $rc (want $want), expected '$frag' in:"; cat "$work/$name.err"
    fail=1
  fi
}

# Determinism and a loadable output.
run a 0 "saved" "${base[@]}" --data "$work/small.jsonl" --out "$work/a" --seed 3
run b 0 "saved" "${base[@]}" --data "$work/small.jsonl" --out "$work/b" --seed 3
cmp -s "$work/a/model.safetensors" "$work/b/model.safetensors" || { echo "FAIL: same seed, different weights"; fail=1; }
[ "$(grep -c '"step"' "$work/a.out")" = 2 ] || { echo "FAIL: expected 2 report lines"; fail=1; }
printf '{"prompt": "What is 2+3?\\n"}\n' > "$work/p.jsonl"
"$rlvr" generate --model "$work/a" --input "$work/p.jsonl" --template none --max-new-tokens 4 \
  > "$work/gen.out" 2>&1 || { echo "FAIL: rlvr generate cannot use the saved model"; cat "$work/gen.out"; fail=1; }
# --model DIR continues from a saved model (its tokenizer found in the directory).
run cont 0 "saved" --model "$work/a" --data "$work/small.jsonl" --out "$work/c" --steps 2 --threads 1

# Bad inputs.
printf '{"prompt": "What is 1+1?\\n"}\n' > "$work/nocomp.jsonl"
run nocomp 1 'nocomp.jsonl:1: missing "completion"' "${base[@]}" --data "$work/nocomp.jsonl" --out "$work/x"
printf '{"prompt": "x", "completion": "y"}\nnot json\n' > "$work/badjson.jsonl"
run badjson 1 "badjson.jsonl" "${base[@]}" --data "$work/badjson.jsonl" --out "$work/x"
printf '{"prompt": 7, "completion": "y"}\n' > "$work/badprompt.jsonl"
run badprompt 1 "badprompt.jsonl" "${base[@]}" --data "$work/badprompt.jsonl" --out "$work/x"
printf '{"prompt": "%0300d", "completion": "1"}\n' 0 > "$work/long.jsonl"
run long 1 "more than batch_tokens 256" "${base[@]}" --data "$work/long.jsonl" --out "$work/x"
run nodata 1 "missing.jsonl" "${base[@]}" --data "$work/missing.jsonl" --out "$work/x"
run badinit 2 "expected builtin:NAME" --init "$work/a" --tokenizer "$ex" --data "$work/small.jsonl" --out "$work/x"
run unknownshape 1 "unknown built-in model 'nope'" --init builtin:nope --tokenizer "$ex" --data "$work/small.jsonl" --out "$work/x"
run both 2 "exactly one of --model and --init" --model "$work/a" --init builtin:tiny-qwen2 --data "$work/small.jsonl" --out "$work/x"
run noout 2 "--data and --out are required" "${base[@]}" --data "$work/small.jsonl"
run badlr 2 "--lr" "${base[@]}" --data "$work/small.jsonl" --out "$work/x" --lr banana
run badheads 1 "multiple of kv-heads" "${base[@]}" --data "$work/small.jsonl" --out "$work/x" --heads 3
run vocab 1 "the model's vocabulary is 262" --model "$work/a" --tokenizer "$root/tests/text/fixtures/gpt2" --data "$work/small.jsonl" --out "$work/x"
run unknown 2 "unknown argument '--frobnicate'" "${base[@]}" --frobnicate 1
"$rlvr" sft --help | grep -q "usage: rlvr sft" || { echo "FAIL: --help"; fail=1; }
[ "$fail" = 0 ] && echo "sft_cli: all checks passed"
exit $fail
