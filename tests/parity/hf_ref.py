# hf_ref.py — shared helpers for the transformers reference side of rlvr's parity checks.
#
# Used by make_fixtures.py, live_logprobs.py and check_roundtrip.py (tests/parity/).
# Not part of the engine: these scripts only produce reference numbers for the C side.
#
# What it provides:
#   import_or_skip()      import torch/transformers/safetensors, or exit 77 (ctest SKIP) when missing.
#   float64_reference()   context manager that makes a float64 transformers model compute in
#                         float64 end to end. Stock transformers (5.x) silently drops to fp32 in
#                         three places even when the model is float64:
#                           * RMSNorm: hidden_states.to(torch.float32) before the variance;
#                           * eager attention: softmax(..., dtype=torch.float32);
#                           * rotary embedding: position_ids.float() * inv_freq.float(),
#                             cos/sin in fp32, then cast to the model dtype.
#                         Inside the context those three run in float64 instead (same formulas,
#                         same order: normalise, cast, then multiply by the weight; cos/sin from
#                         the inv_freq buffer HF computed — in fp32 — at construction).
#                         Outside the context nothing is changed.
#   load_reference_model(model_dir)   AutoModelForCausalLM in float64, eager attention, eval().
#   sequence_logits(model, ids)       (T, V) float64 logits of one sequence, positions 0..T-1.
#   next_token_logprobs(logits, ids)  (T-1,) log p(ids[t+1] | ids[..t]).
import contextlib
import sys


def import_or_skip():
    """Return (torch, transformers, safetensors.torch) or exit 77 when any is missing."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import safetensors.torch  # noqa: F401
    except ImportError as e:  # ctest SKIP_RETURN_CODE 77
        sys.stderr.write(f"skipping: python package missing ({e}); "
                         "pip install torch transformers safetensors numpy\n")
        sys.exit(77)
    import torch
    import transformers
    import safetensors.torch
    return torch, transformers, safetensors.torch


def _rmsnorm_classes():
    from transformers.models.llama import modeling_llama
    from transformers.models.qwen2 import modeling_qwen2
    from transformers.models.qwen3 import modeling_qwen3
    return [modeling_llama.LlamaRMSNorm, modeling_qwen2.Qwen2RMSNorm, modeling_qwen3.Qwen3RMSNorm]


def _rotary_classes():
    from transformers.models.llama import modeling_llama
    from transformers.models.qwen2 import modeling_qwen2
    from transformers.models.qwen3 import modeling_qwen3
    return [modeling_llama.LlamaRotaryEmbedding, modeling_qwen2.Qwen2RotaryEmbedding,
            modeling_qwen3.Qwen3RotaryEmbedding]


@contextlib.contextmanager
def float64_reference():
    """Within the block, float64 models keep float64 in RMSNorm, softmax and rope."""
    import torch

    saved = []

    def wrap_norm(cls):
        orig = cls.forward

        def forward(self, hidden_states):
            if hidden_states.dtype != torch.float64:
                return orig(self, hidden_states)
            variance = hidden_states.pow(2).mean(-1, keepdim=True)
            normed = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
            return self.weight * normed

        saved.append((cls, "forward", orig))
        cls.forward = forward

    def wrap_rope(cls):
        orig = cls.forward

        def forward(self, x, position_ids):
            if x.dtype != torch.float64:
                return orig(self, x, position_ids)
            inv_freq = self.inv_freq.to(device=x.device, dtype=torch.float64)
            freqs = position_ids[..., None].to(torch.float64) * inv_freq
            emb = torch.cat((freqs, freqs), dim=-1)
            return emb.cos() * self.attention_scaling, emb.sin() * self.attention_scaling

        saved.append((cls, "forward", orig))
        cls.forward = forward

    for cls in _rmsnorm_classes():
        wrap_norm(cls)
    for cls in _rotary_classes():
        wrap_rope(cls)

    orig_softmax = torch.nn.functional.softmax

    def softmax(input, dim=None, _stacklevel=3, dtype=None):
        if input.dtype == torch.float64 and dtype == torch.float32:
            dtype = torch.float64
        return orig_softmax(input, dim=dim, _stacklevel=_stacklevel, dtype=dtype)

    saved.append((torch.nn.functional, "softmax", orig_softmax))
    torch.nn.functional.softmax = softmax
    try:
        yield
    finally:
        for obj, name, orig in reversed(saved):
            setattr(obj, name, orig)


def load_reference_model(model_dir, dtype=None):
    """Load a HF model directory for reference computation (float64 by default, eager, eval)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager",
                                                 dtype=torch.float32)
    model.to(dtype or torch.float64)
    model.eval()
    return model


def sequence_logits(model, ids):
    """(T, V) logits of one unpadded sequence whose positions are 0..T-1."""
    import torch

    x = torch.tensor([list(ids)], dtype=torch.long)
    return model(input_ids=x, use_cache=False).logits[0]


def next_token_logprobs(logits, ids, temperature=1.0):
    """(T-1,) log p(ids[t+1] | ids[..t]) from (T, V) logits (divided by temperature first)."""
    import torch

    if len(ids) < 2:
        return logits.new_zeros((0,))
    logp = torch.log_softmax(logits[:-1] / temperature, dim=-1)
    tgt = torch.tensor(list(ids[1:]), dtype=torch.long)
    return logp.gather(-1, tgt[:, None])[:, 0]


def entropies(logits, temperature=1.0):
    """(T,) entropy -sum p log p of the next-token distribution at every position."""
    import torch

    logp = torch.log_softmax(logits / temperature, dim=-1)
    return -(logp.exp() * logp).sum(-1)
