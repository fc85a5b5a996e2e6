/*
 * tests/ops/ops_test_util.c — shared helpers for the op-table tests; see
 * ops_test_util.h.
 */
#include "tests/ops/ops_test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- RNG -------------------------------------------------------------------------- */

void ot_rng_seed(ot_rng *r, uint64_t seed) {
    r->s = seed;
}

static uint64_t rng_next(ot_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double ot_rng_uniform(ot_rng *r) {
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

float ot_rng_range(ot_rng *r, float lo, float hi) {
    return (float)(lo + (hi - lo) * ot_rng_uniform(r));
}

int ot_rng_int(ot_rng *r, int n) {
    return (int)(rng_next(r) % (uint64_t)n);
}

void ot_fill(ot_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        x[i] = ot_rng_range(r, lo, hi);
}

/* ---- host memory ------------------------------------------------------------------ */

void *ot_xmalloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "ops test: out of host memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

float *ot_host_f32(size_t n) {
    return ot_xmalloc(n * sizeof(float));
}
double *ot_host_f64(size_t n) {
    return ot_xmalloc(n * sizeof(double));
}

/* ---- backend memory --------------------------------------------------------------- */

static void *be_alloc(ot_ctx *c, size_t bytes) {
    void *p = c->be->alloc(c->be, bytes ? bytes : 1);
    if (!p) {
        const char *e = c->be->error(c->be);
        fprintf(stderr, "ops test: backend alloc of %zu bytes failed: %s\n", bytes,
                e ? e : "(no error recorded)");
        exit(1);
    }
    return p;
}

void *ot_act_new(ot_ctx *c, const float *host, size_t n) {
    void *p = be_alloc(c, n * c->be->act_size);
    if (host)
        c->be->act_from_f32(c->be, p, host, n);
    else
        c->be->zero(c->be, p, n * c->be->act_size);
    return p;
}

float *ot_f32_new(ot_ctx *c, const float *host, size_t n) {
    float *p = be_alloc(c, n * sizeof(float));
    if (host)
        c->be->to_device(c->be, p, host, n * sizeof(float));
    else
        c->be->zero(c->be, p, n * sizeof(float));
    return p;
}

int *ot_i32_new(ot_ctx *c, const int *host, size_t n) {
    int *p = be_alloc(c, n * sizeof(int));
    c->be->to_device(c->be, p, host, n * sizeof(int));
    return p;
}

void ot_act_set(ot_ctx *c, void *dst, const float *host, size_t n) {
    c->be->act_from_f32(c->be, dst, host, n);
}
void ot_act_get(ot_ctx *c, float *host, const void *src, size_t n) {
    c->be->act_to_f32(c->be, host, src, n);
}
void ot_f32_set(ot_ctx *c, float *dst, const float *host, size_t n) {
    c->be->to_device(c->be, dst, host, n * sizeof(float));
}
void ot_f32_get(ot_ctx *c, float *host, const float *src, size_t n) {
    c->be->to_host(c->be, host, src, n * sizeof(float));
}
void ot_free(ot_ctx *c, void *p) {
    if (p) c->be->free(c->be, p);
}

float ot_act_round(const rlvr_backend *be, float x) {
    if (be->act_dtype == RLVR_DTYPE_F32) return x;
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) {
        u |= 0x00400000u; /* quiet NaN */
    } else {
        u += 0x7fffu + ((u >> 16) & 1u);
    }
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* ---- Llama 3 rope scaling ------------------------------------------------------------ */

void ot_llama3_inv_freq(float *inv, int D, double theta, double factor, double low_freq_factor,
                        double high_freq_factor, double original_max_pos) {
    const double two_pi = 6.283185307179586;
    double low_wavelen = original_max_pos / low_freq_factor;
    double high_wavelen = original_max_pos / high_freq_factor;
    for (int i = 0; i < D / 2; i++) {
        double f = 1.0 / pow(theta, (2.0 * i) / D);
        double wavelen = two_pi / f;
        double g;
        if (wavelen < high_wavelen) {
            g = f;
        } else if (wavelen > low_wavelen) {
            g = f / factor;
        } else {
            double smooth = (original_max_pos / wavelen - low_freq_factor) /
                            (high_freq_factor - low_freq_factor);
            g = (1.0 - smooth) * f / factor + smooth * f;
        }
        inv[i] = (float)g;
    }
}

/* ---- policy-loss token set --------------------------------------------------------- */

/* Token set crossing every branch: ρ below/inside/above the clip range, above the dual
 * clip, log-ratio clamped at ±20; A > 0 and A < 0; d in the normal range, k3 clamped at
 * 10, d clamped at ±20; weights 1, fractional, 0. Values stay away from the kinks. */
int ot_policy_tokens(ot_rng *r, float *logp, float *old, float *ref, float *adv, float *wt) {
    static const float lrs[] = {-0.5f, -0.05f, 0.1f, 0.4f, 1.5f, 25.0f, -25.0f};
    static const float ds[] = {-0.3f, 0.2f, 0.8f, 2.5f, 3.0f, -12.0f, 25.0f, -25.0f, -1.7f};
    static const float advs[] = {1.3f, -0.7f};
    static const float wts[] = {1.0f, 0.37f, 0.0f, 2.0f, 1.0f};
    int T = 0;
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < 7; i++)
            for (int rep = 0; rep < 2; rep++) {
                float lp = ot_rng_range(r, -3.0f, -0.5f);
                logp[T] = lp;
                old[T] = lp - lrs[i];
                ref[T] = lp + ds[(T * 5 + rep) % 9];
                adv[T] = advs[a] * (rep ? 1.6f : 1.0f);
                wt[T] = wts[T % 5];
                T++;
            }
    return T;
}

/* ---- checks ------------------------------------------------------------------------- */

static void fail_head(ot_ctx *c, const char *op, const char *cas) {
    c->failures++;
    printf("FAIL op=%s case=%s: ", op, cas);
}

int ot_check_close(ot_ctx *c, const char *op, const char *cas, const char *what,
                   const float *got, const double *want, size_t n, double atol, double rtol) {
    c->checks++;
    size_t bad = 0, worst = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double lim = atol + rtol * fabs(want[i]);
        if (!(d <= lim)) {
            bad++;
            double ex = isnan(d) ? INFINITY : d / lim;
            if (ex > worst_excess || worst_excess < 0) {
                worst_excess = ex;
                worst = i;
            }
        }
    }
    if (!bad) return 1;
    fail_head(c, op, cas);
    printf("%s: %zu of %zu elements out of tolerance (atol %.1e, rtol %.1e); worst [%zu] got "
           "%.9g want %.9g (diff %.3e)\n",
           what, bad, n, atol, rtol, worst, (double)got[worst], want[worst],
           fabs((double)got[worst] - want[worst]));
    return 0;
}

int ot_check_relvec(ot_ctx *c, const char *op, const char *cas, const char *what,
                    const double *a, const double *b, size_t n, double tol, double floor) {
    c->checks++;
    double num = 0, den = 0, worst_d = -1;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
        if (isnan(d) || fabs(d) > worst_d) {
            worst_d = isnan(d) ? INFINITY : fabs(d);
            worst = i;
        }
    }
    double rel = sqrt(num) / fmax(sqrt(den), floor);
    if (rel <= tol) {
        printf("  ok   %-22s %-34s %-10s rel err %.2e (tol %.0e, n=%zu)\n", op, cas, what, rel,
               tol, n);
        return 1;
    }
    fail_head(c, op, cas);
    printf("%s: relative error %.3e > %.1e over %zu elements (|ref| %.3e); worst [%zu] "
           "analytic %.9g reference %.9g\n",
           what, rel, tol, n, sqrt(den), worst, n ? a[worst] : 0.0, n ? b[worst] : 0.0);
    return 0;
}

int ot_check_bits(ot_ctx *c, const char *op, const char *cas, const char *what, const float *a,
                  const float *b, size_t n) {
    c->checks++;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            if (!bad) first = i;
            bad++;
        }
    }
    if (!bad) return 1;
    fail_head(c, op, cas);
    printf("%s: %zu of %zu elements differ bitwise; first [%zu] %.9g vs %.9g\n", what, bad, n,
           first, (double)a[first], (double)b[first]);
    return 0;
}

int ot_check(ot_ctx *c, const char *op, const char *cas, int ok, const char *fmt, ...) {
    c->checks++;
    if (ok) return 1;
    fail_head(c, op, cas);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    return 0;
}

int ot_check_no_error(ot_ctx *c, const char *op, const char *cas) {
    const char *e = c->be->error(c->be);
    return ot_check(c, op, cas, e == NULL, "backend recorded an error: %s", e ? e : "");
}

int ot_finish(ot_ctx *c, const char *prog) {
    printf("%s: %d checks, %d failed\n", prog, c->checks, c->failures);
    fflush(stdout);
    return c->failures ? 1 : 0;
}

rlvr_backend *ot_cpu_backend(int threads) {
    rlvr_backend *be = rlvr_cpu_backend_create(threads);
    if (!be) {
        fprintf(stderr, "ops test: rlvr_cpu_backend_create(%d) returned NULL\n", threads);
        exit(1);
    }
    return be;
}

double ot_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
