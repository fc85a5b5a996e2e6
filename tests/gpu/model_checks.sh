#!/usr/bin/env bash
# tests/gpu/model_checks.sh OUTDIR [BUILD_DIR] — the whole-model GPU checks, called by
# tests/gpu/run.sh after the op checks:
#   1. CUDA model vs transformers' float64 references (tiny Llama/Qwen2/Qwen3 fixtures)
#   2. CUDA vs CPU on the same random weights: log-probs, entropies, every gradient
#      (tiny shapes of each architecture, and the Qwen2.5-0.5B shape)
#   3. 10 AdamW steps on both backends: the loss curves must agree
#   4. speed: a Qwen2.5-0.5B-shaped training pass at sequence 1024 (rlvr CUDA) beside
#      PyTorch eager on the same card, and MFU against the measured bf16 matmul rate
# Every section runs even when an earlier one fails; results go to OUTDIR/model/*.
set -u
out="$1/model"; build="${2:-build-gpu}"
mkdir -p "$out"
status=0
section() { echo; echo "== $1"; }
run() { # name, command... ; logs to $out/name.log, records pass/fail
  local name=$1; shift
  if "$@" > "$out/$name.log" 2>&1; then echo "PASS $name"; else echo "FAIL $name (rc $?)"; status=1; fi
  tail -n 4 "$out/$name.log"
}
fix=tests/fixtures/parity
# RLVR_GPU_QUICK=1 leaves out the tiny-model sections (1, the tiny part of 2, and 3),
# which exercise only code paths a previous full run already validated.
quick=${RLVR_GPU_QUICK:-0}
if [ "$quick" != 1 ]; then
section "1. CUDA model vs transformers (float64 references)"
run parity_cuda "$build/tests/integration/test_parity" --device cuda $fix/llama $fix/qwen2 $fix/qwen3
fi

section "2. CUDA vs CPU, same weights"
if [ "$quick" != 1 ]; then
for m in tiny-llama tiny-qwen2 tiny-qwen3; do
  run check_$m "$build/tests/gpu/model_check" --model builtin:$m --lens 1,17,128,300 --json "$out/check_$m.json"
done
fi
run check_qwen05b "$build/tests/gpu/model_check" --model builtin:qwen2.5-0.5b --lens 1,17,128,300 --json "$out/check_qwen05b.json"

section "2b. generation on CUDA: greedy tokens and log-probs vs the CPU sampler"
run generate_cuda "$build/tests/gpu/sampler_check" --model builtin:tiny-qwen3 --prompts 6 -n 2 --new 24
run generate_cuda_05b "$build/tests/gpu/sampler_check" --skip-ops --model builtin:qwen2.5-0.5b --prompts 8 -n 4 --new 32
# the same with the paths the sixth H200 run's defaults replaced: the scalar split-K cached
# attention, the element-wise q|k|v moves, plain launches (RLVR_DECODE_ATTN=split
# RLVR_ROW_VEC=0 RLVR_DECODE_PDL=0)
run generate_cuda_05b_plain env RLVR_DECODE_ATTN=split RLVR_ROW_VEC=0 RLVR_DECODE_PDL=0 "$build/tests/gpu/sampler_check" --skip-ops --model builtin:qwen2.5-0.5b --prompts 8 -n 4 --new 32

[ "$quick" != 1 ] && section "3. 10 training steps, CPU vs CUDA"
for m in $([ "$quick" != 1 ] && echo tiny-qwen2 tiny-qwen3); do
  "$build/tests/integration/train_steps" --model builtin:$m --device cpu --steps 10 --lr 3e-3 > "$out/train_${m}_cpu.json" 2>&1
  "$build/tests/integration/train_steps" --model builtin:$m --device cuda --steps 10 --lr 3e-3 > "$out/train_${m}_cuda.json" 2>&1
  run train_compare_$m python3 - "$out/train_${m}_cpu.json" "$out/train_${m}_cuda.json" <<'PY'
import json, sys
a, b = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
worst = max(abs(x - y) / abs(x) for x, y in zip(a["losses"], b["losses"]))
print("cpu ", " ".join(f"{x:.4f}" for x in a["losses"]))
print("cuda", " ".join(f"{x:.4f}" for x in b["losses"]))
print(f"worst relative loss difference {worst:.4g} (tolerance 0.02)")
sys.exit(0 if worst <= 0.02 and b["losses"][-1] < b["losses"][0] else 1)
PY
done

section "4. speed: Qwen2.5-0.5B shape, 8 x 1024 tokens, forward+backward"
"$build/tests/bench/bench_step" --device cuda --model builtin:qwen2.5-0.5b --seqs 8 --seq-len 1024 \
  --warmup 2 --iters 5 --profile 1 > "$out/bench_rlvr.json" 2> "$out/bench_rlvr.err" || status=1
cat "$out/bench_rlvr.json" "$out/bench_rlvr.err"
# the same step's per-op times on the GPU timeline (markers, no sync per op)
"$build/tests/bench/bench_step" --device cuda --model builtin:qwen2.5-0.5b --seqs 8 --seq-len 1024 \
  --warmup 2 --iters 5 --profile 2 > "$out/bench_rlvr_prof2.json" 2> "$out/bench_rlvr_prof2.err" || status=1
cat "$out/bench_rlvr_prof2.json" "$out/bench_rlvr_prof2.err"
PYTHONUNBUFFERED=1 python3 tests/gpu/torch_train_bench.py --seqs 8 --seq-len 1024 > "$out/bench_torch.json" 2> "$out/bench_torch.err" || status=1
tail -n 1 "$out/bench_torch.json"; tail -n 3 "$out/bench_torch.err"
python3 - "$out/bench_rlvr.json" "$out/bench_torch.json" "$1" <<'PY' | tee "$out/speed_summary.txt"
import json, sys, glob
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
    t = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
except Exception as e:
    print("speed: missing result:", e); sys.exit(0)
rate = None
for p in glob.glob(sys.argv[3] + "/**/*matmul*.json", recursive=True):
    try:
        d = json.load(open(p)); rate = d.get("best_tflops") or d.get("tflops") or rate
    except Exception:
        pass
print(f"rlvr cuda   {r['tokens_per_s']:.0f} tok/s, {r['tflops']:.1f} TFLOP/s")
print(f"torch eager {t['tokens_per_s']:.0f} tok/s")
print(f"ratio rlvr/torch = {r['tokens_per_s'] / t['tokens_per_s']:.3f}")
if rate:
    print(f"MFU = {r['tflops']:.1f} / {rate:.1f} measured bf16 matmul TFLOP/s = {100 * r['tflops'] / rate:.1f}%")
PY
# The same step with one default changed back at a time: tokens/s beside the default's
# (no per-op profile). flash1: the first fused attention kernels (the default before the
# fourth H200 run); ws32: an explicit 32 MiB cuBLAS workspace instead of cuBLAS's own;
# lm1024: the LM head's 1024 x 32768 tiles in the backward too (automatic: 4096 x 8192
# there); separate: separate q/k/v and gate/up GEMMs instead of the stacked ones. The
# sixth H200 run made three kernels the defaults (with flash2's dQ partials, which added
# nothing, 117.3k -> 129.5k tok/s); each row turns one back off: rmstwo, the two-pass
# RMSNorm backward; rowvec0, the element-wise q|k|v moves and add+RMSNorm (their single
# contributions were within noise: 1.011, 1.024); nokeep, the LM head's logits
# recomputed in the backward (1.069 alone); plain, all three off. rmsrps1, rmsrps2: the
# fused RMSNorm backward with 1 or 2 rows per lane slot instead of 4 (more blocks:
# kernels/cuda/rmsnorm.cu, RLVR_RMSNORM_BWD_RPS). attnwide: flash2's forward, dK/dV and dQ
# kernels with two tiles per warp (RLVR_ATTN_FWD=wide, RLVR_ATTN_BWD=wide, RLVR_ATTN_DQ=wide;
# kernels/cuda/flash_attention2.cu; bench_attention's wide column splits the two).
# gqasep: GQA's dK/dV group sum as its own kernel again (RLVR_ATTN_GQA=separate; since
# session 18 the dK/dV kernel's last head block of a group sums it at D 64, same bits).
# gemmtune: every GEMM's cuBLAS kernel chosen by timing at its first call (the warm-up
# steps; RLVR_GEMM_TUNE=all, kernels/cuda/gemm_tune.cu; the .err file lists each shape).
# flash1, ws32, separate, lm1024 and dqpart (flash2's dQ from the dK/dV kernel,
# RLVR_ATTN_DQ=partials: 1.000) were decided by the fourth to sixth H200 runs: only with
# RLVR_MODEL_AB_ALL=1 (each costs a lease ~8 s).
AB="rmstwo:RLVR_RMSNORM_BWD=twopass rowvec0:RLVR_ROW_VEC=0 nokeep:RLVR_LM_KEEP_GB=0
    plain:RLVR_RMSNORM_BWD=twopass,RLVR_ROW_VEC=0,RLVR_LM_KEEP_GB=0
    rmsrps1:RLVR_RMSNORM_BWD_RPS=1 rmsrps2:RLVR_RMSNORM_BWD_RPS=2 attnwide:RLVR_ATTN_BWD=wide,RLVR_ATTN_FWD=wide,RLVR_ATTN_DQ=wide
    gqasep:RLVR_ATTN_GQA=separate gemmtune:RLVR_GEMM_TUNE=all,RLVR_GEMM_TUNE_LOG=1"
if [ "${RLVR_MODEL_AB_ALL:-0}" = 1 ]; then
  AB="$AB flash1:RLVR_ATTENTION=flash1 ws32:RLVR_CUBLAS_WORKSPACE_MB=32 separate:RLVR_STACKED_PROJ=0
      lm1024:RLVR_LM_CHUNKS=1024x32768 dqpart:RLVR_ATTN_DQ=partials"
fi
for v in $AB; do
  # shellcheck disable=SC2046 # the commas separate assignments
  env $(echo "${v#*:}" | tr ',' ' ') "$build/tests/bench/bench_step" --device cuda --model builtin:qwen2.5-0.5b \
    --seqs 8 --seq-len 1024 --warmup 2 --iters 5 > "$out/bench_rlvr_${v%%:*}.json" \
    2> "$out/bench_rlvr_${v%%:*}.err" && echo "${v#*:}: $(tail -n 1 "$out/bench_rlvr_${v%%:*}.json")"
done
exit $status
