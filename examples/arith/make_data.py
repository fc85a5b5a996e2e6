#!/usr/bin/env python3
"""examples/arith/make_data.py — the built-in demo's verifiable task: short integer
arithmetic, generated from a seed (Python standard library only).

Problems are "What is a+b?", "What is a-b?" (a >= b, so answers are never negative)
and "What is a*b?" with small operands, each prompt ending in a newline. Every distinct problem is drawn once at most: the eval problems are
held out from both training files.

Writes, next to this script (or into --out):
  train.jsonl  {"prompt": "What is 17+25?\n", "answer": "42"}      RL prompts (GRPO)
  eval.jsonl   {"prompt": "...", "answer": "..."}                 held-out evaluation
  sft.jsonl    {"prompt": "What is 17+25?\n", "completion": "42"}  solutions (SFT)
The prompt is used without a chat template (--template none); the completion is the
answer alone, followed by the tokenizer's EOS when training.

The same arguments always give byte-identical files.
"""
import argparse
import json
import os
import random


def all_problems(max_add, max_mul_a, max_mul_b):
    """Every distinct problem of the task, in a fixed order: (prompt, answer)."""
    out = []
    for a in range(max_add + 1):
        for b in range(max_add + 1):
            out.append(("What is %d+%d?\n" % (a, b), a + b))
    for a in range(max_add + 1):
        for b in range(a + 1):
            out.append(("What is %d-%d?\n" % (a, b), a - b))
    for a in range(max_mul_a + 1):
        for b in range(max_mul_b + 1):
            out.append(("What is %d*%d?\n" % (a, b), a * b))
    return out


def write_jsonl(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=here, help="output folder (default: this folder)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--max-add", type=int, default=29,
                    help="operands of + and - are 0..N (default 29)")
    ap.add_argument("--max-mul-a", type=int, default=12, help="first factor 0..N")
    ap.add_argument("--max-mul-b", type=int, default=9, help="second factor 0..N")
    ap.add_argument("--n-eval", type=int, default=200)
    ap.add_argument("--n-sft", type=int, default=1000)
    ap.add_argument("--n-train", type=int, default=0,
                    help="RL prompts (default 0: every non-eval problem once)")
    a = ap.parse_args()

    probs = all_problems(a.max_add, a.max_mul_a, a.max_mul_b)
    rng = random.Random(a.seed)
    rng.shuffle(probs)
    if a.n_eval + 1 > len(probs):
        raise SystemExit("make_data.py: --n-eval %d leaves no training problems (%d in all)"
                         % (a.n_eval, len(probs)))
    evals, rest = probs[:a.n_eval], probs[a.n_eval:]
    # SFT and RL draw from the same non-eval pool; the SFT file is a prefix of it, so the
    # RL prompts include problems the warm start never saw.
    sft = rest[:min(a.n_sft, len(rest))]
    n_train = a.n_train if a.n_train > 0 else len(rest)
    train = [rest[i % len(rest)] for i in range(n_train)]
    os.makedirs(a.out, exist_ok=True)
    write_jsonl(os.path.join(a.out, "eval.jsonl"),
                [{"prompt": p, "answer": str(v)} for p, v in evals])
    write_jsonl(os.path.join(a.out, "train.jsonl"),
                [{"prompt": p, "answer": str(v)} for p, v in train])
    write_jsonl(os.path.join(a.out, "sft.jsonl"),
                [{"prompt": p, "completion": str(v)} for p, v in sft])
    print("make_data.py: %d problems: %d eval, %d sft, %d train -> %s"
          % (len(probs), len(evals), len(sft), len(train), a.out))


if __name__ == "__main__":
    main()
