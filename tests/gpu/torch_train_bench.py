#!/usr/bin/env python3
# tests/gpu/torch_train_bench.py — the PyTorch eager peer of tests/bench/bench_step on a
# GPU: a random-initialised Qwen2.5-0.5B-shaped Qwen2ForCausalLM (transformers, bf16
# parameters, sdpa attention, no torch.compile), forward + backward of the summed
# next-token log-probabilities of SEQS × SEQ_LEN random tokens (equal lengths, so one
# [SEQS, SEQ_LEN] causal batch is the same computation as rlvr's packed batch), timed
# with CUDA events: warm-up, then the median of ITERS steps.
# usage: torch_train_bench.py [--seqs 8] [--seq-len 1024] [--iters 5] [--warmup 2]
# Prints one JSON line {"peer": "pytorch-eager", "tokens_per_s", "median_s", ...}.
import argparse
import json
import statistics
import sys

try:
    import torch
    import transformers
except ImportError as e:
    print(f"skip: {e}", file=sys.stderr)
    sys.exit(77)

ap = argparse.ArgumentParser()
ap.add_argument("--seqs", type=int, default=8)
ap.add_argument("--seq-len", type=int, default=1024)
ap.add_argument("--iters", type=int, default=5)
ap.add_argument("--warmup", type=int, default=2)
a = ap.parse_args()

cfg = transformers.Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                               num_hidden_layers=24, num_attention_heads=14,
                               num_key_value_heads=2, max_position_embeddings=32768,
                               rope_theta=1000000.0, rms_norm_eps=1e-6,
                               tie_word_embeddings=True)
torch.manual_seed(0)
model = transformers.Qwen2ForCausalLM._from_config(cfg, attn_implementation="sdpa",
                                                    dtype=torch.bfloat16).cuda()
model.train()
g = torch.Generator(device="cuda").manual_seed(1)
ids = torch.randint(0, cfg.vocab_size, (a.seqs, a.seq_len), device="cuda", generator=g)


def step():
    logits = model(input_ids=ids).logits[:, :-1].float()
    lp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).sum()
    lp.backward()
    model.zero_grad(set_to_none=True)


times = []
for i in range(a.warmup + a.iters):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    step()
    e.record()
    torch.cuda.synchronize()
    if i >= a.warmup:
        times.append(s.elapsed_time(e) / 1000.0)
med = statistics.median(times)
n = sum(p.numel() for p in model.parameters())
tokens = a.seqs * a.seq_len
print(json.dumps({"peer": "pytorch-eager", "torch": torch.__version__,
                  "transformers": transformers.__version__, "params": n,
                  "tokens_per_step": tokens, "median_s": med, "tokens_per_s": tokens / med,
                  "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
                  "device": torch.cuda.get_device_name()}))
