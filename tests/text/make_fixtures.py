#!/usr/bin/env python3
"""tests/text/make_fixtures.py — writes the committed tokenizer fixtures of tests/text/fixtures/
from the PyPI `tokenizers` and `transformers` packages (the references rlvr must match):

  gpt2/         a GPT-2-style byte-level BPE trained here (ByteLevel pre-tokenizer with its own
                regex, no normalizer) + tokenizer_config.json with a Qwen2.5-like chatml template
                that has a default system message.
  gpt2_variant/ the same model with NFC normalizer (in a Sequence), Digits + ByteLevel with
                add_prefix_space, and added tokens using lstrip / rstrip / normalized flags;
                tokenizer_config.json with a plain chatml template.
  llama3/       a Llama-3-style BPE trained here (Split with the Llama 3 regex + ByteLevel without
                regex, ignore_merges, Llama 3 special tokens) + the Llama 3.0 chat template,
                generation_config.json with a list of EOS ids.
  qwen3/        the real Qwen3 tokenizer (../shared/tokenizers/qwen3) pruned to the tokens and
                merges the corpus uses (see prune_bpe), checked to give the same ids as the full
                file on every corpus string; tokenizer_config.json unchanged; generation_config.json
                with Qwen3's eos_token_id list.
  corpus.jsonl  one {"hex": ...} per string (raw bytes, may be invalid UTF-8).
  ids_<name>.jsonl  per corpus line: {"ids", "dec", "dec_skip"} — HF encode of the string
                (bytes decoded with errors="replace", add_special_tokens=False) and HF decode of
                those ids (hex) without / with skip_special_tokens.
  decode_<name>.jsonl  random id sequences and HF's decode of them (hex), both skip modes.
  chat_<name>.jsonl  {"messages", "add_generation_prompt", "enable_thinking", "text"} rendered by
                transformers' apply_chat_template with that directory's tokenizer_config.json.

Run: python3 tests/text/make_fixtures.py [--qwen3 DIR]   (needs tokenizers, transformers)"""

import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus as corpus_mod  # noqa: E402

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Jinja chat templates written for these fixtures, in the formats the built-ins stand for.
CHATML_DEFAULT_SYSTEM = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
CHATML_PLAIN = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}")
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    compact = os.path.basename(path) == "tokenizer.json"  # keep the committed files small
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=None if compact else 1,
                  separators=(",", ":") if compact else None)
        f.write("\n")


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=True) + "\n")


def train_gpt2(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, special_tokens=["<|endoftext|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, tr)
    return tok


def gpt2_variant(gpt2_json):
    d = json.loads(gpt2_json)
    d["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
    d["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]}
    tok = Tokenizer.from_str(json.dumps(d))
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False),
                            AddedToken("[SEP]", rstrip=True, special=True, normalized=False)])
    tok.add_tokens([AddedToken(" custom_word", normalized=True),
                    AddedToken("café", normalized=True),
                    AddedToken("Straße", normalized=False)])
    return tok


def train_llama3(texts):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=__import__("tokenizers").Regex(LLAMA3_REGEX), behavior="isolated",
                             invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    specials += ["<|reserved_special_token_%d|>" % i for i in range(6)]
    tr = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, tr)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def prune_bpe(full_json, used_ids):
    """Keeps the tokens the corpus produces, every token a merge chain needs to build them,
    all 256 byte tokens, the added tokens, and every merge that yields a kept token. On any text whose HF
    merges all lie in the kept set the ids are unchanged (BPE only ever applies the
    lowest-ranked available merge, and every merge it applied is kept); make_fixtures
    checks that on every corpus string."""
    d = json.loads(full_json)
    vocab = d["model"]["vocab"]
    inv = {v: k for k, v in vocab.items()}
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in d["model"]["merges"]]
    by_result = {}
    for a, b in merges:
        by_result.setdefault(a + b, []).append((a, b))
    need = set(inv[i] for i in used_ids if i in inv)
    need |= set(pre_tokenizers.ByteLevel.alphabet())
    stack = list(need)
    while stack:
        t = stack.pop()
        for a, b in by_result.get(t, []):
            for x in (a, b):
                if x not in need:
                    need.add(x)
                    stack.append(x)
    d["model"]["vocab"] = {k: v for k, v in vocab.items() if k in need}
    # HF gives an added token that is not in the model vocabulary the next free id after
    # the model's token *count*, ignoring the file's "id"; listing the added tokens in the
    # model vocabulary keeps their real ids in the pruned file. BPE never produces them
    # (no merge yields them, and text is split on added tokens before the model runs).
    for a in d["added_tokens"]:
        d["model"]["vocab"][a["content"]] = a["id"]
    d["model"]["merges"] = [[a, b] for a, b in merges if a + b in need and a in need and b in need]
    return json.dumps(d, ensure_ascii=False)


def ids_rows(tok, strings):
    rows = []
    for b in strings:
        ids = tok.encode(b.decode("utf-8", "replace"), add_special_tokens=False).ids
        rows.append({"ids": ids,
                     "dec": tok.decode(ids, skip_special_tokens=False).encode().hex(),
                     "dec_skip": tok.decode(ids, skip_special_tokens=True).encode().hex()})
    return rows


def decode_rows(tok, rng, n=120):
    vocab_ids = sorted(tok.get_vocab(with_added_tokens=True).values())
    rows = []
    for k in range(n):
        ids = [rng.choice(vocab_ids) for _ in range(rng.randint(1, 12))]
        if k % 10 == 0:
            ids.append(max(vocab_ids) + 5)  # an id outside the vocabulary: HF skips it
        rows.append({"ids": ids, "dec": tok.decode(ids, skip_special_tokens=False).encode().hex(),
                     "dec_skip": tok.decode(ids, skip_special_tokens=True).encode().hex()})
    return rows


def conversations():
    think = "<think>\nFirst add the units.\nThen the tens.\n</think>\n\nThe sum is 57."
    return [
        [{"role": "user", "content": "What is 2+2?"}],
        [{"role": "system", "content": "You are a careful mathematician."}, {"role": "user", "content": "Solve x+3=5."}],
        [{"role": "user", "content": "  padded with spaces \n"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
         {"role": "user", "content": "Add 23 and 34."}],
        [{"role": "user", "content": "Add 23 and 34."}, {"role": "assistant", "content": think},
         {"role": "user", "content": "And 10 more?"}],
        [{"role": "user", "content": "Add 23 and 34."}, {"role": "assistant", "content": think}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a",
                                            "reasoning_content": "\nthinking hard\n"}],
        [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "\n\nanswer with newlines"},
         {"role": "user", "content": "q2"}, {"role": "assistant", "content": "<think>r2</think>a2"}],
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "u"},
         {"role": "system", "content": "second system"}, {"role": "user", "content": "u2"}],
        [{"role": "user", "content": "call a tool"}, {"role": "assistant", "content": "calling"},
         {"role": "tool", "content": "{\"result\": 1}"}, {"role": "tool", "content": "{\"result\": 2}"}],
        [{"role": "user", "content": "<tool_response>\nx\n</tool_response>"}],
        [{"role": "user", "content": "real question"}, {"role": "assistant", "content": "<think>a</think>b"},
         {"role": "user", "content": "<tool_response>\nout\n</tool_response>"},
         {"role": "assistant", "content": "<think>\nc\n</think>\n\nd"}],
        [{"role": "user", "content": "你好！请计算 ∫₀¹ x² dx。"}],
        [{"role": "user", "content": "emoji 👨‍👩‍👧 and\ttabs\r\nand CRLF"}],
        [{"role": "user", "content": ""}],
        [{"role": "system", "content": "\u00a0nbsp-padded system\u3000"}, {"role": "user", "content": "\x1c x \x1f"}],
        [{"role": "assistant", "content": "assistant first"}],
        [{"role": "user", "content": "multi\n\nline\n\n"}, {"role": "assistant", "content": "ok</think>tail"}],
    ]


def chat_rows(tok_dir, variants):
    from transformers import AutoTokenizer
    tk = AutoTokenizer.from_pretrained(tok_dir)
    rows = []
    for msgs in conversations():
        for agp, think in variants:
            kw = {} if think is None else {"enable_thinking": think}
            text = tk.apply_chat_template(msgs, tokenize=False, add_generation_prompt=agp, **kw)
            rows.append({"messages": msgs, "add_generation_prompt": agp, "enable_thinking": think,
                         "text": text})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qwen3", default=os.path.join(HERE, "../../../shared/tokenizers/qwen3"))
    args = ap.parse_args()
    rng = random.Random(1234)

    gpt2 = train_gpt2(corpus_mod.training_text())
    gpt2_json = gpt2.to_str()
    llama3 = train_llama3(corpus_mod.training_text())
    variant = gpt2_variant(gpt2_json)
    with open(os.path.join(args.qwen3, "tokenizer.json"), encoding="utf-8") as f:
        qwen_full_json = f.read()
    with open(os.path.join(args.qwen3, "tokenizer_config.json"), encoding="utf-8") as f:
        qwen_cfg = json.load(f)

    # Directories and configs (chat fixtures need them before the corpus is final).
    write_json(os.path.join(FIX, "gpt2", "tokenizer.json"), json.loads(gpt2_json))
    write_json(os.path.join(FIX, "gpt2", "tokenizer_config.json"),
               {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>",
                "bos_token": None, "pad_token": None, "chat_template": CHATML_DEFAULT_SYSTEM})
    write_json(os.path.join(FIX, "gpt2_variant", "tokenizer.json"), json.loads(variant.to_str()))
    write_json(os.path.join(FIX, "gpt2_variant", "tokenizer_config.json"),
               {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>", "chat_template": CHATML_PLAIN})
    write_json(os.path.join(FIX, "llama3", "tokenizer.json"), json.loads(llama3.to_str()))
    write_json(os.path.join(FIX, "llama3", "tokenizer_config.json"),
               {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
                "eos_token": "<|eot_id|>", "chat_template": LLAMA3_TEMPLATE})
    write_json(os.path.join(FIX, "llama3", "generation_config.json"),
               {"bos_token_id": llama3.token_to_id("<|begin_of_text|>"),
                "eos_token_id": [llama3.token_to_id("<|end_of_text|>"), llama3.token_to_id("<|eot_id|>")]})
    qdir = os.path.join(FIX, "qwen3")
    os.makedirs(qdir, exist_ok=True)
    write_json(os.path.join(qdir, "tokenizer.json"), json.loads(qwen_full_json))  # replaced below
    write_json(os.path.join(qdir, "tokenizer_config.json"), qwen_cfg)
    write_json(os.path.join(qdir, "generation_config.json"),
               {"bos_token_id": 151643, "eos_token_id": [151645, 151643], "pad_token_id": 151643})

    chats = {
        "qwen3": chat_rows(qdir, [(True, None), (True, False), (True, True), (False, None)]),
        "llama3": chat_rows(os.path.join(FIX, "llama3"), [(True, None), (False, None)]),
        "gpt2": chat_rows(os.path.join(FIX, "gpt2"), [(True, None), (False, None)]),
        "gpt2_variant": chat_rows(os.path.join(FIX, "gpt2_variant"), [(True, None), (False, None)]),
    }
    for name, rows in chats.items():
        write_jsonl(os.path.join(FIX, "chat_%s.jsonl" % name), rows)
    extra = sorted(set(r["text"] for r in chats["qwen3"][:24]))
    strings = corpus_mod.corpus(extra)
    write_jsonl(os.path.join(FIX, "corpus.jsonl"), [{"hex": b.hex()} for b in strings])
    print("corpus: %d strings" % len(strings))

    qwen_full = Tokenizer.from_str(qwen_full_json)
    full_rows = ids_rows(qwen_full, strings)
    used = set(i for r in full_rows for i in r["ids"])
    pruned_json = prune_bpe(qwen_full_json, used)
    qwen_pruned = Tokenizer.from_str(pruned_json)
    pruned_rows = ids_rows(qwen_pruned, strings)
    if pruned_rows != full_rows:
        bad = sum(a != b for a, b in zip(pruned_rows, full_rows))
        sys.exit("pruned Qwen3 tokenizer differs from the full one on %d strings" % bad)
    write_json(os.path.join(qdir, "tokenizer.json"), json.loads(pruned_json))

    toks = {"qwen3": qwen_pruned, "gpt2": gpt2, "gpt2_variant": variant, "llama3": llama3}
    for name, tok in toks.items():
        rows = full_rows if name == "qwen3" else ids_rows(tok, strings)
        write_jsonl(os.path.join(FIX, "ids_%s.jsonl" % name), rows)
        write_jsonl(os.path.join(FIX, "decode_%s.jsonl" % name), decode_rows(tok, rng))
    # Command-line fixtures, formatted as `rlvr tokenize/template` print them (json.dumps).
    cli_idx = [i for i, b in enumerate(strings) if b"\x00" not in b and b.decode("utf-8", "replace").encode() == b]
    with open(os.path.join(FIX, "cli_encode_in.jsonl"), "w", encoding="utf-8") as f:
        for i in cli_idx:
            f.write(json.dumps({"text": strings[i].decode()}, ensure_ascii=False) + "\n")
    with open(os.path.join(FIX, "cli_encode_qwen3.jsonl"), "w", encoding="utf-8") as f:
        for i in cli_idx:
            f.write(json.dumps({"ids": full_rows[i]["ids"]}) + "\n")
    with open(os.path.join(FIX, "cli_decode_qwen3.jsonl"), "w", encoding="utf-8") as f:
        for i in cli_idx:
            f.write(json.dumps({"text": bytes.fromhex(full_rows[i]["dec"]).decode()}, ensure_ascii=False) + "\n")
    with open(os.path.join(FIX, "cli_template_qwen3.jsonl"), "w", encoding="utf-8") as f:
        for r in chats["qwen3"]:
            f.write(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n")
    for name in toks:
        p = os.path.join(FIX, name, "tokenizer.json")
        print("%-13s %8d bytes" % (name, os.path.getsize(p)))


if __name__ == "__main__":
    main()
