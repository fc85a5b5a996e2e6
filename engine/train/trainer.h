/*
 * engine/train/trainer.h — `rlvr train`: the RL loop of shared/DESIGN.md over the model,
 * tokenizer, sampler, rewards and RL math. One step:
 *   prompts (dataset) → chat template → G completions each (sampler) → rewards (reward
 *   host, off the training thread) → [DAPO dynamic sampling, overlong shaping] →
 *   advantages (GRPO / Dr.GRPO / RLOO / REINFORCE++ [-baseline]) → reference log-probs
 *   (frozen copy of the initial weights) and, when the batch is used more than once,
 *   old log-probs → μ epochs over mini-batches of packed sequences → clipped policy loss
 *   + KL anchor (+ entropy bonus) with the aggregation's global denominator →
 *   gradient accumulation over micro-batches → global-norm clipping → AdamW with
 *   warm-up and constant/cosine schedule.
 * Every step writes a metrics.jsonl line (and TensorBoard scalars when enabled),
 * samples.jsonl every N steps, a progress line on a terminal, and checkpoints every N
 * steps and at the end (resumable with --resume: bit-identical on the CPU). Under mpirun
 * the step is data-parallel (trainer_create_dist).
 */
#ifndef RLVR_TRAIN_TRAINER_H
#define RLVR_TRAIN_TRAINER_H

#include <stddef.h>

#include "engine/dist/comm.h"
#include "engine/train/config.h"

typedef struct trainer trainer;

/* Builds everything the run needs (validates files, loads the model twice — policy and
 * reference — the tokenizer, data and rewards), creates the run directory and writes
 * the resolved config there. With resume, restores the newest complete checkpoint of
 * the run directory (an error when there is none). */
int trainer_create(const train_config *cfg, int resume, trainer **out, char *err,
                   size_t errlen);
/* The same, data-parallel over the ranks of comm (not owned; NULL = one process). Every
 * rank reads the same data in the same order and takes its share of each step's prompts
 * by whole groups (see docs/multinode.md), so the global batch does not depend on the
 * world size; gradients are summed across ranks before the (replicated) AdamW step.
 * Rank 0 alone writes the run directory (config, logs, checkpoints). */
int trainer_create_dist(const train_config *cfg, int resume, dist_comm *comm, trainer **out,
                        char *err, size_t errlen);
/* Runs until schedule.steps (or the data is exhausted). */
int trainer_run(trainer *t, char *err, size_t errlen);
/* The step the next trainer_run starts after (0 for a fresh run). */
long trainer_step(const trainer *t);
void trainer_free(trainer *t);

#endif
