#!/usr/bin/env python3
# cpu_train_bench.py — PyTorch side of rlvr's CPU training-speed comparison (a benchmark, not a test).
#
# Usage:
#   python3 tests/bench/cpu_train_bench.py --threads 2 --save /tmp/bench_qwen2   # build + save
#   python3 tests/bench/cpu_train_bench.py --threads 2 --load /tmp/bench_qwen2   # reuse weights
#
# Model: a Qwen2ForCausalLM (q/k/v biases) with hidden 512, 8 layers, 8 heads / 2 kv heads
# (head_dim 64), intermediate 1408, vocab 32000, untied LM head (--tied to tie), rope_theta 1e6,
# seeded HF default init, fp32. The parameter count is printed (untied: 55,327,232; tied: 38,943,232).
# --save writes it with save_pretrained (config.json + model.safetensors) so the rlvr side can
# load exactly the same weights; --load reads such a directory instead of building one.
#
# Work timed per step: forward + backward of  L = sum over all sequences and positions t of
# log p(ids[t+1] | ids[..t])  for a packed batch of --seqs sequences x --seq-len tokens
# (default 4 x 256 = 1024 tokens, seeded random ids). Because the sequences have equal lengths
# the packed batch is run as one [seqs, seq_len] batch with the ordinary causal mask: each
# sequence attends only to itself from position 0, exactly what a block-diagonal causal mask
# over the packed 1024 tokens gives, without computing the masked-out cross-sequence blocks.
# Attention is PyTorch's sdpa (--attn eager to compare). Full logits [seqs, seq_len, vocab] fp32
# are materialised, then log_softmax + gather + sum. Gradients are reset (set_to_none) before
# each step; no optimizer step. torch.set_num_threads(--threads); warm-up --warmup steps, then
# the median of --iters timed steps.
# Output (last stdout line, JSON): {"peer": "pytorch", "tokens_per_s": ..., "threads": ...,
#   "params": N, "tokens_per_step": ..., "median_s": ..., "step_s": [...], ...}
# Exit 77 when torch/transformers are not importable.
import argparse
import json
import os
import statistics
import sys
import time

try:
    import torch
    import transformers
except ImportError as e:
    sys.stderr.write(f"skipping: python package missing ({e}); pip install torch transformers\n")
    sys.exit(77)


def build_model(args):
    cfg = transformers.Qwen2Config(
        vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096,
        rms_norm_eps=1e-6, tie_word_embeddings=args.tied,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    torch.manual_seed(args.seed)
    return transformers.Qwen2ForCausalLM(cfg).to(torch.float32)


def main():
    ap = argparse.ArgumentParser(description="PyTorch forward+backward tokens/s on a ~50M Qwen2")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    ap.add_argument("--load", metavar="DIR", help="load this HF model dir instead of building")
    ap.add_argument("--save", metavar="DIR", help="save the (built) model here, safetensors")
    ap.add_argument("--tied", action="store_true", help="tie embeddings and LM head")
    ap.add_argument("--seqs", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    if args.threads < 1 or args.seqs < 1 or args.seq_len < 2 or args.iters < 1 or args.warmup < 0:
        ap.error("--threads, --seqs, --iters must be >= 1, --seq-len >= 2, --warmup >= 0")

    torch.set_num_threads(args.threads)
    if args.load:
        model = transformers.AutoModelForCausalLM.from_pretrained(args.load, dtype=torch.float32)
    else:
        model = build_model(args)
    if args.save:
        model.save_pretrained(args.save)
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(args.attn)
    else:
        model.config._attn_implementation = args.attn
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    sys.stderr.write(f"cpu_train_bench: {type(model).__name__}, {n_params:,} parameters, "
                     f"{args.seqs}x{args.seq_len} tokens, {args.threads} threads, {args.attn}\n")

    g = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, model.config.vocab_size, (args.seqs, args.seq_len), generator=g)
    targets = ids[:, 1:]

    def step():
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        logits = model(input_ids=ids, use_cache=False).logits            # (S, T, V) fp32
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        loss = logp.gather(-1, targets[..., None]).sum()
        loss.backward()
        return time.perf_counter() - t0, loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for i in range(args.iters):
        dt, loss = step()
        times.append(dt)
        sys.stderr.write(f"  step {i}: {dt:.3f} s  (loss {loss:.3f})\n")
    med = statistics.median(times)
    tokens = args.seqs * args.seq_len
    print(json.dumps({
        "peer": "pytorch", "tokens_per_s": tokens / med, "threads": args.threads,
        "params": n_params, "tokens_per_step": tokens, "seqs": args.seqs, "seq_len": args.seq_len,
        "median_s": med, "step_s": times, "attn": args.attn, "dtype": "float32",
        "torch": torch.__version__, "transformers": transformers.__version__,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
