/*
 * engine/rl/rl_common.c — error strings, group structure and packed-batch spans
 * (rl_common.h), and the error helpers of rl_internal.h.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "engine/rl/rl_common.h"
#include "engine/rl/rl_internal.h"

const char *rl_strerror(int status) {
    switch (status) {
    case RL_OK:
        return "ok";
    case RL_EARG:
        return "bad argument";
    case RL_ESHAPE:
        return "mismatched sizes";
    case RL_EVALUE:
        return "non-finite value";
    case RL_ENOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

int rl_fail(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int rl_need(const void *p, int n, const char *fn, const char *what, char *err, size_t errlen) {
    if (!p && n > 0)
        return rl_fail(err, errlen, RL_EARG, "%s: %s is NULL (expected an array of %d)", fn,
                       what, n);
    return RL_OK;
}

int rl_check_finite(const float *x, int n, const char *fn, const char *what, char *err,
                    size_t errlen) {
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return rl_fail(err, errlen, RL_EVALUE, "%s: %s[%d] = %g is not finite", fn, what, i,
                           (double)x[i]);
    return RL_OK;
}

/* ---- groups ------------------------------------------------------------------------ */

int rl_groups_check(const rl_groups *g, char *err, size_t errlen) {
    if (!g) return rl_fail(err, errlen, RL_EARG, "groups: NULL group description");
    if (g->n < 0) return rl_fail(err, errlen, RL_EARG, "groups: n = %d (expected >= 0)", g->n);
    if (g->group_id) {
        for (int i = 0; i < g->n; i++)
            if (g->group_id[i] < 0 || g->group_id[i] >= g->n)
                return rl_fail(err, errlen, RL_EARG,
                               "groups: group_id[%d] = %d (expected 0 <= id < n = %d)", i,
                               g->group_id[i], g->n);
        return RL_OK;
    }
    if (g->group_size < 1)
        return rl_fail(err, errlen, RL_EARG, "groups: group_size G = %d (expected >= 1)",
                       g->group_size);
    if (g->n % g->group_size)
        return rl_fail(err, errlen, RL_ESHAPE,
                       "groups: n = %d completions is not a multiple of G = %d", g->n,
                       g->group_size);
    return RL_OK;
}

int rl_group_slots(const rl_groups *g) {
    if (g->n <= 0) return 0;
    return g->group_id ? g->n : g->n / g->group_size;
}

int rl_group_of(const rl_groups *g, int i) {
    return g->group_id ? g->group_id[i] : i / g->group_size;
}

/* ---- spans ------------------------------------------------------------------------- */

int rl_spans_check(const rl_spans *sp, char *err, size_t errlen) {
    if (!sp) return rl_fail(err, errlen, RL_EARG, "spans: NULL span description");
    if (sp->T < 0 || sp->B < 0)
        return rl_fail(err, errlen, RL_EARG, "spans: T = %d, B = %d (expected >= 0)", sp->T,
                       sp->B);
    int rc;
    if ((rc = rl_need(sp->start, sp->B, "spans", "start", err, errlen)) ||
        (rc = rl_need(sp->len, sp->B, "spans", "len", err, errlen)))
        return rc;
    long end_prev = 0;
    for (int i = 0; i < sp->B; i++) {
        long s = sp->start[i], l = sp->len[i];
        if (l < 0)
            return rl_fail(err, errlen, RL_EARG, "spans: len[%d] = %ld (expected >= 0)", i, l);
        if (s < 0 || s + l > sp->T)
            return rl_fail(err, errlen, RL_ESHAPE,
                           "spans: span %d = [%ld, %ld) lies outside the T = %d entries", i, s,
                           s + l, sp->T);
        if (l > 0 && s < end_prev)
            return rl_fail(err, errlen, RL_ESHAPE,
                           "spans: span %d starts at %ld, before the previous span ends (%ld);"
                           " spans must be disjoint and increasing",
                           i, s, end_prev);
        if (l > 0) end_prev = s + l;
    }
    return RL_OK;
}

int rl_spans_from_packed(int32_t *start, int32_t *len, const int32_t *offsets,
                         const int32_t *prompt_len, int B, char *err, size_t errlen) {
    const char *fn = "rl_spans_from_packed";
    if (B < 0) return rl_fail(err, errlen, RL_EARG, "%s: B = %d (expected >= 0)", fn, B);
    int rc;
    if ((rc = rl_need(start, B, fn, "start", err, errlen)) ||
        (rc = rl_need(len, B, fn, "len", err, errlen)) ||
        (rc = rl_need(offsets, 1, fn, "offsets", err, errlen)) ||
        (rc = rl_need(prompt_len, B, fn, "prompt_len", err, errlen)))
        return rc;
    if (offsets[0] != 0)
        return rl_fail(err, errlen, RL_ESHAPE, "%s: offsets[0] = %d (expected 0)", fn,
                       offsets[0]);
    for (int i = 0; i < B; i++) {
        int n = offsets[i + 1] - offsets[i];
        if (n < 1)
            return rl_fail(err, errlen, RL_ESHAPE,
                           "%s: sequence %d has %d tokens (offsets must increase)", fn, i, n);
        if (prompt_len[i] < 1 || prompt_len[i] > n)
            return rl_fail(err, errlen, RL_EARG,
                           "%s: prompt_len[%d] = %d (expected 1 <= prompt_len <= %d, the "
                           "sequence length)",
                           fn, i, prompt_len[i], n);
        start[i] = offsets[i] + prompt_len[i] - 1;
        len[i] = n - prompt_len[i];
    }
    return RL_OK;
}

int rl_broadcast(float *tok, const float *seq, const rl_spans *sp, char *err, size_t errlen) {
    int rc = rl_spans_check(sp, err, errlen);
    if (rc) return rc;
    if ((rc = rl_need(tok, sp->T, "rl_broadcast", "tok", err, errlen)) ||
        (rc = rl_need(seq, sp->B, "rl_broadcast", "seq", err, errlen)))
        return rc;
    for (int t = 0; t < sp->T; t++)
        tok[t] = 0.0f;
    for (int i = 0; i < sp->B; i++)
        for (int t = sp->start[i]; t < sp->start[i] + sp->len[i]; t++)
            tok[t] = seq[i];
    return RL_OK;
}

int rl_valid_mask(float *valid, const float *mask, const rl_spans *sp, char *err,
                  size_t errlen) {
    int rc = rl_spans_check(sp, err, errlen);
    if (rc) return rc;
    if ((rc = rl_need(valid, sp->T, "rl_valid_mask", "valid", err, errlen))) return rc;
    if (mask && (rc = rl_check_finite(mask, sp->T, "rl_valid_mask", "mask", err, errlen)))
        return rc;
    for (int t = 0; t < sp->T; t++)
        valid[t] = 0.0f;
    for (int i = 0; i < sp->B; i++)
        for (int t = sp->start[i]; t < sp->start[i] + sp->len[i]; t++)
            valid[t] = mask ? mask[t] : 1.0f;
    return RL_OK;
}
