#!/usr/bin/env bash
# tests/gpu/run.sh OUTDIR — every GPU check of rlvr in one run on a machine with a GPU:
# configure + build (build-gpu, Release, CUDA on), nvidia-smi, the op-by-op CUDA vs CPU
# test (test_cuda_ops), the cuBLAS bf16 GEMM rate (bench_matmul), then the whole-model
# checks (model_checks, below). Each section is timed, logged to OUTDIR/<section>.log,
# and recorded in OUTDIR/report.json; a failing section does not stop the others.
# Prints a summary table at the end. Exit status: 0 when every section passed.
# Needs no network: it never installs anything (see docs/cuda.md for the host packages).
set -uo pipefail

if [ $# -ne 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  echo "usage: tests/gpu/run.sh OUTDIR   (writes logs and report.json into OUTDIR)" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$1" || { echo "run.sh: cannot create output directory '$1'" >&2; exit 2; }
OUT="$(cd "$1" && pwd)"
cd "$ROOT" || exit 2 # sections (model_checks.sh) use repository-relative paths
BUILD="$ROOT/build-gpu"
JOBS="${RLVR_GPU_JOBS:-16}"
T_START=$(date +%s)

SECTIONS=()   # "name|status|seconds|note"
record() { SECTIONS+=("$1|$2|$3|$4"); echo "run.sh: [$1] $2 (${3}s) $4"; }

# run_section NAME TIMEOUT_S CMD...: runs CMD with a timeout, output to OUTDIR/NAME.log.
# Status: pass (0), skip (77), timeout (124/137), fail (anything else).
# RLVR_GPU_SKIP="name ..." leaves sections out (recorded as skip), to fit a short lease;
# RLVR_GPU_ONLY="name ..." runs only those (nvidia-smi and the build always run).
run_section() {
  local name="$1" limit="$2"; shift 2
  local t0 rc status
  case " ${RLVR_GPU_SKIP:-} " in
    *" $name "*) record "$name" skip 0 "left out by RLVR_GPU_SKIP"; return 0 ;;
  esac
  if [ -n "${RLVR_GPU_ONLY:-}" ]; then
    case " $RLVR_GPU_ONLY nvidia_smi build build_gpu_targets " in
      *" $name "*) ;;
      *) record "$name" skip 0 "not in RLVR_GPU_ONLY"; return 0 ;;
    esac
  fi
  t0=$(date +%s)
  echo "run.sh: [$name] $*"
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=pass ;;
    77) status=skip ;;
    124|137) status=timeout ;;
    *) status=fail ;;
  esac
  record "$name" "$status" "$(( $(date +%s) - t0 ))" "exit $rc, log $name.log"
  return $rc
}

# ---- host packages ------------------------------------------------------------------
# The build needs cJSON and OpenBLAS (cmake/Dependencies.cmake). Nothing is installed
# from the network here: when the Debian packages are missing, scripts/gpu-deps.sh
# unpacks the .deb files carried in .gpu-deps/ (fetched beforehand with
# `scripts/gpu-deps.sh fetch`) and sets RLVR_GPU_CMAKE_ARGS for the configure step.
RLVR_GPU_CMAKE_ARGS=""
if [ -f "$ROOT/scripts/gpu-deps.sh" ] && ls "$ROOT"/.gpu-deps/*.deb >/dev/null 2>&1; then
  # shellcheck source=/dev/null
  source "$ROOT/scripts/gpu-deps.sh" install >"$OUT/packages.log" 2>&1
  record packages pass 0 "$(tr '\n' ';' <"$OUT/packages.log" | tr -d '"')"
else
  missing=()
  for p in libcjson-dev libopenblas-openmp-dev libpcre2-dev libutf8proc-dev libgmp-dev \
           libuv1-dev cmake; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    record packages pass 0 "host packages present"
  else
    echo "run.sh: WARNING: missing host packages: ${missing[*]}; no .gpu-deps/*.deb to" \
         "unpack (run scripts/gpu-deps.sh fetch where apt works). The configure step is" \
         "attempted anyway." | tee "$OUT/packages.log"
    record packages fail 0 "missing: ${missing[*]}"
  fi
fi
export RLVR_GPU_CMAKE_ARGS

# ---- GPU ----------------------------------------------------------------------------
GPU_NAME="unknown"
if command -v nvidia-smi >/dev/null 2>&1; then
  run_section nvidia_smi 60 nvidia-smi
  GPU_NAME="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"
else
  record nvidia_smi fail 0 "nvidia-smi not found"
fi
echo "run.sh: GPU: $GPU_NAME"
# Memory bandwidth of the card for the generation bounds (GB/s, vendor figures).
case "$GPU_NAME" in
  *H200*) BW_GBS=4800 ;;
  *H100*) BW_GBS=3350 ;;
  *) BW_GBS=3350 ;;
esac
export BW_GBS

# ---- build --------------------------------------------------------------------------
# Every engine module is built (the end-to-end training run needs the tokenizer, the
# rewards and the trainer); the CPU-only test folders are left out to save build time.
RLVR_GPU_CMAKE_ARGS="$RLVR_GPU_CMAKE_ARGS -DRLVR_SKIP_DIRS=tests/text;tests/reward;tests/demo;tests/train"
export RLVR_GPU_CMAKE_ARGS
# shellcheck disable=SC2317  # (called through bash -c)
build_all() {
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$BUILD" -DRLVR_CUDA=ON -DCMAKE_BUILD_TYPE=Release $RLVR_GPU_CMAKE_ARGS &&
    cmake --build "$BUILD" -j"$JOBS"
}
# shellcheck disable=SC2317
build_gpu_targets() {
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$BUILD" -DRLVR_CUDA=ON -DCMAKE_BUILD_TYPE=Release $RLVR_GPU_CMAKE_ARGS &&
    cmake --build "$BUILD" -j"$JOBS" --target test_cuda_ops bench_matmul bench_attention
}
export -f build_all build_gpu_targets
export ROOT BUILD JOBS
BUILT=1
if ! run_section build 300 bash -c build_all; then
  # Some other module may not build yet: the GPU op checks need only the kernels.
  run_section build_gpu_targets 200 bash -c build_gpu_targets || BUILT=0
fi

# ---- op-by-op CUDA vs CPU -------------------------------------------------------------
if [ $BUILT = 1 ] && [ -x "$BUILD/tests/gpu/test_cuda_ops" ]; then
  run_section test_cuda_ops 240 "$BUILD/tests/gpu/test_cuda_ops" "$OUT/test_cuda_ops.json"
else
  record test_cuda_ops fail 0 "not built (see build logs)"
fi

# ---- bf16 GEMM rate (MFU denominator) -------------------------------------------------
if [ $BUILT = 1 ] && [ -x "$BUILD/tests/gpu/bench_matmul" ]; then
  run_section bench_matmul 90 "$BUILD/tests/gpu/bench_matmul" "$OUT/bench_matmul.json"
else
  record bench_matmul fail 0 "not built (see build logs)"
fi

# ---- attention: fused vs simple kernels, and PyTorch's sdpa on the same card -----------
if [ $BUILT = 1 ] && [ -x "$BUILD/tests/gpu/bench_attention" ]; then
  run_section bench_attention 120 "$BUILD/tests/gpu/bench_attention" "$OUT/bench_attention.json"
else
  record bench_attention fail 0 "not built (see build logs)"
fi
run_section torch_attention 120 python3 "$ROOT/tests/gpu/torch_attention_bench.py" "$OUT/torch_attention.json"

# ---- the cached attention of one decode step, op by op: the decode A/B settings without
# a whole run's noise, and their bit checks (issue 9) --------------------------------------
if [ $BUILT = 1 ] && [ -x "$BUILD/tests/gpu/bench_decode_attn" ]; then
  run_section bench_decode_attn 120 "$BUILD/tests/gpu/bench_decode_attn" "$OUT/bench_decode_attn.json"
else
  record bench_decode_attn fail 0 "not built (see build logs)"
fi

# ---- the fused LM head at 8192 tokens x 151,936 vocabulary: time and memory, beside
# PyTorch eager's unfused head on the same card (issue 8) -------------------------------
if [ $BUILT = 1 ] && [ -x "$BUILD/tests/gpu/bench_lmhead" ]; then
  # the chunked head alone (bounded memory: RLVR_LM_KEEP_GB=0, the tiles) ...
  run_section bench_lmhead 120 env RLVR_LM_KEEP_GB=0 "$BUILD/tests/gpu/bench_lmhead" \
    "$OUT/bench_lmhead.json"
  # ... and with the forward's logits kept for the backward (the default since the sixth
  # H200 run where they fit in an eighth of the card's memory)
  run_section bench_lmhead_keep 120 env RLVR_LM_KEEP_GB=8 "$BUILD/tests/gpu/bench_lmhead" \
    "$OUT/bench_lmhead_keep.json"
else
  record bench_lmhead fail 0 "not built (see build logs)"
fi
run_section torch_lmhead 120 python3 "$ROOT/tests/gpu/torch_lmhead_bench.py" "$OUT/torch_lmhead.json"

# ---- every kernel's GPU time, CUDA graphs included (PyTorch's profiler over the
# benchmark programs run in-process, tests/gpu/kernel_profile.py): a decode batch of 256
# sequences, 32 sequences, batch 1, and the training step of
# bench_step; early, so a short lease that runs out of time still has it ----------------
if [ $BUILT = 1 ] && [ -f "$BUILD/tests/gpu/libbench_decode_prog.so" ]; then
  kernel_profile() {
    local kp="python3 $ROOT/tests/gpu/kernel_profile.py" rc=0
    echo "== decode: 256 sequences, prompt and output 200-240 tokens (graphs on)"
    $kp --lib "$BUILD/tests/gpu/libbench_decode_prog.so" --by-grid --json "$OUT/kp_decode256.json" \
      -- --device cuda --shape qwen2.5-0.5b --n 256 --min-len 200 --max-len 240 --groups 0 \
      --b1-new 0 --bw-gbs "$BW_GBS" || rc=1
    echo "== decode: batch 1, prompt and output 384 tokens (graphs on)"
    $kp --lib "$BUILD/tests/gpu/libbench_decode_prog.so" --by-grid --json "$OUT/kp_decode1.json" \
      -- --device cuda --shape qwen2.5-0.5b --n 1 --min-len 384 --max-len 384 --groups 0 \
      --b1-new 0 --bw-gbs "$BW_GBS" || rc=1
    echo "== decode: 32 sequences, prompt and output 200-240 tokens (graphs on)"
    $kp --lib "$BUILD/tests/gpu/libbench_decode_prog.so" --by-grid --json "$OUT/kp_decode32.json" \
      -- --device cuda --shape qwen2.5-0.5b --n 32 --min-len 200 --max-len 240 --groups 0 \
      --b1-new 0 --bw-gbs "$BW_GBS" || rc=1
    echo "== training step: Qwen2.5-0.5B shape, 8 x 1024 tokens (1 warm-up, 2 timed steps)"
    $kp --lib "$BUILD/tests/bench/libbench_step_prog.so" --json "$OUT/kp_step.json" --top 50 \
      -- --device cuda --model builtin:qwen2.5-0.5b --seqs 8 --seq-len 1024 --warmup 1 \
      --iters 2 || rc=1
    return $rc
  }
  export -f kernel_profile
  export OUT
  run_section kernel_profile 240 bash -c kernel_profile
fi

# ---- NCCL collectives on one GPU (all-reduce, reduce-scatter, all-gather of CUDA
# buffers through the data-parallel communicator; issue 10) ---------------------------
nccl_check() {
  local exe="$BUILD/engine/dist/test_dist_comm"
  if [ ! -x "$exe" ]; then
    record nccl_comm skip 0 "test_dist_comm not built (no MPI or NCCL here)"
    return
  fi
  if command -v mpirun >/dev/null 2>&1; then
    run_section nccl_comm 120 env RLVR_DIST=nccl OMPI_ALLOW_RUN_AS_ROOT=1 \
      OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp \
      OMPI_MCA_btl_vader_single_copy_mechanism=none mpirun -np 1 "$exe"
  else
    run_section nccl_comm 120 env RLVR_DIST=nccl "$exe"   # MPI singleton
  fi
}
nccl_check

# ---- whole-model checks ---------------------------------------------------------------
# The place for the lead's model-level checks (CPU vs CUDA model parity, vs PyTorch, 10
# training steps on both backends): tests/gpu/model_checks.sh OUTDIR, run when present,
# with BUILD exported. Its own JSON goes under OUTDIR; its exit status is recorded here.
model_checks() {
  local script="$ROOT/tests/gpu/model_checks.sh"
  if [ -f "$script" ]; then
    export RLVR_BUILD_DIR="$BUILD"
    run_section model_checks 240 bash "$script" "$OUT" "$BUILD"
  else
    record model_checks skip 0 "tests/gpu/model_checks.sh not present"
  fi
}
model_checks

# ---- rlvr end to end on CUDA: sft, eval, GRPO + resume, PPO, ZeRO-1, one NCCL rank ----
if [ $BUILT = 1 ] && [ -x "$BUILD/rlvr" ]; then
  # (without decode graphs: this section checks the trainer; the graphs have their own)
  run_section train_e2e 360 env RLVR_CUDA_GRAPHS=0 bash "$ROOT/tests/gpu/train_e2e.sh" "$OUT" "$BUILD"
else
  record train_e2e fail 0 "rlvr not built (see build logs)"
fi

# ---- generation speed (issue 9): rlvr's sampler vs transformers generate, bound -------
if [ -f "$ROOT/tests/gpu/decode_bench.sh" ] && [ $BUILT = 1 ]; then
  # RLVR_DECODE_BENCH_ARGS adds options (e.g. "--hf-n 0" leaves transformers out)
  # shellcheck disable=SC2086
  run_section decode_bench 360 bash "$ROOT/tests/gpu/decode_bench.sh" "$OUT" "$BUILD" ${RLVR_DECODE_BENCH_ARGS:-}
else
  record decode_bench skip 0 "tests/gpu/decode_bench.sh or the build missing"
fi

# ---- where a decode step's time goes: every op timed (synchronised, so no graphs), on a
# batch of 128 sequences and at batch 1 --------------------------------------------------
if [ $BUILT = 1 ] && [ -x "$BUILD/tests/gpu/bench_decode" ]; then
  decode_profile() {
    local rc=0
    "$BUILD/tests/gpu/bench_decode" --device cuda --shape qwen2.5-0.5b --n 128 --min-len 200 \
      --max-len 260 --groups 0 --b1-new 0 --bw-gbs "$BW_GBS" --profile 1 &&
      "$BUILD/tests/gpu/bench_decode" --device cuda --shape qwen2.5-0.5b --n 1 --min-len 512 \
        --max-len 512 --groups 0 --b1-new 0 --bw-gbs "$BW_GBS" --profile 1 || rc=1
    echo "== the 128-sequence batch and batch 1 on the GPU timeline (--profile 2: no sync per op)"
    "$BUILD/tests/gpu/bench_decode" --device cuda --shape qwen2.5-0.5b --n 128 --min-len 200 \
      --max-len 260 --groups 0 --b1-new 0 --bw-gbs "$BW_GBS" --profile 2 || rc=1
    "$BUILD/tests/gpu/bench_decode" --device cuda --shape qwen2.5-0.5b --n 1 --min-len 512 \
      --max-len 512 --groups 0 --b1-new 0 --bw-gbs "$BW_GBS" --profile 2 || rc=1
    return $rc
  }
  export -f decode_profile
  run_section decode_profile 180 bash -c decode_profile
fi

# ---- Nsight Compute counters of the kernels that keep issues 8 and 9 from their targets
# (tests/gpu/ncu_profile.sh: the attention backward, the RMSNorm backward, the bias fill,
# the decode kernels; occupancy, stall reasons, bandwidth), last so that a short lease
# loses only this; a skip where the machine has no ncu ---------------------------------
if [ $BUILT = 1 ] && [ -x "$BUILD/tests/bench/bench_step" ]; then
  run_section ncu_profile 200 bash "$ROOT/tests/gpu/ncu_profile.sh" "$OUT" "$BUILD"
fi

# ---- report ---------------------------------------------------------------------------
TOTAL=$(( $(date +%s) - T_START ))
ops_summary="null"
if [ -f "$OUT/test_cuda_ops.json" ]; then
  ops_summary=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(json.dumps({"cases": d["cases"], "failed": d["failed"], "seed": d["seed"]}))' "$OUT/test_cuda_ops.json" 2>/dev/null || echo null)
fi
gemm_best="null"
if [ -f "$OUT/bench_matmul.json" ]; then
  gemm_best=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["best_tflops"])' "$OUT/bench_matmul.json" 2>/dev/null || echo null)
fi
overall=0
{
  echo "{"
  echo "  \"gpu\": \"${GPU_NAME//\"/}\","
  echo "  \"commit\": \"$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)\","
  echo "  \"total_seconds\": $TOTAL,"
  echo "  \"test_cuda_ops\": $ops_summary,"
  echo "  \"bf16_gemm_best_tflops\": $gemm_best,"
  echo "  \"sections\": ["
  n=${#SECTIONS[@]}
  for i in "${!SECTIONS[@]}"; do
    IFS='|' read -r name status secs note <<<"${SECTIONS[$i]}"
    sep=","; [ $((i + 1)) -eq "$n" ] && sep=""
    echo "    {\"name\": \"$name\", \"status\": \"$status\", \"seconds\": $secs, \"note\": \"${note//\"/}\"}$sep"
  done
  echo "  ]"
  echo "}"
} >"$OUT/report.json.tmp" && mv "$OUT/report.json.tmp" "$OUT/report.json"

echo
echo "==== rlvr GPU checks on: $GPU_NAME  (${TOTAL}s) ===="
printf "%-20s %-8s %6s  %s\n" section status secs note
for s in "${SECTIONS[@]}"; do
  IFS='|' read -r name status secs note <<<"$s"
  printf "%-20s %-8s %6s  %s\n" "$name" "$status" "$secs" "$note"
  case "$status" in pass|skip) ;; *) [ "$name" = build ] || overall=1 ;; esac
done
[ "$ops_summary" != "null" ] && echo "test_cuda_ops: $ops_summary"
if [ -f "$OUT/test_cuda_ops.log" ]; then
  grep -E " FAIL$|backend error" "$OUT/test_cuda_ops.log" | head -40
fi
# every A/B row beside its default, and the kernel profiles' top kernels (also in
# OUTDIR/ab_summary.txt): the decisions a lease is for, in the output it returns
echo "==== A/B rows and kernel profiles (tests/gpu/ab_summary.py)"
python3 "$ROOT/tests/gpu/ab_summary.py" "$OUT" 2>&1 | tee "$OUT/ab_summary.txt"
[ "$gemm_best" != "null" ] && echo "bf16 GEMM best: $gemm_best TFLOP/s"
echo "report: $OUT/report.json"
exit $overall
