#!/usr/bin/env python3
# check_roundtrip.py — does a checkpoint rlvr saved load in transformers with identical tensors?
#
# Usage:  python3 tests/parity/check_roundtrip.py ORIG_DIR SAVED_DIR
#
# Loads both Hugging Face model directories with AutoModelForCausalLM.from_pretrained (dtype as
# stored, i.e. "auto"), and checks:
#   * both load with no missing, unexpected or shape-mismatched weights (transformers would
#     otherwise silently random-initialise a tensor the saver forgot, e.g. lm_head.weight);
#   * same model class, same tie_word_embeddings;
#   * the same set of state_dict names, and every tensor has the same dtype, shape and
#     bit-identical values (torch.equal; NaN payloads aside).
# Exit 0: identical.  Exit 1: prints the first mismatch.  Exit 2: bad usage / a directory does
# not load.  Exit 77: torch/transformers/safetensors not importable (ctest SKIP_RETURN_CODE).
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_ref  # noqa: E402

torch, transformers, _ = hf_ref.import_or_skip()


def load(path):
    try:
        model, info = transformers.AutoModelForCausalLM.from_pretrained(
            path, dtype="auto", output_loading_info=True)
    except Exception as e:  # any loading failure is a clear, non-crash error
        sys.stderr.write(f"check_roundtrip: {path}: transformers could not load it: {e}\n")
        sys.exit(2)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        bad = info.get(key) or []
        if len(bad) > 0:
            print(f"check_roundtrip: {path}: {key.replace('_', ' ')}: {sorted(map(str, bad))[:10]}")
            sys.exit(1)
    return model


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: check_roundtrip.py ORIG_DIR SAVED_DIR\n")
        return 2
    orig_dir, saved_dir = sys.argv[1], sys.argv[2]
    for d in (orig_dir, saved_dir):
        if not os.path.isfile(os.path.join(d, "config.json")):
            sys.stderr.write(f"check_roundtrip: {d}: no config.json (expected a HF model dir)\n")
            return 2
    a, b = load(orig_dir), load(saved_dir)
    if type(a) is not type(b):
        print(f"check_roundtrip: model class {type(a).__name__} (orig) != {type(b).__name__} (saved)")
        return 1
    if a.config.tie_word_embeddings != b.config.tie_word_embeddings:
        print(f"check_roundtrip: tie_word_embeddings {a.config.tie_word_embeddings} (orig) != "
              f"{b.config.tie_word_embeddings} (saved)")
        return 1
    sa, sb = a.state_dict(), b.state_dict()
    if set(sa) != set(sb):
        print(f"check_roundtrip: only in orig: {sorted(set(sa) - set(sb))}; "
              f"only in saved: {sorted(set(sb) - set(sa))}")
        return 1
    for name in sorted(sa):
        ta, tb = sa[name], sb[name]
        if ta.dtype != tb.dtype or ta.shape != tb.shape:
            print(f"check_roundtrip: {name}: orig {ta.dtype} {tuple(ta.shape)} vs "
                  f"saved {tb.dtype} {tuple(tb.shape)}")
            return 1
        if not torch.equal(ta, tb):
            diff = (ta.double() - tb.double()).abs()
            idx = int(torch.argmax(diff.flatten()).item())
            print(f"check_roundtrip: {name}: values differ, max |diff| {diff.max().item():.3e} "
                  f"at flat index {idx} (orig {ta.flatten()[idx].item()!r}, "
                  f"saved {tb.flatten()[idx].item()!r})")
            return 1
    print(f"check_roundtrip: {len(sa)} tensors identical ({type(a).__name__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
