#!/usr/bin/env python3
# live_logprobs.py — the transformers reference for the `rlvr logprobs` interface.
#
# Usage:  python3 tests/parity/live_logprobs.py MODEL_DIR INPUT_JSONL  > reference.jsonl
#
# INPUT_JSONL has one JSON object per line, {"ids": [int, ...]} (blank lines are skipped, as in
# rlvr). For each line it prints one line {"logprobs": [...]} with logprobs[t] =
# log p(ids[t+1] | ids[..t]), so len(ids)-1 numbers (an empty list for a single id). Each line is
# its own sequence starting at position 0. Computed in float64 from the checkpoint's weights
# (eager attention, hf_ref.float64_reference), numbers printed with full double precision.
# Exit 0 ok; 1 bad input (message names file, line, field and what was expected); 2 usage;
# 77 when torch/transformers/safetensors are not importable (ctest SKIP_RETURN_CODE).
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_ref  # noqa: E402


def read_requests(path, vocab):
    """[(line_no, ids)] from a JSONL file, or exit 1 naming the bad line."""
    out = []
    with open(path) as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"live_logprobs: {path}:{no}: not valid JSON ({e}); "
                         'expected {"ids": [int, ...]}')
            ids = obj.get("ids") if isinstance(obj, dict) else None
            if not isinstance(ids, list) or len(ids) == 0 or not all(
                    isinstance(i, int) and not isinstance(i, bool) for i in ids):
                sys.exit(f"live_logprobs: {path}:{no}: field \"ids\" must be a non-empty list "
                         f"of integers, got {json.dumps(obj)[:80]}")
            bad = [i for i in ids if i < 0 or i >= vocab]
            if bad:
                sys.exit(f"live_logprobs: {path}:{no}: field \"ids\" holds {bad[0]}, expected "
                         f"0 <= id < vocab_size {vocab}")
            out.append((no, ids))
    return out


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: live_logprobs.py MODEL_DIR INPUT_JSONL\n")
        return 2
    torch, _, _ = hf_ref.import_or_skip()
    model_dir, path = sys.argv[1], sys.argv[2]
    model = hf_ref.load_reference_model(model_dir)
    reqs = read_requests(path, model.config.vocab_size)
    with torch.no_grad(), hf_ref.float64_reference():
        for _, ids in reqs:
            if len(ids) < 2:
                lp = []
            else:
                lp = hf_ref.next_token_logprobs(hf_ref.sequence_logits(model, ids), ids).tolist()
            sys.stdout.write(json.dumps({"logprobs": lp}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
