/*
 * tests/rl/test_rl_kl_dapo.c — KL estimates (k1/k2/k3 and their clamps), in-reward KL
 * shaping, the adaptive β controller and its JSON state, DAPO's overlong penalty,
 * truncation mask, equal-reward filter and fill policy.
 */
#include <stdlib.h>

#include "engine/rl/dapo.h"
#include "engine/rl/kl.h"
#include "tests/common/check.h"

static char err[512];

static void test_kl(void) {
    /* logp = −1, ref = −1.5 → d = −0.5: k1 = 0.5, k2 = 0.125,
     * k3 = e^−0.5 + 0.5 − 1 = 0.60653066 − 0.5 = 0.10653066 */
    CHECK_NEAR(rl_kl_estimate(-1.0f, -1.5f, RLVR_KL_K1), 0.5, 1e-7);
    CHECK_NEAR(rl_kl_estimate(-1.0f, -1.5f, RLVR_KL_K2), 0.125, 1e-7);
    CHECK_NEAR(rl_kl_estimate(-1.0f, -1.5f, RLVR_KL_K3), 0.10653066, 1e-7);
    /* clamps: d = 30 → 20; k1 = −20; k3 = e^20 − 21 → clamped to 10 */
    CHECK_NEAR(rl_kl_estimate(-40.0f, -10.0f, RLVR_KL_K1), -20.0, 0);
    CHECK_NEAR(rl_kl_estimate(-40.0f, -10.0f, RLVR_KL_K2), 200.0, 0);
    CHECK_NEAR(rl_kl_estimate(-40.0f, -10.0f, RLVR_KL_K3), 10.0, 0);
    /* d = −30 → −20: k3 = e^−20 + 20 − 1 = 19.0 → clamped to 10 */
    CHECK_NEAR(rl_kl_estimate(-10.0f, -40.0f, RLVR_KL_K3), 10.0, 0);

    /* shaping over spans [0,2) and [3,4); entry 2 is prompt, entry 1 masked.
     * β = 0.1, k1 with d = ref − logp: t0 d = −0.5 → KL 0.5 → r −= 0.05;
     * t3 d = +1 → KL −1 → r += 0.1. mean KL over valid tokens {t0, t3} = −0.25 */
    int32_t st[2] = {0, 3}, ln[2] = {2, 1};
    rl_spans sp = {.T = 4, .B = 2, .start = st, .len = ln};
    float r[4] = {0, 0, 0, 1}, kl[4], lp[4] = {-1, -2, -3, -2}, ref[4] = {-1.5f, -9, -9, -1};
    float mask[4] = {1, 0, 1, 1};
    double mkl;
    CHECK_OK(
        rl_kl_shape_rewards(r, kl, &mkl, lp, ref, mask, &sp, RLVR_KL_K1, 0.1f, err, sizeof err),
        err);
    CHECK_NEAR(r[0], -0.05, 1e-7);
    CHECK(r[1] == 0 && r[2] == 0);
    CHECK_NEAR(r[3], 1.1, 1e-6);
    CHECK_NEAR(kl[3], -1, 0);
    CHECK(kl[1] == 0 && kl[2] == 0);
    CHECK_NEAR(mkl, -0.25, 1e-7);

    /* adaptive controller: target 0.1, horizon 1000, n = 100 samples.
     * KL = 0.2: error clip(2 − 1, ±0.2) = 0.2 → β = 0.05·(1 + 0.2·0.1) = 0.051
     * KL = 0.09: error −0.1 → β = 0.051·(1 − 0.01) = 0.05049 */
    rl_kl_ctl c;
    CHECK_OK(rl_kl_ctl_init(&c, 0.05, 1, 0.1, 1000, err, sizeof err), err);
    CHECK_OK(rl_kl_ctl_update(&c, 0.2, 100, err, sizeof err), err);
    CHECK_NEAR(c.beta, 0.051, 1e-15);
    CHECK_OK(rl_kl_ctl_update(&c, 0.09, 100, err, sizeof err), err);
    CHECK_NEAR(c.beta, 0.05049, 1e-15);
    /* state round-trips bit for bit */
    for (int k = 0; k < 5; k++)
        CHECK_OK(rl_kl_ctl_update(&c, 0.0123 * k, 37, err, sizeof err), err);
    cJSON *j = rl_kl_ctl_to_json(&c);
    char *txt = cJSON_PrintUnformatted(j);
    cJSON *back = cJSON_Parse(txt);
    rl_kl_ctl c2;
    CHECK_OK(rl_kl_ctl_from_json(&c2, back, err, sizeof err), err);
    CHECK(c2.beta == c.beta && c2.adaptive == 1 && c2.target == c.target &&
          c2.horizon == c.horizon);
    cJSON_Delete(j);
    cJSON_Delete(back);
    free(txt);
    cJSON *bad =
        cJSON_Parse("{\"beta\": \"x\", \"adaptive\": true, \"target\": 1, \"horizon\": 1}");
    CHECK_ERR(rl_kl_ctl_from_json(&c2, bad, err, sizeof err), RL_EARG, err,
              "\"beta\" is not a number");
    cJSON_Delete(bad);
    bad = cJSON_Parse("{\"beta\": 1, \"target\": 1, \"horizon\": 1}");
    CHECK_ERR(rl_kl_ctl_from_json(&c2, bad, err, sizeof err), RL_EARG, err,
              "\"adaptive\" is missing");
    cJSON_Delete(bad);
    /* fixed β ignores observations */
    CHECK_OK(rl_kl_ctl_init(&c, 0.04, 0, 0, 0, err, sizeof err), err);
    CHECK_OK(rl_kl_ctl_update(&c, 5.0, 100, err, sizeof err), err);
    CHECK(c.beta == 0.04);
}

static void test_overlong(void) {
    /* L = 20, L_b = 5 → penalty starts after 15 tokens:
     *   |o| = 10 → 0; 15 → 0; 16 → −1/5 = −0.2; 18 → −0.6; 20 → −1; 25 → −1 (floor)
     * with factor 0.5 the same halved. */
    int32_t len[6] = {10, 15, 16, 18, 20, 25};
    float R[6] = {1, 1, 1, 0, 1, 0}, pen[6];
    CHECK_OK(rl_overlong_penalty(R, pen, len, 6, 20, 5, 1.0f, err, sizeof err), err);
    const float wp[6] = {0, 0, -0.2f, -0.6f, -1, -1};
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(pen[i], wp[i], 1e-7);
    CHECK_NEAR(R[2], 0.8, 1e-7);
    CHECK_NEAR(R[3], -0.6, 1e-7);
    float R2[6] = {0};
    CHECK_OK(rl_overlong_penalty(R2, NULL, len, 6, 20, 5, 0.5f, err, sizeof err), err);
    CHECK_NEAR(R2[3], -0.3, 1e-7);

    /* truncation mask */
    int32_t st[2] = {0, 3}, ln[2] = {2, 2};
    rl_spans sp = {.T = 5, .B = 2, .start = st, .len = ln};
    float mask[5] = {1, 1, 1, 1, 1};
    uint8_t trunc[2] = {0, 1};
    CHECK_OK(rl_mask_truncated(mask, trunc, &sp, err, sizeof err), err);
    CHECK(mask[0] == 1 && mask[1] == 1 && mask[2] == 1 && mask[3] == 0 && mask[4] == 0);
}

static void test_dynamic_sampling(void) {
    /* 4 groups of 3: {1,1,1} equal, {0,1,0} mixed, {0,0,0} equal, {0.5,0.5,0.50001} mixed
     * at tol 0, equal at tol 1e-4. */
    float R[12] = {1, 1, 1, 0, 1, 0, 0, 0, 0, 0.5f, 0.5f, 0.50001f};
    rl_groups g = {.n = 12, .group_size = 3};
    uint8_t drop[4], keep[12];
    int ng, nd;
    CHECK_OK(rl_equal_reward_groups(drop, keep, &ng, &nd, R, &g, 0.0f, err, sizeof err), err);
    CHECK(drop[0] == 1 && drop[1] == 0 && drop[2] == 1 && drop[3] == 0);
    CHECK(ng == 4 && nd == 2);
    CHECK(keep[0] == 0 && keep[3] == 1 && keep[8] == 0 && keep[11] == 1);
    CHECK_OK(rl_equal_reward_groups(drop, NULL, &ng, &nd, R, &g, 1e-4f, err, sizeof err), err);
    CHECK(drop[3] == 1 && nd == 3);
    /* explicit ids with an empty slot: slot 1 unused → not dropped, not counted */
    int32_t gid[4] = {0, 0, 2, 2};
    float R4[4] = {1, 1, 0, 1};
    rl_groups gi = {.n = 4, .group_id = gid};
    CHECK_OK(rl_equal_reward_groups(drop, NULL, &ng, &nd, R4, &gi, 0.0f, err, sizeof err), err);
    CHECK(drop[0] == 1 && drop[1] == 0 && drop[2] == 0 && drop[3] == 0 && ng == 2 && nd == 1);

    /* fill: target 3 groups, at most 3 rounds.
     * round 1: drop {1,0,1,0} → take groups 1, 3 (kept 2, dropped 2) → MORE
     * round 2: drop {0,0,1,0} → take group 0 (kept 3), group 1 and 3 surplus, 2 dropped
     *          → FULL; counters kept 3, dropped 3, surplus 2 */
    rl_fill f;
    CHECK_OK(rl_fill_init(&f, 3, 3, err, sizeof err), err);
    uint8_t d1[4] = {1, 0, 1, 0}, d2[4] = {0, 0, 1, 0}, take[4];
    CHECK(rl_fill_offer(&f, d1, 4, take, err, sizeof err) == RL_FILL_MORE);
    CHECK(take[0] == 0 && take[1] == 1 && take[2] == 0 && take[3] == 1);
    CHECK(rl_fill_offer(&f, d2, 4, take, err, sizeof err) == RL_FILL_FULL);
    CHECK(take[0] == 1 && take[1] == 0 && take[2] == 0 && take[3] == 0);
    CHECK(f.kept == 3 && f.dropped == 3 && f.surplus == 2 && f.rounds == 2);
    CHECK_ERR(rl_fill_offer(&f, d2, 4, take, err, sizeof err), RL_EARG, err, "already full");
    /* cap: 2 rounds of all-equal groups → CAP with kept 0 */
    CHECK_OK(rl_fill_init(&f, 2, 2, err, sizeof err), err);
    uint8_t all[2] = {1, 1};
    CHECK(rl_fill_offer(&f, all, 2, take, err, sizeof err) == RL_FILL_MORE);
    CHECK(rl_fill_offer(&f, all, 2, take, err, sizeof err) == RL_FILL_CAP);
    CHECK(f.kept == 0 && f.dropped == 4);
    CHECK_ERR(rl_fill_offer(&f, all, 2, take, err, sizeof err), RL_EARG, err, "out of rounds");
}

int main(void) {
    test_kl();
    test_overlong();
    test_dynamic_sampling();
    return check_done("test_rl_kl_dapo");
}
