/*
 * engine/rl/returns.h — token-level advantages over a packed batch (rl_common.h spans):
 * REINFORCE++ (discounted returns, whitened over the batch) and its group-baseline
 * variant, PPO's GAE with returns for the critic, masked whitening, and the clipped value
 * loss with its gradient. The scalar reward of a completion sits on its last token.
 * Formulas and recipes: docs/algorithms.md.
 */
#ifndef RLVR_RL_RETURNS_H
#define RLVR_RL_RETURNS_H

#include "engine/rl/rl_common.h"

/* Whitening x ← (x − mean) / sqrt(var + eps) over the entries with valid[t] != 0. */
typedef struct {
    int unbiased; /* var with / (N − 1) (verl's masked_whiten) or / N (OpenRLHF) */
    float eps;    /* 1e-8 in both */
} rl_whiten_params;

/* Defaults: unbiased variance, eps = 1e-8 (verl). */
rl_whiten_params rl_whiten_defaults(void);

/* Mean and variance of x over valid entries: *count = Σ[valid ≠ 0], *mean, *var
 * (unbiased or not per p; 0 for count ≤ 1 unbiased / count 0). x, valid [T]. */
int rl_masked_moments(double *count, double *mean, double *var, const float *x,
                      const float *valid, int T, const rl_whiten_params *p, char *err,
                      size_t errlen);
/* Whitens the valid entries of x in place with the given moments (e.g. reduced across
 * ranks); invalid entries are set to 0. */
int rl_whiten_with(float *x, const float *valid, int T, double mean, double var, float eps,
                   char *err, size_t errlen);
/* rl_masked_moments then rl_whiten_with (one process holds the whole batch). */
int rl_whiten(float *x, const float *valid, int T, const rl_whiten_params *p, char *err,
              size_t errlen);

/* token_rewards[start_i + len_i − 1] += seq_rewards[i] for every completion with len_i
 * ≥ 1 (a zero-length completion has no token to carry its reward). token_rewards [T]
 * (typically zeros, or −β·KL_t from kl.h), seq_rewards [B]. */
int rl_place_seq_rewards(float *token_rewards, const float *seq_rewards, const rl_spans *sp,
                         char *err, size_t errlen);

/* Discounted returns within each span: G_t = r_t + γ·G_{t+1}, G = 0 after a span's last
 * token (reset per sequence). ret, token_rewards [T]; 0 outside spans. 0 ≤ γ ≤ 1. */
int rl_discounted_returns(float *ret, const float *token_rewards, const rl_spans *sp,
                          float gamma, char *err, size_t errlen);

/* REINFORCE++ (OpenRLHF "reinforce" / verl "reinforce_plus_plus"): token rewards
 * r_t = token_rewards[t] (nullable = 0; e.g. −β·KL_t) plus R_i on the last token of span
 * i; returns G_t with γ; A = whiten(G) over valid tokens (in spans, times mask[t] when
 * mask != NULL). With groups != NULL the group-baseline variant (OpenRLHF
 * "reinforce_baseline"): R_i − mean_group(R) replaces R_i first. adv [T], seq_rewards
 * [B], mask [T] nullable; groups->n must equal B. Invalid entries of adv are 0. */
int rl_reinforce_pp(float *adv, const float *token_rewards, const float *seq_rewards,
                    const rl_spans *sp, const rl_groups *groups, const float *mask, float gamma,
                    const rl_whiten_params *wp, char *err, size_t errlen);

/* GAE within each span (no bootstrap past the last token, V after it = 0):
 *   δ_t = r_t + γ·V_{t+1} − V_t,  A_t = δ_t + γλ·A_{t+1},  ret_t = A_t + V_t.
 * adv, ret, token_rewards, values [T]; 0 outside spans. Not whitened: call rl_whiten on
 * adv over the valid tokens afterwards (verl/OpenRLHF do; ret keeps the raw A). */
int rl_gae(float *adv, float *ret, const float *token_rewards, const float *values,
           const rl_spans *sp, float gamma, float lambda, char *err, size_t errlen);

/* PPO clipped value loss per token, unweighted:
 *   loss_t = ½·max((V − R)², (clip(V, V_old − c, V_old + c) − R)²)
 * and dv[t] = weight[t]·∂loss_t/∂V_t: (V − R) when the unclipped term is the max (ties
 * included), 0 when the clipped term wins (V is then outside V_old ± c, the clip is
 * constant in V). c = 0 disables clipping (loss = ½(V − R)²). clipped[t] = 1 when the
 * clipped term won (nullable). All arrays [T]; weight nullable = 1. */
int rl_value_loss(float *loss, float *dv, float *clipped, const float *v, const float *v_old,
                  const float *ret, const float *weight, int T, float clip, char *err,
                  size_t errlen);

#endif
