/*
 * engine/rl/rl_internal.h — helpers shared by the engine/rl sources (not installed for
 * other modules): error formatting and input checks.
 */
#ifndef RLVR_RL_INTERNAL_H
#define RLVR_RL_INTERNAL_H

#include <stddef.h>

#include "engine/rl/rl_common.h"

/* Formats "fn: message" into err and returns code. */
int rl_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* RL_EARG naming `what` when p is NULL (n > 0 only: empty arrays may be NULL). */
int rl_need(const void *p, int n, const char *fn, const char *what, char *err, size_t errlen);
/* RL_EVALUE naming the first non-finite x[i], i < n. */
int rl_check_finite(const float *x, int n, const char *fn, const char *what, char *err,
                    size_t errlen);

#endif
