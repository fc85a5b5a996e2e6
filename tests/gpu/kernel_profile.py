#!/usr/bin/env python3
# tests/gpu/kernel_profile.py — where a benchmark's GPU time goes, kernel by kernel, CUDA
# graphs included: runs one of rlvr's benchmark programs in this process (built as a
# shared library whose main is renamed rlvr_prog_main: bench_decode_prog,
# bench_step_prog) under PyTorch's profiler, whose CUPTI tracing records every kernel the
# process runs — also those replayed from the decode step's graphs, which rlvr's own
# profiler (--profile 1|2) cannot time — then sums the trace per kernel name.
#
# usage: kernel_profile.py --lib LIB [--json OUT] [--trace TRACE] [--top N] [--by-grid]
#                          -- PROGRAM-ARGS
# Prints the program's own output, then a table per kernel name (--by-grid: per name and
# grid; calls, GPU ms, share of the busy time, mean µs, the commonest grid; "graph" counts
# the launches that came from cudaGraphLaunch), and the
# totals: the span from the first to the last GPU activity, busy (the union of kernel,
# copy and set intervals), idle = span − busy. --json writes the same as JSON; --trace
# keeps the Chrome trace. Without a usable GPU it records nothing on the GPU and says so
# (the smoke test on the CPU checks the plumbing). Exit status: the program's (2 for a
# bad argument of this script).
import argparse
import ctypes
import json
import os
import sys
import tempfile


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lib", required=True, help="shared library exporting rlvr_prog_main")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--trace", help="keep the Chrome trace here")
    ap.add_argument("--top", type=int, default=40, help="rows listed (default 40)")
    ap.add_argument("--by-grid", action="store_true",
                    help="one row per kernel name and grid (tells the GEMM shapes apart)")
    ap.add_argument("prog_args", nargs=argparse.REMAINDER,
                    help="-- then the program's arguments")
    a = ap.parse_args()
    if a.prog_args and a.prog_args[0] == "--":
        a.prog_args = a.prog_args[1:]
    if not os.path.isfile(a.lib):
        ap.error(f"--lib {a.lib}: no such file (build the *_prog target)")
    return a


def call_program(lib_path, args):
    """Calls rlvr_prog_main(argc, argv) of the library; returns its exit status."""
    lib = ctypes.CDLL(os.path.abspath(lib_path))
    main = lib.rlvr_prog_main
    main.restype = ctypes.c_int
    main.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    argv = [os.path.basename(lib_path).encode()] + [s.encode() for s in args]
    arr = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
    sys.stdout.flush()
    rc = main(len(argv), arr)
    ctypes.CDLL(None).fflush(None)  # the program's stdio before this script's output
    return rc


def union_ms(intervals):
    """Length of the union of [start, end) intervals (µs in, ms out)."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    if cur_e is not None:
        total += cur_e - cur_s
    return total / 1e3


def summarise(trace, top, by_grid):
    """Per-kernel-name totals from a Kineto Chrome trace (ts and dur in µs)."""
    events = trace.get("traceEvents", [])
    graph_corr = {e.get("args", {}).get("correlation") for e in events
                  if e.get("ph") == "X" and e.get("name", "").startswith("cudaGraphLaunch")}
    graph_corr.discard(None)
    graph_launches = sum(1 for e in events if e.get("ph") == "X"
                         and e.get("name", "").startswith("cudaGraphLaunch")
                         and e.get("cat") in ("cuda_runtime", "cuda_driver"))
    per, gpu_iv = {}, []
    graphed_ms = 0.0
    for e in events:
        cat = e.get("cat", "")
        if e.get("ph") != "X" or cat not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        ts, dur = float(e.get("ts", 0)), float(e.get("dur", 0))
        gpu_iv.append((ts, ts + dur))
        args = e.get("args", {})
        in_graph = args.get("correlation") in graph_corr or "graph node id" in args
        name = e.get("name", "?") if cat == "kernel" else f"[{cat}] {e.get('name', '')}"
        grid = "x".join(str(v) for v in args.get("grid", [])) or "-"
        key = (name, grid) if by_grid else name
        row = per.setdefault(key, {"name": name, "calls": 0, "ms": 0.0, "graph_calls": 0,
                                   "grids": {}})
        row["grids"][grid] = row["grids"].get(grid, 0) + 1
        row["calls"] += 1
        row["ms"] += dur / 1e3
        if in_graph:
            row["graph_calls"] += 1
            graphed_ms += dur / 1e3
    busy = union_ms(gpu_iv)
    span = (max(e for _, e in gpu_iv) - min(s for s, _ in gpu_iv)) / 1e3 if gpu_iv else 0.0
    rows = sorted(per.values(), key=lambda r: -r["ms"])
    for r in rows:
        r["grid"] = max(r.pop("grids").items(), key=lambda kv: kv[1])[0]  # the commonest
        r["mean_us"] = 1e3 * r["ms"] / r["calls"]
        r["share"] = r["ms"] / busy if busy > 0 else 0.0
    return {"span_ms": span, "busy_ms": busy, "idle_ms": span - busy,
            "kernel_ms": sum(r["ms"] for r in rows), "graphed_kernel_ms": graphed_ms,
            "graph_launches": graph_launches, "names": len(rows), "rows": rows[:top],
            "rows_left_out": max(0, len(rows) - top)}


def print_summary(s):
    print(f"\n== GPU activity: span {s['span_ms']:.1f} ms, busy {s['busy_ms']:.1f} ms, "
          f"idle {s['idle_ms']:.1f} ms ({100 * s['idle_ms'] / s['span_ms'] if s['span_ms'] else 0:.1f}%); "
          f"kernels {s['kernel_ms']:.1f} ms, of them from {s['graph_launches']} graph launches "
          f"{s['graphed_kernel_ms']:.1f} ms")
    print(f"{'GPU ms':>10} {'share':>6} {'calls':>8} {'mean us':>9} {'graph':>6} {'grid':>12}  kernel")
    for r in s["rows"]:
        name = r["name"] if len(r["name"]) <= 110 else r["name"][:107] + "..."
        g = "all" if r["graph_calls"] == r["calls"] else (str(r["graph_calls"]) if r["graph_calls"] else "")
        print(f"{r['ms']:10.2f} {100 * r['share']:5.1f}% {r['calls']:8d} {r['mean_us']:9.2f} "
              f"{g:>6} {r['grid']:>12}  {name}")
    if s["rows_left_out"]:
        print(f"({s['rows_left_out']} more kernel names, smaller)")


def main():
    a = parse_args()
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError as e:
        print(f"kernel_profile: skip: {e}", file=sys.stderr)
        return 77
    gpu = torch.cuda.is_available()
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    if gpu:
        torch.cuda.init()
        print(f"kernel_profile: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print("kernel_profile: no usable GPU: the program runs, nothing on a GPU is recorded")
    with profile(activities=acts) as prof:
        rc = call_program(a.lib, a.prog_args)
    fd, tmp = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(tmp)
        with open(tmp) as f:
            trace = json.load(f)
        if a.trace:
            os.replace(tmp, a.trace)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    s = summarise(trace, a.top, a.by_grid)
    s.update({"program": os.path.basename(a.lib), "args": a.prog_args, "exit": rc,
              "gpu": torch.cuda.get_device_name(0) if gpu else None})
    print_summary(s)
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(s, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(a.json + ".tmp", a.json)
    if rc:
        print(f"kernel_profile: the program exited {rc}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
