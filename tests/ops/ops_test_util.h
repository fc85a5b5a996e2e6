/*
 * tests/ops/ops_test_util.h — shared helpers for the op-table tests (tests/ops): a
 * seeded RNG, host ↔ backend tensor transfer through the op table itself (alloc,
 * to_device/to_host, act_from_f32/act_to_f32), the Llama 3 inv_freq scaling, and
 * comparisons that print the op, the case and the numbers of every failure.
 *
 * The tests are written against kernels/backend.h (the contract), never against one
 * implementation: every buffer goes through the op table's memory functions.
 */
#ifndef RLVR_TESTS_OPS_TEST_UTIL_H
#define RLVR_TESTS_OPS_TEST_UTIL_H

#include "kernels/backend.h"

#include <stddef.h>
#include <stdint.h>

/* One test program's state: the backend under test and the running tally. */
typedef struct {
    rlvr_backend *be;
    int checks;   /* comparisons made */
    int failures; /* comparisons that failed */
} ot_ctx;

/* SplitMix64: small, seeded, identical on every platform. */
typedef struct {
    uint64_t s;
} ot_rng;

void ot_rng_seed(ot_rng *r, uint64_t seed);
double ot_rng_uniform(ot_rng *r);                  /* [0, 1) */
float ot_rng_range(ot_rng *r, float lo, float hi); /* [lo, hi) */
int ot_rng_int(ot_rng *r, int n);                  /* [0, n) */
void ot_fill(ot_rng *r, float *x, size_t n, float lo, float hi);

/* Host allocation that ends the test program with a message on failure. */
void *ot_xmalloc(size_t bytes);
float *ot_host_f32(size_t n);  /* zeroed */
double *ot_host_f64(size_t n); /* zeroed */

/* Backend buffers. `host` may be NULL (the buffer is zeroed). n counts elements. */
void *ot_act_new(ot_ctx *c, const float *host, size_t n);
float *ot_f32_new(ot_ctx *c, const float *host, size_t n);
int *ot_i32_new(ot_ctx *c, const int *host, size_t n);
void ot_act_set(ot_ctx *c, void *dst, const float *host, size_t n);
void ot_act_get(ot_ctx *c, float *host, const void *src, size_t n);
void ot_f32_set(ot_ctx *c, float *dst, const float *host, size_t n);
void ot_f32_get(ot_ctx *c, float *host, const float *src, size_t n);
void ot_free(ot_ctx *c, void *p);

/* The value x takes once stored in the backend's act dtype (identity for fp32,
 * round-to-nearest-even for bf16). */
float ot_act_round(const rlvr_backend *be, float x);

/* Llama 3 rope scaling of the HF default inv_freq: inv[i] = theta^(-2i/D), i < D/2,
 * then long wavelengths divided by `factor` with the smooth band in between. */
void ot_llama3_inv_freq(float *inv, int D, double theta, double factor, double low_freq_factor,
                        double high_freq_factor, double original_max_pos);

/* Fills up to 28 policy-loss tokens (arrays of at least 28) crossing every branch of
 * policy_loss: rho below / inside / above the clip range and above the dual clip, the
 * log-ratio clamped at +-20, A > 0 and A < 0, d in the normal range, k3 clamped at 10 and
 * d clamped at +-20, weights 1, fractional and 0; every value lies at least 0.05 away
 * from a kink so central differences are valid. Returns the token count. */
int ot_policy_tokens(ot_rng *r, float *logp, float *old, float *ref, float *adv, float *wt);

/* Elementwise: |got[i] − want[i]| ≤ atol + rtol·|want[i]| (NaN fails). Prints the
 * worst element on failure. Returns 1 on pass. */
int ot_check_close(ot_ctx *c, const char *op, const char *cas, const char *what,
                   const float *got, const double *want, size_t n, double atol, double rtol);
/* Whole-vector relative error ‖a − b‖ / max(‖b‖, floor) ≤ tol, b the reference. */
int ot_check_relvec(ot_ctx *c, const char *op, const char *cas, const char *what,
                    const double *a, const double *b, size_t n, double tol, double floor);
/* Bit-identical float arrays. */
int ot_check_bits(ot_ctx *c, const char *op, const char *cas, const char *what, const float *a,
                  const float *b, size_t n);
/* A condition with a printf-style explanation printed on failure. */
int ot_check(ot_ctx *c, const char *op, const char *cas, int ok, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Fails when the backend has recorded an error. */
int ot_check_no_error(ot_ctx *c, const char *op, const char *cas);

/* Prints the summary line; returns the process exit status (0 pass, 1 fail). */
int ot_finish(ot_ctx *c, const char *prog);

/* Monotonic seconds, for per-section timings. */
double ot_now(void);

/* Creates the CPU backend with `threads` or ends the program with a message. */
rlvr_backend *ot_cpu_backend(int threads);

#endif /* RLVR_TESTS_OPS_TEST_UTIL_H */
