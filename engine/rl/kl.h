/*
 * engine/rl/kl.h — the KL anchor to the frozen reference policy on the host side:
 * per-token KL estimates (k1/k2/k3 with exactly the clamps of the backend's policy_loss
 * op, kernels/backend.h), KL shaping inside the reward (PPO style: r_t −= β·KL_t), and
 * the adaptive β controller with its checkpointable state. The KL-as-loss-term variant
 * (GRPO style) is computed by the policy_loss op itself.
 */
#ifndef RLVR_RL_KL_H
#define RLVR_RL_KL_H

#include <cjson/cJSON.h>

#include "engine/rl/rl_common.h"
#include "kernels/backend.h" /* rlvr_kl_estimator */

/* One estimate from d = logπ_ref − logπθ: d is clamped to ±20, then k1 = −d,
 * k2 = d²/2, k3 = clamp(e^d − d − 1, ±10) (verl's clamps, as policy_loss). */
float rl_kl_estimate(float logp, float ref_logp, rlvr_kl_estimator est);

/* In-reward KL shaping over the valid tokens (spans, times mask ≠ 0 when mask != NULL):
 * token_rewards[t] −= beta·KL_t; kl_out[t] = KL_t (nullable; 0 elsewhere). Optionally
 * *mean_kl = mean KL over the valid tokens (nullable), the observation the adaptive
 * controller takes. token_rewards, kl_out, logp, ref_logp, mask [sp->T]. */
int rl_kl_shape_rewards(float *token_rewards, float *kl_out, double *mean_kl, const float *logp,
                        const float *ref_logp, const float *mask, const rl_spans *sp,
                        rlvr_kl_estimator est, float beta, char *err, size_t errlen);

/* β of the KL term, fixed or adaptive (Ziegler et al. 2019's controller as in verl /
 * TRL's PPO: β ← β·(1 + clip(KL/target − 1, −0.2, 0.2)·n/horizon)). */
typedef struct {
    double beta;    /* current β */
    int adaptive;   /* 0: β stays fixed */
    double target;  /* target KL (adaptive) */
    double horizon; /* horizon in samples (adaptive), e.g. 10000 */
} rl_kl_ctl;

/* target and horizon are checked only when adaptive (> 0 and finite); beta ≥ 0. */
int rl_kl_ctl_init(rl_kl_ctl *c, double beta, int adaptive, double target, double horizon,
                   char *err, size_t errlen);
/* One update after a step whose mean KL was `kl` over n samples (sequences). No-op when
 * not adaptive. kl must be finite, n ≥ 0. */
int rl_kl_ctl_update(rl_kl_ctl *c, double kl, double n, char *err, size_t errlen);

/* Checkpoint state: {"beta": …, "adaptive": …, "target": …, "horizon": …}; numbers are
 * printed by cJSON with enough digits to read back bit-identical. NULL on OOM. */
cJSON *rl_kl_ctl_to_json(const rl_kl_ctl *c);
/* Reads what rl_kl_ctl_to_json wrote; a missing or mistyped field is named in err. */
int rl_kl_ctl_from_json(rl_kl_ctl *c, const cJSON *j, char *err, size_t errlen);

#endif
