#!/usr/bin/env python3
# tests/bench/generate_bench.py — generation speed, rlvr vs Hugging Face transformers
# `generate` (PyTorch CPU), side by side: the same random-initialised Qwen2-shaped model
# (saved once, loaded by both), the same prompts (token ids), the same G, the same
# number of new tokens (no EOS: both generate exactly --new-tokens per sample), the same
# thread count, multinomial sampling at temperature 1 with top-k 50 on both sides.
# A benchmark script, not a test.
#
# usage: python3 tests/bench/generate_bench.py --rlvr build/rlvr [--threads 2]
#          [--prompts 8] [--prompt-len 32] [-n 4] [--new-tokens 64] [--model-dir DIR]
# Prints a JSON line per engine and the ratio rlvr / transformers in output tokens/s.
# rlvr's time is its own --stats measurement (model load excluded, like the peer's).
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

try:
    import torch
    import transformers
except ImportError as e:
    print(f"skip: {e}", file=sys.stderr)
    sys.exit(77)

ap = argparse.ArgumentParser()
ap.add_argument("--rlvr", required=True)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--prompts", type=int, default=8)
ap.add_argument("--prompt-len", type=int, default=32)
ap.add_argument("-n", type=int, default=4)
ap.add_argument("--new-tokens", type=int, default=64)
ap.add_argument("--model-dir")
a = ap.parse_args()
torch.set_num_threads(a.threads)

cfg = transformers.Qwen2Config(vocab_size=32000, hidden_size=512, intermediate_size=1408,
                               num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                               max_position_embeddings=4096, rope_theta=1e6, rms_norm_eps=1e-6,
                               tie_word_embeddings=True, bos_token_id=None, eos_token_id=None,
                               pad_token_id=0)
tmp = tempfile.mkdtemp()
mdir = a.model_dir or os.path.join(tmp, "model")
if not os.path.exists(os.path.join(mdir, "config.json")):
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(mdir)
model = transformers.AutoModelForCausalLM.from_pretrained(mdir, dtype=torch.float32).eval()
nparams = sum(p.numel() for p in model.parameters())
g = torch.Generator().manual_seed(1)
prompts = torch.randint(1, cfg.vocab_size, (a.prompts, a.prompt_len), generator=g)

# --- transformers: one batched generate call over all prompts, G samples each
t0 = time.perf_counter()
with torch.no_grad():
    out = model.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=True,
                         temperature=1.0, top_k=50, max_new_tokens=a.new_tokens,
                         min_new_tokens=a.new_tokens, num_return_sequences=a.n,
                         pad_token_id=0, eos_token_id=None)
hf_s = time.perf_counter() - t0
hf_tokens = (out.shape[1] - a.prompt_len) * out.shape[0]
hf = {"engine": "transformers-generate", "torch": torch.__version__, "params": nparams,
      "tokens": hf_tokens, "seconds": hf_s, "tokens_per_s": hf_tokens / hf_s}

# --- rlvr on the same weights and prompt ids
inp = os.path.join(tmp, "prompts.jsonl")
with open(inp, "w") as f:
    for row in prompts.tolist():
        f.write(json.dumps({"prompt_ids": row}) + "\n")
env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
r = subprocess.run([a.rlvr, "generate", "--model", mdir, "--tokenizer", "", "--input", inp,
                    "-n", str(a.n), "--max-new-tokens", str(a.new_tokens), "--top-k", "50",
                    "--threads", str(a.threads), "--seed", "1", "--stats"],
                   capture_output=True, text=True, env=env)
if r.returncode != 0:
    print(r.stderr, file=sys.stderr)
    sys.exit(1)
st = json.loads(r.stderr.strip().splitlines()[-1])
rl = {"engine": "rlvr", **st}
print(json.dumps(hf))
print(json.dumps(rl))
print(json.dumps({"ratio_rlvr_over_transformers": rl["tokens_per_s"] / hf["tokens_per_s"],
                  "threads": a.threads, "prompts": a.prompts, "G": a.n,
                  "new_tokens": a.new_tokens}))
