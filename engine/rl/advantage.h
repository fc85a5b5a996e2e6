/*
 * engine/rl/advantage.h — per-completion advantages from scalar rewards with group
 * structure (rl_common.h): GRPO (std over the group, over the batch, or none = Dr.GRPO)
 * and RLOO. Outputs are one value per completion; rl_broadcast (rl_common.h) spreads them
 * over the tokens of a packed batch. Token-level estimators (REINFORCE++, GAE) are in
 * returns.h. Formulas and recipes: docs/algorithms.md.
 */
#ifndef RLVR_RL_ADVANTAGE_H
#define RLVR_RL_ADVANTAGE_H

#include "engine/rl/rl_common.h"

/* Which standard deviation divides R_i − mean_group(R) in GRPO. */
typedef enum {
    RL_SCALE_GROUP =
        0, /* std of the completion's group (GRPO paper; TRL scale_rewards="group") */
    RL_SCALE_BATCH =
        1,            /* std of all n rewards; the mean is still the group mean (TRL "batch") */
    RL_SCALE_NONE = 2 /* no division: A = R − mean_group (Dr.GRPO; TRL "none") */
} rl_std_scale;

typedef struct {
    rl_std_scale scale;
    /* 1: unbiased std, Σ(R − mean)² / (m − 1) under the root (torch.std's default, used by
     * TRL, verl and OpenRLHF); 0: biased, / m (numpy's default). A set of m = 1 reward
     * has std 0 either way. */
    int unbiased_std;
    float eps; /* A = (R − mean) / (std + eps); TRL 1e-4, verl 1e-6 */
} rl_grpo_params;

/* Defaults: group scale, unbiased std, eps = 1e-4 — TRL's GRPOTrainer exactly, which is
 * what most users compare against (verl differs only in eps). */
rl_grpo_params rl_grpo_defaults(void);

/* GRPO advantages. adv [g->n], rewards [g->n]. A group of one completion gets A = 0 (its
 * own mean; no baseline is possible — verl instead passes R through). Rewards must be
 * finite. Optional outputs (NULL to skip): group_mean [g->n] and group_std [g->n], the
 * baseline and the std used for each completion (for metrics). */
int rl_grpo_advantages(float *adv, float *group_mean, float *group_std, const float *rewards,
                       const rl_groups *g, const rl_grpo_params *p, char *err, size_t errlen);

/* RLOO: A_i = R_i − (Σ_{j≠i in group} R_j)/(m − 1) = m/(m−1)·(R_i − mean) for a group of
 * m ≥ 2; a group of one gets A = 0. adv [g->n], rewards [g->n]. */
int rl_rloo_advantages(float *adv, const float *rewards, const rl_groups *g, char *err,
                       size_t errlen);

/* Per-slot group statistics over rewards [g->n]: count [slots], mean [slots], std
 * [slots] (unbiased when unbiased != 0; 0 for a slot of ≤ 1 member), any of them
 * nullable. Slots: rl_group_slots(g); an empty slot gets count 0, mean 0, std 0. */
int rl_group_stats(int *count, double *mean, double *std, const float *rewards,
                   const rl_groups *g, int unbiased, char *err, size_t errlen);

#endif
