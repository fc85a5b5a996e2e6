#!/usr/bin/env python3
"""tests/demo/check_arith_files.py — checks of the built-in demo's committed files
(examples/arith). Modes:

  regen EXAMPLES_DIR       make_data.py + make_tokenizer.py into a scratch folder must
                           reproduce the six committed files byte for byte (stdlib only).
  hf RLVR EXAMPLES_DIR     `rlvr tokenize` / `--decode` give the ids and text of the PyPI
                           `tokenizers` package on every prompt, completion and answer of
                           the task plus odd strings; exits 77 when tokenizers is missing.
  fixture EXAMPLES_DIR OUT writes the C-side fixture (texts -> HF ids), used by
                           tests/demo/arith_tokenize.sh without Python.
"""
import json
import os
import subprocess
import sys
import tempfile

FILES = ["train.jsonl", "eval.jsonl", "sft.jsonl", "tokenizer.json", "tokenizer_config.json",
         "generation_config.json"]
ODD = ["", " ", "What is 1+1?\n", "what  is 12 * 3 ?\n\n", "Whatever is this",
       "  99-100=-1\t", "<|endoftext|>", "42<|endoftext|>What is", "x<|endoftext|><|endoftext|>",
       "héllo wörld", "∑ 1+2 = 3 ✓", "\u00a0 nbsp", "emoji 🙂 12", "What\nis\r\n7*8?",
       "isis Whatis is What"]


def task_texts(d):
    out = []
    for f in ("train.jsonl", "eval.jsonl", "sft.jsonl"):
        for line in open(os.path.join(d, f), encoding="utf-8"):
            row = json.loads(line)
            out += [row[k] for k in ("prompt", "completion", "answer") if k in row]
            if "completion" in row:
                out.append(row["prompt"] + row["completion"] + "<|endoftext|>")
    return sorted(set(out)) + ODD


def regen(d):
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(d, "make_data.py"), "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, os.path.join(d, "make_tokenizer.py"), "--out", tmp,
                        "--data", os.path.join(tmp, "sft.jsonl"), os.path.join(tmp, "train.jsonl")],
                       check=True, stdout=subprocess.DEVNULL)
        bad = [f for f in FILES
               if open(os.path.join(tmp, f), "rb").read() != open(os.path.join(d, f), "rb").read()]
    if bad:
        print("regenerated files differ from the committed ones: %s" % ", ".join(bad))
        return 1
    print("regen: %d files reproduced byte for byte" % len(FILES))
    return 0


def hf(rlvr, d):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("tokenizers not importable; skipping")
        return 77
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    texts = task_texts(d)
    want = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    inp = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    got = subprocess.run([rlvr, "tokenize", "--tokenizer", d], input=inp, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    got = [json.loads(l)["ids"] for l in got]
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    if len(got) != len(texts) or bad:
        print("%d of %d texts differ; first: %r" % (len(bad), len(texts), bad[:1]))
        return 1
    dec_in = "".join(json.dumps({"ids": w}) + "\n" for w in want)
    dec = subprocess.run([rlvr, "tokenize", "--tokenizer", d, "--decode"], input=dec_in,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    dec = [json.loads(l)["text"] for l in dec]
    want_dec = [tok.decode(w, skip_special_tokens=False) for w in want]
    if dec != want_dec:
        print("decode differs: %r" % [(a, b) for a, b in zip(dec, want_dec) if a != b][:1])
        return 1
    import tokenizers
    print("hf: %d texts, same ids and decoded text as tokenizers %s" % (len(texts),
                                                                     tokenizers.__version__))
    return 0


def fixture(d, out):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    texts = task_texts(d)[:40] + ODD
    with open(out + ".in.jsonl", "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    with open(out + ".ids.jsonl", "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"ids": tok.encode(t, add_special_tokens=False).ids}) + "\n")
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["regen"] and len(a) == 2:
        sys.exit(regen(a[1]))
    if a[:1] == ["hf"] and len(a) == 3:
        sys.exit(hf(a[1], a[2]))
    if a[:1] == ["fixture"] and len(a) == 3:
        sys.exit(fixture(a[1], a[2]))
    print(__doc__)
    sys.exit(2)
