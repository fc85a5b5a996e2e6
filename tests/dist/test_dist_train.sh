#!/usr/bin/env bash
# tests/dist/test_dist_train.sh RLVR MAKE_MODEL TOKENIZER_DIR — data-parallel `rlvr train`
# on CPU ranks under mpirun, on the tiny setup of tests/train/test_train_e2e.sh (random
# tiny Qwen3, GPT-2 byte-level BPE, a length reward):
#   1. 2 and 4 ranks give the weights of one process with the same global batch (GRPO,
#      KL anchor), within 1e-6 after 3 steps (the weights move by > 1e-4); 2 ranks also
#      with std_scope batch + 2 mini-batches + μ = 2, and with REINFORCE++ (whitening over
#      ranks); the step metrics agree;
#   2. resume under 2 ranks (2 steps, then --resume to 3) equals the uninterrupted run bit
#      for bit; a 2-rank run resumed by one process matches too (within 1e-6); rank 0
#      alone writes the logs;
#   3. faults: rank 1 exits at step 2, or hangs at step 2 — the job exits non-zero within
#      the timeout (RLVR_DIST_TIMEOUT_S=5) naming rank 1, and no process is left behind;
# (PPO, dynamic sampling and samples.jsonl over ranks: test_dist_ppo_dapo.sh.)
# AdamW eps = 1 keeps the update proportional to the gradient, so the summation order of
# the gradients (per rank, then across ranks) shows as rounding, not as lr-sized changes.
# Skips (77) when mpirun is missing.
set -u
rlvr=$1; make_model=$2; tokdir=$3
# shellcheck source=tests/dist/lib.sh
source "$(dirname "$0")/lib.sh"
python3 - <<'PY'
import json
with open("data.jsonl", "w") as f:
    for i in range(32):
        f.write(json.dumps({"prompt": f"Tell me about item {i}.", "answer": str(i)}) + "\n")
cfg = {"model": {"path": "m", "dtype": "f32", "threads": 1}, "template": {"name": "none"},
       "data": {"train": "data.jsonl", "epochs": 0},
       "rollout": {"G": 4, "max_new_tokens": 16},
       "rewards": [{"name": "length", "config": {"mode": "linear", "max_len": 80, "unit": "chars"}}],
       "algorithm": {"advantage": "grpo", "kl": {"coef": 0.01}},
       "optimizer": {"lr": 3e-3, "eps": 1.0}, "schedule": {"steps": 3, "prompts_per_step": 4},
       "checkpoint": {"every": 0},
       "logging": {"run_dir": "r1", "samples_every": 1, "progress": "off"}, "seed": 1}
json.dump(cfg, open("cfg.json", "w"), indent=1)
PY
B="--set algorithm.std_scope=batch --set algorithm.mini_batch_size=2 --set algorithm.ppo_epochs=2"
P="--set algorithm.advantage=reinforce++"
"$rlvr" train --config cfg.json > log1 2>&1 || { cat log1; fail "1 process"; }
mpi 2 "$rlvr" train --config cfg.json --set logging.run_dir=r2 > log2 2>&1 || { cat log2; fail "2 ranks"; }
mpi 4 "$rlvr" train --config cfg.json --set logging.run_dir=r4 > log4 2>&1 || { cat log4; fail "4 ranks"; }
"$rlvr" train --config cfg.json --set logging.run_dir=b1 $B > logb1 2>&1 || { cat logb1; fail "1 process, batch std"; }
mpi 2 "$rlvr" train --config cfg.json --set logging.run_dir=b2 $B > logb2 2>&1 || { cat logb2; fail "2 ranks, batch std"; }
"$rlvr" train --config cfg.json --set logging.run_dir=p1 $P > logp1 2>&1 || { cat logp1; fail "1 process, reinforce++"; }
mpi 2 "$rlvr" train --config cfg.json --set logging.run_dir=p2 $P > logp2 2>&1 || { cat logp2; fail "2 ranks, reinforce++"; }
# resume under 2 ranks
mpi 2 "$rlvr" train --config cfg.json --set logging.run_dir=s2 --set schedule.steps=2 > logs2 2>&1 || { cat logs2; fail "2 ranks, 2 steps"; }
mpi 2 "$rlvr" train --resume s2 --set schedule.steps=3 > logs2r 2>&1 || { cat logs2r; fail "2 ranks, resume"; }
# another world size: 2 ranks for 2 steps, then one process to 3 (replicated state)
mpi 2 "$rlvr" train --config cfg.json --set logging.run_dir=x2 --set schedule.steps=2 > logx2 2>&1 || { cat logx2; fail "2 ranks, 2 steps (x)"; }
"$rlvr" train --resume x2 --set schedule.steps=3 > logx1 2>&1 || { cat logx1; fail "resume 2 ranks' run in 1 process"; }
grep -q "done after 3 steps (2 ranks, mpi)" log2 || { cat log2; fail "rank 0's summary line"; }
[ "$(grep -c 'done after' log2)" = 1 ] || fail "more than one rank reported"
python3 - <<'PY' || exit 1
import json, struct
def tensors(d):
    raw = open(f"{d}/checkpoints/step-000003/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; out[k] = struct.unpack(f"<{(e - s) // 4}f", raw[8 + n + s:8 + n + e])
    return out
def metrics(d): return [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
def worst(a, b):
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    return max(abs(x - y) for k in ta for x, y in zip(ta[k], tb[k]))
def moved(a):
    t0 = tensors(a); return t0
TOL = 1e-6
out = []
for one, many in (("r1", "r2"), ("r1", "r4"), ("b1", "b2"), ("p1", "p2"), ("r1", "x2")):
    w = worst(one, many)
    out.append(f"{one} vs {many}: max |dw| = {w:.3g}")
    assert w <= TOL, f"{many} differs from {one} by {w}"
    ma, mb = metrics(one), metrics(many)
    assert len(ma) == len(mb) == 3, (len(ma), len(mb))
    for x, y in zip(ma, mb):
        for k in ("reward/mean", "reward/std", "len/mean", "tokens/generated", "adv/mean", "adv/std",
                  "kl/mean", "grad_norm", "loss", "groups/zero_variance_fraction"):
            if k not in x: continue
            assert abs(x[k] - y[k]) <= 1e-4 * max(1, abs(x[k])), f"{many} step {x['step']} {k}: {x[k]} vs {y[k]}"
    assert "time/comm" in mb[0], "time/comm missing"
# the update is not trivially zero: the weights moved from the initial model by far more
# than the rank-vs-process differences
w0 = tensors("r1"); raw = open("m/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); mv = 0
for k in w0:
    s, e = h[k]["data_offsets"]
    init = struct.unpack(f"<{(e - s) // 4}f", raw[8 + n + s:8 + n + e])
    mv = max(mv, max(abs(x - y) for x, y in zip(init, w0[k])))
assert mv > 100 * TOL, f"weights barely moved ({mv})"
strip = lambda r: {k: v for k, v in r.items() if k != "time" and not k.startswith(("time/", "throughput/"))}
for x, y in zip(metrics("r2"), metrics("s2")):
    assert strip(x) == strip(y), f"resumed 2-rank run differs at step {x['step']}"
assert open("r2/checkpoints/step-000003/model.safetensors", "rb").read() == \
       open("s2/checkpoints/step-000003/model.safetensors", "rb").read(), "resumed weights differ"
assert len(open("r2/samples.jsonl").read().splitlines()) > 0
print("dist train: " + "; ".join(out) + f"; weights moved up to {mv:.3g}; 2-rank resume bit-identical")
PY
# faults: a rank that exits, a rank that hangs
for mode in exit hang; do
  t0=$(date +%s)
  RLVR_DIST_TIMEOUT_S=5 RLVR_DIST_TEST_FAULT=1:2:$mode timeout 120 mpirun -np 2 --oversubscribe \
    "$rlvr" train --config cfg.json --set logging.run_dir=f_$mode > logf_$mode 2>&1
  rc=$?; t1=$(date +%s)
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat logf_$mode; fail "fault $mode: exit status $rc (124 = hang)"; }
  [ $((t1 - t0)) -le 60 ] || { cat logf_$mode; fail "fault $mode: took $((t1 - t0)) s"; }
  grep -Eq 'rank 1 did not arrive|rank,? 1|\[\[[0-9]+,[0-9]+\],1\]|rank 1 with PID' logf_$mode || { cat logf_$mode; fail "fault $mode: no message naming rank 1"; }
  # mpirun's kill of the other rank is asynchronous: allow a loaded machine 15 s for it
  for _ in $(seq 15); do pgrep -f "run_dir=f_$mode" >/dev/null || break; sleep 1; done
  if pgrep -f "run_dir=f_$mode" >/dev/null; then fail "fault $mode: processes left behind: $(pgrep -af "run_dir=f_$mode")"; fi
  echo "fault $mode: job stopped in $((t1 - t0)) s with status $rc"; grep -v '^ *$' logf_$mode | grep -v TEST | head -4
done
echo "rlvr dist train checks passed"
