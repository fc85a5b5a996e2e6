#!/usr/bin/env python3
# tests/gpu/test_kernel_profile.py — kernel_profile.py's trace summary on a hand-made
# Kineto-style Chrome trace (the GPU records cannot be made on a machine without one):
# per-name sums, graph attribution by correlation id, the busy union and idle time.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_profile import summarise  # noqa: E402


def ev(cat, name, ts, dur, **args):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "args": args}


trace = {"traceEvents": [
    ev("cuda_runtime", "cudaGraphLaunch", 0, 5, correlation=7),
    ev("cuda_runtime", "cudaLaunchKernel", 1, 2, correlation=8),
    ev("kernel", "gemv_kernel<1>", 10, 4, correlation=7, grid=[112, 1, 1]),
    ev("kernel", "gemv_kernel<1>", 20, 6, correlation=7, grid=[608, 1, 1]),
    ev("kernel", "rmsnorm", 12, 4, correlation=8, grid=[1, 1, 1]),      # overlaps the first
    ev("gpu_memcpy", "Memcpy HtoD (Pageable -> Device)", 40, 2, correlation=9),
    {"ph": "i", "cat": "kernel", "name": "marker", "ts": 50},            # not a duration event
]}
s = summarise(trace, 10, False)
fail = 0


def check(cond, what):
    global fail
    if not cond:
        print("FAIL:", what, s)
        fail += 1


rows = {r["name"]: r for r in s["rows"]}
check(abs(rows["gemv_kernel<1>"]["ms"] - 0.010) < 1e-12, "gemv total 10 us")
check(rows["gemv_kernel<1>"]["calls"] == 2 and rows["gemv_kernel<1>"]["graph_calls"] == 2,
      "both gemv launches from the graph")
check(rows["rmsnorm"]["graph_calls"] == 0, "rmsnorm eager")
check(abs(s["span_ms"] - 0.032) < 1e-12, "span 10..42 us")
check(abs(s["busy_ms"] - 0.014) < 1e-12, "busy = [10,16) + [20,26) + [40,42)")
check(abs(s["graphed_kernel_ms"] - 0.010) < 1e-12, "graphed kernel time")
check(s["graph_launches"] == 1, "one graph launch")
check(s["rows"][0]["name"] == "gemv_kernel<1>", "sorted by time")
g = summarise(trace, 10, True)
check(len(g["rows"]) == 4 and {r["grid"] for r in g["rows"]} >= {"112x1x1", "608x1x1"},
      "--by-grid splits the gemv by grid")
print("test_kernel_profile:", "FAIL" if fail else "ok")
sys.exit(1 if fail else 0)
