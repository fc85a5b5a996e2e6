#!/usr/bin/env bash
# tests/emu/orders.sh PROG [ARGS...] — runs an emulated-GPU test program (tests/emu) twice
# with the same seed, side by side (tests/emu/cuda_emu.h): threads and blocks in index
# order with each cp.async landing as late as allowed (at its wait) and plain launches
# (RLVR_DECODE_PDL=0), then threads and blocks reversed with each cp.async landing at once
# (RLVR_EMU_THREADS=reverse RLVR_EMU_ORDER=reverse RLVR_EMU_CPASYNC=early), the decode
# kernels launched as programmatic dependents (RLVR_DECODE_PDL=1, the default on sm_90:
# each must begin with pdl_begin, which the emulation checks). Each must pass, and the digests they
# write (RLVR_TEST_DIGEST: the bits of every output, tests/gpu/test_cuda_ops.c) must be the
# same: an output whose bits depend on the order the threads or blocks of a kernel run in,
# or on when its asynchronous copies land, comes from a race (a missing barrier or wait).
# Seed: $RLVR_TEST_SEED, else the clock (printed, to repeat a failure).
set -euo pipefail
prog=$1
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
seed=${RLVR_TEST_SEED:-$(date +%s)}
echo "orders.sh: seed $seed (RLVR_TEST_SEED=$seed repeats it)"
RLVR_TEST_SEED=$seed RLVR_TEST_DIGEST="$dir/index.digest" RLVR_DECODE_PDL=0 \
    "$prog" "$@" >"$dir/index.log" 2>&1 &
index_pid=$!
RLVR_TEST_SEED=$seed RLVR_TEST_DIGEST="$dir/reversed.digest" RLVR_EMU_THREADS=reverse \
    RLVR_EMU_CPASYNC=early RLVR_DECODE_PDL=1 \
    RLVR_EMU_ORDER=reverse "$prog" "$@" >"$dir/reversed.log" 2>&1 &
reversed_pid=$!
rc=0
wait "$index_pid" || rc=$?
rrc=0
wait "$reversed_pid" || rrc=$?
for run in index reversed; do
    echo "---- $run order: failures and summary"
    grep -E 'FAIL|error|test_cuda_ops:' "$dir/$run.log" | tail -n 40 || true
done
if [ "$rc" -ne 0 ] || [ "$rrc" -ne 0 ]; then
    echo "orders.sh: FAIL: index-order run exit $rc, reversed-order run exit $rrc" >&2
    exit 1
fi
if ! diff "$dir/index.digest" "$dir/reversed.digest" >"$dir/diff"; then
    echo "orders.sh: FAIL: these outputs have other bits when threads and blocks run in" \
         "reverse order (a race in their kernel):" >&2
    grep '^[<>]' "$dir/diff" | head -n 40 >&2
    exit 1
fi
echo "orders.sh: PASS: $(wc -l <"$dir/index.digest") outputs, the same bits in both orders"
