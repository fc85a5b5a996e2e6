#!/usr/bin/env python3
"""tests/io/make_fixtures.py — writes tests/io/fixtures/py_small.safetensors with the
reference Python safetensors library (torch backend), so the C tests can check that
rlvr reads files written by the reference without needing Python in CI.

Values follow formulas the C test recomputes: element i of every float tensor is
(i - 7) * 0.375, exact in F32, BF16 and F16.

Usage: python3 tests/io/make_fixtures.py [OUT_PATH]
"""
import os
import sys

import torch
from safetensors.torch import save_file


def ramp(n, dtype):
    return ((torch.arange(n, dtype=torch.float64) - 7) * 0.375).to(dtype)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures", "py_small.safetensors")
    tensors = {
        "w.f32": ramp(15, torch.float32).reshape(3, 5),
        "w.bf16": ramp(12, torch.bfloat16).reshape(2, 3, 2),
        "w.f16": ramp(7, torch.float16),
        "scalar": torch.tensor(2.5, dtype=torch.float32),
        "empty": torch.zeros(0, 4, dtype=torch.float32),
        "ids": torch.arange(1, 5, dtype=torch.int64),
    }
    save_file(tensors, out, metadata={"format": "pt", "note": "rlvr fixture"})
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
