#!/usr/bin/env bash
# tests/gpu/train_e2e.sh OUTDIR BUILD — rlvr end to end on the CUDA backend, on the
# built-in arithmetic task of the demo (examples/arith):
#   1. rlvr sft --device cuda: supervised warm start of tiny-qwen2 (600 steps);
#   2. rlvr eval --device cuda before RL;
#   3. rlvr train (GRPO, k3 KL) --device cuda, 200 steps, checkpoints at 100 and 200;
#   4. resume: a run stopped at step 100 and resumed to 200 must reproduce the
#      uninterrupted run's metrics (reported: max |Δ| of reward and loss per step);
#   5. PPO with its critic on CUDA (20 steps);
#   6. ZeRO-1 (dist.zero1) at world size 1 (bf16 weights + fp32 masters, 20 steps),
#      compared with the first 20 steps of 3;
#   7. when rlvr was built with NCCL and mpirun is here: the same job as one NCCL rank
#      (mpirun -np 1, dist.backend = nccl, dist.zero1) — issue 10's world-size-1 job;
#   8. rlvr eval --device cuda after RL.
# Writes OUTDIR/train_e2e.json (per-run rows: steps, s/step, reward first/last 50 steps,
# finite losses; the comparisons) and prints a table. Exit 0 when every run finished
# with finite metrics and the resume reproduced the run; other comparisons are reported.
# E2E_DEVICE=cpu E2E_STEPS=20 E2E_SFT_STEPS=100 run the same script small on the CPU;
# E2E_NCCL=0 leaves out step 7; E2E_SFT_BATCH (tokens per SFT step, 1024), E2E_EVAL_PROMPTS
# (prompts per eval, all 200) and E2E_TRAIN_SET ("--set key=value ..." added to every train
# run) shrink it further (tests/emu runs it on the emulated CUDA backend that way).
set -uo pipefail
out=$(cd "$1" && pwd); build=$(cd "$2" && pwd)
rlvr="$build/rlvr"
cd "$(dirname "$0")/../.." || exit 2
[ -x "$rlvr" ] || { echo "train_e2e: $rlvr not built"; exit 1; }
work="$out/train_e2e"
rm -rf "$work"; mkdir -p "$work"
status=0
note() { echo "train_e2e: $*"; }
run() { # name cmd...: runs, logs to $work/<name>.log, records failure
  local name=$1; shift
  local t0=$(date +%s.%N)
  if "$@" >"$work/$name.log" 2>&1; then
    note "$name ok ($(python3 -c "import time;print(round(time.time()-$t0,1))")s)"
  else
    note "$name FAILED (exit $?), tail of $work/$name.log:"; tail -20 "$work/$name.log"; status=1
  fi
}
dev=${E2E_DEVICE:-cuda}; steps=${E2E_STEPS:-200}; half=$((steps / 2))
short=$(( steps < 20 ? steps : 20 ))
cfg=examples/arith/grpo.json
common=(--set model.device=$dev --set model.dtype=bf16 --set model.path="$work/sft"
        --set checkpoint.keep_last=4 --set logging.progress=off
        --set schedule.warmup_steps=$(( half < 10 ? half : 10 )) ${E2E_TRAIN_SET:-})

run sft "$rlvr" sft --init builtin:tiny-qwen2 --tokenizer examples/arith \
  --data examples/arith/sft.jsonl --out "$work/sft" --steps ${E2E_SFT_STEPS:-600} \
  --batch-tokens ${E2E_SFT_BATCH:-1024} \
  --lr 3e-3 --device $dev --seed 0 --log-every 200
evaluate() { "$rlvr" eval --model "$1" --data examples/arith/eval.jsonl --reward math_answer \
  -n 4 --max-new-tokens 8 --template none --device $dev --seed 7 --out "$2" \
  ${E2E_EVAL_PROMPTS:+--max-prompts $E2E_EVAL_PROMPTS}; }
run eval_before evaluate "$work/sft" "$work/eval_before.json"

run grpo "$rlvr" train --config $cfg "${common[@]}" --set schedule.steps=$steps \
  --set checkpoint.every=$half --set eval.every=$half --set logging.run_dir="$work/grpo"
# The same job stopped after 100 steps, then resumed to 200.
run resume_a "$rlvr" train --config $cfg "${common[@]}" --set schedule.steps=$half \
  --set checkpoint.every=$half --set eval.every=$half --set logging.run_dir="$work/resumed"
run resume_b "$rlvr" train --resume "$work/resumed" --set schedule.steps=$steps
run ppo "$rlvr" train --config $cfg "${common[@]}" --set schedule.steps=$short \
  --set algorithm.advantage=ppo --set algorithm.critic_lr=1e-5 --set checkpoint.every=0 \
  --set eval.every=0 --set logging.run_dir="$work/ppo"
run zero1 "$rlvr" train --config $cfg "${common[@]}" --set schedule.steps=$short \
  --set dist.zero1=true --set checkpoint.every=0 --set eval.every=0 \
  --set logging.run_dir="$work/zero1"
nccl=0
if [ "${E2E_NCCL:-1}" != 0 ] && command -v mpirun >/dev/null 2>&1 &&
   ldd "$rlvr" 2>/dev/null | grep -q libnccl; then
  nccl=1
  run nccl env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_pml=ob1 \
    OMPI_MCA_btl=self,vader,tcp timeout 300 mpirun -np 1 \
    "$rlvr" train --config $cfg "${common[@]}" --set schedule.steps=$short \
    --set dist.zero1=true --set dist.backend=nccl --set checkpoint.every=0 \
    --set eval.every=0 --set logging.run_dir="$work/nccl"
else
  note "nccl: skipped (rlvr built without NCCL, or no mpirun)"
fi
last=$(ls -d "$work"/grpo/checkpoints/step-* 2>/dev/null | sort -t- -k2 -n | tail -1)
[ -n "$last" ] && run eval_after evaluate "$last" "$work/eval_after.json"

python3 - "$work" "$out/train_e2e.json" "$nccl" "$steps" "$short" <<'PY' || status=1
import json, math, os, sys
work, dst, nccl = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
steps, short = int(sys.argv[4]), int(sys.argv[5]); half = steps // 2
def rows(name):
    p = os.path.join(work, name, "metrics.jsonl")
    if not os.path.exists(p): return []
    return [r for r in (json.loads(l) for l in open(p)) if "loss" in r]
def summary(name):
    r = rows(name)
    if not r: return {"run": name, "steps": 0}
    k = min(50, len(r))
    return {"run": name, "steps": len(r),
            "finite": all(math.isfinite(x["loss"]) and math.isfinite(x["reward/mean"]) for x in r),
            "s_per_step": sum(x["time/step"] for x in r[1:]) / max(1, len(r) - 1),
            "reward_first": sum(x["reward/mean"] for x in r[:k]) / k,
            "reward_last": sum(x["reward/mean"] for x in r[-k:]) / k,
            "gen_tok_s": sum(x["throughput/gen_tokens_per_s"] for x in r[1:]) / max(1, len(r) - 1)}
def compare(a, b, n0, n1):
    ra = {x["step"]: x for x in rows(a)}; rb = {x["step"]: x for x in rows(b)}
    steps = [s for s in range(n0, n1 + 1) if s in ra and s in rb]
    if not steps: return {"steps": 0}
    d = {k: max(abs(ra[s][k] - rb[s][k]) for s in steps) for k in ("reward/mean", "loss", "grad_norm")}
    return {"steps": len(steps), "max_abs_diff": d}
runs = [summary(n) for n in ("grpo", "resumed", "ppo", "zero1") + (("nccl",) if nccl else ())]
res = {"runs": runs,
       "resume_vs_uninterrupted": compare("grpo", "resumed", half + 1, steps),
       "zero1_vs_replicated": compare("grpo", "zero1", 1, short)}
if nccl: res["nccl_vs_zero1"] = compare("zero1", "nccl", 1, short)
for w in ("before", "after"):
    p = os.path.join(work, f"eval_{w}.json")
    if os.path.exists(p):
        e = json.load(open(p)); res[f"eval_{w}"] = {k: e.get(k) for k in ("pass@1", "maj@k")}
json.dump(res, open(dst, "w"), indent=1)
print(f"{'run':10} {'steps':>5} {'s/step':>8} {'gen tok/s':>10} {'reward first50':>15} {'last50':>8}")
ok = True
for r in runs:
    if not r["steps"]: print(f"{r['run']:10}  no metrics"); ok = False; continue
    ok &= r["finite"]
    print(f"{r['run']:10} {r['steps']:5} {r['s_per_step']:8.3f} {r['gen_tok_s']:10.0f} {r['reward_first']:15.3f} {r['reward_last']:8.3f}")
for k in [k for k in res if "_vs_" in k]: print(k, json.dumps(res[k]))
for w in ("before", "after"):
    if f"eval_{w}" in res: print(f"eval {w}: {res[f'eval_{w}']}")
rc = res["resume_vs_uninterrupted"]
if rc.get("steps", 0) != steps - half or rc["max_abs_diff"]["reward/mean"] > 0 or rc["max_abs_diff"]["loss"] > 1e-6:
    print("FAIL: the resumed run does not reproduce the uninterrupted one"); ok = False
sys.exit(0 if ok else 1)
PY
exit $status
