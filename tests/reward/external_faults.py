#!/usr/bin/env python3
"""A misbehaving `external` reward for tests/reward/test_external.c.

Answers like an exact-match reward (score 1 when completion == answer), counting the
requests this process has seen (n = 0, 1, ...), and misbehaves on request n according to
its arguments (key=N):
  crash=N      exits with status 3 instead of answering request N
  garbage=N    writes a line that is not JSON for request N
  hang=N       never answers request N (sleeps)
  badscore=N   answers request N with a string score (valid JSON, wrong field)
  double=N     answers request N twice (the stream gets out of step)
  exit_after=N answers request N, then exits
  child=1      starts a `sleep 1000` grandchild first and reports its pid in info
"""
import json
import os
import subprocess
import sys
import time

args = dict(a.split("=", 1) for a in sys.argv[1:])
at = {k: int(v) for k, v in args.items()}
child = None
if at.get("child"):
    child = subprocess.Popen(["sleep", "1000"])


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


n = 0
for line in sys.stdin.buffer:
    req = json.loads(line)
    info = {"pid": os.getpid(), "n": n}
    if child:
        info["child"] = child.pid
    ok = {"id": req["id"], "score": float(req["completion"] == req["answer"]), "info": info}
    if at.get("crash") == n:
        os._exit(3)
    if at.get("garbage") == n:
        sys.stdout.write("hello, this is not json\n")
        sys.stdout.flush()
    elif at.get("hang") == n:
        time.sleep(1000)
    elif at.get("badscore") == n:
        reply({"id": req["id"], "score": "high"})
    elif at.get("double") == n:
        reply(ok)
        reply(ok)
    else:
        reply(ok)
    if at.get("exit_after") == n:
        sys.exit(0)
    n += 1
