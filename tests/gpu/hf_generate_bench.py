#!/usr/bin/env python3
# tests/gpu/hf_generate_bench.py — the peer of tests/gpu/bench_decode.c: Hugging Face
# transformers `generate` on the same card, the same model shape (Qwen2ForCausalLM from
# the same config, random weights, bf16, sdpa attention) and the same workload (the same
# LCG as bench_decode, so --n k is the first k sequences of the 256-sequence stream).
#
# transformers cannot give each sequence of a batch its own output length, so the
# sequences are sorted by output length and cut into --buckets batches; each batch is
# left-padded to its longest prompt and generates exactly its longest output length
# (min_new_tokens = max_new_tokens, EOS disabled, temperature 1, no top-k/top-p). Only
# the requested tokens count as useful output: useful tok/s = Σ out_i / Σ batch time.
# A --max-s guard stops after the batch that crosses it (shortest outputs first); the
# JSON then says "complete": false and the rate covers the batches that ran.
#
# usage: hf_generate_bench.py [--shape qwen2.5-0.5b] [--n 64] [--seed 1] [--min-len 100]
#          [--max-len 1024] [--buckets 4] [--max-s 90] [--device cuda] [--check FILE]
#          [--json FILE]
# --check FILE: a bench_decode JSON whose workload must equal this one's (same lengths).
# Exit 0 on success, 77 when torch/transformers/a CUDA device are missing, 1 on failure.
import argparse
import json
import os
import sys
import time

try:
    import torch
    import transformers
except ImportError as e:
    print(f"hf_generate_bench: skip: {e}", file=sys.stderr)
    sys.exit(77)

# The built-in shapes of engine/model/builtin.c (Qwen2 ones): V, C, I, L, Hq, Hkv.
SHAPES = {
    "tiny-qwen2": (512, 64, 176, 2, 4, 2),
    "bench-50m": (32000, 512, 1408, 8, 8, 2),
    "qwen2.5-0.5b": (151936, 896, 4864, 24, 14, 2),
    "qwen2.5-1.5b": (151936, 1536, 8960, 28, 12, 2),
}
MASK64 = (1 << 64) - 1


def workload(n, seed, lo, hi, vocab):
    """The LCG stream of bench_decode.c: per sequence prompt length, output length, ids."""
    x = seed & MASK64
    seqs = []

    def draw(a, b):
        nonlocal x
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK64
        return a + (x >> 33) % (b - a + 1)

    for _ in range(n):
        p = draw(lo, hi)
        o = draw(lo, hi)
        ids = [draw(0, vocab - 1) for _ in range(p)]
        seqs.append((p, o, ids))
    return seqs


def main():
    ap = argparse.ArgumentParser(description="transformers generate on bench_decode's workload")
    ap.add_argument("--shape", default="qwen2.5-0.5b", choices=sorted(SHAPES))
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-len", type=int, default=100)
    ap.add_argument("--max-len", type=int, default=1024)
    ap.add_argument("--buckets", type=int, default=4)
    ap.add_argument("--max-s", type=float, default=90.0)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--check")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.n < 1 or a.buckets < 1 or not (1 <= a.min_len <= a.max_len):
        print(f"hf_generate_bench: bad sizes: --n {a.n} --buckets {a.buckets} --min-len "
              f"{a.min_len} --max-len {a.max_len} (expected n, buckets >= 1, "
              f"1 <= min-len <= max-len)", file=sys.stderr)
        return 2
    if a.device == "cuda" and not torch.cuda.is_available():
        print("hf_generate_bench: skip: no CUDA device visible to torch", file=sys.stderr)
        return 77
    V, C, I, L, Hq, Hkv = SHAPES[a.shape]
    seqs = workload(a.n, a.seed, a.min_len, a.max_len, V)
    if a.check:
        with open(a.check) as f:
            ref = json.load(f)["workload"]
        want_p = ref["prompt_lens"][: a.n]
        want_o = ref["output_lens"][: a.n]
        if ref["seed"] != a.seed or want_p != [s[0] for s in seqs] or \
                want_o != [s[1] for s in seqs]:
            print(f"hf_generate_bench: {a.check}: workload lengths differ from this script's "
                  f"(seed {a.seed}, n {a.n}): the two generators disagree", file=sys.stderr)
            return 1

    dev = torch.device(a.device)
    dtype = torch.bfloat16 if a.device == "cuda" else torch.float32
    cfg = transformers.Qwen2Config(
        vocab_size=V, hidden_size=C, intermediate_size=I, num_hidden_layers=L,
        num_attention_heads=Hq, num_key_value_heads=Hkv, max_position_embeddings=32768,
        rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=None,
        eos_token_id=None, pad_token_id=0)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    t_build = time.perf_counter()
    with torch.device(dev):
        model = transformers.Qwen2ForCausalLM(cfg).to(dtype).eval()
    nparams = sum(p.numel() for p in model.parameters())
    t_build = time.perf_counter() - t_build

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()

    def gen(batch, new_tokens):
        P = max(len(s[2]) for s in batch)
        ids = torch.zeros((len(batch), P), dtype=torch.long)
        mask = torch.zeros((len(batch), P), dtype=torch.long)
        for r, s in enumerate(batch):  # left padding
            ids[r, P - len(s[2]):] = torch.tensor(s[2])
            mask[r, P - len(s[2]):] = 1
        with torch.no_grad():
            out = model.generate(ids.to(dev), attention_mask=mask.to(dev), do_sample=True,
                                 temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, pad_token_id=0, eos_token_id=None)
        return out.shape[1] - P

    gen(seqs[:2], 8)  # warm-up: kernels, allocator
    sync()

    order = sorted(range(a.n), key=lambda i: seqs[i][1])
    B = min(a.buckets, a.n)
    cuts = [round(k * a.n / B) for k in range(B + 1)]
    batches, useful, generated, elapsed = [], 0, 0, 0.0
    complete = True
    for k in range(B):
        batch = [seqs[i] for i in order[cuts[k]:cuts[k + 1]]]
        new = max(s[1] for s in batch)
        t0 = time.perf_counter()
        got = gen(batch, new)
        sync()
        dt = time.perf_counter() - t0
        if got != new:
            print(f"hf_generate_bench: batch {k}: generated {got} tokens, expected {new}",
                  file=sys.stderr)
            return 1
        elapsed += dt
        u = sum(s[1] for s in batch)
        useful += u
        generated += new * len(batch)
        batches.append({"sequences": len(batch), "new_tokens": new,
                        "max_prompt": max(s[0] for s in batch), "useful_tokens": u,
                        "seconds": dt})
        print(f"batch {k}: {len(batch)} seqs x {new} new tokens ({u} useful) in {dt:.2f} s",
              flush=True)
        if elapsed > a.max_s and k + 1 < B:
            complete = False
            break
    ran = sum(b["sequences"] for b in batches)
    rep = {
        "benchmark": "hf_generate_bench",
        "device": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "shape": a.shape,
        "params": nparams,
        "dtype": str(dtype).replace("torch.", ""),
        "attention": "sdpa",
        "workload": {"n": a.n, "seed": a.seed, "min_len": a.min_len, "max_len": a.max_len,
                     "subsample": "the first n sequences of bench_decode's LCG stream",
                     "sampling": "temperature 1, no top-k/top-p, EOS disabled"},
        "method": f"sorted by output length, {B} left-padded batches, each generating its "
                  f"longest output (min_new_tokens = max_new_tokens); useful = requested tokens",
        "complete": complete,
        "sequences_run": ran,
        "useful_tokens": useful,
        "generated_tokens": generated,
        "wall_s": elapsed,
        "useful_tok_s": useful / elapsed,
        "generated_tok_s": generated / elapsed,
        "model_build_s": t_build,
        "batches": batches,
    }
    print(f"transformers {transformers.__version__} on {rep['device']}: {useful} useful tokens "
          f"({generated} generated) in {elapsed:.2f} s = {useful / elapsed:.0f} useful tok/s"
          + ("" if complete else f" (stopped after {ran} of {a.n} sequences: --max-s)"))
    if a.json:
        tmp = f"{a.json}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(rep, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
