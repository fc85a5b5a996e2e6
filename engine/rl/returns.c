/*
 * engine/rl/returns.c — masked whitening, discounted returns, REINFORCE++, GAE and the
 * clipped value loss (returns.h). Backward recursions run in double per span.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/rl/advantage.h"
#include "engine/rl/returns.h"
#include "engine/rl/rl_internal.h"

rl_whiten_params rl_whiten_defaults(void) {
    rl_whiten_params p = {.unbiased = 1, .eps = 1e-8f};
    return p;
}

static int check_whiten_params(const rl_whiten_params *p, const char *fn, char *err,
                               size_t errlen) {
    if (!p) return rl_fail(err, errlen, RL_EARG, "%s: NULL whitening params", fn);
    if (!(p->eps >= 0.0f) || !isfinite(p->eps))
        return rl_fail(err, errlen, RL_EARG, "%s: eps = %g (expected a finite value >= 0)", fn,
                       (double)p->eps);
    return RL_OK;
}

int rl_masked_moments(double *count, double *mean, double *var, const float *x,
                      const float *valid, int T, const rl_whiten_params *p, char *err,
                      size_t errlen) {
    const char *fn = "rl_masked_moments";
    if (T < 0) return rl_fail(err, errlen, RL_EARG, "%s: T = %d (expected >= 0)", fn, T);
    int rc;
    if ((rc = check_whiten_params(p, fn, err, errlen)) ||
        (rc = rl_need(x, T, fn, "x", err, errlen)) ||
        (rc = rl_need(valid, T, fn, "valid", err, errlen)))
        return rc;
    double n = 0, s = 0, ss = 0;
    for (int t = 0; t < T; t++)
        if (valid[t] != 0.0f) {
            if (!isfinite(x[t]))
                return rl_fail(err, errlen, RL_EVALUE, "%s: x[%d] = %g is not finite", fn, t,
                               (double)x[t]);
            n += 1, s += x[t];
        }
    double m = n > 0 ? s / n : 0.0;
    for (int t = 0; t < T; t++)
        if (valid[t] != 0.0f) ss += (x[t] - m) * (x[t] - m);
    double dof = p->unbiased ? n - 1 : n;
    if (count) *count = n;
    if (mean) *mean = m;
    if (var) *var = dof > 0 ? ss / dof : 0.0;
    return RL_OK;
}

int rl_whiten_with(float *x, const float *valid, int T, double mean, double var, float eps,
                   char *err, size_t errlen) {
    const char *fn = "rl_whiten_with";
    if (T < 0) return rl_fail(err, errlen, RL_EARG, "%s: T = %d (expected >= 0)", fn, T);
    int rc;
    if ((rc = rl_need(x, T, fn, "x", err, errlen)) ||
        (rc = rl_need(valid, T, fn, "valid", err, errlen)))
        return rc;
    if (!isfinite(mean) || !(var >= 0) || !isfinite(var) || !(eps >= 0.0f))
        return rl_fail(
            err, errlen, RL_EARG,
            "%s: mean = %g, var = %g, eps = %g (expected finite, var >= 0, eps >= 0)", fn, mean,
            var, (double)eps);
    double denom = sqrt(var + (double)eps);
    if (denom == 0.0)
        return rl_fail(err, errlen, RL_EARG, "%s: var + eps = 0 (nothing to divide by)", fn);
    for (int t = 0; t < T; t++)
        x[t] = valid[t] != 0.0f ? (float)((x[t] - mean) / denom) : 0.0f;
    return RL_OK;
}

int rl_whiten(float *x, const float *valid, int T, const rl_whiten_params *p, char *err,
              size_t errlen) {
    double mean, var;
    int rc = rl_masked_moments(NULL, &mean, &var, x, valid, T, p, err, errlen);
    if (rc) return rc;
    return rl_whiten_with(x, valid, T, mean, var, p->eps, err, errlen);
}

int rl_place_seq_rewards(float *token_rewards, const float *seq_rewards, const rl_spans *sp,
                         char *err, size_t errlen) {
    const char *fn = "rl_place_seq_rewards";
    int rc = rl_spans_check(sp, err, errlen);
    if (rc) return rc;
    if ((rc = rl_need(token_rewards, sp->T, fn, "token_rewards", err, errlen)) ||
        (rc = rl_need(seq_rewards, sp->B, fn, "seq_rewards", err, errlen)) ||
        (rc = rl_check_finite(seq_rewards, sp->B, fn, "seq_rewards", err, errlen)))
        return rc;
    for (int i = 0; i < sp->B; i++)
        if (sp->len[i] > 0) token_rewards[sp->start[i] + sp->len[i] - 1] += seq_rewards[i];
    return RL_OK;
}

static int check_gamma(float gamma, const char *name, const char *fn, char *err,
                       size_t errlen) {
    if (!(gamma >= 0.0f && gamma <= 1.0f))
        return rl_fail(err, errlen, RL_EARG, "%s: %s = %g (expected 0 <= %s <= 1)", fn, name,
                       (double)gamma, name);
    return RL_OK;
}

int rl_discounted_returns(float *ret, const float *token_rewards, const rl_spans *sp,
                          float gamma, char *err, size_t errlen) {
    const char *fn = "rl_discounted_returns";
    int rc = rl_spans_check(sp, err, errlen);
    if (rc) return rc;
    if ((rc = check_gamma(gamma, "gamma", fn, err, errlen)) ||
        (rc = rl_need(ret, sp->T, fn, "ret", err, errlen)) ||
        (rc = rl_need(token_rewards, sp->T, fn, "token_rewards", err, errlen)) ||
        (rc = rl_check_finite(token_rewards, sp->T, fn, "token_rewards", err, errlen)))
        return rc;
    for (int t = 0; t < sp->T; t++)
        ret[t] = 0.0f;
    for (int i = 0; i < sp->B; i++) {
        double g = 0.0;
        for (int t = sp->start[i] + sp->len[i] - 1; t >= sp->start[i]; t--) {
            g = token_rewards[t] + gamma * g;
            ret[t] = (float)g;
        }
    }
    return RL_OK;
}

int rl_reinforce_pp(float *adv, const float *token_rewards, const float *seq_rewards,
                    const rl_spans *sp, const rl_groups *groups, const float *mask, float gamma,
                    const rl_whiten_params *wp, char *err, size_t errlen) {
    const char *fn = "rl_reinforce_pp";
    int rc = rl_spans_check(sp, err, errlen);
    if (rc) return rc;
    if ((rc = check_gamma(gamma, "gamma", fn, err, errlen)) ||
        (rc = check_whiten_params(wp, fn, err, errlen)) ||
        (rc = rl_need(adv, sp->T, fn, "adv", err, errlen)) ||
        (rc = rl_need(seq_rewards, sp->B, fn, "seq_rewards", err, errlen)) ||
        (rc = rl_check_finite(seq_rewards, sp->B, fn, "seq_rewards", err, errlen)) ||
        (token_rewards &&
         (rc = rl_check_finite(token_rewards, sp->T, fn, "token_rewards", err, errlen))))
        return rc;
    if (groups && groups->n != sp->B)
        return rl_fail(err, errlen, RL_ESHAPE, "%s: groups describe %d completions, spans %d",
                       fn, groups->n, sp->B);
    size_t T = sp->T > 0 ? sp->T : 1, B = sp->B > 0 ? sp->B : 1;
    float *r = malloc(T * sizeof *r), *valid = malloc(T * sizeof *valid);
    float *R = malloc(B * sizeof *R);
    if (!r || !valid || !R) {
        rc = rl_fail(err, errlen, RL_ENOMEM, "%s: out of memory for T = %d", fn, sp->T);
        goto done;
    }
    for (int i = 0; i < sp->B; i++)
        R[i] = seq_rewards[i];
    if (groups) { /* baseline variant: subtract the group mean of R first */
        rl_grpo_params gp = {.scale = RL_SCALE_NONE, .unbiased_std = 1, .eps = 0.0f};
        if ((rc = rl_grpo_advantages(R, NULL, NULL, seq_rewards, groups, &gp, err, errlen)))
            goto done;
    }
    for (int t = 0; t < sp->T; t++)
        r[t] = token_rewards ? token_rewards[t] : 0.0f;
    if ((rc = rl_place_seq_rewards(r, R, sp, err, errlen)) ||
        (rc = rl_discounted_returns(adv, r, sp, gamma, err, errlen)) ||
        (rc = rl_valid_mask(valid, mask, sp, err, errlen)) ||
        (rc = rl_whiten(adv, valid, sp->T, wp, err, errlen)))
        goto done;
done:
    free(r), free(valid), free(R);
    return rc;
}

int rl_gae(float *adv, float *ret, const float *token_rewards, const float *values,
           const rl_spans *sp, float gamma, float lambda, char *err, size_t errlen) {
    const char *fn = "rl_gae";
    int rc = rl_spans_check(sp, err, errlen);
    if (rc) return rc;
    if ((rc = check_gamma(gamma, "gamma", fn, err, errlen)) ||
        (rc = check_gamma(lambda, "lambda", fn, err, errlen)) ||
        (rc = rl_need(adv, sp->T, fn, "adv", err, errlen)) ||
        (rc = rl_need(ret, sp->T, fn, "ret", err, errlen)) ||
        (rc = rl_need(token_rewards, sp->T, fn, "token_rewards", err, errlen)) ||
        (rc = rl_need(values, sp->T, fn, "values", err, errlen)) ||
        (rc = rl_check_finite(token_rewards, sp->T, fn, "token_rewards", err, errlen)) ||
        (rc = rl_check_finite(values, sp->T, fn, "values", err, errlen)))
        return rc;
    for (int t = 0; t < sp->T; t++)
        adv[t] = ret[t] = 0.0f;
    for (int i = 0; i < sp->B; i++) {
        const int s = sp->start[i], e = sp->start[i] + sp->len[i];
        double a = 0.0;
        for (int t = e - 1; t >= s; t--) {
            const double v_next = t + 1 < e ? values[t + 1] : 0.0;
            const double delta = token_rewards[t] + gamma * v_next - values[t];
            a = delta + (double)gamma * lambda * a;
            adv[t] = (float)a;
            ret[t] = (float)(a + values[t]);
        }
    }
    return RL_OK;
}

int rl_value_loss(float *loss, float *dv, float *clipped, const float *v, const float *v_old,
                  const float *ret, const float *weight, int T, float clip, char *err,
                  size_t errlen) {
    const char *fn = "rl_value_loss";
    if (T < 0) return rl_fail(err, errlen, RL_EARG, "%s: T = %d (expected >= 0)", fn, T);
    if (!(clip >= 0.0f) || !isfinite(clip))
        return rl_fail(err, errlen, RL_EARG, "%s: clip = %g (expected a finite value >= 0)", fn,
                       (double)clip);
    int rc;
    if ((rc = rl_need(loss, T, fn, "loss", err, errlen)) ||
        (rc = rl_need(dv, T, fn, "dv", err, errlen)) ||
        (rc = rl_need(v, T, fn, "v", err, errlen)) ||
        (rc = rl_need(ret, T, fn, "ret", err, errlen)) ||
        (clip > 0.0f && (rc = rl_need(v_old, T, fn, "v_old", err, errlen))) ||
        (rc = rl_check_finite(v, T, fn, "v", err, errlen)) ||
        (rc = rl_check_finite(ret, T, fn, "ret", err, errlen)) ||
        (clip > 0.0f && (rc = rl_check_finite(v_old, T, fn, "v_old", err, errlen))))
        return rc;
    for (int t = 0; t < T; t++) {
        const float w = weight ? weight[t] : 1.0f;
        const float d1 = v[t] - ret[t];
        const float l1 = 0.5f * d1 * d1;
        float l = l1, g = d1, c = 0.0f;
        if (clip > 0.0f) {
            const float vc = fminf(fmaxf(v[t], v_old[t] - clip), v_old[t] + clip);
            const float d2 = vc - ret[t];
            const float l2 = 0.5f * d2 * d2;
            if (l2 > l1) l = l2, g = 0.0f, c = 1.0f;
        }
        loss[t] = l;
        dv[t] = w * g;
        if (clipped) clipped[t] = c;
    }
    return RL_OK;
}
