#!/usr/bin/env python3
# compare_logprobs.py — live parity test: `rlvr logprobs` against transformers, same inputs.
#
# Usage:  python3 tests/parity/compare_logprobs.py RLVR_BIN MODEL_DIR INPUT_JSONL [TOL]
#
# Runs `RLVR_BIN logprobs --model MODEL_DIR --input INPUT_JSONL`, runs live_logprobs.py on the
# same model and file, and checks line by line that both print {"logprobs": [...]} lists of the
# same length with max |rlvr - transformers| <= TOL (default 1e-4). Meant as a ctest command:
#   add_test(NAME parity_live_llama COMMAND python3 tests/parity/compare_logprobs.py
#            $<TARGET_FILE:rlvr> tests/fixtures/parity/llama/model
#            tests/fixtures/parity/live_input.jsonl)
#   set_tests_properties(parity_live_llama PROPERTIES SKIP_RETURN_CODE 77)
# Exit 0 within tolerance; 1 mismatch or a failing command (prints which line/index); 2 usage;
# 77 when torch/transformers/safetensors are not importable.
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_ref  # noqa: E402


def parse(label, text):
    rows = []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            sys.exit(f"compare_logprobs: {label} output line {no} is not JSON ({e}): {line[:80]}")
        if not isinstance(obj, dict) or not isinstance(obj.get("logprobs"), list):
            sys.exit(f"compare_logprobs: {label} output line {no}: expected "
                     f'{{"logprobs": [...]}}, got {line[:80]}')
        rows.append(obj["logprobs"])
    return rows


def run(label, cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        sys.exit(f"compare_logprobs: {label} failed with status {p.returncode}: {' '.join(cmd)}")
    return parse(label, p.stdout)


def main():
    if len(sys.argv) not in (4, 5):
        sys.stderr.write("usage: compare_logprobs.py RLVR_BIN MODEL_DIR INPUT_JSONL [TOL]\n")
        return 2
    hf_ref.import_or_skip()
    rlvr, model_dir, inp = sys.argv[1:4]
    tol = float(sys.argv[4]) if len(sys.argv) == 5 else 1e-4
    got = run("rlvr", [rlvr, "logprobs", "--model", model_dir, "--input", inp])
    ref = run("transformers", [sys.executable, os.path.join(HERE, "live_logprobs.py"),
                               model_dir, inp])
    if len(got) != len(ref):
        print(f"compare_logprobs: rlvr printed {len(got)} lines, transformers {len(ref)}")
        return 1
    worst = 0.0
    for i, (g, r) in enumerate(zip(got, ref)):
        if len(g) != len(r):
            print(f"compare_logprobs: line {i + 1}: rlvr gave {len(g)} logprobs, expected {len(r)}")
            return 1
        for t, (a, b) in enumerate(zip(g, r)):
            if not isinstance(a, (int, float)) or not abs(a - b) <= tol:
                print(f"compare_logprobs: line {i + 1} t={t}: rlvr {a!r} vs transformers {b!r} "
                      f"(tol {tol})")
                return 1
            worst = max(worst, abs(a - b))
    print(f"compare_logprobs: {len(ref)} lines, max |diff| {worst:.3e} <= {tol}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
