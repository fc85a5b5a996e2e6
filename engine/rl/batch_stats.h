/*
 * engine/rl/batch_stats.h — the per-step numbers of metrics.jsonl that come from the RL
 * math: reward and advantage summaries, accuracy for 0/1 rewards, the fraction of
 * zero-variance groups, clip fractions, completion lengths and truncation rate. Std here
 * is the population std (divide by N): these describe the batch, they do not estimate.
 */
#ifndef RLVR_RL_BATCH_STATS_H
#define RLVR_RL_BATCH_STATS_H

#include <stdint.h>

#include "engine/rl/rl_common.h"

typedef struct {
    double count;               /* entries summarised */
    double mean, std, min, max; /* all 0 when count = 0 */
} rl_summary;

/* Summary of x [n] over entries with mask[i] != 0 (mask nullable = all). Non-finite
 * values are an error (RL_EVALUE, naming the index). */
int rl_summarize(rl_summary *s, const float *x, const float *mask, int n, char *err,
                 size_t errlen);
/* Same for integer values (lengths). */
int rl_summarize_int(rl_summary *s, const int32_t *x, int n, char *err, size_t errlen);

/* Accuracy of 0/1 rewards: *acc = mean(R == 1). When some reward is neither 0 nor 1,
 * *is_binary = 0 and *acc = NaN (the metric is then left out of the log). */
int rl_binary_accuracy(double *acc, int *is_binary, const float *rewards, int n, char *err,
                       size_t errlen);

/* Fraction of non-empty groups whose rewards are all equal (std = 0), in [0, 1]
 * (0 for an empty batch). */
int rl_zero_variance_fraction(double *frac, const float *rewards, const rl_groups *g, char *err,
                              size_t errlen);

/* Clip fractions over the valid tokens (valid[t] != 0; nullable = all T):
 *   low  = #(A < 0 and ρ < 1 − ε_low) / N    (DAPO/verl clip_ratio/low)
 *   high = #(A > 0 and ρ > 1 + ε_high) / N   (clip_ratio/high)
 *   dual = #(A < 0 and ρ > c) / N            (dual clip active; 0 when c = 0)
 * with ρ = exp(clamp(logp − old_logp, ±20)) as in policy_loss. Any output nullable. */
int rl_clip_fractions(double *low, double *high, double *dual, const float *logp,
                      const float *old_logp, const float *adv, const float *valid, int T,
                      float clip_low, float clip_high, float dual_clip, char *err,
                      size_t errlen);

/* Fraction of completions with truncated[i] != 0 (0 for n = 0). */
double rl_truncation_rate(const uint8_t *truncated, int n);

#endif
