/*
 * engine/train/config.h — the run configuration of `rlvr train`: one JSON file with
 * sections (model, tokenizer, template, data, rollout, rewards, algorithm, optimizer,
 * schedule, checkpoint, logging, eval, dist, seed), `--set section.key=value` overrides, and
 * validation before any work starts.
 *
 * Life of a config:
 *   1. read the JSON text (train_config_load / train_config_parse),
 *   2. apply each --set assignment to the JSON tree (train_config_set),
 *   3. validate every key (unknown keys get "did you mean ...", wrong types and ranges
 *      name the key path, the value and what is allowed), fill the defaults, resolve
 *      the defaults that depend on other keys, run the cross-field checks,
 *   4. hand back a typed train_config (all strings owned by it; train_config_free).
 * train_config_to_json gives the resolved config (every default filled in) as JSON;
 * parsing that text again gives an equal struct (train_config_equal).
 *
 * Every key, its default and its meaning is listed in docs/config.md. Defaults follow
 * TRL's GRPOTrainer where it has the same knob (G 8, lr 1e-6, beta 0, clip 0.2, loss
 * "dapo" = token-mean, std over the group with eps 1e-4, temperature 1, 256 new tokens,
 * AdamW betas (0.9, 0.999), eps 1e-8, no weight decay, gradient clipping at 1.0,
 * seed 42).
 *
 * Errors: functions return 0 on success, -1 with a message in err (errlen bytes). The
 * validator reports every problem it finds, one per line, each starting with "WHERE: "
 * (the config file name, or what the caller passed as where).
 * Files named by the config are not opened here except by train_config_check_files.
 */
#ifndef RLVR_TRAIN_CONFIG_H
#define RLVR_TRAIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct cJSON cJSON;

typedef enum { TC_DEVICE_CPU, TC_DEVICE_CUDA } tc_device;
/* Weights dtype of saved checkpoints (safetensors). */
typedef enum { TC_DTYPE_BF16, TC_DTYPE_F32, TC_DTYPE_F16 } tc_dtype;
typedef enum {
    TC_TEMPLATE_AUTO,
    TC_TEMPLATE_CHATML,
    TC_TEMPLATE_QWEN3,
    TC_TEMPLATE_LLAMA3,
    TC_TEMPLATE_LLAMA31,
    TC_TEMPLATE_NONE,
    TC_TEMPLATE_CUSTOM
} tc_template;
typedef enum { TC_BAD_LINE_STOP, TC_BAD_LINE_SKIP } tc_bad_line;
typedef enum { TC_ISOLATION_THREAD, TC_ISOLATION_PROCESS } tc_isolation;
typedef enum {
    TC_ADV_GRPO,
    TC_ADV_DRGRPO,
    TC_ADV_RLOO,
    TC_ADV_REINFORCEPP,          /* "reinforce++" */
    TC_ADV_REINFORCEPP_BASELINE, /* "reinforce++-baseline" */
    TC_ADV_PPO
} tc_advantage;
typedef enum { TC_STD_GROUP, TC_STD_BATCH, TC_STD_NONE } tc_std_scope;
typedef enum {
    TC_AGG_TOKEN_MEAN,
    TC_AGG_SEQ_MEAN_TOKEN_MEAN,
    TC_AGG_SEQ_MEAN_TOKEN_SUM_NORM
} tc_loss_agg;
typedef enum { TC_KL_K1, TC_KL_K2, TC_KL_K3 } tc_kl_estimator;
typedef enum { TC_KL_IN_LOSS, TC_KL_IN_REWARD } tc_kl_in;
typedef enum { TC_OVERLONG_NONE, TC_OVERLONG_PENALTY, TC_OVERLONG_MASK } tc_overlong;
typedef enum { TC_SCHED_CONSTANT, TC_SCHED_COSINE } tc_schedule_kind;
typedef enum { TC_PROGRESS_AUTO, TC_PROGRESS_ON, TC_PROGRESS_OFF } tc_progress;
/* Library of the collectives on device memory (gradients) of a data-parallel run. */
typedef enum { TC_DIST_AUTO, TC_DIST_MPI, TC_DIST_NCCL } tc_dist_backend;

/* One reward component (rewards[i]). */
typedef struct {
    char *name;             /* built-in reward name or path to a plugin .so (required) */
    double weight;          /* multiplies the score in the total; default 1 */
    char *config_json;      /* the component's "config" object as compact JSON text
                             * (default "{}"); handed to the plugin */
    tc_isolation isolation; /* thread (default) | process */
    double timeout_s;       /* per-batch scoring deadline in seconds; default 60 */
} tc_reward;

/* Custom chat template strings (template.custom; used when template.name is custom).
 * The keys are those of chat_template_from_json (engine/text/chat_template.h); NULL
 * means not given (""). */
typedef struct {
    char *bos, *system_prefix, *system_suffix, *user_prefix, *user_suffix;
    char *assistant_prefix, *assistant_suffix, *generation_prompt, *default_system;
} tc_custom_template;

typedef struct {
    struct {
        char *path;       /* Hugging Face directory or "builtin:NAME" (required) */
        tc_dtype dtype;   /* dtype of saved weights; default bf16 */
        tc_device device; /* cpu (default) | cuda */
        int threads;      /* CPU threads; 0 = all cores */
    } model;
    struct {
        char *path; /* directory with tokenizer.json; default: model.path */
    } tokenizer;
    struct {
        tc_template name;          /* default auto */
        int enable_thinking;       /* qwen3: -1 not given (null), 0 off, 1 on */
        char *system_prompt;       /* system message put first when the prompt has none;
                                    * NULL = none */
        tc_custom_template custom; /* used when name == custom */
    } template_;
    struct {
        char *train;             /* training JSONL (required) */
        char *eval;              /* held-out JSONL; NULL = none */
        int shuffle;             /* 1 (default): a new seeded order every epoch */
        uint64_t shuffle_seed;   /* default: seed */
        int epochs;              /* passes over the data; 0 = as many as steps need;
                                  * default 1 */
        tc_bad_line on_bad_line; /* stop (default) | skip */
        char *prompt_field;      /* default "prompt" */
        char *messages_field;    /* default "messages" */
        char *answer_field;      /* default "answer" */
    } data;
    struct {
        int G;                     /* completions per prompt; default 8 */
        double temperature;        /* default 1.0 */
        int top_k;                 /* 0 = off (default) */
        double top_p;              /* 1 = off (default) */
        double min_p;              /* 0 = off (default) */
        double repetition_penalty; /* 1 = off (default) */
        int max_new_tokens;        /* default 256 */
        char **stop;               /* stop strings [n_stop]; default none */
        int n_stop;
        int32_t *stop_ids; /* extra stop token ids [n_stop_ids]; default none */
        int n_stop_ids;
        int kv_cache_mb; /* paged KV cache budget in MiB; default 1024 */
    } rollout;
    tc_reward *rewards; /* [n_rewards], at least one */
    int n_rewards;
    struct {
        tc_advantage advantage;     /* default grpo */
        tc_std_scope std_scope;     /* default group; none for drgrpo */
        double eps;                 /* std denominator epsilon; default 1e-4 (TRL) */
        tc_loss_agg loss_agg;       /* default token-mean; seq-mean-token-sum-norm for
                                     * drgrpo */
        double clip_low, clip_high; /* ratio clip 1-clip_low .. 1+clip_high; 0.2 / =low */
        double dual_clip;           /* c of the dual clip for A<0; 0 = off (default) */
        double log_ratio_clamp;     /* log-ratios clamped to +-this before exp; 20 */
        struct {
            tc_kl_estimator estimator; /* default k3 */
            double coef;               /* beta; default 0 (TRL) */
            tc_kl_in in;               /* loss (default) | reward */
            struct {
                int enabled;    /* adaptive beta controller; default off */
                double target;  /* target KL; default 0.1 */
                double horizon; /* default 10000 */
            } adaptive;
        } kl;
        double entropy_coef; /* entropy bonus; default 0 */
        int ppo_epochs;      /* mu: passes over each batch; default 1 */
        int mini_batch_size; /* prompts per optimizer step within a batch;
                              * 0 = the whole batch (default) */
        struct {
            int enabled;   /* DAPO dynamic sampling; default off */
            int max_tries; /* generation rounds per step at most; default 10 */
        } dynamic_sampling;
        struct {
            tc_overlong mode; /* none (default) | penalty | mask */
            int buffer;       /* L_b in tokens; default max_new_tokens/5 */
        } overlong;
        double gamma, lambda; /* GAE / REINFORCE++ discount; 1, 1 */
        double value_clip;    /* PPO value clip; 0.5 */
        double critic_lr;     /* PPO critic learning rate; NAN = not given */
        int ref_resync_steps; /* copy the policy into the reference every N steps;
                               * 0 = never (default) */
    } algorithm;
    struct {
        double lr;            /* peak learning rate; 1e-6 */
        double betas[2];      /* 0.9, 0.999 */
        double eps;           /* 1e-8 */
        double weight_decay;  /* 0 */
        double max_grad_norm; /* 1.0; 0 = no clipping */
    } optimizer;
    struct {
        int steps;              /* optimizer steps; 0 = until data.epochs are done */
        int prompts_per_step;   /* prompts sampled per step; default 8 */
        int warmup_steps;       /* linear warm-up from 0; default 0 */
        tc_schedule_kind kind;  /* constant (default) | cosine */
        double min_lr_ratio;    /* cosine floor as a fraction of lr; default 0 */
        int micro_batch_tokens; /* tokens per forward/backward micro-batch; 8192 */
    } schedule;
    struct {
        char *dir;     /* default: logging.run_dir + "/checkpoints" */
        int every;     /* steps between checkpoints; 0 = only at the end; 100 */
        int keep_last; /* keep this many; 0 = all; default 3 */
    } checkpoint;
    struct {
        char *run_dir;        /* default "runs/rlvr" */
        int metrics_every;    /* steps between metrics.jsonl lines; 1 */
        int samples_every;    /* steps between samples.jsonl entries; 0 = never; 10 */
        int samples_count;    /* prompts logged each time; 4 */
        int tensorboard;      /* default false */
        tc_progress progress; /* auto (default: on when stderr is a terminal) */
    } logging;
    struct {
        int every;       /* steps between evaluations on data.eval; 0 = off (default) */
        int n;           /* samples per prompt; default 1 */
        int k;           /* k of pass@k / maj@k (k <= n); default 1 */
        int max_prompts; /* first N prompts of data.eval; 0 = all (default) */
    } eval;
    struct {                     /* data-parallel runs (docs/multinode.md) */
        int zero1;               /* shard the AdamW state over the ranks; default false */
        double timeout_s;        /* deadline of every wait for another rank, seconds; 600
                                  * (the environment variable RLVR_DIST_TIMEOUT_S wins) */
        tc_dist_backend backend; /* auto (default: nccl for cuda when built with NCCL,
                                  * else mpi) | mpi | nccl; RLVR_DIST wins */
    } dist;
    uint64_t seed; /* default 42 */
} train_config;

/* Reads a JSON config file, applies the --set assignments (n_sets of them, each
 * "a.b.c=VALUE"), validates and resolves it. On failure cfg is left zeroed. */
int train_config_load(const char *path, const char *const *sets, int n_sets, train_config *cfg,
                      char *err, size_t errlen);
/* The same from JSON text; where names it in messages (e.g. the file name). */
int train_config_parse(const char *text, const char *where, const char *const *sets, int n_sets,
                       train_config *cfg, char *err, size_t errlen);
/* Validates and resolves a JSON tree (not modified). */
int train_config_from_json(const cJSON *root, const char *where, train_config *cfg, char *err,
                           size_t errlen);
/* Applies one "--set" assignment "a.b.c=VALUE" to the tree: VALUE is parsed as JSON,
 * else taken as a string; missing objects on the path are created; "rewards[1].name"
 * or "rewards.1.name" address array elements (an index equal to the length appends). */
int train_config_set(cJSON *root, const char *assignment, char *err, size_t errlen);

/* The resolved config as pretty JSON (malloc'ed, NUL-terminated); NULL on OOM. */
char *train_config_to_json(const train_config *cfg);
/* Writes train_config_to_json atomically to path (fio_write_file). */
int train_config_write(const train_config *cfg, const char *path, char *err, size_t errlen);
/* 1 when equal; else 0 and the first differing key path in diff (may be NULL). */
int train_config_equal(const train_config *a, const train_config *b, char *diff,
                       size_t difflen);
/* Checks that the files the config names exist: the model directory (config.json) or a
 * builtin: name, the tokenizer's tokenizer.json, data.train, data.eval, and reward
 * plugins given as paths (a name with '/' or ending in ".so"). */
int train_config_check_files(const train_config *cfg, char *err, size_t errlen);
/* template.custom as a cJSON object for chat_template_from_json (caller frees);
 * NULL on OOM. */
cJSON *train_config_custom_template_json(const train_config *cfg);
void train_config_free(train_config *cfg);

/* Names as written in the config ("grpo", "reinforce++", "token-mean", ...). */
const char *tc_advantage_name(tc_advantage a);
const char *tc_loss_agg_name(tc_loss_agg a);
const char *tc_std_scope_name(tc_std_scope s);
const char *tc_kl_estimator_name(tc_kl_estimator e);
const char *tc_template_name(tc_template t);
const char *tc_dtype_name(tc_dtype d);

#endif
