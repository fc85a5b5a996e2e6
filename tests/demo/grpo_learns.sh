#!/usr/bin/env bash
# tests/demo/grpo_learns.sh RLVR REPO WORKDIR — the demo's learning as a test, on a
# reduced budget: SFT 600 steps, eval, GRPO 400 steps with examples/arith/grpo.json,
# eval again. Held-out pass@1 must rise by at least 0.04 and the batch reward mean of
# the last 50 steps must exceed that of the first 50.
set -u
rlvr=$1; repo=$2; work=$3
rm -rf "$work"; mkdir -p "$work"; cd "$repo"
fail() { echo "FAIL: $*"; exit 1; }
"$rlvr" sft --init builtin:tiny-qwen2 --tokenizer examples/arith --data examples/arith/sft.jsonl \
  --out "$work/sft" --steps 600 --batch-tokens 1024 --lr 3e-3 --threads 1 --seed 0 \
  --log-every 600 >/dev/null || fail "sft"
ev() { "$rlvr" eval --model "$1" --data examples/arith/eval.jsonl --reward math_answer -n 4 \
  --max-new-tokens 8 --template none --threads 1 --seed 7 --out "$2" >/dev/null || fail "eval $1"; }
ev "$work/sft" "$work/before.json"
"$rlvr" train --config examples/arith/grpo.json --set model.path="$work/sft" \
  --set logging.run_dir="$work/grpo" --set schedule.steps=400 --set eval.every=0 \
  --set logging.progress=off 2>/dev/null || fail "train"
ev "$work/grpo/checkpoints/step-000400" "$work/after.json"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
b, a = (json.load(open(f"{w}/{x}.json"))["pass@1"] for x in ("before", "after"))
rows = [json.loads(l) for l in open(f"{w}/grpo/metrics.jsonl")]
r0 = sum(r["reward/mean"] for r in rows[:50]) / 50
r1 = sum(r["reward/mean"] for r in rows[-50:]) / 50
print(f"pass@1 {b:.3f} -> {a:.3f}; batch reward {r0:.3f} -> {r1:.3f}")
sys.exit(0 if a >= b + 0.04 and r1 > r0 else 1)
PY
