#!/usr/bin/env bash
# tests/train/test_train_e2e.sh RLVR MAKE_MODEL TOKENIZER_DIR — `rlvr train` end to end
# on a random tiny model with a real byte-level BPE tokenizer and a built-in reward:
#   1. a 12-step GRPO run (KL anchor on) writes config.json, metrics.jsonl (one line per
#      step with the documented keys), samples.jsonl, checkpoints loadable as models;
#   2. resume: 6 steps, then --resume to 12 equals the uninterrupted run bit for bit
#      (every metric but timings, and the final weights);
#   3. micro-batching does not change the update: one step with micro-batches of a few
#      sequences gives the same weights as the whole batch, within 1e-6;
#   4. config errors: unknown key ("did you mean"), wrong type, missing data file.
set -u
rlvr=$1; make_model=$2; tokdir=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
fail() { echo "FAIL: $*"; exit 1; }
"$make_model" tiny-qwen3 2338 m 3 >/dev/null || fail make_model
cp "$tokdir"/tokenizer*.json m/
python3 - <<'PY'
import json
with open("data.jsonl", "w") as f:
    for i in range(32):
        f.write(json.dumps({"prompt": f"Tell me about item {i}.", "answer": str(i)}) + "\n")
cfg = {"model": {"path": "m", "dtype": "f32", "threads": 2}, "template": {"name": "none"},
       "data": {"train": "data.jsonl", "epochs": 0},
       "rollout": {"G": 4, "max_new_tokens": 16},
       "rewards": [{"name": "length", "config": {"mode": "linear", "max_len": 80, "unit": "chars"}}],
       "algorithm": {"advantage": "grpo", "kl": {"coef": 0.01}},
       "optimizer": {"lr": 3e-3}, "schedule": {"steps": 12, "prompts_per_step": 4},
       "checkpoint": {"every": 6, "keep_last": 2},
       "logging": {"run_dir": "runA", "samples_every": 4, "progress": "off"}, "seed": 1}
json.dump(cfg, open("cfg.json", "w"), indent=1)
PY
"$rlvr" train --config cfg.json > log 2>&1 || { cat log; fail "train"; }
"$rlvr" train --config cfg.json --set logging.run_dir=runB --set schedule.steps=6 >/dev/null 2>&1 || fail "train 6"
"$rlvr" train --resume runB --set schedule.steps=12 >/dev/null 2>&1 || fail "resume"
# one update from the same rollouts, whole batch vs micro-batches of <= 64 tokens; AdamW
# eps = 1 keeps the update proportional to the gradient (with eps 1e-8 the first Adam
# step is ~lr·sign(g), which turns rounding-level gradient noise into lr-sized changes)
for mb in 8192 64; do
  "$rlvr" train --config cfg.json --set logging.run_dir=run_mb$mb --set schedule.steps=1 \
    --set schedule.micro_batch_tokens=$mb --set optimizer.eps=1.0 >/dev/null 2>&1 || fail "micro-batch $mb"
done
python3 - <<'PY' || exit 1
import json, os, struct
def metrics(d):
    return [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
a, b = metrics("runA"), metrics("runB")
assert [r["step"] for r in a] == list(range(1, 13)), "one metrics line per step"
need = ["reward/mean", "reward/std", "reward/length", "adv/mean", "adv/std", "kl/mean", "kl/beta",
        "clip/low", "clip/high", "entropy/mean", "logprob_mismatch/mean_abs", "len/mean",
        "len/truncated_fraction", "grad_norm", "lr", "loss", "time/generate", "time/score",
        "time/reference", "time/train", "groups/zero_variance_fraction"]
for k in need:
    assert k in a[0], f"metrics.jsonl lacks {k}"
assert a[0]["logprob_mismatch/max_abs"] < 1e-4, "sampler vs trainer log-probs disagree"
strip = lambda r: {k: v for k, v in r.items() if k != "time" and not k.startswith(("time/", "throughput/"))}
for x, y in zip(a, b):
    assert strip(x) == strip(y), f"resumed run differs at step {x['step']}"
for d in ("runA", "runB"):
    assert sorted(os.listdir(f"{d}/checkpoints")) == ["step-000006", "step-000012"], os.listdir(f"{d}/checkpoints")
wa = open("runA/checkpoints/step-000012/model.safetensors", "rb").read()
wb = open("runB/checkpoints/step-000012/model.safetensors", "rb").read()
assert wa == wb, "resumed weights differ"
# micro-batching: same update within 1e-6
def tensors(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; out[k] = struct.unpack(f"<{(e - s) // 4}f", raw[8 + n + s:8 + n + e])
    return out
ta, tc = tensors("run_mb8192/checkpoints/step-000001/model.safetensors"), tensors("run_mb64/checkpoints/step-000001/model.safetensors")
worst = max(abs(x - y) for k in ta for x, y in zip(ta[k], tc[k]))
assert worst <= 1e-6, f"micro-batching changed the weights by {worst}"
s = [json.loads(l) for l in open("runA/samples.jsonl")]
assert s and {"prompt", "completion"} <= set(s[0]), s[0].keys()
print(f"train e2e: 12 steps, resume bit-identical, micro-batching max |dw| = {worst:.2g}")
PY
# PPO with a critic: the value loss falls, resume is bit-identical (critic state included)
ppo="--set algorithm.advantage=\"ppo\" --set algorithm.critic_lr=3e-3"
"$rlvr" train --config cfg.json --set logging.run_dir=runP $ppo >/dev/null 2>&1 || fail "ppo"
"$rlvr" train --config cfg.json --set logging.run_dir=runQ $ppo --set schedule.steps=6 >/dev/null 2>&1 || fail "ppo 6"
"$rlvr" train --resume runQ --set schedule.steps=12 >/dev/null 2>&1 || fail "ppo resume"
python3 - <<'PY' || exit 1
import json
a = [json.loads(l) for l in open("runP/metrics.jsonl")]
b = [json.loads(l) for l in open("runQ/metrics.jsonl")]
strip = lambda r: {k: v for k, v in r.items() if k != "time" and not k.startswith(("time/", "throughput/"))}
assert all(strip(x) == strip(y) for x, y in zip(a, b)) and len(a) == len(b) == 12, "ppo resume differs"
assert open("runP/checkpoints/step-000012/model.safetensors", "rb").read() == \
       open("runQ/checkpoints/step-000012/model.safetensors", "rb").read(), "ppo resumed weights differ"
v0 = sum(r["value/loss"] for r in a[:3]) / 3
v1 = sum(r["value/loss"] for r in a[-3:]) / 3
assert v1 < v0 / 4, f"critic did not learn: value loss {v0} -> {v1}"
print(f"ppo: value loss {v0:.4f} -> {v1:.4f}, resume bit-identical")
PY
# config errors
echo '{"model": {"path": "m"}, "data": {"train": "data.jsonl"}, "rewards": [{"name": "length"}], "rollout": {"GG": 4}}' > bad.json
"$rlvr" train --config bad.json 2>e1; [ $? -ne 0 ] && grep -q 'did you mean' e1 || { cat e1; fail "unknown key"; }
"$rlvr" train --config cfg.json --set rollout.G='"four"' 2>e2; [ $? -ne 0 ] && grep -q 'rollout.G' e2 || { cat e2; fail "wrong type"; }
"$rlvr" train --config cfg.json --set data.train=nope.jsonl 2>e3; [ $? -ne 0 ] && grep -q 'nope.jsonl' e3 || { cat e3; fail "missing file"; }
echo "rlvr train e2e checks passed"
