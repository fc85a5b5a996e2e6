#!/usr/bin/env bash
# scripts/demo.sh — the main job on the built-in default: set up, build, then run the
# best end-to-end job the engine has: log-probabilities of token sequences under a
# built-in (random-initialised, seeded) Qwen3-shaped model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target rlvr
./build/rlvr inspect builtin:tiny-qwen3
./build/rlvr logprobs --model builtin:tiny-qwen3 --input examples/logprobs/input.jsonl
