/*
 * engine/train/trainer_internal.h — the trainer's state, shared by trainer.c (setup,
 * loop, checkpoints) and trainer_step.c (one RL step).
 */
#ifndef RLVR_TRAIN_TRAINER_INTERNAL_H
#define RLVR_TRAIN_TRAINER_INTERNAL_H

#include <stdint.h>

#include "engine/data/dataset.h"
#include "engine/dist/comm.h"
#include "engine/model/model.h"
#include "engine/reward/reward_host.h"
#include "engine/rl/kl.h"
#include "engine/rollout/sampler.h"
#include "engine/runlog/metrics.h"
#include "engine/runlog/progress.h"
#include "engine/runlog/samples.h"
#include "engine/runlog/tfevents.h"
#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"
#include "engine/train/config.h"
#include "engine/train/critic.h"
#include "engine/train/optimizer.h"
#include "engine/train/trainer.h"

/* A dataset example rendered and tokenized once (cached by example index). */
typedef struct {
    int32_t *ids;
    int n;
    char *text; /* the rendered prompt */
} prompt_cache;

/* Backend scratch for the per-token loss of one micro-batch. */
typedef struct {
    int cap;
    float *old_lp, *ref_lp, *adv, *w, *loss, *kl, *clipped, *dlogp, *dent;
} loss_scratch;

struct trainer {
    train_config cfg;
    dist_comm *comm; /* data-parallel ranks (not owned); NULL = one process */
    int rank, world;
    rlvr_backend *be;
    model *policy, *ref;
    tok_tokenizer *tok;
    chat_template *tpl;
    dataset *data;
    dataset *eval_data; /* data.eval when eval.every > 0 */
    reward_host *rewards;
    sampler *smp;
    optimizer opt;      /* the whole model, or this rank's shard [opt.lo, opt.hi) (zero1) */
    int zero1;          /* dist.zero1 with world > 1: AdamW state sharded over the ranks */
    critic crit;        /* PPO's value model (crit.m == NULL otherwise) */
    int has_opt;
    rl_kl_ctl kl;
    prompt_cache *cache; /* [dataset_size] */
    loss_scratch ls;
    char run_dir[2048], ckpt_dir[2048];
    metrics_log *metrics;
    samples_log *samples;
    tfevents *tb;
    progress prog;
    int prog_on;
    long step;           /* steps completed */
    int32_t *eos;        /* EOS ids (tokenizer) */
    int n_eos;
    const char **stop_strings;
    double t_start;
};

/* One RL step (step number t->step + 1), filling r with its metrics. Returns 0, 1 when
 * the data is exhausted (nothing done), -1 on error. */
int trainer_do_step(trainer *t, metrics_rec *r, char *err, size_t errlen);

/* One optimizer step from the policy's accumulated gradients (this rank's; summed over
 * the ranks here): all-reduce + replicated AdamW, or with ZeRO-1 reduce-scatter, AdamW on
 * this rank's shard, all-gather of the updated weights. *grad_norm: the global norm of
 * the summed gradient before clipping. Gradients are left as they are. */
int trainer_update(trainer *t, double lr, double *grad_norm, char *err, size_t errlen);

/* The learning rate of a step (1-based): linear warm-up, then constant or cosine. */
double trainer_lr(const train_config *c, long step);

#endif
