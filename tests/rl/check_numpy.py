#!/usr/bin/env python3
"""tests/rl/check_numpy.py — cross-checks engine/rl's GRPO and RLOO advantages against
the formulas of TRL's GRPOTrainer (scale_rewards group / batch / none: group mean,
torch.std — i.e. unbiased — over the group or the whole batch, + 1e-4) and of RLOO,
written here in numpy, on random batches of binary and continuous rewards.
usage: check_numpy.py PATH/TO/rl_adv_tool   (exit 77 when numpy is missing)"""
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("numpy not importable: skipping")
    sys.exit(77)


def trl_style(r, G, mode, eps):
    g = r.reshape(-1, G)
    mean = np.repeat(g.mean(axis=1), G)
    adv = r - mean
    if mode == "grpo-none":
        return adv
    if mode == "grpo-batch":
        std = np.full_like(r, r.std(ddof=1) if r.size > 1 else 0.0)
    else:
        ddof = 0 if mode == "grpo-group-biased" else 1
        std = np.repeat(g.std(axis=1, ddof=ddof) if G > 1 else np.zeros(len(g)), G)
    return adv / (std + eps)


def rloo(r, G):
    g = r.reshape(-1, G)
    if G < 2:
        return np.zeros_like(r)
    loo = (g.sum(axis=1, keepdims=True) - g) / (G - 1)
    return (g - loo).reshape(-1)


def run(tool, mode, G, eps, r):
    out = subprocess.run([tool, mode, str(G), repr(eps)], input=" ".join("%.9g" % x for x in r),
                         capture_output=True, text=True, check=True).stdout
    return np.array([float(x) for x in out.split()])


def main():
    tool = sys.argv[1]
    rng = np.random.default_rng(1234)
    worst = 0.0
    cases = 0
    for trial in range(40):
        G = int(rng.choice([2, 3, 4, 8, 16]))
        B = int(rng.integers(1, 9))
        if trial % 2:
            r = rng.integers(0, 2, size=B * G).astype(np.float32)  # 0/1 verifier rewards
        else:
            r = rng.normal(0, 2, size=B * G).astype(np.float32)
        r = r.astype(np.float64)
        for mode in ("grpo-group", "grpo-batch", "grpo-none", "grpo-group-biased"):
            for eps in (1e-4, 1e-6):
                want = trl_style(r, G, mode, eps)
                got = run(tool, mode, G, eps, r)
                # eps 1e-6 with a zero-std group divides 0 by 1e-6: both sides give 0
                err = np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))
                worst = max(worst, err)
                cases += 1
                if err > 1e-5:
                    print(f"MISMATCH {mode} G={G} eps={eps}: max rel err {err}\n"
                          f"rewards {r}\nwant {want}\ngot {got}")
                    return 1
        want = rloo(r, G)
        got = run(tool, "rloo", G, 0.0, r)
        err = np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))
        worst = max(worst, err)
        cases += 1
        if err > 1e-5:
            print(f"MISMATCH rloo G={G}: {err}\nrewards {r}\nwant {want}\ngot {got}")
            return 1
    print(f"check_numpy: {cases} cases match TRL-style numpy formulas, worst rel err {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
