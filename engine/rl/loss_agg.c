/*
 * engine/rl/loss_agg.c — loss aggregation weights with step-global denominators
 * (loss_agg.h).
 */
#include <math.h>
#include <string.h>

#include "engine/rl/loss_agg.h"
#include "engine/rl/rl_internal.h"

static const char *const agg_names[] = {"token-mean", "seq-mean-token-mean",
                                        "seq-mean-token-sum-norm"};

const char *rl_agg_name(rl_agg_mode m) {
    return (unsigned)m < 3 ? agg_names[m] : "unknown";
}

int rl_agg_parse(const char *name, rl_agg_mode *out, char *err, size_t errlen) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, agg_names[i])) {
            *out = (rl_agg_mode)i;
            return RL_OK;
        }
    return rl_fail(err, errlen, RL_EARG,
                   "loss aggregation \"%s\" is unknown (expected token-mean, "
                   "seq-mean-token-mean or seq-mean-token-sum-norm)",
                   name ? name : "(null)");
}

/* Valid tokens of span i. */
static double span_tokens(const rl_spans *sp, const float *mask, int i) {
    if (!mask) return sp->len[i];
    double n = 0;
    for (int t = sp->start[i]; t < sp->start[i] + sp->len[i]; t++)
        n += mask[t] != 0.0f;
    return n;
}

static int check_mask(const rl_spans *sp, const float *mask, const char *fn, char *err,
                      size_t errlen) {
    if (!mask) return RL_OK;
    for (int t = 0; t < sp->T; t++)
        if (!(mask[t] >= 0.0f) || !isfinite(mask[t]))
            return rl_fail(err, errlen, RL_EVALUE, "%s: mask[%d] = %g (expected finite, >= 0)",
                           fn, t, (double)mask[t]);
    return RL_OK;
}

int rl_agg_count(double *n_tokens, double *n_seqs, const rl_spans *sp, const float *mask,
                 char *err, size_t errlen) {
    const char *fn = "rl_agg_count";
    int rc = rl_spans_check(sp, err, errlen);
    if (rc || (rc = check_mask(sp, mask, fn, err, errlen))) return rc;
    double nt = 0, ns = 0;
    for (int i = 0; i < sp->B; i++) {
        double n = span_tokens(sp, mask, i);
        nt += n;
        ns += n > 0;
    }
    if (n_tokens) *n_tokens = nt;
    if (n_seqs) *n_seqs = ns;
    return RL_OK;
}

int rl_agg_weights(float *w, rl_agg_mode mode, const rl_spans *sp, const float *mask,
                   const rl_agg_denoms *d, char *err, size_t errlen) {
    const char *fn = "rl_agg_weights";
    int rc = rl_spans_check(sp, err, errlen);
    if (rc || (rc = check_mask(sp, mask, fn, err, errlen)) ||
        (rc = rl_need(w, sp->T, fn, "w", err, errlen)))
        return rc;
    if (!d) return rl_fail(err, errlen, RL_EARG, "%s: NULL denominators", fn);
    if ((unsigned)mode > RL_AGG_SEQ_MEAN_TOKEN_SUM_NORM)
        return rl_fail(err, errlen, RL_EARG, "%s: mode = %d (expected 0, 1 or 2)", fn,
                       (int)mode);
    if (!(d->n_tokens >= 0) || !(d->n_seqs >= 0) || !isfinite(d->n_tokens) ||
        !isfinite(d->n_seqs))
        return rl_fail(err, errlen, RL_EARG,
                       "%s: global counts n_tokens = %g, n_seqs = %g (expected finite, >= 0)",
                       fn, d->n_tokens, d->n_seqs);
    if (mode == RL_AGG_SEQ_MEAN_TOKEN_SUM_NORM && d->max_len < 1)
        return rl_fail(err, errlen, RL_EARG,
                       "%s: max_len = %d (seq-mean-token-sum-norm needs L_max >= 1)", fn,
                       d->max_len);
    for (int t = 0; t < sp->T; t++)
        w[t] = 0.0f;
    for (int i = 0; i < sp->B; i++) {
        const double n_i = span_tokens(sp, mask, i);
        if (n_i == 0) continue;
        double denom;
        switch (mode) {
        case RL_AGG_TOKEN_MEAN:
            denom = d->n_tokens;
            break;
        case RL_AGG_SEQ_MEAN_TOKEN_MEAN:
            denom = d->n_seqs * n_i;
            break;
        default:
            if (sp->len[i] > d->max_len)
                return rl_fail(err, errlen, RL_ESHAPE,
                               "%s: completion %d has %d tokens, more than max_len = %d", fn, i,
                               sp->len[i], d->max_len);
            denom = d->n_seqs * d->max_len;
            break;
        }
        if (!(denom > 0) || (mode == RL_AGG_TOKEN_MEAN && d->n_tokens < n_i) ||
            (mode != RL_AGG_TOKEN_MEAN && d->n_seqs < 1))
            return rl_fail(err, errlen, RL_EARG,
                           "%s: global counts n_tokens = %g, n_seqs = %g do not cover this "
                           "micro-batch (completion %d has %g valid tokens)",
                           fn, d->n_tokens, d->n_seqs, i, n_i);
        const double inv = 1.0 / denom;
        for (int t = sp->start[i]; t < sp->start[i] + sp->len[i]; t++)
            w[t] = (float)((mask ? mask[t] : 1.0f) * inv);
    }
    return RL_OK;
}

double rl_agg_apply(const float *w, const float *loss, int T) {
    double s = 0;
    for (int t = 0; t < T; t++)
        s += (double)w[t] * loss[t];
    return s;
}
