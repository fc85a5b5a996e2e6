#!/usr/bin/env python3
# tests/gpu/ab_summary.py OUTDIR [--noise PCT] — every A/B row of one tests/gpu/run.sh
# report in one table, each beside the default measured in the same run, so a lease's
# output already says which opt-in wins (run.sh prints it last, after its section table):
#   training step   OUTDIR/model/bench_rlvr_<row>.json vs bench_rlvr.json (tokens_per_s;
#                   PyTorch eager, bench_torch.json, for the ratio)
#   decode, 32 seqs OUTDIR/bench_decode_<row>.json vs bench_decode_graphs.json
#                   (g1.output_tok_s), and batch 1 from the same files
#                   (batch1.ms_per_token)
#   decode, 256     OUTDIR/bench_decode_256_<row>.json vs bench_decode.json (g1), and the
#                   ablations (bench_decode_256_ablate_<group>.json): the decode-forward
#                   seconds the skipped op group costs; rows that also ran the grouped form
#                   (G = 8) beside bench_decode.json's grouped figure
#   decode attn op  OUTDIR/bench_decode_attn.json (tests/gpu/bench_decode_attn.c): per
#                   workload, each cached-attention variant's time per call and its speed-up
#                   against the default kernel (the qkv variants against qkvapart), and any
#                   failed bit check
#   sampling op     OUTDIR/model/generate_cuda.log (tests/gpu/sampler_check.c part 1d):
#                   lmhead_sample's per-call ms on each CUDA path (split: a warp per chunk,
#                   the default; blocks; single-block) and the default's speed-up
#   kernel profiles OUTDIR/kp_*.json (tests/gpu/kernel_profile.py): GPU span, busy,
#                   idle and the five costliest kernels
#   ncu             OUTDIR/ncu_*.csv (tests/gpu/ncu_profile.sh): per profiled kernel its
#                   time, SM and memory throughput (% of peak), DRAM throughput,
#                   achieved occupancy and registers per thread
#   GEMM tuning     the "gemm tune:" lines of OUTDIR/*.log and OUTDIR/model/*.err
#                   (RLVR_GEMM_TUNE_LOG=1, kernels/cuda/gemm_tune.cu): per file the shapes
#                   tuned, how many left cuBLAS's default (for a cublasLt kernel or, with
#                   RLVR_SKINNY=tune, the skinny GEMM), and the largest gains
# "speed-up" is variant over default for rates and default over variant for times, so
# > 1 means the variant is faster; rows within --noise percent (default 3) say "same".
# Missing files are left out; nothing here fails a run (exit 0 unless OUTDIR is missing).
import argparse
import csv
import glob
import json
import os
import sys


def load(path):
    """The JSON object in path (a one-object file, or the last line that parses)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        for line in reversed(text.splitlines()):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def get(obj, dotted):
    for key in dotted.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj if isinstance(obj, (int, float)) and not isinstance(obj, bool) else None


def fmt(v):
    return "missing" if v is None else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def verdict(speedup, noise):
    if speedup is None:
        return ""
    if abs(speedup - 1.0) * 100.0 <= noise:
        return "same"
    return "FASTER" if speedup > 1.0 else "slower"


def rows_of(pattern, prefix, exclude=()):
    """(row name, path) for the files matching pattern, name = the part after prefix."""
    out = []
    for path in sorted(glob.glob(pattern)):
        name = os.path.basename(path)[len(prefix):-len(".json")]
        if name and name not in exclude and not name.startswith("ablate_"):
            out.append((name, path))
    return out


def table(title, unit, base, rows, higher_is_better, noise, lines):
    """Appends a table: the default's value, then each row's value, speed-up, verdict."""
    if base is None and not rows:
        return
    lines.append(f"-- {title} ({unit}; speed-up > 1: the row is faster)")
    lines.append(f"   {'default':<16} {fmt(base):>12}")
    for name, value in rows:
        if value is None:
            lines.append(f"   {name:<16} {'missing':>12}")
            continue
        sp = None
        if base:
            sp = value / base if higher_is_better else base / value
        sps = f"{sp:.3f}" if sp is not None else "-"
        lines.append(f"   {name:<16} {fmt(value):>12} {sps:>8}  {verdict(sp, noise)}")


NCU_COLUMNS = (  # (heading, raw metric)
    ("SM%", "sm__throughput.avg.pct_of_peak_sustained_elapsed"),
    ("mem%", "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"),
    ("dram%", "dram__throughput.avg.pct_of_peak_sustained_elapsed"),
    ("occ%", "sm__warps_active.avg.pct_of_peak_sustained_active"),
    ("regs", "launch__registers_per_thread"),
)
TIME_UNITS_US = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3,
                 "ms": 1e3, "second": 1e6, "s": 1e6}


def ncu_lines(path):
    """One line per kernel launch of an ncu raw CSV (header row, units row, data rows)."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r]
    except OSError:
        return []
    head = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
    if head is None or head + 2 > len(rows):
        return []
    cols = rows[head]
    units = rows[head + 1] if head + 1 < len(rows) else []
    data = rows[head + 2:] if units and not units[cols.index("Kernel Name")] else rows[head + 1:]
    def cell(r, name):
        i = cols.index(name) if name in cols else -1
        if i < 0 or i >= len(r):
            return None
        try:
            return float(r[i].replace(",", ""))
        except ValueError:
            return None
    t = "gpu__time_duration.sum"
    scale = TIME_UNITS_US.get(units[cols.index(t)] if t in cols and units else "", None)
    out = [f"-- ncu {os.path.basename(path)}: " + " ".join(
        ["time us"] + [h for h, _ in NCU_COLUMNS]) + "  kernel"]
    for r in data:
        if len(r) != len(cols):
            continue
        d = cell(r, t)
        us = f"{d * scale:8.1f}" if d is not None and scale else "       -"
        vals = " ".join(f"{v:5.0f}" if v is not None else "    -"
                        for v in (cell(r, m) for _, m in NCU_COLUMNS))
        out.append(f"   {us} {vals}  {r[cols.index('Kernel Name')][:60]}")
    return out if len(out) > 1 else []


def sample_lines(path):
    """sampler_check's timing lines ('time lmhead_sample R=.. <controls> split X ms  blocks
    Y ms (..)  single-block Z ms ..'), one row each: the three times and the speed-ups of
    the split path over the other two."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        if " time lmhead_sample " not in line:
            continue
        words = line.split()
        try:
            r = words[words.index("lmhead_sample") + 1]
            ctl = line.split("C=", 1)[1].split(None, 1)[1].split(" split ", 1)[0].strip()
            ms = {k: float(words[words.index(k) + 1]) for k in ("split", "blocks", "single-block")}
        except (ValueError, IndexError):
            continue
        rows.append(f"   {r:<6} {ctl:<26} split {ms['split']:.3f}  blocks {ms['blocks']:.3f} "
                    f"(x{ms['blocks'] / ms['split']:.2f})  single {ms['single-block']:.3f} "
                    f"(x{ms['single-block'] / ms['split']:.2f})  {words[0]}")
    if not rows:
        return []
    return ["-- sampling op, lmhead_sample ms per call, V 151,936, C 896 (x: the split "
            "path's speed-up)"] + rows


def decode_attn_lines(path):
    """The cached attention op's variants per workload (bench_decode_attn.json)."""
    d = load(path)
    if not isinstance(d, dict) or not d.get("workloads"):
        return []
    out = ["-- decode attention op (bench_decode_attn; us per call, speed-up > 1: faster; "
           "qkv variants against qkvapart)"]
    for w in d["workloads"]:
        us = w.get("us") or {}
        base, qbase = us.get("default"), us.get("qkvapart")
        cells = []
        for name, v in us.items():
            if name in ("default", "qkvapart") or not v:
                continue
            ref = qbase if name.startswith("qkv") else base
            sp = f" x{ref / v:.3f}" if ref else ""
            cells.append(f"{name} {v:.2f}{sp}")
        bad = [n for n, ok in (w.get("same_bits") or {}).items() if ok is False]
        out.append(f"   {w.get('name', '?'):<8} N={w.get('N', '?'):<4} default "
                   f"{fmt(base)} us, qkvapart {fmt(qbase)} us: " + ", ".join(cells) +
                   (f"  BITS DIFFER: {', '.join(bad)}" if bad else ""))
    return out


def tune_lines(path, top=6):
    """The GEMM tuner's log lines of one file: shapes, Lt picks, the largest gains."""
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    shapes = []  # (default us, best us, choice, shape words)
    for line in text.splitlines():
        if not line.startswith("gemm tune: "):
            continue
        try:
            head, tail = line[len("gemm tune: "):].split(": default ", 1)
            d = float(tail.split(" us", 1)[0])
            b = float(tail.split("best ", 1)[1].split(" us", 1)[0])
            choice = tail.rsplit("-> ", 1)[1].strip()
        except (ValueError, IndexError):
            continue
        shapes.append((d, b, choice, head))
    if not shapes:
        return []
    picked = [x for x in shapes if x[2] != "default"]
    tot_d = sum(x[0] for x in shapes)
    tot_b = sum(x[1] if x[2] != "default" else x[0] for x in shapes)
    out = [f"-- GEMM tuning, {os.path.basename(path)}: {len(shapes)} shapes, {len(picked)} "
           f"not on cuBLAS's default (cublasLt or skinny); one call of each: {tot_d:.1f} -> "
           f"{tot_b:.1f} us"]
    for d, b, _, head in sorted(picked, key=lambda x: x[1] - x[0])[:top]:
        out.append(f"   {head:<44} {d:8.2f} -> {b:8.2f} us (x{d / b:.2f})")
    return out


def summarise(out, noise):
    lines = []
    model = os.path.join(out, "model")
    base = get(load(os.path.join(model, "bench_rlvr.json")), "tokens_per_s")
    rows = [(n, get(load(p), "tokens_per_s"))
            for n, p in rows_of(os.path.join(model, "bench_rlvr_*.json"), "bench_rlvr_",
                                exclude=("prof2",))]
    table("training step, Qwen2.5-0.5B shape, 8 x 1024 tokens", "tok/s", base, rows, True,
          noise, lines)
    torch = get(load(os.path.join(model, "bench_torch.json")), "tokens_per_s")
    if base and torch:
        lines.append(f"   PyTorch eager {fmt(torch)} tok/s: rlvr/PyTorch = {base / torch:.3f}")

    d32 = load(os.path.join(out, "bench_decode_graphs.json"))
    v32 = rows_of(os.path.join(out, "bench_decode_*.json"), "bench_decode_",
                  exclude=("graphs", "attn"))
    v32 = [(n, p) for n, p in v32 if not n.startswith("256_")]
    table("decode, 32 sequences (graphs)", "output tok/s", get(d32, "g1.output_tok_s"),
          [(n, get(load(p), "g1.output_tok_s")) for n, p in v32], True, noise, lines)
    table("decode, batch 1", "ms per token", get(d32, "batch1.ms_per_token"),
          [(n, get(load(p), "batch1.ms_per_token")) for n, p in v32], False, noise, lines)

    d256 = load(os.path.join(out, "bench_decode.json"))
    v256 = rows_of(os.path.join(out, "bench_decode_256_*.json"), "bench_decode_256_")
    table("decode, 256 sequences (the issue-9 workload)", "output tok/s",
          get(d256, "g1.output_tok_s"),
          [(n, get(load(p), "g1.output_tok_s")) for n, p in v256], True, noise, lines)
    grouped = [(n, get(load(p), "grouped.output_tok_s")) for n, p in v256]
    table("decode, 256 sequences as 32 groups of G = 8", "output tok/s",
          get(d256, "grouped.output_tok_s"), [r for r in grouped if r[1] is not None], True,
          noise, lines)
    fwd = get(d256, "g1.decode_forward_s")
    abl = sorted(glob.glob(os.path.join(out, "bench_decode_256_ablate_*.json")))
    if fwd and abl:
        lines.append(f"-- decode, 256 sequences: decode-forward seconds each op group costs "
                     f"(default {fwd:.3f} s)")
        for p in abl:
            name = os.path.basename(p)[len("bench_decode_256_ablate_"):-len(".json")]
            f = get(load(p), "g1.decode_forward_s")
            if f is not None:
                lines.append(f"   {name:<16} {fwd - f:>8.3f} s ({100 * (fwd - f) / fwd:.0f}%)")

    lines += decode_attn_lines(os.path.join(out, "bench_decode_attn.json"))
    lines += sample_lines(os.path.join(model, "generate_cuda.log"))

    for p in sorted(glob.glob(os.path.join(out, "kp_*.json"))):
        s = load(p)
        if not isinstance(s, dict) or get(s, "span_ms") is None:
            continue
        lines.append(f"-- kernel profile {os.path.basename(p)}: span {s['span_ms']:.1f} ms, "
                     f"busy {s['busy_ms']:.1f}, idle {s['idle_ms']:.1f} ms")
        for r in (s.get("rows") or [])[:5]:
            lines.append(f"   {100 * r.get('share', 0):5.1f}%  {r.get('ms', 0):8.2f} ms  "
                         f"{r.get('calls', 0):6d} calls  {r.get('mean_us', 0):8.1f} us  "
                         f"{str(r.get('name', ''))[:60]}")
    for p in sorted(glob.glob(os.path.join(out, "ncu_*.csv"))):
        lines += ncu_lines(p)
    for p in sorted(glob.glob(os.path.join(out, "*.log")) +
                    glob.glob(os.path.join(model, "*.err"))):
        lines += tune_lines(p)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("outdir")
    ap.add_argument("--noise", type=float, default=3.0,
                    help="percent within which a row counts as the same (default 3)")
    a = ap.parse_args()
    if not os.path.isdir(a.outdir):
        print(f"ab_summary.py: {a.outdir}: not a directory", file=sys.stderr)
        return 2
    lines = summarise(a.outdir, a.noise)
    print("\n".join(lines) if lines else "ab_summary.py: no A/B results in " + a.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
