/*
 * engine/rl/kl.c — KL estimates, in-reward KL shaping and the adaptive β controller
 * (kl.h). The float arithmetic of rl_kl_estimate follows kernels/cpu/loss.c so the value
 * logged on the host equals the one the loss used.
 */
#include <math.h>

#include "engine/rl/kl.h"
#include "engine/rl/rl_internal.h"

static float clampf(float x, float lo, float hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

float rl_kl_estimate(float logp, float ref_logp, rlvr_kl_estimator est) {
    const float d = clampf(ref_logp - logp, -20.0f, 20.0f);
    switch (est) {
    case RLVR_KL_K1:
        return -d;
    case RLVR_KL_K2:
        return 0.5f * d * d;
    default:
        return clampf(expf(d) - d - 1.0f, -10.0f, 10.0f);
    }
}

int rl_kl_shape_rewards(float *token_rewards, float *kl_out, double *mean_kl, const float *logp,
                        const float *ref_logp, const float *mask, const rl_spans *sp,
                        rlvr_kl_estimator est, float beta, char *err, size_t errlen) {
    const char *fn = "rl_kl_shape_rewards";
    int rc = rl_spans_check(sp, err, errlen);
    if (rc) return rc;
    if (est != RLVR_KL_K1 && est != RLVR_KL_K2 && est != RLVR_KL_K3)
        return rl_fail(err, errlen, RL_EARG, "%s: estimator = %d (expected k1, k2 or k3)", fn,
                       (int)est);
    if (!(beta >= 0.0f) || !isfinite(beta))
        return rl_fail(err, errlen, RL_EARG, "%s: beta = %g (expected a finite value >= 0)", fn,
                       (double)beta);
    if ((rc = rl_need(token_rewards, sp->T, fn, "token_rewards", err, errlen)) ||
        (rc = rl_need(logp, sp->T, fn, "logp", err, errlen)) ||
        (rc = rl_need(ref_logp, sp->T, fn, "ref_logp", err, errlen)))
        return rc;
    if (kl_out)
        for (int t = 0; t < sp->T; t++)
            kl_out[t] = 0.0f;
    double sum = 0, n = 0;
    for (int i = 0; i < sp->B; i++)
        for (int t = sp->start[i]; t < sp->start[i] + sp->len[i]; t++) {
            if (mask && mask[t] == 0.0f) continue;
            if (isnan(logp[t]) || isnan(ref_logp[t]))
                return rl_fail(err, errlen, RL_EVALUE,
                               "%s: logp[%d] = %g, ref_logp[%d] = %g (NaN log-probability)", fn,
                               t, (double)logp[t], t, (double)ref_logp[t]);
            const float k = rl_kl_estimate(logp[t], ref_logp[t], est);
            token_rewards[t] -= beta * k;
            if (kl_out) kl_out[t] = k;
            sum += k, n += 1;
        }
    if (mean_kl) *mean_kl = n > 0 ? sum / n : 0.0;
    return RL_OK;
}

/* ---- controller -------------------------------------------------------------------- */

int rl_kl_ctl_init(rl_kl_ctl *c, double beta, int adaptive, double target, double horizon,
                   char *err, size_t errlen) {
    const char *fn = "rl_kl_ctl_init";
    if (!c) return rl_fail(err, errlen, RL_EARG, "%s: NULL controller", fn);
    if (!(beta >= 0) || !isfinite(beta))
        return rl_fail(err, errlen, RL_EARG, "%s: beta = %g (expected a finite value >= 0)", fn,
                       beta);
    if (adaptive && (!(target > 0) || !isfinite(target)))
        return rl_fail(err, errlen, RL_EARG,
                       "%s: target KL = %g (the adaptive controller needs a finite target > 0)",
                       fn, target);
    if (adaptive && (!(horizon > 0) || !isfinite(horizon)))
        return rl_fail(err, errlen, RL_EARG,
                       "%s: horizon = %g (the adaptive controller needs a finite horizon > 0)",
                       fn, horizon);
    c->beta = beta;
    c->adaptive = adaptive != 0;
    c->target = target;
    c->horizon = horizon;
    return RL_OK;
}

int rl_kl_ctl_update(rl_kl_ctl *c, double kl, double n, char *err, size_t errlen) {
    const char *fn = "rl_kl_ctl_update";
    if (!c) return rl_fail(err, errlen, RL_EARG, "%s: NULL controller", fn);
    if (!isfinite(kl))
        return rl_fail(err, errlen, RL_EVALUE, "%s: observed KL = %g is not finite", fn, kl);
    if (!(n >= 0) || !isfinite(n))
        return rl_fail(err, errlen, RL_EARG, "%s: n = %g samples (expected >= 0)", fn, n);
    if (!c->adaptive) return RL_OK;
    double e = kl / c->target - 1.0;
    e = e < -0.2 ? -0.2 : e > 0.2 ? 0.2 : e;
    c->beta *= 1.0 + e * n / c->horizon;
    return RL_OK;
}

cJSON *rl_kl_ctl_to_json(const rl_kl_ctl *c) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    if (!cJSON_AddNumberToObject(j, "beta", c->beta) ||
        !cJSON_AddBoolToObject(j, "adaptive", c->adaptive) ||
        !cJSON_AddNumberToObject(j, "target", c->target) ||
        !cJSON_AddNumberToObject(j, "horizon", c->horizon)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static int get_num(const cJSON *j, const char *key, double *out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v))
        return rl_fail(err, errlen, RL_EARG,
                       "kl controller state: \"%s\" is %s (expected a number)", key,
                       v ? "not a number" : "missing");
    *out = v->valuedouble;
    return RL_OK;
}

int rl_kl_ctl_from_json(rl_kl_ctl *c, const cJSON *j, char *err, size_t errlen) {
    if (!c || !cJSON_IsObject(j))
        return rl_fail(err, errlen, RL_EARG, "kl controller state: expected a JSON object");
    double beta = 0, target = 0, horizon = 0;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "adaptive");
    if (!cJSON_IsBool(a))
        return rl_fail(err, errlen, RL_EARG,
                       "kl controller state: \"adaptive\" is %s (expected true or false)",
                       a ? "not a boolean" : "missing");
    int rc;
    if ((rc = get_num(j, "beta", &beta, err, errlen)) ||
        (rc = get_num(j, "target", &target, err, errlen)) ||
        (rc = get_num(j, "horizon", &horizon, err, errlen)))
        return rc;
    return rl_kl_ctl_init(c, beta, cJSON_IsTrue(a), target, horizon, err, errlen);
}
