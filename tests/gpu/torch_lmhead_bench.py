#!/usr/bin/env python3
"""tests/gpu/torch_lmhead_bench.py [report.json] — PyTorch eager's LM head as RL trainers
write it (logits = x·wᵀ in bf16, .float(), log_softmax, gather of the target, entropy,
backward), at the size of tests/gpu/bench_lmhead.c (8192 tokens × 896 × 151,936): median
forward and forward+backward milliseconds over 10 runs, and the peak of device memory the
pass allocates beyond its inputs (torch.cuda.max_memory_allocated). Exit 77 without CUDA."""
import json, sys

try:
    import torch
except ImportError:
    print("SKIP: torch missing"); sys.exit(77)
if not torch.cuda.is_available():
    print("SKIP: no CUDA device"); sys.exit(77)

T, C, V, iters = 8192, 896, 151936, 10
dev = torch.device("cuda")
g = torch.Generator(device=dev).manual_seed(0)
x = (torch.rand(T, C, device=dev, generator=g) * 2 - 1).bfloat16().requires_grad_()
w = ((torch.rand(V, C, device=dev, generator=g) * 2 - 1) * 0.05).bfloat16().requires_grad_()
tgt = torch.randint(0, V, (T,), device=dev, generator=g)


def step():
    logits = (x @ w.t()).float()
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(1, tgt[:, None]).squeeze(1)
    ent = -(logp_all.exp() * logp_all).sum(-1)
    return logp, ent


def timed(backward):
    times = []
    for it in range(iters + 2):
        x.grad = None; w.grad = None
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        logp, ent = step()
        if backward:
            (-(logp.mean()) - 0.01 * ent.mean()).backward()
        e.record(); torch.cuda.synchronize()
        if it >= 2: times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


with torch.no_grad():
    ms_f = timed(False)
torch.cuda.synchronize()
base = torch.cuda.memory_allocated()
torch.cuda.reset_peak_memory_stats()
ms_t = timed(True)
peak = torch.cuda.max_memory_allocated() - base
flop = 2.0 * T * C * V
res = {"tokens": T, "hidden": C, "vocab": V, "forward_ms": ms_f,
       "forward_tflops": flop / (ms_f * 1e-3) / 1e12, "fwd_bwd_ms": ms_t,
       "fwd_bwd_tflops": 3 * flop / (ms_t * 1e-3) / 1e12,
       "peak_extra_mib": peak / 2**20, "torch": torch.__version__}
print(f"PyTorch eager LM head T={T} C={C} V={V}: forward {ms_f:.2f} ms, forward+backward "
      f"{ms_t:.2f} ms; peak extra memory {peak / 2**20:.0f} MiB")
if len(sys.argv) > 1:
    json.dump(res, open(sys.argv[1], "w"), indent=1)
