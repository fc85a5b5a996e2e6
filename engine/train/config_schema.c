/*
 * engine/train/config_schema.c — the table of every config key: type, place in
 * train_config, default and allowed values. docs/config.md documents the same keys
 * (tests/train_config checks that every key here appears there).
 */
#include <math.h>
#include <stddef.h>

#include "engine/train/config_internal.h"

#define OFF(member) offsetof(train_config, member)
#define ROFF(member) offsetof(tc_reward, member)
#define INF HUGE_VAL

static const char *const DEVICE_NAMES[] = {"cpu", "cuda", NULL};
static const char *const DTYPE_NAMES[] = {"bf16", "f32", "f16", NULL};
static const char *const TEMPLATE_NAMES[] = {"auto", "chatml", "qwen3", "llama3",
                                             "llama3.1", "none", "custom", NULL};
static const char *const BAD_LINE_NAMES[] = {"stop", "skip", NULL};
static const char *const ISOLATION_NAMES[] = {"thread", "process", NULL};
static const char *const ADVANTAGE_NAMES[] = {
    "grpo", "drgrpo", "rloo", "reinforce++", "reinforce++-baseline", "ppo", NULL};
static const char *const STD_SCOPE_NAMES[] = {"group", "batch", "none", NULL};
static const char *const LOSS_AGG_NAMES[] = {"token-mean", "seq-mean-token-mean",
                                             "seq-mean-token-sum-norm", NULL};
static const char *const KL_EST_NAMES[] = {"k1", "k2", "k3", NULL};
static const char *const KL_IN_NAMES[] = {"loss", "reward", NULL};
static const char *const OVERLONG_NAMES[] = {"none", "penalty", "mask", NULL};
static const char *const SCHED_NAMES[] = {"constant", "cosine", NULL};
static const char *const PROGRESS_NAMES[] = {"auto", "on", "off", NULL};
static const char *const DIST_BACKEND_NAMES[] = {"auto", "mpi", "nccl", NULL};

const char *tc_advantage_name(tc_advantage a) {
    return ADVANTAGE_NAMES[a];
}
const char *tc_loss_agg_name(tc_loss_agg a) {
    return LOSS_AGG_NAMES[a];
}
const char *tc_std_scope_name(tc_std_scope s) {
    return STD_SCOPE_NAMES[s];
}
const char *tc_kl_estimator_name(tc_kl_estimator e) {
    return KL_EST_NAMES[e];
}
const char *tc_template_name(tc_template t) {
    return TEMPLATE_NAMES[t];
}
const char *tc_dtype_name(tc_dtype d) {
    return DTYPE_NAMES[d];
}

// ---------------------------------------------------------------------------------------
// Row helpers. Ranges are inclusive unless TCF_LO_OPEN / TCF_HI_OPEN.

#define BOOL_(k, m, d)                                                                         \
    { .key = k, .type = TCF_BOOL, .off = m, .def = d }
#define INT_(k, m, d, l, h)                                                                    \
    { .key = k, .type = TCF_INT, .off = m, .def = d, .lo = l, .hi = h }
#define NUM_(k, m, d, l, h, fl)                                                                \
    { .key = k, .type = TCF_NUM, .off = m, .def = d, .lo = l, .hi = h, .flags = fl }
#define STR_(k, m, d, fl)                                                                      \
    { .key = k, .type = TCF_STR, .off = m, .def_s = d, .flags = fl }
#define ENUM_(k, m, d, n)                                                                      \
    { .key = k, .type = TCF_ENUM, .off = m, .def = d, .names = n }
#define SECTION_(k, rows)                                                                      \
    { .key = k, .type = TCF_SECTION, .sub = rows }
#define END_                                                                                   \
    { .key = NULL }

static const tc_field MODEL[] = {
    STR_("path", OFF(model.path), NULL, TCF_REQUIRED | TCF_NONEMPTY),
    ENUM_("dtype", OFF(model.dtype), TC_DTYPE_BF16, DTYPE_NAMES),
    ENUM_("device", OFF(model.device), TC_DEVICE_CPU, DEVICE_NAMES),
    INT_("threads", OFF(model.threads), 0, 0, 4096), END_};

static const tc_field TOKENIZER[] = {
    STR_("path", OFF(tokenizer.path), NULL, TCF_NONEMPTY | TCF_DERIVED), END_};

static const tc_field CUSTOM_TEMPLATE[] = {
    STR_("bos", OFF(template_.custom.bos), NULL, TCF_NULLABLE),
    STR_("system_prefix", OFF(template_.custom.system_prefix), NULL, TCF_NULLABLE),
    STR_("system_suffix", OFF(template_.custom.system_suffix), NULL, TCF_NULLABLE),
    STR_("user_prefix", OFF(template_.custom.user_prefix), NULL, TCF_NULLABLE),
    STR_("user_suffix", OFF(template_.custom.user_suffix), NULL, TCF_NULLABLE),
    STR_("assistant_prefix", OFF(template_.custom.assistant_prefix), NULL, TCF_NULLABLE),
    STR_("assistant_suffix", OFF(template_.custom.assistant_suffix), NULL, TCF_NULLABLE),
    STR_("generation_prompt", OFF(template_.custom.generation_prompt), NULL, TCF_NULLABLE),
    STR_("default_system", OFF(template_.custom.default_system), NULL, TCF_NULLABLE),
    END_};

static const tc_field TEMPLATE[] = {
    ENUM_("name", OFF(template_.name), TC_TEMPLATE_AUTO, TEMPLATE_NAMES),
    {.key = "enable_thinking",
     .type = TCF_TRIBOOL,
     .off = OFF(template_.enable_thinking),
     .def = -1,
     .flags = TCF_NULLABLE},
    STR_("system_prompt", OFF(template_.system_prompt), NULL, TCF_NULLABLE),
    SECTION_("custom", CUSTOM_TEMPLATE),
    END_};

static const tc_field DATA[] = {
    STR_("train", OFF(data.train), NULL, TCF_REQUIRED | TCF_NONEMPTY),
    STR_("eval", OFF(data.eval), NULL, TCF_NULLABLE | TCF_NONEMPTY),
    BOOL_("shuffle", OFF(data.shuffle), 1),
    {.key = "shuffle_seed",
     .type = TCF_SEED,
     .off = OFF(data.shuffle_seed),
     .flags = TCF_DERIVED},
    INT_("epochs", OFF(data.epochs), 1, 0, 1000000),
    ENUM_("on_bad_line", OFF(data.on_bad_line), TC_BAD_LINE_STOP, BAD_LINE_NAMES),
    STR_("prompt_field", OFF(data.prompt_field), "prompt", TCF_NONEMPTY),
    STR_("messages_field", OFF(data.messages_field), "messages", TCF_NONEMPTY),
    STR_("answer_field", OFF(data.answer_field), "answer", TCF_NONEMPTY),
    END_};

static const tc_field ROLLOUT[] = {
    INT_("G", OFF(rollout.G), 8, 1, 4096),
    NUM_("temperature", OFF(rollout.temperature), 1.0, 0, 100, 0),
    INT_("top_k", OFF(rollout.top_k), 0, 0, 1 << 30),
    NUM_("top_p", OFF(rollout.top_p), 1.0, 0, 1, TCF_LO_OPEN),
    NUM_("min_p", OFF(rollout.min_p), 0.0, 0, 1, TCF_HI_OPEN),
    NUM_("repetition_penalty", OFF(rollout.repetition_penalty), 1.0, 0, 100, TCF_LO_OPEN),
    INT_("max_new_tokens", OFF(rollout.max_new_tokens), 256, 1, 1 << 20),
    {.key = "stop",
     .type = TCF_STRS,
     .off = OFF(rollout.stop),
     .off2 = OFF(rollout.n_stop),
     .what = "a list of non-empty strings"},
    {.key = "stop_ids",
     .type = TCF_IDS,
     .off = OFF(rollout.stop_ids),
     .off2 = OFF(rollout.n_stop_ids),
     .lo = 0,
     .hi = 2147483647.0,
     .what = "a list of token ids (integers >= 0)"},
    INT_("kv_cache_mb", OFF(rollout.kv_cache_mb), 1024, 1, 1 << 24),
    END_};

const tc_field tc_reward_schema[] = {
    STR_("name", ROFF(name), NULL, TCF_REQUIRED | TCF_NONEMPTY),
    NUM_("weight", ROFF(weight), 1.0, -1e6, 1e6, 0),
    {.key = "config", .type = TCF_JSONOBJ, .off = ROFF(config_json), .what = "an object"},
    ENUM_("isolation", ROFF(isolation), TC_ISOLATION_THREAD, ISOLATION_NAMES),
    NUM_("timeout_s", ROFF(timeout_s), 60.0, 0, 86400, TCF_LO_OPEN),
    END_};

static const tc_field KL_ADAPTIVE[] = {
    BOOL_("enabled", OFF(algorithm.kl.adaptive.enabled), 0),
    NUM_("target", OFF(algorithm.kl.adaptive.target), 0.1, 0, 1e6, TCF_LO_OPEN),
    NUM_("horizon", OFF(algorithm.kl.adaptive.horizon), 10000, 0, 1e12, TCF_LO_OPEN), END_};

static const tc_field KL[] = {
    ENUM_("estimator", OFF(algorithm.kl.estimator), TC_KL_K3, KL_EST_NAMES),
    NUM_("coef", OFF(algorithm.kl.coef), 0.0, 0, 1e6, 0),
    ENUM_("in", OFF(algorithm.kl.in), TC_KL_IN_LOSS, KL_IN_NAMES),
    SECTION_("adaptive", KL_ADAPTIVE), END_};

static const tc_field DYNAMIC_SAMPLING[] = {
    BOOL_("enabled", OFF(algorithm.dynamic_sampling.enabled), 0),
    INT_("max_tries", OFF(algorithm.dynamic_sampling.max_tries), 10, 1, 1000), END_};

static const tc_field OVERLONG[] = {
    ENUM_("mode", OFF(algorithm.overlong.mode), TC_OVERLONG_NONE, OVERLONG_NAMES),
    {.key = "buffer",
     .type = TCF_INT,
     .off = OFF(algorithm.overlong.buffer),
     .lo = 1,
     .hi = 1 << 20,
     .flags = TCF_DERIVED},
    END_};

static const tc_field ALGORITHM[] = {
    ENUM_("advantage", OFF(algorithm.advantage), TC_ADV_GRPO, ADVANTAGE_NAMES),
    {.key = "std_scope",
     .type = TCF_ENUM,
     .off = OFF(algorithm.std_scope),
     .def = TC_STD_GROUP,
     .names = STD_SCOPE_NAMES,
     .flags = TCF_DERIVED},
    NUM_("eps", OFF(algorithm.eps), 1e-4, 0, 1, TCF_LO_OPEN),
    {.key = "loss_agg",
     .type = TCF_ENUM,
     .off = OFF(algorithm.loss_agg),
     .def = TC_AGG_TOKEN_MEAN,
     .names = LOSS_AGG_NAMES,
     .flags = TCF_DERIVED},
    NUM_("clip_low", OFF(algorithm.clip_low), 0.2, 0, 1, TCF_HI_OPEN),
    NUM_("clip_high", OFF(algorithm.clip_high), 0.2, 0, 100, TCF_DERIVED),
    NUM_("dual_clip", OFF(algorithm.dual_clip), 0.0, 0, 1e6, 0),
    NUM_("log_ratio_clamp", OFF(algorithm.log_ratio_clamp), 20.0, 0, 80, TCF_LO_OPEN),
    SECTION_("kl", KL),
    NUM_("entropy_coef", OFF(algorithm.entropy_coef), 0.0, -1e3, 1e3, 0),
    INT_("ppo_epochs", OFF(algorithm.ppo_epochs), 1, 1, 1000),
    INT_("mini_batch_size", OFF(algorithm.mini_batch_size), 0, 0, 1 << 24),
    SECTION_("dynamic_sampling", DYNAMIC_SAMPLING),
    SECTION_("overlong", OVERLONG),
    NUM_("gamma", OFF(algorithm.gamma), 1.0, 0, 1, 0),
    NUM_("lambda", OFF(algorithm.lambda), 1.0, 0, 1, 0),
    NUM_("value_clip", OFF(algorithm.value_clip), 0.5, 0, 1e6, TCF_LO_OPEN),
    NUM_("critic_lr", OFF(algorithm.critic_lr), NAN, 0, 1, TCF_LO_OPEN | TCF_NULLABLE),
    INT_("ref_resync_steps", OFF(algorithm.ref_resync_steps), 0, 0, 1 << 30),
    END_};

static const tc_field OPTIMIZER[] = {
    NUM_("lr", OFF(optimizer.lr), 1e-6, 0, 1, TCF_LO_OPEN),
    {.key = "betas",
     .type = TCF_PAIR,
     .off = OFF(optimizer.betas),
     .def = 0.9,
     .def2 = 0.999,
     .lo = 0,
     .hi = 1,
     .flags = TCF_HI_OPEN,
     .what = "a list of two numbers in [0, 1)"},
    NUM_("eps", OFF(optimizer.eps), 1e-8, 0, 1, TCF_LO_OPEN),
    NUM_("weight_decay", OFF(optimizer.weight_decay), 0.0, 0, 1, 0),
    NUM_("max_grad_norm", OFF(optimizer.max_grad_norm), 1.0, 0, 1e9, 0),
    END_};

static const tc_field SCHEDULE[] = {
    INT_("steps", OFF(schedule.steps), 0, 0, 1 << 30),
    INT_("prompts_per_step", OFF(schedule.prompts_per_step), 8, 1, 1 << 24),
    INT_("warmup_steps", OFF(schedule.warmup_steps), 0, 0, 1 << 30),
    ENUM_("kind", OFF(schedule.kind), TC_SCHED_CONSTANT, SCHED_NAMES),
    NUM_("min_lr_ratio", OFF(schedule.min_lr_ratio), 0.0, 0, 1, 0),
    INT_("micro_batch_tokens", OFF(schedule.micro_batch_tokens), 8192, 1, 1 << 30),
    END_};

static const tc_field CHECKPOINT[] = {
    STR_("dir", OFF(checkpoint.dir), NULL, TCF_NONEMPTY | TCF_DERIVED),
    INT_("every", OFF(checkpoint.every), 100, 0, 1 << 30),
    INT_("keep_last", OFF(checkpoint.keep_last), 3, 0, 1 << 20), END_};

static const tc_field LOGGING[] = {
    STR_("run_dir", OFF(logging.run_dir), "runs/rlvr", TCF_NONEMPTY),
    INT_("metrics_every", OFF(logging.metrics_every), 1, 1, 1 << 30),
    INT_("samples_every", OFF(logging.samples_every), 10, 0, 1 << 30),
    INT_("samples_count", OFF(logging.samples_count), 4, 1, 1 << 20),
    BOOL_("tensorboard", OFF(logging.tensorboard), 0),
    ENUM_("progress", OFF(logging.progress), TC_PROGRESS_AUTO, PROGRESS_NAMES),
    END_};

static const tc_field EVAL[] = {
    INT_("every", OFF(eval.every), 0, 0, 1 << 30), INT_("n", OFF(eval.n), 1, 1, 1 << 20),
    INT_("k", OFF(eval.k), 1, 1, 1 << 20),
    INT_("max_prompts", OFF(eval.max_prompts), 0, 0, 1 << 30), END_};

static const tc_field DIST[] = {
    BOOL_("zero1", OFF(dist.zero1), 0),
    NUM_("timeout_s", OFF(dist.timeout_s), 600.0, 0, 1e7, TCF_LO_OPEN),
    ENUM_("backend", OFF(dist.backend), TC_DIST_AUTO, DIST_BACKEND_NAMES), END_};

const tc_field tc_schema[] = {
    SECTION_("model", MODEL),
    SECTION_("tokenizer", TOKENIZER),
    SECTION_("template", TEMPLATE),
    SECTION_("data", DATA),
    SECTION_("rollout", ROLLOUT),
    {.key = "rewards",
     .type = TCF_REWARDS,
     .off = OFF(rewards),
     .off2 = OFF(n_rewards),
     .sub = tc_reward_schema,
     .flags = TCF_REQUIRED,
     .what = "a non-empty list of reward objects {\"name\", \"weight\", \"config\", "
             "\"isolation\", \"timeout_s\"}"},
    SECTION_("algorithm", ALGORITHM),
    SECTION_("optimizer", OPTIMIZER),
    SECTION_("schedule", SCHEDULE),
    SECTION_("checkpoint", CHECKPOINT),
    SECTION_("logging", LOGGING),
    SECTION_("eval", EVAL),
    SECTION_("dist", DIST),
    {.key = "seed", .type = TCF_SEED, .off = OFF(seed), .def = 42},
    END_};
