#!/usr/bin/env bash
# tests/gpu/ncu_profile.sh OUTDIR BUILD — Nsight Compute counters of the kernels that keep
# issues 8 and 9 from their targets, so the next change is made from measurements
# (occupancy, the stall reasons, achieved bandwidth and tensor throughput) instead of
# guesses. Run by tests/gpu/run.sh (section ncu_profile) after everything else.
#
#   1. the 0.5B training step (bench_step, 8 x 1024 tokens, one warm-up step, one timed):
#      flash2's backward (dK/dV and dQ kernels, ~85 TFLOP/s on the sixth H200 run), its
#      forward, the fused RMSNorm backward (~48 us a call where its traffic needs ~10 us),
#      the q|k|v bias fill, flash2's delta and group-sum kernels;
#   2. a 64-sequence decode (bench_decode, graphs on): the tensor-core cached attention,
#      the GEMVs and the fused add + RMSNorm + GEMV, the split sampling kernels and
#      cuBLAS's GEMMs at decode batch sizes;
#   3. the same as 8 prompts x 8 samples (session 22): the cached attention with
#      shared-prefix blocks (its SHARE form, picked by mangled name: Lb1E last).
#
# Each run profiles one launch of every kernel its regex matches (ncu replays it once per
# counter pass; everything else runs at full speed) and writes OUTDIR/ncu_<run>.txt
# (ncu's detail pages: Speed Of Light, Occupancy, Launch Statistics, Warp State
# Statistics, Memory Workload Analysis, Compute Workload Analysis), OUTDIR/ncu_<run>.csv
# (the raw metrics, one row per launch) and OUTDIR/ncu_<run>.log (the program's output).
#
# ncu: $NCU, else `ncu` on PATH, else the newest under /usr/local/cuda*/ and
# /opt/nvidia/nsight-compute/. Exit 77 (a skip) when there is none, 0 when every run
# wrote its report, 1 otherwise.
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: tests/gpu/ncu_profile.sh OUTDIR BUILD" >&2; exit 2; }
OUT=$1 BUILD=$2
mkdir -p "$OUT" || exit 2

find_ncu() {
  if [ -n "${NCU:-}" ]; then echo "$NCU"; return; fi
  command -v ncu 2>/dev/null && return
  ls -d /usr/local/cuda*/bin/ncu /usr/local/cuda*/nsight-compute*/ncu \
    /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | sort -V | tail -n 1
}
NCU_BIN=$(find_ncu)
if [ -z "$NCU_BIN" ] || [ ! -x "$NCU_BIN" ]; then
  echo "ncu_profile.sh: no Nsight Compute (set NCU, or put ncu on PATH; looked in" \
       "/usr/local/cuda*/ and /opt/nvidia/nsight-compute/): skipped"
  exit 77
fi
echo "ncu_profile.sh: $NCU_BIN ($("$NCU_BIN" --version 2>/dev/null | tail -n 1))"

SECTIONS=(--section SpeedOfLight --section Occupancy --section LaunchStats
          --section WarpStateStats --section MemoryWorkloadAnalysis
          --section ComputeWorkloadAnalysis)

# profile NAME REGEX N CMD...: ncu on CMD, the N-th launch of every kernel whose name
# matches REGEX (`--kernel-id ::regex:REGEX:N`: past the warm-up, one launch per kernel),
# into a report, then its detail and raw pages as text.
status=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
profile() {
  local name=$1 regex=$2 nth=$3
  shift 3
  local t0
  t0=$(date +%s)
  # shellcheck disable=SC2086 # NCU_EXTRA: extra ncu options, one word each
  if "$NCU_BIN" --target-processes all ${NCU_EXTRA:-} --kernel-id "::regex:$regex:$nth" "${SECTIONS[@]}" \
       --export "$TMP/$name" --force-overwrite "$@" >"$OUT/ncu_$name.log" 2>&1 &&
     "$NCU_BIN" --import "$TMP/$name.ncu-rep" --page details --print-units base \
       >"$OUT/ncu_$name.txt" 2>&1 &&
     "$NCU_BIN" --import "$TMP/$name.ncu-rep" --page raw --csv --print-units base \
       >"$OUT/ncu_$name.csv" 2>&1; then
    echo "ncu_profile.sh: $name: $(grep -c '^==PROF== Profiling' "$OUT/ncu_$name.log")" \
         "launches profiled in $(( $(date +%s) - t0 )) s: ncu_$name.txt, ncu_$name.csv"
  else
    echo "ncu_profile.sh: $name: ncu failed (last lines of ncu_$name.log):"
    tail -n 5 "$OUT/ncu_$name.log"
    status=1
  fi
}

# the training step (2 steps: the 30th launch of each per-layer kernel falls in the
# second, whose caches and allocator are warm)
profile step "fa2_bwd_dkdv|fa2_bwd_dq_kernel|fa2_fwd|rmsnorm_backward_fused|bias_fill|fa2_delta|fa2_group_sum|swiglu_packed" 30 \
  "$BUILD/tests/bench/bench_step" --device cuda --model builtin:qwen2.5-0.5b --seqs 8 \
  --seq-len 1024 --warmup 1 --iters 1
# decode: 64 sequences of 200-240 tokens, graphs on (ncu profiles the graphs' kernel
# nodes; the 200th launch of a per-layer kernel is ~8 decode steps in)
profile decode "attention_split|gemv|add_rmsnorm|split_(max|mass|pick)|nvjet|lm_|qkv_move" 200 \
  "$BUILD/tests/gpu/bench_decode" --device cuda --shape qwen2.5-0.5b --n 64 --min-len 200 \
  --max-len 240 --groups 0 --b1-new 0 --bw-gbs 0
# grouped: the SHARE form of the cached attention (its 50th launch: the grouped run's third
# step; the G = 1 run before it launches the other forms)
NCU_EXTRA="--kernel-name-base mangled" profile decode_share \
  "attention_split_mma_kernelILi64ELi2ELb0ELb[01]ELb1E" 50 \
  "$BUILD/tests/gpu/bench_decode" --device cuda --shape qwen2.5-0.5b --n 64 --min-len 200 \
  --max-len 240 --groups 8 --b1-new 0 --bw-gbs 0
exit $status
