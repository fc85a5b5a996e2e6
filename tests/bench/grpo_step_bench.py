#!/usr/bin/env python3
# tests/bench/grpo_step_bench.py — one full GRPO step, rlvr (`rlvr train`) vs TRL's
# GRPOTrainer on PyTorch CPU, side by side. A benchmark script, not a test.
#
# Both sides get the same things:
#   * weights: one random-initialised Qwen2-shaped model (hidden 384, 6 layers, 6/2 heads,
#     head_dim 64, intermediate 1024, vocab 262, tied embeddings, 9,546,624 parameters, fp32)
#     written once by transformers into --model-dir together with the examples/arith
#     tokenizer files; rlvr and TRL load that same directory (TRL's tokenizer is
#     PreTrainedTokenizerFast(tokenizer_file=DIR/tokenizer.json), which gives rlvr's ids);
#   * prompts: examples/arith/train.jsonl, used as plain text (rlvr template "none"; TRL gets
#     non-conversational prompts, so it applies no chat template), shuffled by each side's
#     own seeded sampler (so the prompts of step k differ, their distribution does not);
#   * G, prompts per step, max completion length, temperature (top-k/top-p off), EOS 261;
#   * the loss: GRPO advantages (R - mean_G)/(std_G + 1e-4), clip 0.2 / 0.28, token-mean
#     aggregation (TRL loss_type "dapo"), k3 KL in the loss with beta --beta against a
#     frozen reference copy (beta 0: no reference model on either side), one pass (mu 1),
#     one optimizer step per batch, AdamW lr --lr constant, no warm-up, grad clip 1.0;
#   * threads: torch.set_num_threads(T) + OMP_NUM_THREADS=T for TRL, model.threads T +
#     OMP_NUM_THREADS=T for rlvr (rlvr's reward host adds its own scoring threads);
#   * the reward: rlvr's built-in `math_answer` vs last_number_reward below (the last
#     decimal number in the completion equals the answer, compared as exact fractions).
#     They agree on plain numbers; they can disagree where math_answer understands more
#     (\boxed{}, "answer is", `#### x`, <answer>, 1,234 thousands separators, fractions,
#     unicode minus, %, ...). The script counts disagreements on rlvr's own completions
#     (samples.jsonl) and prints the count.
#
# Timing (model loading excluded on both sides; a step is one optimizer step):
#   rlvr: RUN_DIR/metrics.jsonl time/generate, time/score, time/reference, time/train,
#         time/step, as the trainer measures them (trainer_step.c).
#   TRL:  wall clock measured in this script, in the TRL worker process:
#         step      = Trainer.get_batch_samples (fetching the step's prompts) + on_step_begin
#                     → on_step_end callback (generation, scoring, reference, loss, backward,
#                     clipping, optimizer step, zero_grad; TRL's logging comes after, like
#                     rlvr's metrics writing, and is excluded on both sides);
#         generate  = GRPOTrainer._generate (prompt tokenization, transformers generate,
#                     decoding; rlvr's prompt ids are cached, its decoding is in generate);
#         score     = GRPOTrainer._calculate_rewards;
#         reference = GRPOTrainer._get_per_token_logps_and_entropies called on ref_model;
#         train     = step - GRPOTrainer._prepare_inputs - get_batch_samples (loss forward,
#                     backward, clipping, AdamW);
#         other     = step - generate - score - reference - train (padding, advantages,
#                     bookkeeping); rlvr's "other" is its time/step minus the four parts.
# Each round runs one rlvr job and one TRL job (interleaved, the order alternating by
# round) of --warmup + --steps steps; the warm-up steps are dropped and the medians (and
# the minimum step time, less sensitive to other processes) are over all measured steps
# of all rounds. The load average is printed before and after
# every run (the machine is shared).
#
# usage: python3 tests/bench/grpo_step_bench.py --rlvr build/rlvr [--threads 2] [-G 8]
#          [--prompts-per-step 32] [--max-new-tokens 8] [--temperature 1.0] [--beta 0.001]
#          [--lr 3e-4] [--warmup 1] [--steps 5] [--rounds 2] [--model-dir DIR] [--seed 42]
# Prints one JSON line per run, a JSON line per engine with the medians, and the ratio
# TRL time per step / rlvr time per step. Exit status 77 when torch/transformers/trl/
# datasets are not importable.
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
NUM = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # ASCII digits only (\d would take U+06F9)


def last_number_reward(completions, answer, **kwargs):
    """1.0 when the last ASCII decimal number in the completion equals the answer, else 0.0."""
    out = []
    for text, ans in zip(completions, answer):
        nums = NUM.findall(text)
        try:
            out.append(1.0 if nums and Fraction(nums[-1]) == Fraction(str(ans).strip()) else 0.0)
        except ValueError:
            out.append(0.0)
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(description="one GRPO step: rlvr vs TRL GRPOTrainer (CPU)")
    ap.add_argument("--rlvr", help="the rlvr executable")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-G", type=int, default=8)
    ap.add_argument("--prompts-per-step", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--beta", type=float, default=0.001)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", default=os.path.join(ROOT, "examples/arith/train.jsonl"))
    ap.add_argument("--tokenizer-dir", default=os.path.join(ROOT, "examples/arith"))
    ap.add_argument("--model-dir", default=os.path.join(tempfile.gettempdir(),
                                                        "rlvr_grpo_bench_qwen2_9m"))
    ap.add_argument("--trl-worker", metavar="OUT_JSON", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    for k in ("threads", "G", "prompts_per_step", "max_new_tokens", "steps", "rounds"):
        if getattr(a, k) < 1:
            ap.error(f"--{k.replace('_', '-')} must be a positive integer, got {getattr(a, k)}")
    if a.warmup < 0:
        ap.error(f"--warmup must be >= 0, got {a.warmup}")
    if a.G < 2:
        ap.error(f"-G must be >= 2 (GRPO's baseline is the group), got {a.G}")
    if not a.trl_worker and not a.rlvr:
        ap.error("--rlvr PATH is required")
    return a


def load_avg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def make_model(a):
    """Writes the shared weights + tokenizer once (seeded, so rewritable identically)."""
    if os.path.exists(os.path.join(a.model_dir, "model.safetensors")):
        return
    import torch
    import transformers
    cfg = transformers.Qwen2Config(vocab_size=262, hidden_size=384, intermediate_size=1024,
                                   num_hidden_layers=6, num_attention_heads=6,
                                   num_key_value_heads=2, max_position_embeddings=512,
                                   rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True,
                                   bos_token_id=None, eos_token_id=261, pad_token_id=261)
    torch.manual_seed(0)
    tmp = a.model_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(tmp)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.tokenizer_dir, f), os.path.join(tmp, f))
    shutil.rmtree(a.model_dir, ignore_errors=True)
    os.rename(tmp, a.model_dir)
    print(f"grpo_step_bench: wrote the shared weights to {a.model_dir}", file=sys.stderr)


# ------------------------------------------------------------------ TRL worker process
def trl_worker(a):
    import time
    from collections import defaultdict
    import torch
    torch.set_num_threads(a.threads)
    import datasets
    import transformers
    import trl
    from transformers import PreTrainedTokenizerFast, TrainerCallback

    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(a.model_dir, "tokenizer.json"),
                                  eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    ds = datasets.load_dataset("json", data_files=a.data, split="train")
    outdir = tempfile.mkdtemp(prefix="grpo_bench_trl_")
    n_steps = a.warmup + a.steps
    P, G = a.prompts_per_step, a.G
    args = trl.GRPOConfig(
        output_dir=outdir, use_cpu=True, bf16=False, fp16=False, report_to="none",
        save_strategy="no", logging_steps=1, disable_tqdm=True, seed=a.seed,
        max_steps=n_steps, per_device_train_batch_size=P * G, gradient_accumulation_steps=1,
        steps_per_generation=1, num_iterations=1, num_generations=G,
        max_completion_length=a.max_new_tokens, temperature=a.temperature, top_k=0, top_p=1.0,
        beta=a.beta, epsilon=0.2, epsilon_high=0.28, loss_type="dapo", scale_rewards="group",
        learning_rate=a.lr, lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0,
        weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
        dataloader_num_workers=0, log_completions=False,
        model_init_kwargs={"dtype": torch.float32})
    scored = []  # completions per reward call: P*G when TRL's batch is the one asked for

    def reward(completions, answer, **kw):
        scored.append(len(completions))
        return last_number_reward(completions, answer)
    reward.__name__ = "last_number_reward"
    trainer = trl.GRPOTrainer(model=a.model_dir, reward_funcs=reward, args=args,
                              train_dataset=ds, processing_class=tok)

    acc = defaultdict(float)
    steps = []

    def timed(name, fn):
        def wrapper(*args_, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*args_, **kw)
            finally:
                acc[name] += time.perf_counter() - t0
        return wrapper

    trainer._generate = timed("generate", trainer._generate)
    trainer._calculate_rewards = timed("score", trainer._calculate_rewards)
    trainer._prepare_inputs = timed("prepare", trainer._prepare_inputs)
    trainer.get_batch_samples = timed("fetch", trainer.get_batch_samples)
    lp = trainer._get_per_token_logps_and_entropies

    def logps(model, *args_, **kw):
        name = "reference" if model is trainer.ref_model else "policy_logps"
        return timed(name, lp)(model, *args_, **kw)
    trainer._get_per_token_logps_and_entropies = logps

    class StepTimer(TrainerCallback):
        t0 = None

        def on_step_begin(self, args_, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args_, state, control, **kw):
            step = time.perf_counter() - self.t0 + acc["fetch"]
            prep = acc["prepare"] + acc["fetch"]
            rec = {"step": step, "generate": acc["generate"], "score": acc["score"],
                   "reference": acc["reference"], "train": step - prep}
            rec["other"] = step - rec["generate"] - rec["score"] - rec["reference"] - rec["train"]
            steps.append(rec)
            acc.clear()
    trainer.add_callback(StepTimer())
    trainer.train()
    tokens = [h.get("completions/mean_length") for h in trainer.state.log_history
              if "completions/mean_length" in h]
    rewards = [h.get("reward") for h in trainer.state.log_history if "reward" in h]
    info = {"trl": trl.__version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "torch_threads": torch.get_num_threads(),
            "optimizer": type(trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer")
                              else trainer.optimizer).__name__,
            "optim": str(args.optim), "ref_model": trainer.ref_model is not None,
            "params": sum(p.numel() for p in trainer.model.parameters()),
            "completions_per_step": scored, "completion_mean_len": tokens,
            "reward_mean": rewards, "steps": steps}
    with open(a.trl_worker, "w") as f:
        json.dump(info, f)
    shutil.rmtree(outdir, ignore_errors=True)


def run_trl(a, env):
    out = tempfile.mktemp(suffix=".json")
    cmd = [sys.executable, os.path.abspath(__file__), "--trl-worker", out]
    for k in ("threads", "prompts_per_step", "max_new_tokens", "temperature", "beta", "lr",
              "warmup", "steps", "seed", "data", "model_dir"):
        cmd += ["--" + k.replace("_", "-"), str(getattr(a, k))]
    cmd += ["-G", str(a.G)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-4000:])
        sys.exit(f"grpo_step_bench: the TRL run failed (exit {r.returncode})")
    with open(out) as f:
        info = json.load(f)
    os.unlink(out)
    return info


# ------------------------------------------------------------------ rlvr run
def run_rlvr(a, env, disagree):
    run_dir = tempfile.mkdtemp(prefix="grpo_bench_rlvr_")
    P = a.prompts_per_step
    cfg = {
        "model": {"path": a.model_dir, "dtype": "f32", "threads": a.threads},
        "template": {"name": "none"},
        "data": {"train": a.data, "epochs": 0},
        "rollout": {"G": a.G, "temperature": a.temperature, "max_new_tokens": a.max_new_tokens},
        "rewards": [{"name": "math_answer", "weight": 1.0}],
        "algorithm": {"advantage": "grpo", "std_scope": "group", "eps": 1e-4,
                      "loss_agg": "token-mean", "clip_low": 0.2, "clip_high": 0.28,
                      "kl": {"estimator": "k3", "coef": a.beta, "in": "loss"},
                      "ppo_epochs": 1},
        "optimizer": {"lr": a.lr, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0,
                      "max_grad_norm": 1.0},
        "schedule": {"steps": a.warmup + a.steps, "prompts_per_step": P, "warmup_steps": 0,
                     "kind": "constant"},
        "checkpoint": {"every": 0, "keep_last": 1},
        "logging": {"run_dir": os.path.join(run_dir, "run"), "samples_every": 1,
                    "samples_count": P, "progress": "off"},
        "seed": a.seed,
    }
    cfg_path = os.path.join(run_dir, "cfg.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    r = subprocess.run([a.rlvr, "train", "--config", cfg_path], capture_output=True, text=True,
                       env=env)
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-4000:])
        sys.exit(f"grpo_step_bench: rlvr train failed (exit {r.returncode})")
    steps, lens, rewards = [], [], []
    with open(os.path.join(run_dir, "run", "metrics.jsonl")) as f:
        for line in f:
            m = json.loads(line)
            if "time/train" not in m:
                continue
            rec = {"step": m["time/step"], "generate": m["time/generate"], "score": m["time/score"],
                   "reference": m["time/reference"], "train": m["time/train"]}
            rec["other"] = rec["step"] - rec["generate"] - rec["score"] - rec["reference"] - rec["train"]
            steps.append(rec)
            lens.append(m.get("len/mean"))
            rewards.append(m.get("reward/mean"))
    answers = {}
    with open(a.data) as f:
        for line in f:
            if line.strip():
                ex = json.loads(line)
                answers[ex["prompt"]] = ex["answer"]
    with open(os.path.join(run_dir, "run", "samples.jsonl")) as f:
        for line in f:
            disagree["checked"] += count_disagreements(json.loads(line), answers, disagree)
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"completion_mean_len": lens, "reward_mean": rewards, "steps": steps}


def count_disagreements(entry, answers, disagree):
    """Scores one logged rlvr completion (a samples.jsonl line) with last_number_reward."""
    ma = entry.get("rewards", {}).get("math_answer")
    if entry.get("prompt") not in answers or ma is None:
        return 0
    ans = answers[entry["prompt"]]
    py = last_number_reward([entry.get("completion", "")], [ans])[0]
    if (py > 0.5) != (ma > 0.5):
        disagree["mismatch"] += 1
        if len(disagree["examples"]) < 3:
            disagree["examples"].append({"completion": entry.get("completion"), "answer": ans,
                                         "math_answer": ma, "last_number": py})
    return 1


PARTS = ("step", "generate", "score", "reference", "train", "other")


def summarize(runs, warmup):
    measured = [s for r in runs for s in r["steps"][warmup:]]
    out = {k: statistics.median(s[k] for s in measured) for k in PARTS}
    out["step_min"] = min(s["step"] for s in measured)
    out["measured_steps"] = len(measured)
    out["step_per_run"] = [round(statistics.median(s["step"] for s in r["steps"][warmup:]), 4)
                           for r in runs]
    return out


def main():
    a = parse_args(sys.argv[1:])
    try:
        import datasets  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:
        print(f"grpo_step_bench: skipping, {e}", file=sys.stderr)
        sys.exit(77)
    if a.trl_worker:
        trl_worker(a)
        return
    a.data = os.path.abspath(a.data)
    a.model_dir = os.path.abspath(a.model_dir)
    make_model(a)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), TOKENIZERS_PARALLELISM="false")
    setup = {"threads": a.threads, "G": a.G, "prompts_per_step": a.prompts_per_step,
             "max_new_tokens": a.max_new_tokens, "temperature": a.temperature, "beta": a.beta,
             "lr": a.lr, "warmup": a.warmup, "steps": a.steps, "rounds": a.rounds,
             "model_dir": a.model_dir, "nproc": os.cpu_count()}
    print(json.dumps({"setup": setup}))
    runs = {"rlvr": [], "trl": []}
    disagree = {"checked": 0, "mismatch": 0, "examples": []}
    for r in range(a.rounds):
        order = ("rlvr", "trl") if r % 2 == 0 else ("trl", "rlvr")
        for side in order:
            before = load_avg()
            res = run_rlvr(a, env, disagree) if side == "rlvr" else run_trl(a, env)
            res["load_before"], res["load_after"] = before, load_avg()
            runs[side].append(res)
            line = {"engine": side, "round": r, "load_before": before, "load_after": res["load_after"],
                    "step_s": [round(s["step"], 4) for s in res["steps"]],
                    "completion_mean_len": res["completion_mean_len"]}
            print(json.dumps(line), flush=True)
    rl, tr = summarize(runs["rlvr"], a.warmup), summarize(runs["trl"], a.warmup)
    t0 = runs["trl"][0]
    print(json.dumps({"engine": "rlvr", "median_s": {k: round(rl[k], 4) for k in PARTS},
                      "step_min_s": round(rl["step_min"], 4),
                      "measured_steps": rl["measured_steps"], "step_median_per_run": rl["step_per_run"],
                      "reward_vs_last_number": {"checked": disagree["checked"],
                                                "disagree": disagree["mismatch"],
                                                "examples": disagree["examples"]}}))
    print(json.dumps({"engine": "trl-grpo", "trl": t0["trl"], "torch": t0["torch"],
                      "transformers": t0["transformers"], "torch_threads": t0["torch_threads"],
                      "optimizer": t0["optimizer"], "optim": t0["optim"],
                      "ref_model": t0["ref_model"], "params": t0["params"],
                      "completions_per_step": sorted(set(t0["completions_per_step"])),
                      "median_s": {k: round(tr[k], 4) for k in PARTS},
                      "step_min_s": round(tr["step_min"], 4),
                      "measured_steps": tr["measured_steps"], "step_median_per_run": tr["step_per_run"]}))
    print(json.dumps({"ratio_trl_over_rlvr_step": round(tr["step"] / rl["step"], 2),
                      "ratio_trl_over_rlvr_step_min": round(tr["step_min"] / rl["step_min"], 2),
                      "ratio_by_part": {k: (round(tr[k] / rl[k], 2) if rl[k] > 1e-4 else None)
                                        for k in ("generate", "score", "reference", "train")},
                      "load_end": load_avg()}))


if __name__ == "__main__":
    main()
