#!/usr/bin/env python3
"""tests/runlog/test_tensorboard.py — TensorBoard itself reads the event files that
test_runlog_tfevents writes: scalar values, steps and tags of a plain run, and a resumed
run whose SessionLog START makes TensorBoard drop the events written after the
checkpoint. Skips (77) when the tensorboard package is not importable.
usage: test_tensorboard.py PATH/TO/test_runlog_tfevents SCRATCH_DIR
"""
import subprocess
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
except Exception as e:  # noqa: BLE001 - any import failure means "not available"
    print(f"skip: tensorboard not importable ({e})")
    sys.exit(77)
import glob
import math
import os


def main():
    exe, scratch = sys.argv[1], sys.argv[2]
    subprocess.run([exe, scratch], check=True)
    fails = []

    plain = os.path.join(scratch, "plain")
    files = glob.glob(os.path.join(plain, "events.out.tfevents.*"))
    assert len(files) == 1, files
    events = list(EventFileLoader(files[0]).Load())
    if events[0].file_version != "brain.Event:2":
        fails.append(f"file_version {events[0].file_version!r}")
    acc = EventAccumulator(plain)
    acc.Reload()
    tags = sorted(acc.Tags()["scalars"])
    if tags != ["eval/pass@1", "loss", "reward/mean", "tokens"]:
        fails.append(f"tags {tags}")
    for tag, fn in [("loss", lambda s: 1.0 / (s + 1)), ("reward/mean", lambda s: s / 10),
                    ("tokens", lambda s: 100.0 * s)]:
        got = [(e.step, e.value) for e in acc.Scalars(tag)]
        want = [(s, fn(s)) for s in range(10)]
        if [s for s, _ in got] != [s for s, _ in want]:
            fails.append(f"{tag}: steps {[s for s, _ in got]}")
        for (s, v), (_, w) in zip(got, want):
            if not math.isclose(v, w, rel_tol=1e-6, abs_tol=1e-7):  # stored as float32
                fails.append(f"{tag} step {s}: {v} != {w}")
    if [(e.step, e.value) for e in acc.Scalars("eval/pass@1")] != [(9, 0.25)]:
        fails.append("eval/pass@1")

    resume = os.path.join(scratch, "resume")
    acc = EventAccumulator(resume)
    acc.Reload()
    got = [(e.step, e.value) for e in acc.Scalars("loss")]
    want = [(0, 0.0), (1, 1.0), (2, 2.0), (3, 103.0), (4, 104.0)]
    if got != want:
        fails.append(f"resumed run: {got} != {want}")

    for f in fails:
        print("FAIL:", f)
    if not fails:
        print("tensorboard reads rlvr event files: ok")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
