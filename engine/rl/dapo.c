/*
 * engine/rl/dapo.c — overlong penalty, truncation mask, equal-reward group filter and the
 * dynamic-sampling fill policy (dapo.h).
 */
#include <math.h>
#include <stdlib.h>

#include "engine/rl/dapo.h"
#include "engine/rl/rl_internal.h"

int rl_overlong_penalty(float *rewards, float *penalty, const int32_t *len, int n, int max_len,
                        int buffer, float factor, char *err, size_t errlen) {
    const char *fn = "rl_overlong_penalty";
    if (n < 0) return rl_fail(err, errlen, RL_EARG, "%s: n = %d (expected >= 0)", fn, n);
    if (max_len < 1 || buffer < 1 || buffer > max_len)
        return rl_fail(err, errlen, RL_EARG,
                       "%s: max_len = %d, buffer = %d (expected 1 <= buffer <= max_len)", fn,
                       max_len, buffer);
    if (!(factor >= 0.0f) || !isfinite(factor))
        return rl_fail(err, errlen, RL_EARG, "%s: factor = %g (expected a finite value >= 0)",
                       fn, (double)factor);
    int rc;
    if ((rc = rl_need(rewards, n, fn, "rewards", err, errlen)) ||
        (rc = rl_need(len, n, fn, "len", err, errlen)))
        return rc;
    for (int i = 0; i < n; i++)
        if (len[i] < 0)
            return rl_fail(err, errlen, RL_EARG, "%s: len[%d] = %d (expected >= 0)", fn, i,
                           len[i]);
    const int expected = max_len - buffer;
    for (int i = 0; i < n; i++) {
        double p = 0.0;
        if (len[i] > expected) {
            p = -(double)(len[i] - expected) / buffer;
            if (p < -1.0) p = -1.0;
            p *= factor;
        }
        rewards[i] = (float)(rewards[i] + p);
        if (penalty) penalty[i] = (float)p;
    }
    return RL_OK;
}

int rl_mask_truncated(float *mask, const uint8_t *truncated, const rl_spans *sp, char *err,
                      size_t errlen) {
    const char *fn = "rl_mask_truncated";
    int rc = rl_spans_check(sp, err, errlen);
    if (rc || (rc = rl_need(mask, sp->T, fn, "mask", err, errlen)) ||
        (rc = rl_need(truncated, sp->B, fn, "truncated", err, errlen)))
        return rc;
    for (int i = 0; i < sp->B; i++)
        if (truncated[i])
            for (int t = sp->start[i]; t < sp->start[i] + sp->len[i]; t++)
                mask[t] = 0.0f;
    return RL_OK;
}

int rl_equal_reward_groups(uint8_t *drop, uint8_t *keep, int *n_groups, int *n_dropped,
                           const float *rewards, const rl_groups *g, float tol, char *err,
                           size_t errlen) {
    const char *fn = "rl_equal_reward_groups";
    int rc = rl_groups_check(g, err, errlen);
    if (rc) return rc;
    const int S = rl_group_slots(g);
    if ((rc = rl_need(drop, S, fn, "drop", err, errlen)) ||
        (rc = rl_need(rewards, g->n, fn, "rewards", err, errlen)) ||
        (rc = rl_check_finite(rewards, g->n, fn, "rewards", err, errlen)))
        return rc;
    if (!(tol >= 0.0f) || !isfinite(tol))
        return rl_fail(err, errlen, RL_EARG, "%s: tol = %g (expected a finite value >= 0)", fn,
                       (double)tol);
    float *lo = malloc((S ? S : 1) * sizeof *lo), *hi = malloc((S ? S : 1) * sizeof *hi);
    int *cnt = calloc(S ? S : 1, sizeof *cnt);
    if (!lo || !hi || !cnt) {
        free(lo), free(hi), free(cnt);
        return rl_fail(err, errlen, RL_ENOMEM, "%s: out of memory for %d groups", fn, S);
    }
    for (int i = 0; i < g->n; i++) {
        int s = rl_group_of(g, i);
        if (cnt[s]++ == 0) lo[s] = hi[s] = rewards[i];
        lo[s] = fminf(lo[s], rewards[i]);
        hi[s] = fmaxf(hi[s], rewards[i]);
    }
    int ng = 0, nd = 0;
    for (int s = 0; s < S; s++) {
        drop[s] = cnt[s] > 0 && (double)hi[s] - lo[s] <= tol;
        ng += cnt[s] > 0;
        nd += drop[s];
    }
    if (keep)
        for (int i = 0; i < g->n; i++)
            keep[i] = !drop[rl_group_of(g, i)];
    if (n_groups) *n_groups = ng;
    if (n_dropped) *n_dropped = nd;
    free(lo), free(hi), free(cnt);
    return RL_OK;
}

int rl_fill_init(rl_fill *f, int target, int max_rounds, char *err, size_t errlen) {
    if (!f) return rl_fail(err, errlen, RL_EARG, "rl_fill_init: NULL fill state");
    if (target < 1 || max_rounds < 0)
        return rl_fail(err, errlen, RL_EARG,
                       "rl_fill_init: target = %d, max_rounds = %d (expected target >= 1, "
                       "max_rounds >= 0)",
                       target, max_rounds);
    *f = (rl_fill){.target = target, .max_rounds = max_rounds};
    return RL_OK;
}

int rl_fill_offer(rl_fill *f, const uint8_t *drop, int n_groups, uint8_t *take, char *err,
                  size_t errlen) {
    const char *fn = "rl_fill_offer";
    if (!f) return rl_fail(err, errlen, RL_EARG, "%s: NULL fill state", fn);
    if (n_groups < 0)
        return rl_fail(err, errlen, RL_EARG, "%s: n_groups = %d (expected >= 0)", fn, n_groups);
    int rc;
    if ((rc = rl_need(drop, n_groups, fn, "drop", err, errlen)) ||
        (rc = rl_need(take, n_groups, fn, "take", err, errlen)))
        return rc;
    if (f->kept >= f->target || (f->max_rounds && f->rounds >= f->max_rounds))
        return rl_fail(err, errlen, RL_EARG,
                       "%s: the batch is already %s (%d of %d groups after %d rounds)", fn,
                       f->kept >= f->target ? "full" : "out of rounds", f->kept, f->target,
                       f->rounds);
    f->rounds++;
    for (int s = 0; s < n_groups; s++) {
        take[s] = 0;
        if (drop[s])
            f->dropped++;
        else if (f->kept < f->target)
            take[s] = 1, f->kept++;
        else
            f->surplus++;
    }
    if (f->kept >= f->target) return RL_FILL_FULL;
    if (f->max_rounds && f->rounds >= f->max_rounds) return RL_FILL_CAP;
    return RL_FILL_MORE;
}
