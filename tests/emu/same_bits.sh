#!/usr/bin/env bash
# tests/emu/same_bits.sh REV [BUILD] — whether the CUDA kernels of the working tree give the
# same bits as those of revision REV, on every output of tests/gpu/test_cuda_ops.c, on the
# CPU emulation (no GPU needed). For changes meant to keep every bit (a faster schedule of
# the same arithmetic, a refactor): builds test_cuda_ops_emu from REV's kernels/cuda with
# the working tree's test program (so both draw the same random inputs, case for case),
# runs both with one seed and compares their digests (RLVR_TEST_DIGEST). BUILD: a
# configured CUDA build of the working tree (default build-cuda), whose test_cuda_ops_emu
# is rebuilt first. REV's kernels must offer every backend call the working tree's test
# program makes (a change to kernels/cuda alone). Takes a few minutes (a build, then two
# emulated runs side by side). Exit 0 when every output has the same bits, 1 when some
# differ (listed), 2 on a setup error.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: tests/emu/same_bits.sh REV [BUILD]" >&2; exit 2; }
rev=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${2:-$root/build-cuda}" && pwd)
git -C "$root" rev-parse --verify --quiet "$rev^{commit}" >/dev/null ||
  { echo "same_bits.sh: $rev is not a revision of $root" >&2; exit 2; }
tmp=${SAME_BITS_DIR:-$(mktemp -d)} # SAME_BITS_DIR=DIR: work there and keep it
mkdir -p "$tmp"
[ -n "${SAME_BITS_DIR:-}" ] || trap 'rm -rf "$tmp"' EXIT

# the working tree's program
cmake --build "$build" --target test_cuda_ops_emu -j"$(nproc)" >/dev/null
cp "$build/tests/emu/test_cuda_ops_emu" "$tmp/now"

# REV's kernels with the working tree's everything else: a copy of the tree whose
# kernels/cuda comes from REV
rm -rf "$tmp/src"
mkdir "$tmp/src"
git -C "$root" ls-files -z --cached --others --exclude-standard |
  (cd "$root" && xargs -0 cp --parents -t "$tmp/src" 2>/dev/null) || true
rm -rf "$tmp/src/kernels/cuda"
mkdir -p "$tmp/src/kernels/cuda"
git -C "$root" archive "$rev" kernels/cuda | tar -x -C "$tmp/src"
# configured as BUILD is: the emulated cuBLAS is OpenBLAS's sgemm, and two OpenBLAS builds
# (pthread, openmp) round fp32 GEMMs differently, which would show as differing bits
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
cmake -S "$tmp/src" -B "$tmp/build" -DCMAKE_BUILD_TYPE="$(cache CMAKE_BUILD_TYPE)" \
  -DOPENBLAS_LIBRARY="$(cache OPENBLAS_LIBRARY)" -DOPENBLAS_INCLUDE_DIR="$(cache OPENBLAS_INCLUDE_DIR)" \
  -DRLVR_ARCH_FLAGS="$(cache RLVR_ARCH_FLAGS)" >/dev/null
cmake --build "$tmp/build" --target test_cuda_ops_emu -j"$(nproc)" >/dev/null
cp "$tmp/build/tests/emu/test_cuda_ops_emu" "$tmp/then"

seed=${RLVR_TEST_SEED:-$(date +%s)}
echo "same_bits.sh: $rev's kernels against the working tree's, seed $seed"
RLVR_TEST_SEED=$seed RLVR_TEST_DIGEST="$tmp/then.digest" "$tmp/then" >"$tmp/then.log" 2>&1 &
p1=$!
RLVR_TEST_SEED=$seed RLVR_TEST_DIGEST="$tmp/now.digest" "$tmp/now" >"$tmp/now.log" 2>&1 &
p2=$!
wait $p1 || true
wait $p2 || true
if diff "$tmp/then.digest" "$tmp/now.digest" >"$tmp/diff"; then
  echo "same_bits.sh: the same bits in all $(wc -l <"$tmp/now.digest") outputs"
  exit 0
fi
echo "same_bits.sh: these outputs differ (< $rev, > working tree):"
grep '^[<>]' "$tmp/diff" | head -n 40
exit 1
