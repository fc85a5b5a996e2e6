#!/usr/bin/env bash
# scripts/test.sh — the whole test suite on a fresh machine: set up, build (CPU, plus
# the CUDA backend when nvcc is present: it must compile even where it cannot run),
# run every ctest test, then rebuild the input-validation tests under AddressSanitizer
# and run those too.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --python
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" -LE gpu)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRLVR_ASAN=ON -DRLVR_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs" -L asan)
