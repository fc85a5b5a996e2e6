#!/usr/bin/env python3
# make_fixtures.py — build the committed transformers parity fixtures for rlvr.
#
# Usage:  python3 tests/parity/make_fixtures.py OUTDIR        (the repo keeps them in
#         tests/fixtures/parity/; rerunning with the same torch/transformers reproduces them)
#
# For each of three tiny, seeded, random-initialised models
#   llama  LlamaForCausalLM, llama3 rope scaling, rope_theta 5e5, untied, GQA 4q/2kv, head_dim 16
#   qwen2  Qwen2ForCausalLM, non-zero q/k/v biases, tied embeddings, 6q/2kv (head_dim 8)
#   qwen3  Qwen3ForCausalLM, q_norm/k_norm, head_dim 16 != hidden/heads (40/4), untied
# it writes OUTDIR/<name>/:
#   model/config.json, model/model.safetensors   fp32 weights (save_pretrained). Every RMSNorm
#       weight is random in [0.5, 1.5] and every bias random, so a missing norm/bias shows.
#       llama and qwen2 configs are rewritten in the Hugging Face Hub layout that real
#       checkpoints use (top-level "rope_theta", "rope_scaling"); qwen3 keeps the layout
#       transformers 5 writes ("rope_parameters": {"rope_theta", "rope_type"}). Both load in
#       transformers, and the C reader must accept both.
#   inputs.json    {"ids": [packed ids], "offsets": [0, 7, 8, 20], "loss_weights": [w_t]}
#                  three sequences of lengths 7, 1, 12; each starts at position 0.
#                  w_t = 0 at each sequence's last token (it has no target).
#   expected.json  {"logprobs": [...], "entropies": [...], "loss": L,
#                   "logprobs_temp0_7": [...], "entropies_temp0_7": [...], "reference": {...}}
#                  logprobs[t] = log p(ids[t+1] | ids[..t]) within the sequence, 0.0 at each
#                  sequence's last token; entropies[t] = -sum_v p_v log p_v of the next-token
#                  distribution at every position (the last one included); *_temp0_7 use
#                  logits / 0.7. L = sum_t w_t * logprobs[t].
#   grads.safetensors  dL/dθ for every parameter, fp32, named by the HF parameter name. For a
#                  tied model the embedding and the LM head are one parameter: only
#                  "model.embed_tokens.weight" is present and it holds the SUM of the input
#                  embedding gradient and the LM-head gradient; there is no "lm_head.weight".
# plus OUTDIR/live_input.jsonl: {"ids": [...]} lines (ids < 197, valid for all three models)
# for the live `rlvr logprobs` comparison (live_logprobs.py / compare_logprobs.py).
#
# The reference numbers are computed in float64 from the saved fp32 weights (each sequence run
# on its own, eager attention, hf_ref.float64_reference() so RMSNorm/softmax/rope stay float64).
# "reference" in expected.json records the versions and how far stock transformers in fp32
# lands from these numbers (a yardstick for the fp32 C engine).
# Exit 77 when torch/transformers/safetensors are not importable.
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_ref  # noqa: E402

torch, transformers, st = hf_ref.import_or_skip()

SEQ_LENS = [7, 1, 12]
TEMPERATURE = 0.7

# original_max_position_embeddings = 64 (not 32) so the three llama3 bands are all hit with
# head_dim 16 and theta 5e5: wavelengths 2*pi*theta^(2i/16) = 6.3 (< 64/4: kept), 32.5
# (between 16 and 64: smoothed), 168, 869, ... (> 64: divided by 8).
SPECS = {
    "llama": dict(
        cls="LlamaForCausalLM", cfg="LlamaConfig", seed=1001, tied=False,
        kw=dict(vocab_size=211, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                rms_norm_eps=1e-5, max_position_embeddings=256, tie_word_embeddings=False,
                rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                 "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                 "original_max_position_embeddings": 64}),
        hub_layout=True),
    "qwen2": dict(
        cls="Qwen2ForCausalLM", cfg="Qwen2Config", seed=1002, tied=True,
        kw=dict(vocab_size=203, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                num_attention_heads=6, num_key_value_heads=2, rms_norm_eps=1e-6,
                max_position_embeddings=256, tie_word_embeddings=True,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        hub_layout=True),
    "qwen3": dict(
        cls="Qwen3ForCausalLM", cfg="Qwen3Config", seed=1003, tied=False,
        kw=dict(vocab_size=197, hidden_size=40, intermediate_size=72, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-6,
                max_position_embeddings=256, tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        hub_layout=False),
}


def randomise(model, gen, hidden):
    """Re-initialise every parameter so each piece of the network matters (fp32)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)           # [0.5, 1.5)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            elif name == "model.embed_tokens.weight":
                # tied: this is also the LM head, logits std ~ 2 after the final norm
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / math.sqrt(hidden)))
            elif p.dim() == 2:
                fan_in = p.shape[1]
                scale = 2.0 if name == "lm_head.weight" else 1.0
                p.copy_(torch.randn(p.shape, generator=gen) * (scale / math.sqrt(fan_in)))
            else:
                raise SystemExit(f"make_fixtures: no init rule for parameter {name} {tuple(p.shape)}")


def to_hub_layout(config_path):
    """Rewrite a transformers-5 config.json into the Hub layout real checkpoints carry."""
    with open(config_path) as f:
        cfg = json.load(f)
    rp = dict(cfg.pop("rope_parameters"))
    cfg["rope_theta"] = rp.pop("rope_theta")
    if rp.get("rope_type", "default") == "default":
        cfg["rope_scaling"] = None
    else:
        cfg["rope_scaling"] = rp
    cfg.pop("layer_types", None)  # derived field transformers 5 adds; Hub configs lack it
    with open(config_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def build_inputs(gen, vocab):
    offsets = [0]
    for n in SEQ_LENS:
        offsets.append(offsets[-1] + n)
    ids = torch.randint(0, vocab, (offsets[-1],), generator=gen).tolist()
    w = (torch.rand(offsets[-1], generator=gen, dtype=torch.float64) * 2 - 1).tolist()
    for end in offsets[1:]:
        w[end - 1] = 0.0
    return {"ids": ids, "offsets": offsets, "loss_weights": w}


def reference(model, inputs, dtype):
    """Run each sequence alone; returns (logprobs, entropies, lp_temp, ent_temp, loss, grads)."""
    ids, offs, w = inputs["ids"], inputs["offsets"], inputs["loss_weights"]
    model.zero_grad(set_to_none=True)
    lp_all, ent_all, lpt_all, entt_all = [], [], [], []
    loss = torch.zeros((), dtype=dtype)
    for s in range(len(offs) - 1):
        seq = ids[offs[s]:offs[s + 1]]
        logits = hf_ref.sequence_logits(model, seq)
        lp = torch.cat([hf_ref.next_token_logprobs(logits, seq), logits.new_zeros(1)])
        lpt = torch.cat([hf_ref.next_token_logprobs(logits, seq, TEMPERATURE),
                         logits.new_zeros(1)])
        wt = torch.tensor(w[offs[s]:offs[s + 1]], dtype=dtype)
        loss = loss + (wt * lp).sum()
        lp_all += lp.tolist()
        lpt_all += lpt.tolist()
        ent_all += hf_ref.entropies(logits).tolist()
        entt_all += hf_ref.entropies(logits, TEMPERATURE).tolist()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return lp_all, ent_all, lpt_all, entt_all, loss.item(), grads


def make_one(outdir, name, spec):
    d = os.path.join(outdir, name)
    model_dir = os.path.join(d, "model")
    os.makedirs(model_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(spec["seed"])
    cfg = getattr(transformers, spec["cfg"])(**spec["kw"])
    cfg._attn_implementation = "eager"
    model = getattr(transformers, spec["cls"])(cfg).to(torch.float32)
    randomise(model, gen, spec["kw"]["hidden_size"])
    model.save_pretrained(model_dir)
    if spec["hub_layout"]:
        to_hub_layout(os.path.join(model_dir, "config.json"))
    for extra in os.listdir(model_dir):  # keep only what the fixture promises
        if extra not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(model_dir, extra))

    inputs = build_inputs(gen, spec["kw"]["vocab_size"])

    # Reference: float64 computation from the saved fp32 weights.
    ref = hf_ref.load_reference_model(model_dir)
    if ref.config.tie_word_embeddings != spec["tied"]:
        raise SystemExit(f"make_fixtures: {name}: tie_word_embeddings did not survive the save")
    with hf_ref.float64_reference():
        lp, ent, lpt, entt, loss, grads = reference(ref, inputs, torch.float64)

    # Yardstick: stock transformers in fp32 on the same weights.
    stock = hf_ref.load_reference_model(model_dir, dtype=torch.float32)
    slp, _, _, _, sloss, sgrads = reference(stock, inputs, torch.float32)
    lp_diff = max(abs(a - b) for a, b in zip(lp, slp))
    grad_rel = max(((sgrads[n].double() - g).norm() / max(g.norm().item(), 1e-30)).item()
                   for n, g in grads.items())

    names = sorted(grads)
    if spec["tied"] and "lm_head.weight" in names:
        raise SystemExit(f"make_fixtures: {name}: tied model exposes lm_head.weight separately")
    st.save_file({n: grads[n].to(torch.float32).contiguous() for n in names},
                 os.path.join(d, "grads.safetensors"))
    with open(os.path.join(d, "inputs.json"), "w") as f:
        json.dump(inputs, f)
        f.write("\n")
    expected = {
        "logprobs": lp, "entropies": ent, "loss": loss,
        "logprobs_temp0_7": lpt, "entropies_temp0_7": entt,
        "reference": {
            "computed_in": "float64 (hf_ref.float64_reference), each sequence alone, eager",
            "torch": torch.__version__, "transformers": transformers.__version__,
            "tied_embeddings": spec["tied"],
            "stock_fp32_max_abs_logprob_diff": lp_diff,
            "stock_fp32_loss": sloss,
            "stock_fp32_max_grad_rel_err": grad_rel,
        },
    }
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f)
        f.write("\n")
    nparam = sum(p.numel() for p in ref.parameters())
    print(f"{name}: {nparam} parameters, {len(names)} tensors, loss {loss:.6f}, "
          f"mean entropy {sum(ent) / len(ent):.3f} (log V = {math.log(cfg.vocab_size):.3f}), "
          f"stock fp32: max |dlogprob| {lp_diff:.2e}, max grad rel err {grad_rel:.2e}")


def write_live_input(outdir):
    gen = torch.Generator().manual_seed(77)
    lens = [1, 2, 5, 9, 16, 33]
    with open(os.path.join(outdir, "live_input.jsonl"), "w") as f:
        for n in lens:
            f.write(json.dumps({"ids": torch.randint(0, 197, (n,), generator=gen).tolist()}) + "\n")


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.stderr.write("usage: make_fixtures.py OUTDIR   (e.g. tests/fixtures/parity)\n")
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.manual_seed(0)
    for name, spec in SPECS.items():
        make_one(outdir, name, spec)
    write_live_input(outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
