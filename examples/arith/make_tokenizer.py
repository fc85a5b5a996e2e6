#!/usr/bin/env python3
"""examples/arith/make_tokenizer.py — the built-in demo's tokenizer: a small Hugging Face
byte-level BPE tokenizer trained on the arithmetic task's own text (Python standard
library only).

Vocabulary: the 256 byte-level symbols (id = byte value, GPT-2's byte-to-unicode
alphabet), then one token per merge, then the special token <|endoftext|> (EOS and PAD).
Pre-tokenisation: a Split with PATTERN below (words with an optional leading space, single
digits, runs of other symbols, whitespace), then ByteLevel without its own regex. Digits
are always single tokens, so every number is spelled digit by digit.

The merges come from a small BPE trainer: pre-tokenise the task text with PATTERN, count
adjacent symbol pairs over all words (weighted by word frequency), merge the most
frequent pair (ties: the smallest pair in code-point order), repeat until no pair occurs
at least --min-count times or --max-merges merges are made.

Writes tokenizer.json, tokenizer_config.json and generation_config.json next to this
script (or into --out). The same inputs always give byte-identical files.
"""
import argparse
import collections
import json
import os
import re

# Words (optionally with one leading space), single digits, runs of other symbols
# (optionally with one leading space), trailing whitespace, other whitespace. The same
# pattern runs in Python's re (here) and in PCRE2 / Rust regex (rlvr, HF tokenizers); on
# this task's ASCII text the three agree.
PATTERN = r" ?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"
EOS = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map (the ByteLevel alphabet)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def task_texts(paths):
    """Prompt, completion and answer strings of the task's JSONL files."""
    out = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                for k in ("prompt", "completion", "answer"):
                    if isinstance(row.get(k), str):
                        out.append(row[k])
    return out


def train_merges(texts, max_merges, min_count):
    """The tiny BPE trainer: a list of (left, right) merges, most frequent first."""
    b2u = bytes_to_unicode()
    words = collections.Counter()
    for t in texts:
        for w in re.findall(PATTERN, t):
            words[tuple(b2u[b] for b in w.encode("utf-8"))] += 1
    words = [(list(w), c) for w, c in sorted(words.items())]
    merges = []
    while len(merges) < max_merges:
        pairs = collections.Counter()
        for syms, c in words:
            for i in range(len(syms) - 1):
                pairs[(syms[i], syms[i + 1])] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if best[1] < min_count:
            break
        (a, b), _ = best
        merges.append((a, b))
        for syms, _c in words:
            i = 0
            while i < len(syms) - 1:
                if syms[i] == a and syms[i + 1] == b:
                    syms[i:i + 2] = [a + b]
                i += 1
    return merges


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
    os.replace(tmp, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+",
                    default=[os.path.join(here, "sft.jsonl"), os.path.join(here, "train.jsonl")],
                    help="JSONL files whose prompt/completion/answer text trains the merges")
    ap.add_argument("--out", default=here)
    ap.add_argument("--max-merges", type=int, default=64)
    ap.add_argument("--min-count", type=int, default=2)
    a = ap.parse_args()

    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges = train_merges(task_texts(a.data), a.max_merges, a.min_count)
    for l, r in merges:
        vocab[l + r] = len(vocab)
    eos_id = len(vocab)
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": eos_id, "content": EOS, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                    "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[l, r] for l, r in merges]},
    }
    cfg = {
        "added_tokens_decoder": {str(eos_id): {"content": EOS, "lstrip": False,
                                               "normalized": False, "rstrip": False,
                                               "single_word": False, "special": True}},
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": EOS,
        "model_max_length": 512,
        "pad_token": EOS,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    gen = {"bos_token_id": None, "eos_token_id": eos_id, "pad_token_id": eos_id}
    os.makedirs(a.out, exist_ok=True)
    write_json(os.path.join(a.out, "tokenizer.json"), tok)
    write_json(os.path.join(a.out, "tokenizer_config.json"), cfg)
    write_json(os.path.join(a.out, "generation_config.json"), gen)
    print("make_tokenizer.py: %d merges, vocab %d (EOS %s = %d) -> %s"
          % (len(merges), eos_id + 1, EOS, eos_id, a.out))


if __name__ == "__main__":
    main()
