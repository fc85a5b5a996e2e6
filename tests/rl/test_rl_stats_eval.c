/*
 * tests/rl/test_rl_stats_eval.c — batch statistics (summaries, accuracy, zero-variance
 * fraction, clip fractions, truncation rate) and eval metrics (pass@k against the
 * binomial definition, maj@k with its tie rule).
 */
#include <stdlib.h>

#include "engine/rl/batch_stats.h"
#include "engine/rl/eval_metrics.h"
#include "tests/common/check.h"

static char err[512];

static double binom(int n, int k) {
    if (k < 0 || k > n) return 0;
    double r = 1;
    for (int i = 1; i <= k; i++)
        r = r * (n - k + i) / i;
    return r;
}

static void test_stats(void) {
    /* {1, 0, 0, 1, 1}: mean 0.6, population std sqrt(0.24) = 0.489898, min 0, max 1,
     * accuracy 3/5 */
    float R[5] = {1, 0, 0, 1, 1};
    rl_summary s;
    CHECK_OK(rl_summarize(&s, R, NULL, 5, err, sizeof err), err);
    CHECK(s.count == 5 && s.min == 0 && s.max == 1);
    CHECK_NEAR(s.mean, 0.6, 1e-12);
    CHECK_NEAR(s.std, sqrt(0.24), 1e-12);
    double acc;
    int bin;
    CHECK_OK(rl_binary_accuracy(&acc, &bin, R, 5, err, sizeof err), err);
    CHECK(bin == 1);
    CHECK_NEAR(acc, 0.6, 1e-12);
    float Rn[3] = {1, 0.5f, 0};
    CHECK_OK(rl_binary_accuracy(&acc, &bin, Rn, 3, err, sizeof err), err);
    CHECK(bin == 0 && isnan(acc));
    /* masked: {−3, x, 5} with x masked → mean 1, std 4 */
    float A[3] = {-3, 100, 5}, m[3] = {1, 0, 1};
    CHECK_OK(rl_summarize(&s, A, m, 3, err, sizeof err), err);
    CHECK(s.count == 2 && s.min == -3 && s.max == 5 && s.mean == 1 && s.std == 4);
    CHECK_OK(rl_summarize(&s, A, NULL, 0, err, sizeof err), err);
    CHECK(s.count == 0 && s.mean == 0 && s.std == 0);
    int32_t len[4] = {3, 7, 0, 10};
    CHECK_OK(rl_summarize_int(&s, len, 4, err, sizeof err), err);
    CHECK(s.mean == 5 && s.min == 0 && s.max == 10);
    CHECK_NEAR(s.std, sqrt((4 + 4 + 25 + 25) / 4.0), 1e-12);

    /* zero-variance groups: {1,1}, {0,1}, {0,0} → 2/3 */
    float Rg[6] = {1, 1, 0, 1, 0, 0};
    rl_groups g = {.n = 6, .group_size = 2};
    double fz;
    CHECK_OK(rl_zero_variance_fraction(&fz, Rg, &g, err, sizeof err), err);
    CHECK_NEAR(fz, 2.0 / 3.0, 1e-12);

    /* clip fractions, ε_low = 0.2, ε_high = 0.28, dual c = 3 (ρ = e^{logp − old}):
     *   t0 ρ = e^−0.5 = 0.607, A < 0 → low
     *   t1 ρ = e^0.5 = 1.649, A > 0 → high
     *   t2 ρ = e^0.5, A < 0 → neither (unclipped branch; ρ < c)
     *   t3 ρ = e^1.5 = 4.48, A < 0 → dual
     *   t4 ρ = e^0.2 = 1.2214 < 1.28, A > 0 → neither
     *   t5 masked (would be high)
     * N = 5: low 0.2, high 0.2, dual 0.2 */
    float lp[6] = {-1.5f, -0.5f, -0.5f, 0.5f, -0.8f, 0}, old[6] = {-1, -1, -1, -1, -1, -5};
    float adv[6] = {-1, 1, -1, -2, 1, 1}, valid[6] = {1, 1, 1, 1, 1, 0};
    double lo, hi, du;
    CHECK_OK(rl_clip_fractions(&lo, &hi, &du, lp, old, adv, valid, 6, 0.2f, 0.28f, 3.0f, err,
                               sizeof err),
             err);
    CHECK_NEAR(lo, 0.2, 1e-12);
    CHECK_NEAR(hi, 0.2, 1e-12);
    CHECK_NEAR(du, 0.2, 1e-12);

    uint8_t tr[4] = {0, 1, 1, 0};
    CHECK_NEAR(rl_truncation_rate(tr, 4), 0.5, 0);
    CHECK_NEAR(rl_truncation_rate(tr, 0), 0.0, 0);
}

static void test_pass_at_k(void) {
    /* n = 5, c = 2, k = 2: 1 − C(3,2)/C(5,2) = 1 − 3/10 = 0.7
     * product form: 1 − (1 − 2/4)(1 − 2/5) = 1 − 0.5·0.6 = 0.7 */
    double v;
    CHECK_OK(rl_pass_at_k(&v, 5, 2, 2, err, sizeof err), err);
    CHECK_NEAR(v, 0.7, 1e-15);
    CHECK_OK(rl_pass_at_k(&v, 5, 2, 1, err, sizeof err), err); /* pass@1 = c/n = 0.4 */
    CHECK_NEAR(v, 0.4, 1e-15);
    CHECK_OK(rl_pass_at_k(&v, 5, 4, 2, err, sizeof err), err); /* n − c = 1 < k → 1 */
    CHECK(v == 1.0);
    CHECK_OK(rl_pass_at_k(&v, 5, 0, 3, err, sizeof err), err);
    CHECK(v == 0.0);
    /* against the binomial definition for every (n ≤ 30, c, k) */
    for (int n = 1; n <= 30; n++)
        for (int c = 0; c <= n; c++)
            for (int k = 1; k <= n; k++) {
                CHECK_OK(rl_pass_at_k(&v, n, c, k, err, sizeof err), err);
                CHECK_NEAR(v, 1.0 - binom(n - c, k) / binom(n, k), 1e-12);
            }
    /* large n where C(n, k) overflows a double: n = 2000, c = 3, k = 1000:
     * 1 − Π_{i=1998..2000}(1 − 1000/i) = 1 − (998/1998)(999/1999)(1000/2000) */
    CHECK_OK(rl_pass_at_k(&v, 2000, 3, 1000, err, sizeof err), err);
    CHECK_NEAR(v, 1.0 - (998.0 / 1998) * (999.0 / 1999) * (1000.0 / 2000), 1e-14);
    int ns[2] = {4, 4}, cs[2] = {1, 4};
    CHECK_OK(rl_pass_at_k_mean(&v, ns, cs, 2, 1, err, sizeof err), err); /* (0.25 + 1)/2 */
    CHECK_NEAR(v, 0.625, 1e-15);
    int nbad[2] = {4, 1};
    CHECK_ERR(rl_pass_at_k_mean(&v, nbad, cs, 2, 2, err, sizeof err), RL_EARG, err,
              "problem 1");
}

static void test_maj(void) {
    /* votes: "12" ×2, "7" ×3, none ×1 → "7" wins at index 1 with 3 votes */
    const char *a[6] = {"12", "7", NULL, "7", "12", "7"};
    int correct[6] = {0, 1, 0, 1, 0, 1}, w, v, out;
    CHECK_OK(rl_majority_vote(&w, &v, a, 6, err, sizeof err), err);
    CHECK(w == 1 && v == 3);
    CHECK_OK(rl_maj_at_k(&out, a, correct, 6, err, sizeof err), err);
    CHECK(out == 1);
    /* maj@4 uses the first 4 only: "12" ×1, "7" ×2 → "7" */
    CHECK_OK(rl_majority_vote(&w, &v, a, 4, err, sizeof err), err);
    CHECK(w == 1 && v == 2);
    /* tie "b" ×2 vs "a" ×2: "b" occurs first (index 0) → "b", whatever the string order */
    const char *t[5] = {"b", "a", "", "a", "b"};
    int ct[5] = {0, 1, 0, 1, 0};
    CHECK_OK(rl_majority_vote(&w, &v, t, 5, err, sizeof err), err);
    CHECK(w == 0 && v == 2);
    CHECK_OK(rl_maj_at_k(&out, t, ct, 5, err, sizeof err), err);
    CHECK(out == 0);
    /* nobody answered → −1, maj = 0 */
    const char *none[2] = {NULL, ""};
    int cn[2] = {1, 1};
    CHECK_OK(rl_majority_vote(&w, &v, none, 2, err, sizeof err), err);
    CHECK(w == -1 && v == 0);
    CHECK_OK(rl_maj_at_k(&out, none, cn, 2, err, sizeof err), err);
    CHECK(out == 0);
}

int main(void) {
    test_stats();
    test_pass_at_k();
    test_maj();
    return check_done("test_rl_stats_eval");
}
