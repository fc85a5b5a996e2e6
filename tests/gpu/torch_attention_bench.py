#!/usr/bin/env python3
"""tests/gpu/torch_attention_bench.py — PyTorch's scaled_dot_product_attention
(is_causal=True, bf16, forward + backward) on the shapes of tests/gpu/bench_attention.c,
for the comparison table of issue 8 (same card, same run).

Shapes: hidden 2048 = Hq*D (32 heads of 64, 16 of 128), Hkv = Hq, sequences of
1k/2k/4k, batch = 16384 / seq (all sequences the same length, so padding-free batches
equal the packed ones), plus the Qwen2.5-0.5B shape (14 query / 2 KV heads of 64,
8 x 1024; enable_gqa where this torch has it, else K/V repeated).
FLOPs (FlashAttention-2's causal convention, as bench_attention): forward
4*batch*seq^2*D*Hq/2, backward 2.5 x forward. Timing: CUDA events, 3 warm-up runs,
median of 10.

Usage: torch_attention_bench.py [report.json]. Exit 77 (skip) without torch or a GPU.
"""
import json
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("torch_attention_bench: SKIP: torch is not importable")
    sys.exit(77)

WARMUP, RUNS, TOKENS = 3, 10, 16384
SHAPES = [
    (1024, 32, 32, 64, "fa2-hd64"), (2048, 32, 32, 64, "fa2-hd64"),
    (4096, 32, 32, 64, "fa2-hd64"), (1024, 16, 16, 128, "fa2-hd128"),
    (2048, 16, 16, 128, "fa2-hd128"), (4096, 16, 16, 128, "fa2-hd128"),
    (1024, 14, 2, 64, "qwen2.5-0.5b"),
]


def sdpa(q, k, v, hq, hkv):
    if hq == hkv:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    try:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    except TypeError:  # older torch: no enable_gqa
        r = hq // hkv
        return F.scaled_dot_product_attention(q, k.repeat_interleave(r, 1),
                                              v.repeat_interleave(r, 1), is_causal=True)


def bench(seq, hq, hkv, d, batch):
    dev = "cuda"
    q = torch.empty(batch, hq, seq, d, device=dev, dtype=torch.bfloat16).uniform_(-1, 1)
    k = torch.empty(batch, hkv, seq, d, device=dev, dtype=torch.bfloat16).uniform_(-1, 1)
    v = torch.empty(batch, hkv, seq, d, device=dev, dtype=torch.bfloat16).uniform_(-1, 1)
    do = torch.empty(batch, hq, seq, d, device=dev, dtype=torch.bfloat16).uniform_(-1, 1)
    for t in (q, k, v):
        t.requires_grad_(True)
    tf, tb = [], []
    for i in range(WARMUP + RUNS):
        e0, e1, e2 = (torch.cuda.Event(enable_timing=True) for _ in range(3))
        e0.record()
        out = sdpa(q, k, v, hq, hkv)
        e1.record()
        torch.autograd.grad(out, (q, k, v), do)
        e2.record()
        torch.cuda.synchronize()
        if i >= WARMUP:
            tf.append(e0.elapsed_time(e1))
            tb.append(e1.elapsed_time(e2))
    tf.sort()
    tb.sort()
    med = lambda x: 0.5 * (x[len(x) // 2 - 1] + x[len(x) // 2]) if len(x) % 2 == 0 else x[len(x) // 2]
    return med(tf), med(tb)


def main():
    if not torch.cuda.is_available():
        print("torch_attention_bench: SKIP: no CUDA device")
        return 77
    rows = []
    print("torch_attention_bench: torch %s, %s; sdpa causal bf16; TFLOP/s with fwd = "
          "4*batch*seq^2*D*Hq/2, bwd = 2.5*fwd" % (torch.__version__, torch.cuda.get_device_name()))
    print("%-14s %5s %5s %4s %4s %4s | %9s %9s %9s" % ("shape", "seq", "batch", "Hq", "Hkv", "D",
                                                      "sdpa:fwd", "bwd", "fwd+bwd"))
    for seq, hq, hkv, d, what in SHAPES:
        batch = 8 if what.startswith("qwen") else TOKENS // seq
        fms, bms = bench(seq, hq, hkv, d, batch)
        fl = 4.0 * batch * seq * seq * d * hq / 2.0
        row = {"what": what, "seq": seq, "batch": batch, "Hq": hq, "Hkv": hkv, "D": d,
               "fwd_ms": fms, "bwd_ms": bms, "fwd_tflops": fl / (fms * 1e9),
               "bwd_tflops": 2.5 * fl / (bms * 1e9),
               "fwd_bwd_tflops": 3.5 * fl / ((fms + bms) * 1e9)}
        rows.append(row)
        print("%-14s %5d %5d %4d %4d %4d | %9.1f %9.1f %9.1f" % (
            what, seq, batch, hq, hkv, d, row["fwd_tflops"], row["bwd_tflops"],
            row["fwd_bwd_tflops"]), flush=True)
    if len(sys.argv) > 1:
        tmp = sys.argv[1] + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"bench": "torch_attention_bench", "torch": torch.__version__,
                       "device": torch.cuda.get_device_name(), "results": rows}, f, indent=2)
        os.replace(tmp, sys.argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
