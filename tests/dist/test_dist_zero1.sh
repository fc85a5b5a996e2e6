#!/usr/bin/env bash
# tests/dist/test_dist_zero1.sh RLVR MAKE_MODEL TOKENIZER_DIR — ZeRO-1 (dist.zero1: AdamW
# state sharded over the ranks) in `rlvr train` on CPU ranks under mpirun, on the tiny
# setup of test_dist_train.sh (random tiny Qwen3, GPT-2 BPE, a length reward):
#   1. ZeRO-1 on 2 and 4 ranks gives the weights of one process and of replicated 2-rank
#      data-parallel within 1e-6 after 3 steps (the weights move by > 1e-4); also with
#      2 mini-batches × μ = 2 (4 optimizer steps per step); gradient clipping active
#      (max_grad_norm 0.3); weight decay on, and a shard straddles the decay boundary;
#      the step metrics agree;
#   2. memory: each rank logs its AdamW state, 8 bytes × its shard (the shards add up to
#      8 × n_weights), and metrics.jsonl's memory/adamw_state_bytes is rank 0's shard;
#   3. checkpoints hold one optimizer-rank<r>.safetensors per rank and no staging dir is
#      left; a 2-rank ZeRO-1 resume (2 steps, then to 3) equals the uninterrupted run bit
#      for bit (weights, optimizer shards, metrics); the 2-step checkpoint resumed by
#      4 ZeRO-1 ranks and by one process (re-sharding) matches within 1e-6; a replicated
#      checkpoint resumes into ZeRO-1 too;
#   4. the dist section: dist.timeout_s stops a job with a hung rank (no environment
#      variable), dist.backend = "nccl" on CPU ranks is refused with a message.
# AdamW eps = 1 as in test_dist_train.sh (rounding, not lr-sized changes, from the
# summation order). Skips (77) when mpirun is missing.
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
       "optimizer": {"lr": 1e-2, "eps": 1.0, "weight_decay": 0.1, "max_grad_norm": 0.3},
       "schedule": {"steps": 3, "prompts_per_step": 4},
       "checkpoint": {"every": 0},
       "logging": {"run_dir": "r1", "samples_every": 0, "progress": "off"}, "seed": 1}
json.dump(cfg, open("cfg.json", "w"), indent=1)
PY
Z="--set dist.zero1=true"
B="--set algorithm.mini_batch_size=2 --set algorithm.ppo_epochs=2"
run1() { local name=$1; shift; "$rlvr" train --config cfg.json --set logging.run_dir=$name "$@" > log_$name 2>&1 || { cat log_$name; fail "$name"; }; }
runn() { local np=$1 name=$2; shift 2; mpi $np "$rlvr" train --config cfg.json --set logging.run_dir=$name "$@" > log_$name 2>&1 || { cat log_$name; fail "$name ($np ranks)"; }; }
run1 r1
runn 2 d2
runn 2 z2 $Z
runn 4 z4 $Z
run1 b1 $B
runn 2 zb2 $Z $B
# resume: 2 steps (checkpoint every step), then --resume to 3
runn 2 s2 $Z --set schedule.steps=2 --set checkpoint.every=1
cp -r s2 s2x; cp -r s2 s2one  # checkpoint.dir is resolved to s2/checkpoints: set it on resume
mpi 2 "$rlvr" train --resume s2 --set schedule.steps=3 > log_s2r 2>&1 || { cat log_s2r; fail "2 ranks, ZeRO-1 resume"; }
mpi 4 "$rlvr" train --resume s2x --set checkpoint.dir=s2x/checkpoints --set schedule.steps=3 > log_s2x 2>&1 || { cat log_s2x; fail "ZeRO-1 2-rank checkpoint resumed by 4 ranks"; }
"$rlvr" train --resume s2one --set checkpoint.dir=s2one/checkpoints --set schedule.steps=3 > log_s2one 2>&1 || { cat log_s2one; fail "ZeRO-1 2-rank checkpoint resumed by 1 process"; }
# a replicated checkpoint resumed with ZeRO-1
runn 2 rep --set schedule.steps=2
mpi 2 "$rlvr" train --resume rep --set schedule.steps=3 $Z > log_rep 2>&1 || { cat log_rep; fail "replicated checkpoint resumed with ZeRO-1"; }
[ "$(ls -d s2/checkpoints/zero1-* 2>/dev/null | wc -l)" = 0 ] || fail "staging directory left in s2/checkpoints"
for r in 0 1; do [ -f s2/checkpoints/step-000002/optimizer-rank$r.safetensors ] || fail "step-2 checkpoint lacks optimizer-rank$r"; done
grep -q "ZeRO-1: AdamW state" log_r1 && fail "one process claims ZeRO-1"
python3 - <<'PY' || exit 1
import json, struct, re
def st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; out[k] = struct.unpack(f"<{(e - s) // 4}f", raw[8 + n + s:8 + n + e])
    return out
def tensors(d): return st(f"{d}/checkpoints/step-000003/model.safetensors")
def metrics(d): return [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
def worst(a, b):
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    return max(abs(x - y) for k in ta for x, y in zip(ta[k], tb[k]))
TOL = 1e-6
out = []
for one, many in (("r1", "z2"), ("r1", "z4"), ("d2", "z2"), ("b1", "zb2"), ("z2", "s2x"),
                  ("z2", "s2one"), ("d2", "rep")):
    w = worst(one, many)
    out.append(f"{one} vs {many}: {w:.2g}")
    assert w <= TOL, f"{many} differs from {one} by {w}"
    ma, mb = metrics(one), metrics(many)
    assert len(ma) == len(mb) == 3, (one, many, len(ma), len(mb))
    for x, y in zip(ma, mb):
        for k in ("reward/mean", "len/mean", "kl/mean", "grad_norm", "loss"):
            assert abs(x[k] - y[k]) <= 1e-4 * max(1, abs(x[k])), f"{many} step {x['step']} {k}: {x[k]} vs {y[k]}"
# clipping was active, so the global norm of the sharded gradients mattered
assert all(x["grad_norm"] > 0.3 for x in metrics("z2")), [x["grad_norm"] for x in metrics("z2")]
# the weights moved far more than the differences
w0, init = tensors("r1"), st("m/model.safetensors")
mv = max(abs(x - y) for k in w0 for x, y in zip(init[k], w0[k]))
assert mv > 100 * TOL, f"weights barely moved ({mv})"
# memory: per-rank AdamW state
state = json.load(open("z2/checkpoints/step-000003/trainer_state.json"))
n = int(state["n_weights"])
assert state["scalars"]["zero1_world_size"] == 2 and state["scalars"]["optimizer_step"] == 3, state
for d, W in (("r1", 1), ("d2", 1), ("z2", 2), ("z4", 4)):
    got = metrics(d)[-1]["memory/adamw_state_bytes"]
    assert got == 8 * (n // W), f"{d}: memory/adamw_state_bytes = {got}, want {8 * (n // W)}"
for d, W in (("z2", 2), ("z4", 4)):
    lines = re.findall(r"rank (\d+)/(\d+): ZeRO-1: AdamW state of weights \[(\d+), (\d+)\): (\d+) bytes \(replicated: (\d+)\)",
                       open(f"log_{d}").read())
    assert len(lines) == W, f"{d}: {len(lines)} ZeRO-1 memory lines for {W} ranks"
    tot = 0
    for r, w, lo, hi, b, rep in lines:
        assert int(b) == 8 * (int(hi) - int(lo)) and int(rep) == 8 * n, lines
        assert int(b) <= 8 * (n // W + W), f"rank {r} holds {b} bytes of {8 * n}"
        tot += int(b)
    assert tot == 8 * n, f"{d}: shards hold {tot} bytes, want {8 * n}"
# resume is bit-identical: weights, optimizer shards, metrics
strip = lambda r: {k: v for k, v in r.items() if k != "time" and not k.startswith(("time/", "throughput/"))}
for x, y in zip(metrics("z2"), metrics("s2")):
    assert strip(x) == strip(y), f"resumed ZeRO-1 run differs at step {x['step']}"
for f in ("model.safetensors", "optimizer-rank0.safetensors", "optimizer-rank1.safetensors"):
    assert open(f"z2/checkpoints/step-000003/{f}", "rb").read() == \
           open(f"s2/checkpoints/step-000003/{f}", "rb").read(), f"resumed {f} differs"
print(f"dist zero1: max |dw| {'; '.join(out)}; weights moved up to {mv:.3g}; n = {n} weights, "
      f"AdamW state per rank {8 * (n // 2)} B (2 ranks), {8 * (n // 4)} B (4 ranks) of {8 * n} B; "
      "2-rank ZeRO-1 resume bit-identical")
for d in ("d2", "z2", "z4"):
    m = metrics(d)[1:]
    print(f"{d}: mean time/step {sum(x['time/step'] for x in m) / len(m):.3f} s, "
          f"time/comm {sum(x['time/comm'] for x in m) / len(m):.3f} s (steps 2-3, rank 0)")
PY
# dist.timeout_s without RLVR_DIST_TIMEOUT_S: a hung rank stops the job
t0=$(date +%s)
RLVR_DIST_TEST_FAULT=1:2:hang timeout 120 mpirun -np 2 --oversubscribe "$rlvr" train --config cfg.json \
  --set logging.run_dir=f_hang $Z --set dist.timeout_s=4 > log_f 2>&1
rc=$?; t1=$(date +%s)
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat log_f; fail "hung rank with dist.timeout_s=4: exit status $rc (124 = hang)"; }
[ $((t1 - t0)) -le 60 ] || { cat log_f; fail "hung rank: took $((t1 - t0)) s"; }
grep -q 'timed out after 4 s' log_f || { cat log_f; fail "dist.timeout_s = 4 not applied"; }
grep -q 'rank 1 did not arrive' log_f || { cat log_f; fail "no message naming rank 1"; }
sleep 1
for _ in $(seq 15); do pgrep -f "run_dir=f_hang" >/dev/null || break; sleep 1; done
if pgrep -f "run_dir=f_hang" >/dev/null; then fail "hung rank: processes left behind"; fi
echo "dist.timeout_s=4: hung rank 1 stopped the job in $((t1 - t0)) s (status $rc)"
mpi 2 "$rlvr" train --config cfg.json --set logging.run_dir=nccl --set dist.backend=nccl > log_nccl 2>&1
[ $? -ne 0 ] && grep -q 'dist.backend = "nccl"' log_nccl || { cat log_nccl; fail "dist.backend=nccl on CPU ranks not refused"; }
echo "rlvr dist zero1 checks passed"
