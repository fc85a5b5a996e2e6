#!/usr/bin/env bash
# scripts/demo.sh — the built-in demo, the README's main command: on a fresh machine,
# set up and build rlvr, then run a complete RL job on the built-in arithmetic task
# (examples/arith: data, tokenizer and configs made by the project's own scripts):
#   1. supervised warm start of a small random-initialised Qwen2-shaped model (rlvr sft)
#   2. evaluation before RL (pass@1, pass@4, maj@4 on 200 held-out problems)
#   3. GRPO with the math_answer reward and a k3 KL anchor (rlvr train)
#   4. evaluation after RL, and a plot of reward and accuracy over steps (SVG)
# Everything lands in runs/demo/. About 2 minutes of compute on 2 cores after the build.
# Extra arguments are passed to `rlvr train` (e.g. --set schedule.steps=300).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target rlvr
rlvr=./build/rlvr
out=runs/demo
rm -rf "$out"
mkdir -p "$out"

echo "== 1. supervised warm start (rlvr sft)"
$rlvr sft --init builtin:tiny-qwen2 --tokenizer examples/arith --data examples/arith/sft.jsonl \
  --out "$out/sft" --steps 600 --batch-tokens 1024 --lr 3e-3 --threads 1 --seed 0 \
  --log-every 200

evaluate() { # model-dir out-json
  $rlvr eval --model "$1" --data examples/arith/eval.jsonl --reward math_answer -n 4 \
    --max-new-tokens 8 --template none --threads 1 --seed 7 --out "$2"
}
echo "== 2. evaluation before RL"
evaluate "$out/sft" "$out/eval_before.json"

echo "== 3. GRPO (rlvr train --config examples/arith/grpo.json)"
$rlvr train --config examples/arith/grpo.json "$@"

echo "== 4. evaluation after RL"
last=$(ls -d "$out"/grpo/checkpoints/step-* | sort | tail -n 1)
evaluate "$last" "$out/eval_after.json"
$rlvr plot --metrics "$out/grpo/metrics.jsonl" --out "$out/grpo/reward.svg" \
  --keys reward/mean,reward/accuracy,eval/pass@1 --title "rlvr GRPO on examples/arith"

python3 - "$out" <<'PY' 2>/dev/null || cat "$out/eval_before.json" "$out/eval_after.json"
import json, sys
d = sys.argv[1]
b, a = (json.load(open(f"{d}/eval_{w}.json")) for w in ("before", "after"))
rows = [json.loads(l) for l in open(f"{d}/grpo/metrics.jsonl")]
first = sum(r["reward/mean"] for r in rows[:50]) / min(50, len(rows))
last = sum(r["reward/mean"] for r in rows[-50:]) / min(50, len(rows))
print(f"\nbatch reward mean  first 50 steps {first:.3f} -> last 50 steps {last:.3f}")
print(f"{'':12} {'before':>8} {'after':>8}")
for k in ("pass@1", "pass@k", "maj@k", "mean_length"):
    print(f"{k:12} {b[k]:8.3f} {a[k]:8.3f}")
print(f"\nmetrics: {d}/grpo/metrics.jsonl   plot: {d}/grpo/reward.svg")
PY
