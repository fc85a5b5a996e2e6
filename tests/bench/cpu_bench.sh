#!/usr/bin/env bash
# tests/bench/cpu_bench.sh — rlvr's CPU training pass vs PyTorch, side by side (a benchmark,
# not a test). Both sides run forward + backward of the summed next-token log-probabilities of
# the same packed batch shape (--seqs x --seq-len tokens) on the same saved weights (a tied
# Qwen2, hidden 512, 8 layers, 8/2 heads, intermediate 1408, vocab 32000, 38.9M parameters,
# written once by cpu_train_bench.py --save) with the same thread count. The runs are
# interleaved (rlvr, torch, rlvr, torch, ...) so that load from other processes hits both
# sides alike; the script prints every JSON line, the load average before and after, the
# median tokens/s of each side over the rounds, and the ratio rlvr / pytorch.
#
# rlvr side: build/tests/bench/bench_step --model DIR. The `rlvr` executable re-execs
# itself with OPENBLAS_CORETYPE=SKYLAKEX on AVX-512 CPUs (Debian's OpenBLAS 0.3.21 does not
# detect them and falls back to its slowest kernels); bench_step does not, so this script
# sets OPENBLAS_CORETYPE=SKYLAKEX for it when the CPU has avx512f and the variable is unset.
# PyTorch detects the CPU itself.
#
# usage: tests/bench/cpu_bench.sh [--build DIR] [--bench PATH] [--threads N] [--rounds R]
#                                 [--iters K] [--seqs B] [--seq-len L] [--weights DIR]
# Exit status 77 when torch/transformers are not importable.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="$root/build" bench="" threads=2 rounds=3 iters=5 seqs=4 seqlen=256
weights="${TMPDIR:-/tmp}/rlvr_cpu_bench_qwen2_tied"

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  [ "$1" = --help ] || [ "$1" = -h ] && { usage; exit 0; }
  [ $# -ge 2 ] || { echo "cpu_bench.sh: $1 needs a value" >&2; exit 2; }
  case "$1" in
    --build) build=$2 ;;
    --bench) bench=$2 ;;
    --threads) threads=$2 ;;
    --rounds) rounds=$2 ;;
    --iters) iters=$2 ;;
    --seqs) seqs=$2 ;;
    --seq-len) seqlen=$2 ;;
    --weights) weights=$2 ;;
    *) echo "cpu_bench.sh: unknown option '$1' (expected --build, --bench, --threads, --rounds, --iters, --seqs, --seq-len, --weights, --help)" >&2; exit 2 ;;
  esac
  shift 2
done
for v in threads rounds iters seqs seqlen; do
  case "${!v}" in ''|*[!0-9]*|0) echo "cpu_bench.sh: --$v must be a positive integer, got '${!v}'" >&2; exit 2 ;; esac
done
[ -n "$bench" ] || bench="$build/tests/bench/bench_step"
[ -x "$bench" ] || { echo "cpu_bench.sh: $bench not found (cmake --build $build --target bench_step)" >&2; exit 2; }
python3 -c 'import torch, transformers' 2>/dev/null || { echo "cpu_bench.sh: skipping, torch/transformers not importable" >&2; exit 77; }

if [ ! -f "$weights/model.safetensors" ]; then
  echo "cpu_bench.sh: writing the shared weights to $weights" >&2
  python3 "$here/cpu_train_bench.py" --tied --threads "$threads" --save "$weights" --warmup 0 --iters 1 >/dev/null
fi

coretype_note="OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SKYLAKEX
  coretype_note="OPENBLAS_CORETYPE=SKYLAKEX (set by this script for rlvr)"
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)  threads=$threads rounds=$rounds iters=$iters batch=${seqs}x${seqlen}  $coretype_note"
for r in $(seq "$rounds"); do
  # GOMP_SPINCOUNT=1000: what the rlvr CLI sets for its users (engine/cli/main.c)
  line=$(GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-1000} "$bench" --model "$weights" --threads "$threads" \
           --seqs "$seqs" --seq-len "$seqlen" --iters "$iters")
  echo "$line"; echo "rlvr $line" >>"$out"
  line=$(env -u OPENBLAS_CORETYPE python3 "$here/cpu_train_bench.py" --load "$weights" --threads "$threads" \
           --seqs "$seqs" --seq-len "$seqlen" --iters "$iters" 2>/dev/null | tail -n 1)
  echo "$line"; echo "torch $line" >>"$out"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" <<'EOF'
import json, statistics, sys
runs = {"rlvr": [], "torch": []}
for ln in open(sys.argv[1]):
    side, js = ln.split(" ", 1)
    runs[side].append(json.loads(js)["tokens_per_s"])
r, t = statistics.median(runs["rlvr"]), statistics.median(runs["torch"])
print(json.dumps({"rlvr_tokens_per_s_median": round(r, 1), "pytorch_tokens_per_s_median": round(t, 1),
                  "ratio_rlvr_over_pytorch": round(r / t, 3), "rlvr_runs": runs["rlvr"],
                  "pytorch_runs": [round(x, 1) for x in runs["torch"]]}))
EOF
