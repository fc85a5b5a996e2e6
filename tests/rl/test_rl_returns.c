/*
 * tests/rl/test_rl_returns.c — discounted returns, REINFORCE++ (plain and group
 * baseline), GAE against a straightforward reference loop on random inputs and against
 * hand values, whitening, and the clipped value loss with its gradient (hand values and
 * finite differences).
 */
#include <stdlib.h>

#include "engine/rl/returns.h"
#include "tests/common/check.h"

static char err[512];

static void test_returns_and_rpp(void) {
    /* Two completions over T = 7 entries: span 0 = [0, 3), span 1 = [4, 6); entries 3, 6
     * are prompt. R = {1, −1}, γ = 0.5, no token rewards.
     * returns span 0: r = {0, 0, 1} → G = {0.25, 0.5, 1}; span 1: r = {0, −1} → {−0.5, −1}
     * (reset per sequence: span 1 does not leak into span 0). */
    int32_t st[2] = {0, 4}, ln[2] = {3, 2};
    rl_spans sp = {.T = 7, .B = 2, .start = st, .len = ln};
    float R[2] = {1, -1}, r[7] = {0}, G[7], A[7];
    CHECK_OK(rl_place_seq_rewards(r, R, &sp, err, sizeof err), err);
    CHECK(r[2] == 1 && r[5] == -1 && r[0] == 0 && r[4] == 0);
    CHECK_OK(rl_discounted_returns(G, r, &sp, 0.5f, err, sizeof err), err);
    const float wantG[7] = {0.25f, 0.5f, 1, 0, -0.5f, -1, 0};
    for (int t = 0; t < 7; t++)
        CHECK(G[t] == wantG[t]);

    /* REINFORCE++ whitens G over the 5 valid tokens {0.25, 0.5, 1, −0.5, −1}:
     * mean = 0.25/5 = 0.05; d = 0.2, 0.45, 0.95, −0.55, −1.05;
     * Σd² = 0.04 + 0.2025 + 0.9025 + 0.3025 + 1.1025 = 2.55; unbiased var = 0.6375,
     * std = 0.798435971 (eps 1e-8 negligible) → A0 = 0.2/0.798436 = 0.250489 */
    rl_whiten_params wp = rl_whiten_defaults();
    CHECK_OK(rl_reinforce_pp(A, NULL, R, &sp, NULL, NULL, 0.5f, &wp, err, sizeof err), err);
    const double sd = sqrt(0.6375 + 1e-8);
    const double wantA[7] = {0.2 / sd, 0.45 / sd, 0.95 / sd, 0, -0.55 / sd, -1.05 / sd, 0};
    for (int t = 0; t < 7; t++)
        CHECK_NEAR(A[t], wantA[t], 1e-6);
    CHECK_NEAR(A[0], 0.2504897, 1e-6);

    /* biased variance (OpenRLHF): var = 2.55/5 = 0.51 → A0 = 0.2/0.714142843 = 0.280056 */
    wp.unbiased = 0;
    CHECK_OK(rl_reinforce_pp(A, NULL, R, &sp, NULL, NULL, 0.5f, &wp, err, sizeof err), err);
    CHECK_NEAR(A[0], 0.2 / sqrt(0.51 + 1e-8), 1e-6);
    wp.unbiased = 1;

    /* token rewards (e.g. −β·KL) add in: r = {0.1, 0, 0, x, 0, 0, x} with γ = 1:
     * span 0 returns {1.1, 1, 1}, span 1 {−1, −1}. mean = 1.1/5 = 0.22;
     * d = 0.88, 0.78, 0.78, −1.22, −1.22; Σd² = 0.7744 + 2·0.6084 + 2·1.4884 = 4.968;
     * var = 1.242 → A0 = 0.88/1.114450 = 0.789627 */
    float tr[7] = {0.1f, 0, 0, 7, 0, 0, 7}; /* entries 3, 6 are outside spans: ignored */
    CHECK_OK(rl_reinforce_pp(A, tr, R, &sp, NULL, NULL, 1.0f, &wp, err, sizeof err), err);
    CHECK_NEAR(A[0], 0.88 / sqrt(1.242 + 1e-8), 2e-6);
    CHECK_NEAR(A[4], -1.22 / sqrt(1.242 + 1e-8), 2e-6);
    CHECK(A[3] == 0 && A[6] == 0);

    /* group-baseline variant: one group {1, −1} has mean 0, so R is unchanged → same A as
     * the plain run; with R = {3, 1} (mean 2) it equals plain on {1, −1}. */
    float R2[2] = {3, 1}, A2[7];
    rl_groups g = {.n = 2, .group_size = 2};
    CHECK_OK(rl_reinforce_pp(A2, NULL, R2, &sp, &g, NULL, 0.5f, &wp, err, sizeof err), err);
    for (int t = 0; t < 7; t++)
        CHECK_NEAR(A2[t], wantA[t], 1e-6);

    /* mask: drop completion 1 (truncated) from the whitening → valid {0.25, 0.5, 1}:
     * mean 7/12, d = −1/3, −1/12, 5/12; Σd² = (16 + 1 + 25)/144 = 42/144; var = 21/144,
     * std = 0.381881308 → A0 = −0.872871 */
    float mask[7] = {1, 1, 1, 1, 0, 0, 1};
    CHECK_OK(rl_reinforce_pp(A, NULL, R, &sp, NULL, mask, 0.5f, &wp, err, sizeof err), err);
    CHECK_NEAR(A[0], (-1.0 / 3) / sqrt(21.0 / 144 + 1e-8), 1e-6);
    CHECK(A[4] == 0 && A[5] == 0);

    /* single token, single sequence: whitening of one value → 0 (var 0, x − mean = 0) */
    int32_t s1 = 0, l1 = 1;
    rl_spans one = {.T = 1, .B = 1, .start = &s1, .len = &l1};
    float R1 = 1, A1;
    CHECK_OK(rl_reinforce_pp(&A1, NULL, &R1, &one, NULL, NULL, 1.0f, &wp, err, sizeof err),
             err);
    CHECK(A1 == 0.0f);

    /* zero-length completion: no token carries its reward; nothing breaks */
    int32_t sz[2] = {0, 2}, lz[2] = {2, 0};
    rl_spans spz = {.T = 2, .B = 2, .start = sz, .len = lz};
    float Rz[2] = {1, 5}, Az[2];
    CHECK_OK(rl_reinforce_pp(Az, NULL, Rz, &spz, NULL, NULL, 1.0f, &wp, err, sizeof err), err);
    CHECK(Az[0] == 0.0f && Az[1] == 0.0f); /* returns {1, 1}: equal → whitened to 0 */
}

/* The textbook GAE loop over one padded row, the way verl writes it (values after the
 * response are 0), used as the reference. */
static void gae_reference(double *adv, double *ret, const float *r, const float *v, int n,
                          double gamma, double lam) {
    double last = 0;
    for (int t = n - 1; t >= 0; t--) {
        double next_v = t < n - 1 ? v[t + 1] : 0.0;
        double delta = r[t] + gamma * next_v - v[t];
        last = delta + gamma * lam * last;
        adv[t] = last;
    }
    for (int t = 0; t < n; t++)
        ret[t] = adv[t] + v[t];
}

static void test_gae(void) {
    /* Hand values: one span of 3, r = {0, 0, 1}, V = {0.5, 0.2, 0.4}, γ = 0.9, λ = 0.8
     *   δ2 = 1 + 0 − 0.4 = 0.6                 A2 = 0.6
     *   δ1 = 0 + 0.9·0.4 − 0.2 = 0.16          A1 = 0.16 + 0.72·0.6 = 0.592
     *   δ0 = 0 + 0.9·0.2 − 0.5 = −0.32         A0 = −0.32 + 0.72·0.592 = 0.10624
     *   returns = A + V = {0.60624, 0.792, 1.0} */
    int32_t s = 0, l = 3;
    rl_spans sp = {.T = 3, .B = 1, .start = &s, .len = &l};
    float r[3] = {0, 0, 1}, v[3] = {0.5f, 0.2f, 0.4f}, A[3], Rt[3];
    CHECK_OK(rl_gae(A, Rt, r, v, &sp, 0.9f, 0.8f, err, sizeof err), err);
    CHECK_NEAR(A[2], 0.6, 1e-6);
    CHECK_NEAR(A[1], 0.592, 1e-6);
    CHECK_NEAR(A[0], 0.10624, 1e-6);
    CHECK_NEAR(Rt[0], 0.60624, 1e-6);
    CHECK_NEAR(Rt[2], 1.0, 1e-6);
    /* γ = λ = 1 (verl/OpenRLHF defaults): A_t = Σ_{u≥t} r_u − V_t → {0.5, 0.8, 0.6},
     * returns = the Monte-Carlo return 1 everywhere */
    CHECK_OK(rl_gae(A, Rt, r, v, &sp, 1.0f, 1.0f, err, sizeof err), err);
    CHECK_NEAR(A[0], 0.5, 1e-6);
    CHECK_NEAR(A[1], 0.8, 1e-6);
    for (int t = 0; t < 3; t++)
        CHECK_NEAR(Rt[t], 1.0, 1e-6);

    /* Random packed batch vs the reference loop, span by span. */
    srand(7);
    enum { B = 6, T = 64 };
    int32_t st[B], ln[B];
    int pos = 0;
    for (int i = 0; i < B; i++) {
        pos += 1 + rand() % 3; /* prompt gap */
        st[i] = pos;
        ln[i] = i == 2 ? 0 : 1 + rand() % 7;
        pos += ln[i];
    }
    CHECK(pos <= T);
    rl_spans rs = {.T = T, .B = B, .start = st, .len = ln};
    float rr[T], vv[T], aa[T], re[T];
    for (int t = 0; t < T; t++) {
        rr[t] = (float)rand() / RAND_MAX - 0.5f;
        vv[t] = (float)rand() / RAND_MAX;
    }
    CHECK_OK(rl_gae(aa, re, rr, vv, &rs, 0.97f, 0.95f, err, sizeof err), err);
    double ra[T], rre[T];
    int covered[T] = {0};
    for (int i = 0; i < B; i++) {
        gae_reference(ra, rre, rr + st[i], vv + st[i], ln[i], 0.97f, 0.95f);
        for (int t = 0; t < ln[i]; t++) {
            CHECK_NEAR(aa[st[i] + t], ra[t], 1e-5);
            CHECK_NEAR(re[st[i] + t], rre[t], 1e-5);
            covered[st[i] + t] = 1;
        }
    }
    for (int t = 0; t < T; t++)
        if (!covered[t]) CHECK(aa[t] == 0 && re[t] == 0);

    /* whitening afterwards: mean 0 and unbiased std 1 over valid tokens */
    float valid[T];
    CHECK_OK(rl_valid_mask(valid, NULL, &rs, err, sizeof err), err);
    rl_whiten_params wp = rl_whiten_defaults();
    CHECK_OK(rl_whiten(aa, valid, T, &wp, err, sizeof err), err);
    double cnt, mean, var;
    CHECK_OK(rl_masked_moments(&cnt, &mean, &var, aa, valid, T, &wp, err, sizeof err), err);
    CHECK_NEAR(mean, 0.0, 1e-6);
    CHECK_NEAR(var, 1.0, 1e-5);
}

static void test_value_loss(void) {
    /* c = 0.2, R = 1 throughout.
     * t0: V = 0.9, V_old = 0.8: clip(V) = 0.9 (inside ±0.2) → both terms ½·0.01 = 0.005,
     *     grad (V − R) = −0.1
     * t1: V = 0.5, V_old = 0.9: clip → max(0.5, 0.7) = 0.7; ½(0.5−1)² = 0.125,
     *     ½(0.7−1)² = 0.045 → unclipped wins: loss 0.125, grad −0.5
     * t2: V = 1.3, V_old = 0.5: clip → 0.7; ½(0.3)² = 0.045, ½(−0.3)² = 0.045 → tie:
     *     unclipped taken, loss 0.045, grad 0.3
     * t3: V = 1.05, V_old = 0.2: clip → 0.4; ½(0.05)² = 0.00125, ½(0.6)² = 0.18 →
     *     clipped wins: loss 0.18, grad 0, clipped = 1 */
    float v[4] = {0.9f, 0.5f, 1.3f, 1.05f}, vo[4] = {0.8f, 0.9f, 0.5f, 0.2f};
    float R[4] = {1, 1, 1, 1}, w[4] = {1, 1, 1, 0.5f}, L[4], dv[4], cl[4];
    CHECK_OK(rl_value_loss(L, dv, cl, v, vo, R, w, 4, 0.2f, err, sizeof err), err);
    CHECK_NEAR(L[0], 0.005, 1e-6);
    CHECK_NEAR(dv[0], -0.1, 1e-6);
    CHECK_NEAR(L[1], 0.125, 1e-6);
    CHECK_NEAR(dv[1], -0.5, 1e-6);
    CHECK_NEAR(L[2], 0.045, 1e-6);
    CHECK_NEAR(L[3], 0.18, 1e-6);
    CHECK(dv[3] == 0.0f && cl[3] == 1.0f && cl[0] == 0.0f && cl[1] == 0.0f);
    /* c = 0: plain ½(V − R)², weight scales the gradient: t3 → 0.00125, dv = 0.5·0.05 */
    CHECK_OK(rl_value_loss(L, dv, NULL, v, NULL, R, w, 4, 0.0f, err, sizeof err), err);
    CHECK_NEAR(L[3], 0.00125, 1e-6);
    CHECK_NEAR(dv[3], 0.025, 1e-6);

    /* gradient vs central finite differences on random points away from the kinks */
    srand(3);
    int checked = 0;
    for (int k = 0; k < 200; k++) {
        float V = 2.0f * rand() / RAND_MAX - 1, Vo = 2.0f * rand() / RAND_MAX - 1;
        float Rr = 2.0f * rand() / RAND_MAX - 1, one = 1, l0, g0, lp, lm, gd;
        const float h = 1e-3f;
        if (fabsf(fabsf(V - Vo) - 0.2f) < 3 * h) continue; /* clip boundary */
        float vp = V + h, vm = V - h;
        CHECK_OK(rl_value_loss(&l0, &g0, NULL, &V, &Vo, &Rr, &one, 1, 0.2f, err, sizeof err),
                 err);
        CHECK_OK(rl_value_loss(&lp, &gd, NULL, &vp, &Vo, &Rr, &one, 1, 0.2f, err, sizeof err),
                 err);
        CHECK_OK(rl_value_loss(&lm, &gd, NULL, &vm, &Vo, &Rr, &one, 1, 0.2f, err, sizeof err),
                 err);
        /* near the max() switch the loss has a kink too: skip when the two sides
         * disagree on the branch */
        float c0, cp, cm, t1, t2;
        rl_value_loss(&t1, &t2, &c0, &V, &Vo, &Rr, &one, 1, 0.2f, err, sizeof err);
        rl_value_loss(&t1, &t2, &cp, &vp, &Vo, &Rr, &one, 1, 0.2f, err, sizeof err);
        rl_value_loss(&t1, &t2, &cm, &vm, &Vo, &Rr, &one, 1, 0.2f, err, sizeof err);
        if (c0 != cp || c0 != cm) continue;
        CHECK_NEAR(g0, (lp - lm) / (2 * h), 2e-3);
        checked++;
    }
    CHECK(checked > 150);
}

int main(void) {
    test_returns_and_rpp();
    test_gae();
    test_value_loss();
    return check_done("test_rl_returns");
}
