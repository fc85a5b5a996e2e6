#!/usr/bin/env python3
"""tests/bench/tokenizer_bench.py — single-thread encode throughput, rlvr vs the PyPI
`tokenizers` package, on the same texts and the same tokenizer.json. The texts are documents
of ~4 KB built from the test corpus (tests/text/fixtures/corpus.jsonl: English, code, LaTeX,
numbers, CJK, RTL and Indic scripts, emoji, whitespace, special tokens), shuffled with a
fixed seed. Both engines encode every document REPS times and report their best pass (the
first pass fills each engine's word cache); the ids of both must agree (checksum).

usage: python3 tests/bench/tokenizer_bench.py --rlvr-bench build/tests/text/tokenizer_bench
           [--tokenizer DIR] [--mb 4] [--reps 3]"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # HF single thread (set before the import)
os.environ["TOKENIZERS_PARALLELISM"] = "false"

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "text", "fixtures")


def documents(mb, seed=7):
    strings = []
    with open(os.path.join(FIX, "corpus.jsonl")) as f:
        for line in f:
            b = bytes.fromhex(json.loads(line)["hex"])
            try:
                s = b.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if "\x00" not in s:
                strings.append(s)
    rng = random.Random(seed)
    docs, total = [], 0
    while total < mb * 1e6:
        parts, n = [], 0
        while n < 4000:
            s = rng.choice(strings)
            parts.append(s)
            n += len(s.encode())
        d = rng.choice(["\n\n", " ", "\n"]).join(parts)
        docs.append(d)
        total += len(d.encode())
    return docs, total


def checksum(all_ids):
    s = 0
    for ids in all_ids:
        for i in ids:
            s = (s * 1000003 + i) % (1 << 64)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rlvr-bench", required=True)
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "../../../shared/tokenizers/qwen3"))
    ap.add_argument("--mb", type=float, default=4)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("tokenizers is not installed: skipping")
        return 77
    path = args.tokenizer
    tj = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
    docs, nbytes = documents(args.mb)
    tok = Tokenizer.from_file(tj)

    best_batch = best_loop = 1e30
    for _ in range(args.reps):
        t0 = time.perf_counter()
        enc = tok.encode_batch(docs, add_special_tokens=False)
        best_batch = min(best_batch, time.perf_counter() - t0)
    hf_ids = [e.ids for e in enc]
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for d in docs:
            tok.encode(d, add_special_tokens=False)
        best_loop = min(best_loop, time.perf_counter() - t0)
    hf_best = min(best_batch, best_loop)

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
        name = f.name
    try:
        out = subprocess.run([args.rlvr_bench, path, name, str(args.reps)], check=True,
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(name)
    r = json.loads(out.strip().splitlines()[-1])
    same = r["checksum"] == checksum(hf_ids) and r["ids"] == sum(len(i) for i in hf_ids)
    hf_mbs = nbytes / hf_best / 1e6
    print("texts: %d documents, %.2f MB, %d ids; tokenizer %s" % (len(docs), nbytes / 1e6, r["ids"], tj))
    print("HF tokenizers (1 thread): encode_batch %.2f MB/s, encode loop %.2f MB/s"
          % (nbytes / best_batch / 1e6, nbytes / best_loop / 1e6))
    print("rlvr (1 thread):          %.2f MB/s (first pass %.2f MB/s, load %.2f s)"
          % (r["mb_per_s"], nbytes / r["first_pass_s"] / 1e6, r["load_s"]))
    print("ratio rlvr / HF best:     %.2fx   ids identical: %s" % (r["mb_per_s"] / hf_mbs, same))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
