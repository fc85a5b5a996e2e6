/*
 * engine/train/sft.h — supervised fine-tuning (SFT) on tokenised prompt/completion pairs.
 *
 * Objective: loss = −(1/N) Σ log p(c_j | prompt, c_<j) over the N completion tokens of a
 * batch (prompt tokens are context only, never targets). One optimizer step per packed
 * batch: examples are taken in a seeded order and packed end to end (model_batch
 * offsets, no padding) while the batch holds at most batch_tokens tokens; batches run on
 * across epoch boundaries. AdamW (engine/train/optimizer.h) with a linear warm-up over
 * warmup_steps to lr, then a cosine decay to lr·min_lr_ratio at the last step.
 *
 * Order: epoch e visits the examples in a Fisher–Yates shuffle (for i = n−1 down to 1:
 * swap i with splitmix64() mod (i+1)) of 0..n−1 from a splitmix64 stream seeded with
 * seed·0x9E3779B97F4A7C15 + e; the same seed always gives the same batches, losses and
 * weights on the CPU.
 *
 * Errors: 0 on success, -1 with a message in err (errlen bytes) naming the example and
 * what was expected.
 */
#ifndef RLVR_TRAIN_SFT_H
#define RLVR_TRAIN_SFT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/model.h"
#include "engine/train/optimizer.h"

typedef struct {
    const int32_t *ids; /* [n]: the prompt's tokens, then the completion's (EOS included) */
    int n;              /* tokens, 2..batch_tokens */
    int n_prompt;       /* ids[0..n_prompt) are context (>= 1); targets are ids[n_prompt..n) */
} sft_example;

typedef struct {
    int steps;          /* optimizer steps; 0: as many as `epochs` passes take */
    int epochs;         /* passes over the data when steps == 0 (>= 1) */
    int batch_tokens;   /* tokens per packed batch, one optimizer step each */
    float lr;           /* peak learning rate */
    float min_lr_ratio; /* the cosine ends at lr * min_lr_ratio */
    int warmup_steps;   /* linear warm-up from lr/warmup_steps to lr */
    uint64_t seed;      /* example order */
    int report_every;   /* call the report function every this many steps (and at the end) */
    optim_config optim;
} sft_config;

/* Defaults: 1 epoch, 4096 tokens per batch, lr 1e-3, min_lr_ratio 0.1, 10 warm-up steps,
 * seed 0, a report every 10 steps, AdamW defaults with weight decay 0.01. */
sft_config sft_default_config(void);

typedef struct {
    int step, total_steps; /* 1-based step just taken, of total_steps */
    int epoch;             /* epoch (0-based) of the batch's last example */
    double loss;           /* this step's batch loss (before the update) */
    double loss_avg;       /* mean batch loss over the steps since the last report */
    double grad_norm;      /* global gradient norm before clipping */
    float lr;              /* learning rate of this step */
    long tokens;           /* tokens trained on so far */
    double elapsed_s;      /* wall time since sft_train started */
} sft_progress;

/* Called every report_every steps and after the last one; a non-zero return stops the
 * run early (sft_train then returns 0). */
typedef int (*sft_report_fn)(void *ctx, const sft_progress *p);

typedef struct {
    int steps;                    /* steps taken */
    double first_loss, last_loss; /* batch loss of the first and of the last step */
    long tokens;                  /* tokens trained on */
    double elapsed_s;
} sft_result;

/* Learning rate of 0-based step `step` of `total` under cfg's warm-up + cosine schedule. */
float sft_lr_at(const sft_config *cfg, int step, int total);
/* Checks the examples and cfg against m; *total_steps = the steps sft_train will take. */
int sft_plan(const model *m, const sft_example *ex, int n, const sft_config *cfg,
             int *total_steps, char *err, size_t errlen);
/* Trains m (gradients are enabled here when they are off). report may be NULL. */
int sft_train(model *m, const sft_example *ex, int n, const sft_config *cfg,
              sft_report_fn report, void *ctx, sft_result *res, char *err, size_t errlen);
/* Mean completion-token negative log-likelihood of the examples under m (no update),
 * in packed batches of at most batch_tokens tokens, file order. */
int sft_eval_loss(model *m, const sft_example *ex, int n, int batch_tokens, double *loss,
                  char *err, size_t errlen);

#endif
