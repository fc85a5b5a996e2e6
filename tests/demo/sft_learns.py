#!/usr/bin/env python3
"""tests/demo/sft_learns.py — `rlvr sft` learns the built-in arithmetic task on a reduced
budget: the reported loss falls by more than half, and greedy pass@1 on the held-out eval
problems (rlvr generate + the math_answer reward via rlvr score) rises clearly above the
random-initialised model's.

usage: sft_learns.py RLVR EXAMPLES_DIR WORK_DIR [--steps N] [--min-pass1 P]
Prints one JSON line with the numbers.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from arith_eval import evaluate  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rlvr")
    ap.add_argument("examples")
    ap.add_argument("work")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--min-pass1", type=float, default=0.15)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    ex = a.examples
    evalf = os.path.join(ex, "eval.jsonl")
    base = evaluate(a.rlvr, "builtin:tiny-qwen2", evalf, tokenizer=ex, threads=1)
    out = os.path.join(a.work, "sft")
    t0 = time.time()
    r = subprocess.run([a.rlvr, "sft", "--init", "builtin:tiny-qwen2", "--tokenizer", ex,
                        "--data", os.path.join(ex, "sft.jsonl"), "--out", out,
                        "--steps", str(a.steps), "--batch-tokens", "1024", "--lr", "3e-3",
                        "--log-every", "50", "--threads", "1", "--seed", "0"],
                       capture_output=True, text=True)
    sft_s = time.time() - t0
    if r.returncode != 0:
        print(r.stderr)
        return 1
    logs = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
              "generation_config.json"):
        if not os.path.exists(os.path.join(out, f)):
            print("missing %s in the saved model directory" % f)
            return 1
    after = evaluate(a.rlvr, out, evalf, threads=1)
    res = {"steps": a.steps, "sft_wall_s": round(sft_s, 2), "loss_first": logs[0]["loss"],
           "loss_last": logs[-1]["loss"], "pass1_random_init": base["pass1"],
           "pass1_after_sft": after["pass1"]}
    print(json.dumps(res))
    ok = True
    if len(logs) != a.steps // 50 or logs[-1]["step"] != a.steps:
        print("expected a report every 50 steps up to %d" % a.steps)
        ok = False
    if not logs[-1]["loss"] < 0.5 * logs[0]["loss"]:
        print("the SFT loss did not halve")
        ok = False
    if not (after["pass1"] >= a.min_pass1 and after["pass1"] >= base["pass1"] + 0.1):
        print("pass@1 after SFT %.3f: expected >= %.2f and >= random init %.3f + 0.1"
              % (after["pass1"], a.min_pass1, base["pass1"]))
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
