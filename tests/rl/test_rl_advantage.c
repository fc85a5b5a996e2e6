/*
 * tests/rl/test_rl_advantage.c — GRPO (group / batch / none, biased and unbiased std,
 * eps), RLOO, explicit group ids, broadcast to tokens and packed spans, against values
 * worked out by hand (arithmetic in the comments).
 */
#include "engine/rl/advantage.h"
#include "tests/common/check.h"

static char err[512];

static void test_grpo_group(void) {
    /* Two groups of G = 3: {1, 0, 0}, {0.5, 0.5, 2}.
     * group 0: mean 1/3; deviations 2/3, −1/3, −1/3; Σd² = 4/9 + 1/9 + 1/9 = 6/9 = 2/3.
     *   unbiased std = sqrt((2/3)/2) = sqrt(1/3) = 0.577350269
     *   A = (2/3)/(0.577350269 + 1e-4) = 1.154500573, −1/3/(…) = −0.577250287
     * group 1: mean 1; deviations −0.5, −0.5, 1; Σd² = 1.5; unbiased std = sqrt(0.75)
     *   = 0.866025404; A = −0.5/0.866125404 = −0.577283634, 1/0.866125404 = 1.154567220 */
    float R[6] = {1, 0, 0, 0.5f, 0.5f, 2}, A[6], M[6], S[6];
    rl_groups g = {.n = 6, .group_size = 3};
    rl_grpo_params p = rl_grpo_defaults();
    CHECK(p.scale == RL_SCALE_GROUP && p.unbiased_std == 1 && p.eps == 1e-4f);
    CHECK_OK(rl_grpo_advantages(A, M, S, R, &g, &p, err, sizeof err), err);
    const double s0 = sqrt(1.0 / 3.0), s1 = sqrt(0.75);
    CHECK_NEAR(A[0], (2.0 / 3.0) / (s0 + 1e-4), 1e-6);
    CHECK_NEAR(A[0], 1.1545006, 1e-6);
    CHECK_NEAR(A[1], (-1.0 / 3.0) / (s0 + 1e-4), 1e-6);
    CHECK_NEAR(A[2], A[1], 0);
    CHECK_NEAR(A[3], -0.5 / (s1 + 1e-4), 1e-6);
    CHECK_NEAR(A[3], -0.5772836, 1e-6);
    CHECK_NEAR(A[5], 1.0 / (s1 + 1e-4), 1e-6);
    CHECK_NEAR(M[0], 1.0 / 3.0, 1e-7);
    CHECK_NEAR(M[4], 1.0, 0);
    CHECK_NEAR(S[0], s0, 1e-7);
    CHECK_NEAR(S[5], s1, 1e-7);

    /* biased std: group 0 sqrt((2/3)/3) = sqrt(2/9) = 0.471404521, eps 1e-6 (verl's eps)
     *   A0 = 0.666666667/0.471405521 = 1.414210562 */
    p.unbiased_std = 0;
    p.eps = 1e-6f;
    CHECK_OK(rl_grpo_advantages(A, NULL, NULL, R, &g, &p, err, sizeof err), err);
    CHECK_NEAR(A[0], (2.0 / 3.0) / (sqrt(2.0 / 9.0) + 1e-6), 1e-6);
    CHECK_NEAR(A[0], 1.4142106, 1e-6);
    CHECK_NEAR(A[5], 1.0 / (sqrt(1.5 / 3.0) + 1e-6), 1e-6); /* 1/0.707107781 = 1.414212 */

    /* batch scale: group means as before, std over all six rewards {1,0,0,.5,.5,2}:
     * mean 4/6 = 2/3; d = 1/3, −2/3, −2/3, −1/6, −1/6, 4/3;
     * Σd² = 1/9 + 4/9 + 4/9 + 1/36 + 1/36 + 16/9 = 25/9 + 1/18 = 51/18 = 2.833333
     * unbiased var = 2.833333/5 = 0.566667, std = 0.752772653
     * A0 = (2/3)/(0.752872653) = 0.885497 ; A5 = 1/(0.752872653) = 1.328246 */
    p = rl_grpo_defaults();
    p.scale = RL_SCALE_BATCH;
    CHECK_OK(rl_grpo_advantages(A, NULL, S, R, &g, &p, err, sizeof err), err);
    const double sb = sqrt(51.0 / 18.0 / 5.0);
    CHECK_NEAR(A[0], (2.0 / 3.0) / (sb + 1e-4), 1e-6);
    CHECK_NEAR(A[5], 1.0 / (sb + 1e-4), 1e-6);
    CHECK_NEAR(A[5], 1.3282459, 1e-6);
    CHECK_NEAR(S[2], sb, 1e-7);

    /* none (Dr.GRPO): A = R − group mean: 2/3, −1/3, −1/3, −0.5, −0.5, 1 */
    p.scale = RL_SCALE_NONE;
    CHECK_OK(rl_grpo_advantages(A, NULL, NULL, R, &g, &p, err, sizeof err), err);
    const double want[6] = {2.0 / 3, -1.0 / 3, -1.0 / 3, -0.5, -0.5, 1.0};
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(A[i], want[i], 1e-7);
}

static void test_grpo_edges(void) {
    /* all-equal rewards: exactly zero advantages in every mode (no rounding residue) */
    float R[4] = {0.3f, 0.3f, 0.3f, 0.3f}, A[4];
    rl_groups g = {.n = 4, .group_size = 4};
    for (int sc = 0; sc < 3; sc++) {
        rl_grpo_params p = rl_grpo_defaults();
        p.scale = (rl_std_scale)sc;
        CHECK_OK(rl_grpo_advantages(A, NULL, NULL, R, &g, &p, err, sizeof err), err);
        for (int i = 0; i < 4; i++)
            CHECK(A[i] == 0.0f);
    }
    CHECK_OK(rl_rloo_advantages(A, R, &g, err, sizeof err), err);
    for (int i = 0; i < 4; i++)
        CHECK(A[i] == 0.0f);

    /* G = 1: a group of one has mean R and std 0 → A = 0 (GRPO and RLOO) */
    float R1[3] = {1, 0, 5};
    rl_groups g1 = {.n = 3, .group_size = 1};
    rl_grpo_params p = rl_grpo_defaults();
    CHECK_OK(rl_grpo_advantages(A, NULL, NULL, R1, &g1, &p, err, sizeof err), err);
    for (int i = 0; i < 3; i++)
        CHECK(A[i] == 0.0f);
    CHECK_OK(rl_rloo_advantages(A, R1, &g1, err, sizeof err), err);
    for (int i = 0; i < 3; i++)
        CHECK(A[i] == 0.0f);

    /* n = 0: nothing to do, not an error */
    CHECK_OK(rl_grpo_advantages(NULL, NULL, NULL, NULL, &(rl_groups){.n = 0, .group_size = 4},
                                &p, err, sizeof err),
             err);
}

static void test_rloo(void) {
    /* group {1, 0, 0, 1}: A_0 = 1 − (0+0+1)/3 = 2/3; A_1 = 0 − (1+0+1)/3 = −2/3
     * (= 4/3·(R − 0.5)); group {2, 4}: A = 2 − 4 = −2, 4 − 2 = 2 */
    float R[6] = {1, 0, 0, 1, 2, 4}, A[6];
    int32_t gid[6] = {0, 0, 0, 0, 5, 5}; /* explicit ids, slot 5 */
    rl_groups g = {.n = 6, .group_id = gid};
    CHECK_OK(rl_rloo_advantages(A, R, &g, err, sizeof err), err);
    const double want[6] = {2.0 / 3, -2.0 / 3, -2.0 / 3, 2.0 / 3, -2, 2};
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(A[i], want[i], 1e-7);
}

static void test_explicit_ids(void) {
    /* Interleaved groups: ids {1,0,1,0} with R {3,10,5,20}: group 1 = {3,5} mean 4,
     * group 0 = {10,20} mean 15. Dr.GRPO: A = −1, −5, 1, 5. Group-scale unbiased: std of
     * {3,5} = sqrt(2) → A = ∓1/(1.414213562+1e-4) = ∓0.707056; {10,20}: std sqrt(50) =
     * 7.0710678 → ∓5/7.0711678 = ∓0.7070968. Same as the contiguous layout reordered. */
    float R[4] = {3, 10, 5, 20}, A[4];
    int32_t gid[4] = {1, 0, 1, 0};
    rl_groups g = {.n = 4, .group_id = gid};
    rl_grpo_params p = rl_grpo_defaults();
    p.scale = RL_SCALE_NONE;
    CHECK_OK(rl_grpo_advantages(A, NULL, NULL, R, &g, &p, err, sizeof err), err);
    CHECK_NEAR(A[0], -1, 1e-7);
    CHECK_NEAR(A[1], -5, 1e-7);
    CHECK_NEAR(A[2], 1, 1e-7);
    CHECK_NEAR(A[3], 5, 1e-7);
    p.scale = RL_SCALE_GROUP;
    CHECK_OK(rl_grpo_advantages(A, NULL, NULL, R, &g, &p, err, sizeof err), err);
    CHECK_NEAR(A[0], -1.0 / (sqrt(2.0) + 1e-4), 1e-6);
    CHECK_NEAR(A[3], 5.0 / (sqrt(50.0) + 1e-4), 1e-6);
    float Rc[4] = {3, 5, 10, 20}, Ac[4];
    rl_groups gc = {.n = 4, .group_size = 2};
    CHECK_OK(rl_grpo_advantages(Ac, NULL, NULL, Rc, &gc, &p, err, sizeof err), err);
    CHECK(Ac[0] == A[0] && Ac[1] == A[2] && Ac[2] == A[1] && Ac[3] == A[3]);

    int cnt[4];
    double mean[4], sd[4];
    CHECK_OK(rl_group_stats(cnt, mean, sd, R, &g, 1, err, sizeof err), err);
    CHECK(cnt[0] == 2 && cnt[1] == 2 && cnt[2] == 0 && cnt[3] == 0);
    CHECK_NEAR(mean[0], 15, 0);
    CHECK_NEAR(mean[1], 4, 0);
    CHECK_NEAR(sd[1], sqrt(2.0), 1e-12);
    CHECK(mean[2] == 0 && sd[3] == 0);
}

static void test_broadcast_and_spans(void) {
    /* Packed batch of 3 sequences: lengths 5, 3, 4 with prompts 2, 3, 1 tokens.
     * offsets {0, 5, 8, 12}. logp[t] scores token t+1, so:
     *   seq 0: completion tokens 2..4 → entries [1, 4): start 1, len 3
     *   seq 1: prompt fills it       → start 7, len 0
     *   seq 2: completion tokens 9..11 → entries [8, 11): start 8, len 3 */
    int32_t off[4] = {0, 5, 8, 12}, pl[3] = {2, 3, 1}, st[3], ln[3];
    CHECK_OK(rl_spans_from_packed(st, ln, off, pl, 3, err, sizeof err), err);
    CHECK(st[0] == 1 && ln[0] == 3 && st[1] == 7 && ln[1] == 0 && st[2] == 8 && ln[2] == 3);
    rl_spans sp = {.T = 12, .B = 3, .start = st, .len = ln};
    CHECK_OK(rl_spans_check(&sp, err, sizeof err), err);
    float seq[3] = {0.5f, -1.0f, 2.0f}, tok[12];
    CHECK_OK(rl_broadcast(tok, seq, &sp, err, sizeof err), err);
    const float want[12] = {0, 0.5f, 0.5f, 0.5f, 0, 0, 0, 0, 2, 2, 2, 0};
    for (int t = 0; t < 12; t++)
        CHECK(tok[t] == want[t]);
    float valid[12], mask[12];
    for (int t = 0; t < 12; t++)
        mask[t] = t == 9 ? 0.0f : 1.0f;
    CHECK_OK(rl_valid_mask(valid, mask, &sp, err, sizeof err), err);
    const float wv[12] = {0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0};
    for (int t = 0; t < 12; t++)
        CHECK(valid[t] == wv[t]);
}

int main(void) {
    test_grpo_group();
    test_grpo_edges();
    test_rloo();
    test_explicit_ids();
    test_broadcast_and_spans();
    return check_done("test_rl_advantage");
}
