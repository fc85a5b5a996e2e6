/*
 * engine/rl/loss_agg.h — turning per-token losses into the one number of an optimizer
 * step. Each mode is expressed as per-token weights w_t with loss = Σ_t w_t·ℓ_t, and the
 * same w_t are the `weight` input of the backend's policy_loss op (kernels/backend.h),
 * which returns dlogp = w_t·∂ℓ_t/∂logp_t. The denominators are global to the optimizer
 * step (summed over all micro-batches and ranks by the caller, from rl_agg_count), so
 * splitting a batch into micro-batches or ranks never changes the loss or its gradient.
 *
 *   token-mean                Σℓ / N_tok                    (DAPO; verl default; TRL "dapo")
 *   seq-mean-token-mean       (1/N_seq)·Σ_i (Σ_t ℓ / |o_i|) (original GRPO)
 *   seq-mean-token-sum-norm   Σℓ / (N_seq · L_max)          (Dr.GRPO)
 *
 * N_tok = valid tokens of the step; N_seq = completions of the step with at least one
 * valid token; |o_i| = valid tokens of completion i; L_max a constant (the maximum
 * completion length). A token is valid when it lies in a span and its mask is non-zero.
 */
#ifndef RLVR_RL_LOSS_AGG_H
#define RLVR_RL_LOSS_AGG_H

#include "engine/rl/rl_common.h"

typedef enum {
    RL_AGG_TOKEN_MEAN = 0,
    RL_AGG_SEQ_MEAN_TOKEN_MEAN = 1,
    RL_AGG_SEQ_MEAN_TOKEN_SUM_NORM = 2
} rl_agg_mode;

/* "token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm" (the config names). */
const char *rl_agg_name(rl_agg_mode m);
/* Parses a config name; -1 with a message listing the choices when unknown. */
int rl_agg_parse(const char *name, rl_agg_mode *out, char *err, size_t errlen);

/* Global denominators of one optimizer step. */
typedef struct {
    double n_tokens; /* N_tok: Σ over micro-batches and ranks of rl_agg_count's tokens */
    double n_seqs;   /* N_seq: likewise for sequences with ≥ 1 valid token */
    int max_len;     /* L_max for seq-mean-token-sum-norm (e.g. max_new_tokens) */
} rl_agg_denoms;

/* Local counts of one micro-batch: valid tokens and sequences with ≥ 1 valid token.
 * mask [sp->T] nullable (all ones). The caller sums them over the step's micro-batches
 * (and all-reduces over ranks) into rl_agg_denoms. */
int rl_agg_count(double *n_tokens, double *n_seqs, const rl_spans *sp, const float *mask,
                 char *err, size_t errlen);

/* Per-token weights of one micro-batch: w [sp->T], 0 outside spans and where mask = 0,
 * else mask_t times 1/N_tok, 1/(N_seq·|o_i|) or 1/(N_seq·L_max). A micro-batch whose
 * valid tokens need a denominator that is 0 gets RL_EARG (the caller passed counts that
 * do not include this micro-batch). mask [sp->T] nullable. */
int rl_agg_weights(float *w, rl_agg_mode mode, const rl_spans *sp, const float *mask,
                   const rl_agg_denoms *d, char *err, size_t errlen);

/* Σ_t w_t·ℓ_t in double over T entries (the step's loss contribution of one micro-batch). */
double rl_agg_apply(const float *w, const float *loss, int T);

#endif
