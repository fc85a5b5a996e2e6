#!/usr/bin/env python3
"""tests/io/test_st_python.py — live interop between rlvr's safetensors code and the
reference Python library (safetensors + torch from PyPI).

  1. st_write_file / st_write_dir (through tests/io/st_tool) in F32, BF16 and F16 from
     fp32 values with random bit patterns (subnormals, NaNs, infs, ties included): the
     files load in safetensors.torch with the same names, shapes and dtypes, and every
     element equals torch's own fp32 -> dtype conversion bit for bit (NaN: stays NaN).
  2. Files and a sharded directory written by safetensors.torch load in rlvr, and
     st_to_f32 gives torch's .float() bit for bit.

Exits 77 (ctest SKIP) when numpy, torch or safetensors are not importable.
Usage: test_st_python.py ST_TOOL WORKDIR
"""
import json
import os
import subprocess
import sys

try:
    import numpy as np
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"skipping: {e}")
    sys.exit(77)

TORCH_DT = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def bits_equal(got, want, what):
    """got, want: torch tensors of the same dtype; equal bits, or both NaN."""
    if got.dtype != want.dtype or tuple(got.shape) != tuple(want.shape):
        fail(f"{what}: dtype/shape {got.dtype}{tuple(got.shape)} != {want.dtype}{tuple(want.shape)}")
        return
    if got.numel() == 0:
        return
    ib = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}[got.dtype]
    gb, wb = got.reshape(-1).view(ib), want.reshape(-1).view(ib)
    gn, wn = torch.isnan(got.reshape(-1).float()), torch.isnan(want.reshape(-1).float())
    bad = ((gb != wb) & ~(gn & wn)) | (gn != wn)
    if bad.any():
        i = int(bad.nonzero()[0])
        fail(f"{what}: {int(bad.sum())} elements differ, first at {i}: "
             f"got 0x{int(gb[i]) & 0xffffffff:x} want 0x{int(wb[i]) & 0xffffffff:x}")


def run_tool(tool, *args):
    r = subprocess.run([tool, *args], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"st_tool {' '.join(args[:3])} failed ({r.returncode}): {r.stderr.strip()}")
        return None
    return r.stdout


def parse_dump(text):
    out = {}
    for line in text.splitlines():
        name, dt, shape, vals = line.split("\t")
        shape = tuple(int(x) for x in shape.split(",")) if shape else ()
        if vals == "-":
            out[name] = (dt, shape, None)
            continue
        words = vals.split()
        arr = np.array([int(w, 16) for w in words], dtype=np.uint32).view(np.float32)
        out[name] = (dt, shape, torch.from_numpy(arr.copy()).reshape(shape))
    return out


def specials():
    f = np.float32
    v = [1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-20, 0.1, -0.0, 65504.0, 65519.0, 65520.0,
         2.0**-24, 2.0**-25, 1.5 * 2**-25, 2.0**-14, 3e38, -3e38, 1e-40, float("inf"), float("-inf")]
    a = np.array(v, dtype=f)
    nans = np.array([0x7FC00000, 0x7F800001, 0xFFC00001, 0x7FBFFFFF], dtype=np.uint32).view(f)
    return np.concatenate([a, nans])


def c_writes(tool, work):
    rng = np.random.default_rng(1234)
    rnd = rng.integers(0, 2**32, 6000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    normal = rng.standard_normal(3000).astype(np.float32)
    vals = np.concatenate([specials(), rnd, normal])
    raw = os.path.join(work, "vals.f32")
    vals.tofile(raw)
    specs = [("emb.weight", (37, 61)), ("scalar", ()), ("empty", (0, 5)),
             ("odd", (3, 5, 7)), ("rest", (len(vals) - 37 * 61 - 1 - 105,))]
    args = [f"{n}:{'x'.join(map(str, s)) if s else '-'}" for n, s in specs]
    src = torch.from_numpy(vals.copy())

    def expected():
        out, k = {}, 0
        for n, s in specs:
            m = int(np.prod(s)) if s else 1
            out[n] = src[k:k + m].reshape(s)
            k += m
        return out

    exp = expected()
    for dt, tdt in TORCH_DT.items():
        path = os.path.join(work, f"c_{dt}.safetensors")
        if run_tool(tool, "write", path, dt, "-1", raw, *args) is None:
            continue
        got = load_file(path)
        if list(got.keys()) != [n for n, _ in specs] and sorted(got) != sorted(exp):
            fail(f"{path}: names {list(got)}")
        for n, t in exp.items():
            bits_equal(got[n], t.to(tdt), f"C-written {dt} tensor {n}")
        with safe_open(path, "pt") as f:
            if f.metadata() != {"format": "pt"}:
                fail(f"{path}: metadata {f.metadata()}")
        hlen = int.from_bytes(open(path, "rb").read(8), "little")
        if hlen % 8:
            fail(f"{path}: header length {hlen} not a multiple of 8")
        print(f"rlvr -> python {dt}: {sum(t.numel() for t in exp.values())} elements identical")

    # sharded directory
    d = os.path.join(work, "c_sharded")
    if run_tool(tool, "write", d, "BF16", "6000", raw, *args) is not None:
        with open(os.path.join(d, "model.safetensors.index.json")) as f:
            idx = json.load(f)
        wm = idx["weight_map"]
        if sorted(wm) != sorted(exp):
            fail(f"{d}: weight_map keys {sorted(wm)}")
        shards = sorted(set(wm.values()))
        if len(shards) < 2:
            fail(f"{d}: expected several shards, got {shards}")
        total = 0
        for sh in shards:
            tensors = load_file(os.path.join(d, sh))
            for n, t in tensors.items():
                if wm.get(n) != sh:
                    fail(f"{d}: {n} found in {sh}, index says {wm.get(n)}")
                bits_equal(t, exp[n].to(torch.bfloat16), f"C-written shard {sh} tensor {n}")
                total += t.numel() * 2
        if idx["metadata"]["total_size"] != total:
            fail(f"{d}: total_size {idx['metadata']['total_size']} != {total}")
        print(f"rlvr -> python sharded BF16: {len(shards)} shards, {total} bytes identical")


def py_writes(tool, work):
    g = torch.Generator().manual_seed(7)

    def randbits(shape, dt):
        n = int(np.prod(shape)) if shape else 1
        if dt == torch.float32:
            b = torch.randint(-2**31, 2**31, (n,), generator=g, dtype=torch.int64).to(torch.int32)
        else:
            b = torch.randint(-2**15, 2**15, (n,), generator=g, dtype=torch.int64).to(torch.int16)
        return b.view(dt).reshape(shape)

    tensors = {
        "model.embed_tokens.weight": randbits((33, 17), torch.bfloat16),
        "model.norm.weight": torch.randn(17, generator=g).to(torch.bfloat16),
        "lm_head.weight": randbits((5, 3, 7), torch.float16),
        "f32.odd": randbits((13, 11), torch.float32),
        "f32.scalar": torch.tensor(-1.75),
        "f16.empty": torch.zeros(4, 0, dtype=torch.float16),
        "steps": torch.arange(3, dtype=torch.int64),
    }
    path = os.path.join(work, "py.safetensors")
    save_file(tensors, path, metadata={"format": "pt"})
    out = run_tool(tool, "dump", path)
    if out is not None:
        check_dump(parse_dump(out), tensors, path)
        print(f"python -> rlvr single file: {len(tensors)} tensors identical")

    # sharded directory written the way transformers lays it out
    d = os.path.join(work, "py_sharded")
    os.makedirs(d, exist_ok=True)
    names = sorted(tensors)
    parts = [names[:3], names[3:]]
    wm, total = {}, 0
    for i, part in enumerate(parts):
        sh = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        save_file({n: tensors[n] for n in part}, os.path.join(d, sh), metadata={"format": "pt"})
        for n in part:
            wm[n] = sh
            total += tensors[n].numel() * tensors[n].element_size()
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": wm}, f, indent=2, sort_keys=True)
    out = run_tool(tool, "dump", d)
    if out is not None:
        check_dump(parse_dump(out), tensors, d)
        print(f"python -> rlvr sharded: {len(parts)} shards identical")


def check_dump(got, tensors, where):
    names = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}
    if sorted(got) != sorted(tensors):
        fail(f"{where}: names {sorted(got)} != {sorted(tensors)}")
        return
    for n, t in tensors.items():
        dt, shape, vals = got[n]
        if dt != names[t.dtype] or shape != tuple(t.shape):
            fail(f"{where}: {n}: {dt}{shape} != {names[t.dtype]}{tuple(t.shape)}")
            continue
        if t.dtype == torch.int64:
            continue
        bits_equal(vals, t.float(), f"python-written {where} tensor {n}")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tool, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    c_writes(tool, work)
    py_writes(tool, work)
    if failures:
        print(f"{len(failures)} failures")
        return 1
    print("test_st_python: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
