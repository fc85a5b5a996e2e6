#!/usr/bin/env python3
"""An `external` reward for rlvr, in Python: exact match of the final answer.

rlvr starts this program once (per reward worker) and keeps it running. For every item it
writes one JSON line on our stdin:

  {"id": 7, "index": 0, "step": 3, "seed": 42, "group_id": 0, "prompt": "...",
   "completion": "...", "answer": "...", "extra": {...the row's other fields...}}

and reads one JSON line back from our stdout, in the same order:

  {"id": 7, "score": 1.0, "status": "ok", "info": {...}}

"status" is "ok" (default; "score" must then be a finite number), "abstain" (no signal:
masked from the loss) or "error"; echoing "id" is optional but lets rlvr catch a reply
stream that got out of step. stdout is the protocol channel: log to stderr. Flush after
every reply. Exit when stdin closes.

Use it:  rlvr score --reward 'external:{"command":["python3","external_reward.py"]}'
The final answer is the text of the last <answer>...</answer>, else the last non-empty
line of the completion; it must equal the row's answer after trimming whitespace.
"""
import json
import os
import sys


def final_answer(completion):
    end = completion.rfind("</answer>")
    start = completion.rfind("<answer>", 0, end if end >= 0 else len(completion))
    if start >= 0:
        stop = end if end > start else len(completion)
        return completion[start + len("<answer>"):stop].strip()
    lines = [ln.strip() for ln in completion.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def score(request):
    reference = request.get("answer", "").strip()
    if not reference:
        return {"status": "abstain", "info": {"reason": "the row has no answer"}}
    pred = final_answer(request.get("completion", ""))
    return {"score": 1.0 if pred == reference else 0.0,
            "info": {"pred": pred[:200], "pid": os.getpid()}}


def main():
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            reply = score(request)
        except Exception as e:  # a bug here costs one item, not the run
            reply = {"status": "error", "info": {"reason": repr(e)[:200]}}
        reply["id"] = request.get("id")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
