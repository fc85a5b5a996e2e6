#!/usr/bin/env python3
"""tests/demo/plot_check.py — `rlvr plot` writes well-formed SVG (xml.etree parses it)
with one <polyline> per key holding exactly the points the metrics file has for that
key (nulls and missing values left out, a partial last line ignored), x increasing with
the step and y decreasing (pixels) as the value grows; bad inputs get clear errors.

usage: plot_check.py RLVR WORK_DIR
"""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

NS = "{http://www.w3.org/2000/svg}"


def run(rlvr, *args):
    return subprocess.run([rlvr, "plot", *args], capture_output=True, text=True)


def polylines(path):
    root = ET.parse(path).getroot()
    assert root.tag == NS + "svg", root.tag
    out = {}
    for p in root.iter(NS + "polyline"):
        pts = [tuple(map(float, xy.split(","))) for xy in p.get("points").split()]
        out[p.find(NS + "title").text] = pts
    return out


def main():
    rlvr, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    m = os.path.join(work, "metrics.jsonl")
    rows = []
    for s in range(1, 41):
        r = {"step": s, "time": 1.7e9 + s, "reward/mean": s / 40.0, "accuracy": (s / 40.0) ** 2,
             "loss": 3.0 / s, "tokens": 100 * s}
        if s % 7 == 0:
            r["accuracy"] = None  # NaN written as null: left out
        if s % 10 == 0:
            del r["loss"]
        rows.append(r)
    with open(m, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.write('{"step": 41, "reward/m')  # a line still being written
    want = {"reward/mean": 40, "accuracy": 40 - 5, "loss": 40 - 4}
    fails = []

    svg = os.path.join(work, "a.svg")
    r = run(rlvr, "--metrics", m, "--out", svg, "--keys", "reward/mean,accuracy,loss",
            "--title", 'run <1> & "two"')
    if r.returncode != 0:
        fails.append("plot failed: " + r.stderr)
    else:
        got = polylines(svg)
        if sorted(got) != sorted(want):
            fails.append("polylines %s, want %s" % (sorted(got), sorted(want)))
        for k, n in want.items():
            pts = got.get(k, [])
            if len(pts) != n:
                fails.append("%s: %d points, want %d" % (k, len(pts), n))
            xs = [p[0] for p in pts]
            if xs != sorted(xs) or len(set(xs)) != len(xs):
                fails.append("%s: x not increasing" % k)
        ys = [p[1] for p in got.get("reward/mean", [])]
        if ys != sorted(ys, reverse=True):
            fails.append("reward/mean rises, so its pixel y must fall")
        if ET.parse(svg).getroot().find(NS + "title").text != 'run <1> & "two"':
            fails.append("title not escaped/kept")

    # Default keys: those naming a reward or an accuracy.
    r = run(rlvr, "--metrics", m, "--out", os.path.join(work, "b.svg"))
    if r.returncode != 0 or sorted(polylines(os.path.join(work, "b.svg"))) != ["accuracy", "reward/mean"]:
        fails.append("default keys: " + r.stderr)

    # Errors.
    bad = os.path.join(work, "bad.jsonl")
    with open(bad, "w") as f:
        f.write('{"step": 1, "x": 1}\nnot json\n{"step": 2, "x": 2}\n')
    checks = [
        (["--metrics", m, "--out", os.path.join(work, "c.svg"), "--keys", "nope"], 1,
         "no numeric values for key 'nope'"),
        (["--metrics", bad, "--out", os.path.join(work, "c.svg"), "--keys", "x"], 1, "bad.jsonl:2"),
        (["--metrics", os.path.join(work, "missing.jsonl"), "--out", os.path.join(work, "c.svg"),
          "--keys", "x"], 1, "missing.jsonl"),
        (["--metrics", m, "--out", os.path.join(work, "c.svg"), "--keys", "a,,b"], 2,
         "comma-separated"),
        (["--metrics", m], 2, "--metrics and --out are required"),
        (["--metrics", m, "--out", os.path.join(work, "c.svg"), "--width", "5"], 2, "--width"),
        (["--metrics", m, "--out", os.path.join(work, "no/such/dir/c.svg"), "--keys", "loss"], 1,
         "no/such/dir"),
    ]
    for args, code, frag in checks:
        r = run(rlvr, *args)
        if r.returncode != code or frag not in r.stderr:
            fails.append("%s: status %d (want %d), stderr %r (want %r)"
                         % (args, r.returncode, code, r.stderr, frag))
    if os.path.exists(os.path.join(work, "c.svg")):
        fails.append("a failed plot left an SVG behind")
    for f in fails:
        print("FAIL", f)
    if not fails:
        print("plot_check: all checks passed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
