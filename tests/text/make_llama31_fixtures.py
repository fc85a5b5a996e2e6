#!/usr/bin/env python3
"""tests/text/make_llama31_fixtures.py — fixtures for the Llama 3.1-style chat template
(rlvr's built-in "llama3.1"): a tokenizer directory fixtures/llama31 (the Llama-3-style BPE
of fixtures/llama3 with a tokenizer_config.json holding a Llama 3.1-format template, written
here from the documented prompt format: BOS, a system header that always carries
"Cutting Knowledge Date: December 2023" and "Today Date: <date_string>" (default
"26 Jul 2024") followed by the trimmed system message, then every other message as
<|start_header_id|>ROLE<|end_header_id|>\\n\\n + trimmed content + <|eot_id|>), and
fixtures/chat_llama31.jsonl rendered by transformers' apply_chat_template over the same
conversations as the other chat fixtures (less those with tool messages). Run from
anywhere; needs transformers."""
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import FIX, chat_rows, write_json, write_jsonl  # noqa: E402

LLAMA31_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}{%- set system_message = \"\" %}{%- set loop_messages = messages %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message + '<|eot_id|>' }}"
    "{%- for message in loop_messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}")


def main():
    src, dst = os.path.join(FIX, "llama3"), os.path.join(FIX, "llama31")
    os.makedirs(dst, exist_ok=True)
    for f in ("tokenizer.json", "generation_config.json"):
        shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    with open(os.path.join(src, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    cfg["chat_template"] = LLAMA31_TEMPLATE
    write_json(os.path.join(dst, "tokenizer_config.json"), cfg)
    # Tool messages are left out: Llama 3.1's real template renders them in its
    # tool-calling format (an "ipython" header, JSON content), which rlvr refuses.
    rows = [r for r in chat_rows(dst, [(True, None), (False, None)])
            if not any(m["role"] in ("tool", "ipython") for m in r["messages"])]
    write_jsonl(os.path.join(FIX, "chat_llama31.jsonl"), rows)
    print("chat_llama31.jsonl: %d rows" % len(rows))


if __name__ == "__main__":
    main()
