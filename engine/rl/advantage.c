/*
 * engine/rl/advantage.c — GRPO and RLOO advantages over groups of completions
 * (advantage.h). Sums in double, in completion order, so results are deterministic.
 */
#include <math.h>
#include <stdlib.h>

#include "engine/rl/advantage.h"
#include "engine/rl/rl_internal.h"

rl_grpo_params rl_grpo_defaults(void) {
    rl_grpo_params p = {.scale = RL_SCALE_GROUP, .unbiased_std = 1, .eps = 1e-4f};
    return p;
}

static int check_rewards(const float *adv, const float *rewards, const rl_groups *g,
                         const char *fn, char *err, size_t errlen) {
    int rc = rl_groups_check(g, err, errlen);
    if (rc) return rc;
    if ((rc = rl_need(adv, g->n, fn, "adv", err, errlen)) ||
        (rc = rl_need(rewards, g->n, fn, "rewards", err, errlen)))
        return rc;
    return rl_check_finite(rewards, g->n, fn, "rewards", err, errlen);
}

int rl_group_stats(int *count, double *mean, double *std, const float *rewards,
                   const rl_groups *g, int unbiased, char *err, size_t errlen) {
    const char *fn = "rl_group_stats";
    int rc = rl_groups_check(g, err, errlen);
    if (rc) return rc;
    if ((rc = rl_need(rewards, g->n, fn, "rewards", err, errlen)) ||
        (rc = rl_check_finite(rewards, g->n, fn, "rewards", err, errlen)))
        return rc;
    int S = rl_group_slots(g);
    if (S == 0) return RL_OK;
    int *cnt = calloc(S, sizeof *cnt);
    double *sum = calloc(S, sizeof *sum), *ss = calloc(S, sizeof *ss);
    float *first = calloc(S, sizeof *first);
    unsigned char *same = calloc(S, 1);
    if (!cnt || !sum || !ss || !first || !same) {
        free(cnt), free(sum), free(ss), free(first), free(same);
        return rl_fail(err, errlen, RL_ENOMEM, "%s: out of memory for %d groups", fn, S);
    }
    for (int i = 0; i < g->n; i++) {
        int s = rl_group_of(g, i);
        if (cnt[s]++ == 0)
            first[s] = rewards[i], same[s] = 1;
        else if (rewards[i] != first[s])
            same[s] = 0;
        sum[s] += rewards[i];
    }
    /* now the mean; a group of equal rewards gets exactly that value (so R − mean = 0
     * exactly, not a rounding residue) */
    for (int s = 0; s < S; s++)
        sum[s] = !cnt[s] ? 0.0 : same[s] ? (double)first[s] : sum[s] / cnt[s];
    /* Two passes (mean, then squared deviations) so that equal rewards give exactly 0. */
    for (int i = 0; i < g->n; i++) {
        int s = rl_group_of(g, i);
        double d = rewards[i] - sum[s];
        ss[s] += d * d;
    }
    for (int s = 0; s < S; s++) {
        if (count) count[s] = cnt[s];
        if (mean) mean[s] = sum[s];
        if (std) {
            int dof = unbiased ? cnt[s] - 1 : cnt[s];
            std[s] = (cnt[s] > 1 && dof > 0) ? sqrt(ss[s] / dof) : 0.0;
        }
    }
    free(cnt), free(sum), free(ss), free(first), free(same);
    return RL_OK;
}

int rl_grpo_advantages(float *adv, float *group_mean, float *group_std, const float *rewards,
                       const rl_groups *g, const rl_grpo_params *p, char *err, size_t errlen) {
    const char *fn = "rl_grpo_advantages";
    int rc = check_rewards(adv, rewards, g, fn, err, errlen);
    if (rc) return rc;
    if (!p) return rl_fail(err, errlen, RL_EARG, "%s: NULL params", fn);
    if (p->scale != RL_SCALE_GROUP && p->scale != RL_SCALE_BATCH && p->scale != RL_SCALE_NONE)
        return rl_fail(err, errlen, RL_EARG,
                       "%s: scale = %d (expected RL_SCALE_GROUP, RL_SCALE_BATCH or "
                       "RL_SCALE_NONE)",
                       fn, (int)p->scale);
    if (!(p->eps >= 0.0f) || !isfinite(p->eps))
        return rl_fail(err, errlen, RL_EARG, "%s: eps = %g (expected a finite value >= 0)", fn,
                       (double)p->eps);
    if (g->n == 0) return RL_OK;
    int S = rl_group_slots(g);
    double *mean = malloc(S * sizeof *mean), *std = malloc(S * sizeof *std);
    if (!mean || !std) {
        free(mean), free(std);
        return rl_fail(err, errlen, RL_ENOMEM, "%s: out of memory for %d groups", fn, S);
    }
    rc = rl_group_stats(NULL, mean, std, rewards, g, p->unbiased_std, err, errlen);
    double batch_std = 0.0;
    if (!rc && p->scale == RL_SCALE_BATCH) {
        rl_groups all = {.n = g->n, .group_size = g->n, .group_id = NULL};
        rc =
            rl_group_stats(NULL, NULL, &batch_std, rewards, &all, p->unbiased_std, err, errlen);
    }
    if (rc) {
        free(mean), free(std);
        return rc;
    }
    for (int i = 0; i < g->n; i++) {
        int s = rl_group_of(g, i);
        double sd = p->scale == RL_SCALE_BATCH ? batch_std : std[s];
        double a = rewards[i] - mean[s];
        if (p->scale != RL_SCALE_NONE) a /= sd + (double)p->eps;
        adv[i] = (float)a;
        if (group_mean) group_mean[i] = (float)mean[s];
        if (group_std) group_std[i] = (float)sd;
    }
    free(mean), free(std);
    return RL_OK;
}

int rl_rloo_advantages(float *adv, const float *rewards, const rl_groups *g, char *err,
                       size_t errlen) {
    const char *fn = "rl_rloo_advantages";
    int rc = check_rewards(adv, rewards, g, fn, err, errlen);
    if (rc || g->n == 0) return rc;
    int S = rl_group_slots(g);
    int *cnt = calloc(S, sizeof *cnt);
    double *sum = calloc(S, sizeof *sum);
    if (!cnt || !sum) {
        free(cnt), free(sum);
        return rl_fail(err, errlen, RL_ENOMEM, "%s: out of memory for %d groups", fn, S);
    }
    for (int i = 0; i < g->n; i++) {
        int s = rl_group_of(g, i);
        cnt[s]++;
        sum[s] += rewards[i];
    }
    for (int i = 0; i < g->n; i++) {
        int s = rl_group_of(g, i);
        if (cnt[s] < 2) {
            adv[i] = 0.0f;
            continue;
        }
        /* m/(m−1)·(R_i − mean) is the same number; the leave-one-out form is the
         * definition users check against. */
        double loo = (sum[s] - rewards[i]) / (cnt[s] - 1);
        adv[i] = (float)(rewards[i] - loo);
    }
    free(cnt), free(sum);
    return RL_OK;
}
