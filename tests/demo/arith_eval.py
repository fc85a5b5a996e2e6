#!/usr/bin/env python3
"""tests/demo/arith_eval.py — pass@1 of a model on the arithmetic task through the CLI:
`rlvr generate` (template none, EOS-stopped) on every eval prompt, then `rlvr score
--reward math_answer` against the reference answers. Standard library only.

usage: arith_eval.py RLVR MODEL EVAL.jsonl [--temperature T] [-n N] [--seed S]
                     [--max-new-tokens K] [--tokenizer TOK] [--threads N]
Prints one JSON line {"pass1": mean reward over all samples, "n_prompts", "samples",
"temperature", "mean_len"}.
"""
import argparse
import json
import subprocess
import sys


def answer(row):
    """The reference: "answer" (RL files) or "completion" (SFT files)."""
    return str(row["answer"] if "answer" in row else row["completion"])


def evaluate(rlvr, model, data, temperature=0.0, n=1, seed=0, max_new=8, tokenizer=None,
             threads=None):
    rows = [json.loads(l) for l in open(data, encoding="utf-8") if l.strip()]
    cmd = [rlvr, "generate", "--model", model, "--input", data, "--template", "none",
           "--temperature", str(temperature), "-n", str(n), "--seed", str(seed),
           "--max-new-tokens", str(max_new)]
    if tokenizer:
        cmd += ["--tokenizer", tokenizer]
    if threads:
        cmd += ["--threads", str(threads)]
    gen = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    comps = [json.loads(l) for l in gen.splitlines() if l.strip()]
    if len(comps) != len(rows) * n:
        raise SystemExit("arith_eval: %d completions for %d prompts x %d" % (len(comps), len(rows), n))
    lines = "".join(json.dumps({"prompt": rows[c["prompt_index"]]["prompt"], "completion": c["text"],
                                "answer": answer(rows[c["prompt_index"]])}) + "\n" for c in comps)
    scored = subprocess.run([rlvr, "score", "--reward", "math_answer", "--workers", "1"],
                            input=lines, check=True, capture_output=True, text=True).stdout
    rewards = [json.loads(l)["reward"] for l in scored.splitlines() if l.strip()]
    if len(rewards) != len(comps):
        raise SystemExit("arith_eval: %d scores for %d completions" % (len(rewards), len(comps)))
    return {"pass1": sum(r or 0 for r in rewards) / len(rewards), "n_prompts": len(rows),
            "samples": len(rewards), "temperature": temperature,
            "mean_len": sum(len(c["ids"]) for c in comps) / len(comps)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rlvr")
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("-n", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--tokenizer")
    ap.add_argument("--threads", type=int)
    a = ap.parse_args()
    r = evaluate(a.rlvr, a.model, a.data, a.temperature, a.n, a.seed, a.max_new_tokens,
                 a.tokenizer, a.threads)
    print(json.dumps(r))


if __name__ == "__main__":
    sys.exit(main())
