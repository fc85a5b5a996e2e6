#!/usr/bin/env bash
# tests/dist/test_dist_ppo_dapo.sh RLVR MAKE_MODEL TOKENIZER_DIR — data-parallel PPO, DAPO
# dynamic sampling and samples.jsonl on CPU ranks under mpirun (the tiny setup of
# test_dist_train.sh: random tiny Qwen3, GPT-2 byte-level BPE, a length reward):
#   a. PPO (critic, GAE, whitening over the global batch) for 3 steps: 2 and 4 ranks, and
#      2 ranks with dist.zero1 (the critic stays replicated), give the policy AND critic
#      weights of one process within 1e-6; the value metrics agree; a 2-rank PPO run
#      resumed at step 2 ends bit for bit like the uninterrupted one;
#   b. dynamic sampling with a reward that makes some groups zero-variance (G = 2, a stop
#      string and a length reward in tokens: equal lengths give equal rewards): 2 and 4
#      ranks give one process's weights, rounds and dropped groups; also with
#      max_tries = 2 (a short batch), 2 mini-batches and μ = 2, where a rank's share of a
#      mini-batch can be empty;
#   c. samples.jsonl of 2 and 4 ranks holds the rows of one process (same prompts,
#      completions, rewards; advantages to rounding) in the same order, with
#      samples_count = 3 of 4 groups.
# AdamW eps = 1 keeps the update proportional to the gradient (see test_dist_train.sh), so
# a different gradient summation order shows as rounding. Skips (77) without mpirun.
set -u
rlvr=$1; make_model=$2; tokdir=$3
# shellcheck source=tests/dist/lib.sh
source "$(dirname "$0")/lib.sh"
run() { # run NP DIR CONFIG [--set ...]: one process when NP = 1
  local np=$1 dir=$2 cfg=$3; shift 3
  if [ "$np" = 1 ]; then "$rlvr" train --config "$cfg" --set logging.run_dir="$dir" "$@" > "log_$dir" 2>&1
  else mpi "$np" "$rlvr" train --config "$cfg" --set logging.run_dir="$dir" "$@" > "log_$dir" 2>&1; fi \
    || { cat "log_$dir"; fail "$dir ($np ranks)"; }
}
python3 - <<'PY'
import json
with open("data.jsonl", "w") as f:
    for i in range(32):
        f.write(json.dumps({"prompt": f"Tell me about item {i}.", "answer": str(i)}) + "\n")
base = {"model": {"path": "m", "dtype": "f32", "threads": 1}, "template": {"name": "none"},
        "data": {"train": "data.jsonl", "epochs": 0},
        "optimizer": {"lr": 3e-3, "eps": 1.0}, "schedule": {"steps": 3, "prompts_per_step": 4},
        "checkpoint": {"every": 0},
        "logging": {"samples_every": 1, "samples_count": 3, "progress": "off"}, "seed": 1}
ppo = dict(base, rollout={"G": 4, "max_new_tokens": 16},
           rewards=[{"name": "length", "config": {"mode": "linear", "max_len": 80, "unit": "chars"}}],
           algorithm={"advantage": "ppo", "critic_lr": 3e-3, "kl": {"coef": 0.01}})
json.dump(ppo, open("ppo.json", "w"), indent=1)
# completions stop at the first "e": lengths 1..3 tokens, reward -len/3; a group of 2 with
# equal lengths has zero variance and is dropped
dapo = dict(base, rollout={"G": 2, "max_new_tokens": 3, "stop": ["e"]},
            rewards=[{"name": "length", "config": {"mode": "linear", "max_len": 3, "unit": "tokens"}}],
            algorithm={"advantage": "grpo", "kl": {"coef": 0.01},
                       "dynamic_sampling": {"enabled": True, "max_tries": 4}})
json.dump(dapo, open("dapo.json", "w"), indent=1)
PY
C="--set algorithm.dynamic_sampling.max_tries=2 --set algorithm.mini_batch_size=2 --set algorithm.ppo_epochs=2"
run 1 p1 ppo.json
run 2 p2 ppo.json
run 4 p4 ppo.json
run 2 pz ppo.json --set dist.zero1=true
run 2 ps ppo.json --set schedule.steps=2
mpi 2 "$rlvr" train --resume ps --set schedule.steps=3 > log_psr 2>&1 || { cat log_psr; fail "PPO resume, 2 ranks"; }
run 1 d1 dapo.json
run 2 d2 dapo.json
run 4 d4 dapo.json
run 1 c1 dapo.json $C
run 2 c2 dapo.json $C
grep -q "done after 3 steps (2 ranks, mpi)" log_p2 || { cat log_p2; fail "rank 0's summary line"; }
python3 - <<'PY' || exit 1
import json, struct
def st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; out[k] = raw[8 + n + s:8 + n + e]
    return out
def f32(b): return struct.unpack(f"<{len(b) // 4}f", b)
def policy(d): return {k: f32(b) for k, b in st(f"{d}/checkpoints/step-000003/model.safetensors").items()}
def critic(d):
    # the "critic" blob: 2 int64 steps, trunk weights [n], m [n], v [n], head [C+1], m, v
    b = st(f"{d}/checkpoints/step-000003/trainer_state.safetensors")["blob.critic"]
    steps = struct.unpack("<2q", b[:16]); f = f32(b[16:])
    n = sum(len(v) for v in policy(d).values()); h = (len(f) - 3 * n) // 3
    return {"steps": steps, "trunk": f[:n], "head": f[3 * n:3 * n + h]}
def worst(a, b):
    assert a.keys() == b.keys()
    return max(abs(x - y) for k in a for x, y in zip(a[k], b[k]))
def metrics(d): return [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
def initial():
    return {k: f32(b) for k, b in st("m/model.safetensors").items()}
TOL = 1e-6
out = []
w0 = initial()
def moved(d):
    w = policy(d); return max(abs(x - y) for k in w for x, y in zip(w[k], w0[k]))
def close(x, y, k, who):
    assert abs(x - y) <= 1e-4 * max(1, abs(x)), f"{who} {k}: {x} vs {y}"
# a. PPO: policy and critic
c1 = critic("p1")
assert c1["steps"] == (3, 3), c1["steps"]
hm = max(abs(x) for x in c1["head"])  # the value head starts at zero
for many in ("p2", "p4", "pz"):
    wp, cm = worst(policy("p1"), policy(many)), critic(many)
    wc = max(worst({"t": c1["trunk"]}, {"t": cm["trunk"]}), worst({"h": c1["head"]}, {"h": cm["head"]}))
    out.append(f"ppo p1 vs {many}: policy {wp:.3g}, critic {wc:.3g}")
    assert wp <= TOL and wc <= TOL, f"{many}: policy differs by {wp}, critic by {wc}"
    assert cm["steps"] == c1["steps"]
    for x, y in zip(metrics("p1"), metrics(many)):
        for k in ("value/loss", "value/mean", "value/returns_mean", "value/clip_fraction",
                  "value/grad_norm", "adv/std", "adv/mean", "loss", "grad_norm", "reward/mean"):
            close(x[k], y[k], k, f"{many} step {x['step']}")
# a 2-rank PPO run resumed at step 2 (critic state from the checkpoint) ends bit for bit
assert open("p2/checkpoints/step-000003/model.safetensors", "rb").read() == \
       open("ps/checkpoints/step-000003/model.safetensors", "rb").read(), "PPO resume: policy differs"
blob = lambda d: st(f"{d}/checkpoints/step-000003/trainer_state.safetensors")["blob.critic"]
assert blob("p2") == blob("ps"), "PPO resume: critic state differs"
out.append("2-rank PPO resume bit-identical")
mv = moved("p1")
assert mv > 100 * TOL and hm > 100 * TOL, f"PPO barely moved: policy {mv}, value head {hm}"
out.append(f"(policy moved {mv:.3g}, value head {hm:.3g})")
# b. dynamic sampling
for one, many in (("d1", "d2"), ("d1", "d4"), ("c1", "c2")):
    w = worst(policy(one), policy(many))
    ma, mb = metrics(one), metrics(many)
    assert len(ma) == len(mb) == 3
    drops = [x["dyn/dropped_groups"] for x in ma]
    out.append(f"dapo {one} vs {many}: {w:.3g} (dropped {drops}, rounds {[x['dyn/rounds'] for x in ma]})")
    assert w <= TOL, f"{many} differs from {one} by {w}"
    for x, y in zip(ma, mb):
        for k in ("dyn/rounds", "dyn/dropped_groups", "updates", "tokens/trained", "tokens/generated"):
            assert x[k] == y[k], f"{many} step {x['step']} {k}: {x[k]} vs {y[k]}"
        for k in ("reward/mean", "adv/std", "loss", "grad_norm", "groups/zero_variance_fraction"):
            close(x[k], y[k], k, f"{many} step {x['step']}")
    assert sum(drops) > 0, f"{one}: no group was dropped: the test does not exercise the refill"
    assert moved(one) > 100 * TOL, f"{one}: weights barely moved"
# a short batch happened in c1: 2 rounds of 4 groups with more than 4 dropped
assert any(x["dyn/rounds"] == 2 and x["dyn/dropped_groups"] > 4 for x in metrics("c1")), \
    "c1: no step ended with a short batch"
# c. samples.jsonl
def rows(d): return [json.loads(l) for l in open(f"{d}/samples.jsonl")]
for one, many in (("p1", "p2"), ("p1", "p4"), ("d1", "d2"), ("c1", "c2")):
    a, b = rows(one), rows(many)
    assert len(a) == len(b) > 0, f"{many}/samples.jsonl: {len(b)} rows, one process {len(a)}"
    for x, y in zip(a, b):
        for k in ("step", "index", "prompt", "completion", "rewards", "reward"):
            assert x[k] == y[k], f"{many}/samples.jsonl step {x['step']} row {x['index']}: {k} {x[k]!r} vs {y[k]!r}"
        assert abs(x["advantage"] - y["advantage"]) <= 1e-5, (x, y)
n_p = len(rows("p1"))
assert n_p == 3 * 3 * 4, f"p1/samples.jsonl: {n_p} rows, expected 3 steps x 3 groups x G = 4"
out.append(f"samples.jsonl: {n_p} PPO rows equal on 2 and 4 ranks")
print("dist ppo/dapo: " + "; ".join(out))
PY
echo "rlvr dist ppo/dapo checks passed"
