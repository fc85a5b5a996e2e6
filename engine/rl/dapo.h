/*
 * engine/rl/dapo.h — DAPO's sampling-side pieces (Yu et al. 2025): the soft overlong
 * penalty, masking truncated completions out of the loss, and dynamic sampling (drop the
 * groups whose rewards are all equal — zero advantage, zero gradient — and keep sampling
 * until the batch holds the target number of groups, up to a cap of rounds).
 */
#ifndef RLVR_RL_DAPO_H
#define RLVR_RL_DAPO_H

#include <stdint.h>

#include "engine/rl/rl_common.h"

/* Soft overlong punishment added to rewards [n] in place, for completion lengths len [n]:
 *   R += factor · min(−(|o| − (L − L_b)) / L_b, 0), floored at −factor (|o| > L)
 * i.e. 0 while |o| ≤ L − L_b, falling linearly to −factor at |o| = L. L = max_len ≥ 1,
 * 1 ≤ L_b = buffer ≤ L, factor ≥ 0 (DAPO: 1.0; verl overlong_penalty_factor). Optional
 * penalty [n] (nullable) receives the term added. */
int rl_overlong_penalty(float *rewards, float *penalty, const int32_t *len, int n, int max_len,
                        int buffer, float factor, char *err, size_t errlen);

/* Overlong filtering: mask[t] = 0 for every token of a truncated completion
 * (truncated[i] != 0, e.g. finish reason "length"); other entries are left as they are.
 * mask [sp->T] (start from ones), truncated [sp->B]. */
int rl_mask_truncated(float *mask, const uint8_t *truncated, const rl_spans *sp, char *err,
                      size_t errlen);

/* Dynamic sampling filter: for every group slot (rl_group_slots), drop[s] = 1 when the
 * slot is non-empty and max − min of its rewards ≤ tol (tol = 0: exactly equal; a group
 * of one always counts as equal), else 0. keep [g->n] (nullable): 1 for completions of
 * kept groups. *n_groups / *n_dropped (nullable): non-empty slots and dropped ones. */
int rl_equal_reward_groups(uint8_t *drop, uint8_t *keep, int *n_groups, int *n_dropped,
                           const float *rewards, const rl_groups *g, float tol, char *err,
                           size_t errlen);

/* Fill policy across sampling rounds of one step. */
typedef struct {
    int target;     /* groups the batch needs */
    int max_rounds; /* sampling rounds allowed (DAPO max_num_gen_batches); 0 = no cap */
    int rounds;     /* rounds offered so far */
    int kept;       /* groups taken into the batch */
    int dropped;    /* groups dropped for equal rewards */
    int surplus;    /* valid groups not needed once the batch was full */
} rl_fill;

typedef enum {
    RL_FILL_MORE = 0, /* sample another round */
    RL_FILL_FULL = 1, /* the batch holds `target` groups: train */
    RL_FILL_CAP = 2   /* out of rounds with the batch short (kept < target) */
} rl_fill_status;

int rl_fill_init(rl_fill *f, int target, int max_rounds, char *err, size_t errlen);
/* Offers one round of n_groups groups with their drop flags (from
 * rl_equal_reward_groups); take[s] = 1 for the groups to append to the batch, in order,
 * until the target is met. Returns an rl_fill_status (≥ 0) or a negative rl_status.
 * Offering after FULL or CAP is RL_EARG. drop, take [n_groups]. */
int rl_fill_offer(rl_fill *f, const uint8_t *drop, int n_groups, uint8_t *take, char *err,
                  size_t errlen);

#endif
