/*
 * engine/rl/batch_stats.c — batch statistics for metrics (batch_stats.h).
 */
#include <math.h>
#include <stdlib.h>

#include "engine/rl/batch_stats.h"
#include "engine/rl/dapo.h"
#include "engine/rl/rl_internal.h"

int rl_summarize(rl_summary *s, const float *x, const float *mask, int n, char *err,
                 size_t errlen) {
    const char *fn = "rl_summarize";
    if (!s) return rl_fail(err, errlen, RL_EARG, "%s: NULL summary", fn);
    if (n < 0) return rl_fail(err, errlen, RL_EARG, "%s: n = %d (expected >= 0)", fn, n);
    int rc = rl_need(x, n, fn, "x", err, errlen);
    if (rc) return rc;
    *s = (rl_summary){0};
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) {
        if (mask && mask[i] == 0.0f) continue;
        if (!isfinite(x[i]))
            return rl_fail(err, errlen, RL_EVALUE, "%s: x[%d] = %g is not finite", fn, i,
                           (double)x[i]);
        if (s->count == 0 || x[i] < s->min) s->min = x[i];
        if (s->count == 0 || x[i] > s->max) s->max = x[i];
        s->count += 1, sum += x[i];
    }
    if (s->count == 0) return RL_OK;
    s->mean = sum / s->count;
    for (int i = 0; i < n; i++)
        if (!mask || mask[i] != 0.0f) ss += (x[i] - s->mean) * (x[i] - s->mean);
    s->std = sqrt(ss / s->count);
    return RL_OK;
}

int rl_summarize_int(rl_summary *s, const int32_t *x, int n, char *err, size_t errlen) {
    const char *fn = "rl_summarize_int";
    if (!s) return rl_fail(err, errlen, RL_EARG, "%s: NULL summary", fn);
    if (n < 0) return rl_fail(err, errlen, RL_EARG, "%s: n = %d (expected >= 0)", fn, n);
    int rc = rl_need(x, n, fn, "x", err, errlen);
    if (rc) return rc;
    *s = (rl_summary){0};
    if (n == 0) return RL_OK;
    double sum = 0, ss = 0;
    s->min = s->max = x[0];
    for (int i = 0; i < n; i++) {
        sum += x[i];
        if (x[i] < s->min) s->min = x[i];
        if (x[i] > s->max) s->max = x[i];
    }
    s->count = n;
    s->mean = sum / n;
    for (int i = 0; i < n; i++)
        ss += (x[i] - s->mean) * (x[i] - s->mean);
    s->std = sqrt(ss / n);
    return RL_OK;
}

int rl_binary_accuracy(double *acc, int *is_binary, const float *rewards, int n, char *err,
                       size_t errlen) {
    const char *fn = "rl_binary_accuracy";
    if (!acc || !is_binary) return rl_fail(err, errlen, RL_EARG, "%s: NULL output", fn);
    if (n < 0) return rl_fail(err, errlen, RL_EARG, "%s: n = %d (expected >= 0)", fn, n);
    int rc = rl_need(rewards, n, fn, "rewards", err, errlen);
    if (rc) return rc;
    double hits = 0;
    *is_binary = 1;
    for (int i = 0; i < n; i++) {
        if (rewards[i] == 1.0f)
            hits += 1;
        else if (rewards[i] != 0.0f)
            *is_binary = 0;
    }
    *acc = !*is_binary ? NAN : n ? hits / n : 0.0;
    return RL_OK;
}

int rl_zero_variance_fraction(double *frac, const float *rewards, const rl_groups *g, char *err,
                              size_t errlen) {
    const char *fn = "rl_zero_variance_fraction";
    if (!frac) return rl_fail(err, errlen, RL_EARG, "%s: NULL output", fn);
    int rc = rl_groups_check(g, err, errlen);
    if (rc) return rc;
    int S = rl_group_slots(g), ng = 0, nz = 0;
    uint8_t *drop = malloc(S ? S : 1);
    if (!drop) return rl_fail(err, errlen, RL_ENOMEM, "%s: out of memory", fn);
    /* the equal-reward filter of dynamic sampling is exactly "std = 0" with tol 0 */
    rc = rl_equal_reward_groups(drop, NULL, &ng, &nz, rewards, g, 0.0f, err, errlen);
    free(drop);
    if (rc) return rc;
    *frac = ng ? (double)nz / ng : 0.0;
    return RL_OK;
}

int rl_clip_fractions(double *low, double *high, double *dual, const float *logp,
                      const float *old_logp, const float *adv, const float *valid, int T,
                      float clip_low, float clip_high, float dual_clip, char *err,
                      size_t errlen) {
    const char *fn = "rl_clip_fractions";
    if (T < 0) return rl_fail(err, errlen, RL_EARG, "%s: T = %d (expected >= 0)", fn, T);
    if (!(clip_low >= 0.0f && clip_low < 1.0f) || !(clip_high >= 0.0f) ||
        !isfinite(clip_high) || !(dual_clip >= 0.0f) || !isfinite(dual_clip))
        return rl_fail(err, errlen, RL_EARG,
                       "%s: clip_low = %g, clip_high = %g, dual_clip = %g (expected 0 <= "
                       "clip_low < 1, clip_high >= 0, dual_clip >= 0)",
                       fn, (double)clip_low, (double)clip_high, (double)dual_clip);
    int rc;
    if ((rc = rl_need(logp, T, fn, "logp", err, errlen)) ||
        (rc = rl_need(old_logp, T, fn, "old_logp", err, errlen)) ||
        (rc = rl_need(adv, T, fn, "adv", err, errlen)))
        return rc;
    double n = 0, nl = 0, nh = 0, nd = 0;
    for (int t = 0; t < T; t++) {
        if (valid && valid[t] == 0.0f) continue;
        float lr = logp[t] - old_logp[t];
        if (isnan(lr) || isnan(adv[t]))
            return rl_fail(err, errlen, RL_EVALUE, "%s: NaN log-ratio or advantage at token %d",
                           fn, t);
        lr = lr < -20.0f ? -20.0f : lr > 20.0f ? 20.0f : lr;
        const float rho = expf(lr), A = adv[t];
        n += 1;
        nl += A < 0.0f && rho < 1.0f - clip_low;
        nh += A > 0.0f && rho > 1.0f + clip_high;
        nd += dual_clip > 0.0f && A < 0.0f && rho > dual_clip;
    }
    if (low) *low = n ? nl / n : 0.0;
    if (high) *high = n ? nh / n : 0.0;
    if (dual) *dual = n ? nd / n : 0.0;
    return RL_OK;
}

double rl_truncation_rate(const uint8_t *truncated, int n) {
    if (n <= 0 || !truncated) return 0.0;
    int k = 0;
    for (int i = 0; i < n; i++)
        k += truncated[i] != 0;
    return (double)k / n;
}
