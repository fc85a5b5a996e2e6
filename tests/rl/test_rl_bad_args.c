/*
 * tests/rl/test_rl_bad_args.c — bad arguments to every engine/rl entry point return the
 * documented error code with a message naming the argument and value, and never crash
 * (this test also runs under ASan/UBSan).
 */
#include "engine/rl/advantage.h"
#include "engine/rl/batch_stats.h"
#include "engine/rl/dapo.h"
#include "engine/rl/eval_metrics.h"
#include "engine/rl/kl.h"
#include "engine/rl/loss_agg.h"
#include "engine/rl/returns.h"
#include "tests/common/check.h"

static char err[512];

int main(void) {
    float R[6] = {1, 0, 1, 0, 1, 0}, A[6], T8[8] = {0}, o8[8];
    rl_grpo_params p = rl_grpo_defaults();

    /* groups */
    rl_groups neg = {.n = 6, .group_size = -2};
    CHECK_ERR(rl_grpo_advantages(A, NULL, NULL, R, &neg, &p, err, sizeof err), RL_EARG, err,
              "group_size G = -2 (expected >= 1)");
    rl_groups zero = {.n = 6, .group_size = 0};
    CHECK_ERR(rl_rloo_advantages(A, R, &zero, err, sizeof err), RL_EARG, err, "G = 0");
    rl_groups odd = {.n = 6, .group_size = 4};
    CHECK_ERR(rl_grpo_advantages(A, NULL, NULL, R, &odd, &p, err, sizeof err), RL_ESHAPE, err,
              "n = 6 completions is not a multiple of G = 4");
    rl_groups nn = {.n = -1, .group_size = 1};
    CHECK_ERR(rl_rloo_advantages(A, R, &nn, err, sizeof err), RL_EARG, err, "n = -1");
    int32_t bad_id[6] = {0, 0, 1, 1, 6, 2};
    rl_groups gid = {.n = 6, .group_id = bad_id};
    CHECK_ERR(rl_grpo_advantages(A, NULL, NULL, R, &gid, &p, err, sizeof err), RL_EARG, err,
              "group_id[4] = 6");
    rl_groups g = {.n = 6, .group_size = 3};
    CHECK_ERR(rl_grpo_advantages(A, NULL, NULL, NULL, &g, &p, err, sizeof err), RL_EARG, err,
              "rewards is NULL");
    float Rnan[6] = {1, 0, NAN, 0, 1, 0};
    CHECK_ERR(rl_grpo_advantages(A, NULL, NULL, Rnan, &g, &p, err, sizeof err), RL_EVALUE, err,
              "rewards[2] = nan is not finite");
    p.eps = -1;
    CHECK_ERR(rl_grpo_advantages(A, NULL, NULL, R, &g, &p, err, sizeof err), RL_EARG, err,
              "eps = -1");
    p = rl_grpo_defaults();
    p.scale = (rl_std_scale)7;
    CHECK_ERR(rl_grpo_advantages(A, NULL, NULL, R, &g, &p, err, sizeof err), RL_EARG, err,
              "scale = 7");
    CHECK_ERR(rl_grpo_advantages(A, NULL, NULL, R, &g, NULL, err, sizeof err), RL_EARG, err,
              "NULL params");

    /* spans */
    int32_t st[2] = {0, 3}, ln[2] = {3, 6};
    rl_spans over = {.T = 8, .B = 2, .start = st, .len = ln}; /* [3, 9) > 8 */
    float seq[2] = {1, 2};
    CHECK_ERR(rl_broadcast(o8, seq, &over, err, sizeof err), RL_ESHAPE, err,
              "span 1 = [3, 9) lies outside the T = 8 entries");
    int32_t st2[2] = {0, 2}, ln2[2] = {3, 2};
    rl_spans overlap = {.T = 8, .B = 2, .start = st2, .len = ln2};
    CHECK_ERR(rl_broadcast(o8, seq, &overlap, err, sizeof err), RL_ESHAPE, err,
              "before the previous span ends");
    int32_t ln3[2] = {3, -1};
    rl_spans negl = {.T = 8, .B = 2, .start = st, .len = ln3};
    CHECK_ERR(rl_broadcast(o8, seq, &negl, err, sizeof err), RL_EARG, err, "len[1] = -1");
    int32_t off[3] = {0, 4, 6}, pl[2] = {1, 3}, so[2], lo[2];
    CHECK_ERR(rl_spans_from_packed(so, lo, off, pl, 2, err, sizeof err), RL_EARG, err,
              "prompt_len[1] = 3");
    int32_t off2[3] = {0, 4, 4}, pl2[2] = {1, 1};
    CHECK_ERR(rl_spans_from_packed(so, lo, off2, pl2, 2, err, sizeof err), RL_ESHAPE, err,
              "sequence 1 has 0 tokens");

    /* returns */
    int32_t s1[1] = {0}, l1[1] = {4};
    rl_spans sp = {.T = 8, .B = 1, .start = s1, .len = l1};
    rl_whiten_params wp = rl_whiten_defaults();
    CHECK_ERR(rl_gae(o8, o8, T8, T8, &sp, 1.5f, 1.0f, err, sizeof err), RL_EARG, err,
              "gamma = 1.5 (expected 0 <= gamma <= 1)");
    CHECK_ERR(rl_gae(o8, o8, T8, T8, &sp, 1.0f, -0.1f, err, sizeof err), RL_EARG, err,
              "lambda = -0.1");
    float Vnan[8] = {0, 0, INFINITY, 0, 0, 0, 0, 0};
    CHECK_ERR(rl_gae(o8, o8, T8, Vnan, &sp, 1.0f, 1.0f, err, sizeof err), RL_EVALUE, err,
              "values[2] = inf");
    rl_groups g3 = {.n = 3, .group_size = 3};
    float r1[1] = {1};
    CHECK_ERR(rl_reinforce_pp(o8, NULL, r1, &sp, &g3, NULL, 1.0f, &wp, err, sizeof err),
              RL_ESHAPE, err, "groups describe 3 completions, spans 1");
    CHECK_ERR(rl_value_loss(o8, o8, NULL, T8, T8, T8, NULL, 8, -0.2f, err, sizeof err), RL_EARG,
              err, "clip = -0.2");
    CHECK_ERR(rl_value_loss(o8, o8, NULL, T8, NULL, T8, NULL, 8, 0.2f, err, sizeof err),
              RL_EARG, err, "v_old is NULL");
    CHECK_ERR(rl_whiten_with(o8, T8, 8, 0, 0, 0, err, sizeof err), RL_EARG, err,
              "var + eps = 0");

    /* aggregation */
    rl_agg_denoms d = {.n_tokens = 2, .n_seqs = 1, .max_len = 8};
    CHECK_ERR(rl_agg_weights(o8, RL_AGG_TOKEN_MEAN, &sp, NULL, &d, err, sizeof err), RL_EARG,
              err, "do not cover this micro-batch");
    d = (rl_agg_denoms){.n_tokens = 4, .n_seqs = 1, .max_len = 0};
    CHECK_ERR(
        rl_agg_weights(o8, RL_AGG_SEQ_MEAN_TOKEN_SUM_NORM, &sp, NULL, &d, err, sizeof err),
        RL_EARG, err, "max_len = 0");
    d.max_len = 3;
    CHECK_ERR(
        rl_agg_weights(o8, RL_AGG_SEQ_MEAN_TOKEN_SUM_NORM, &sp, NULL, &d, err, sizeof err),
        RL_ESHAPE, err, "completion 0 has 4 tokens, more than max_len = 3");
    float badmask[8] = {1, -1, 1, 1, 1, 1, 1, 1};
    CHECK_ERR(rl_agg_count(NULL, NULL, &sp, badmask, err, sizeof err), RL_EVALUE, err,
              "mask[1] = -1");
    d.max_len = 8;
    CHECK_ERR(rl_agg_weights(o8, (rl_agg_mode)9, &sp, NULL, &d, err, sizeof err), RL_EARG, err,
              "mode = 9");

    /* KL */
    CHECK_ERR(rl_kl_shape_rewards(o8, NULL, NULL, T8, T8, NULL, &sp, (rlvr_kl_estimator)4, 0.1f,
                                  err, sizeof err),
              RL_EARG, err, "estimator = 4");
    CHECK_ERR(rl_kl_shape_rewards(o8, NULL, NULL, T8, T8, NULL, &sp, RLVR_KL_K3, -0.1f, err,
                                  sizeof err),
              RL_EARG, err, "beta = -0.1");
    rl_kl_ctl c;
    CHECK_ERR(rl_kl_ctl_init(&c, 0.1, 1, 0.0, 100, err, sizeof err), RL_EARG, err,
              "target KL = 0");
    CHECK_ERR(rl_kl_ctl_init(&c, 0.1, 1, 0.1, -5, err, sizeof err), RL_EARG, err,
              "horizon = -5");
    CHECK_OK(rl_kl_ctl_init(&c, 0.1, 1, 0.1, 100, err, sizeof err), err);
    CHECK_ERR(rl_kl_ctl_update(&c, NAN, 10, err, sizeof err), RL_EVALUE, err,
              "observed KL = nan");

    /* DAPO */
    int32_t len[2] = {5, -3};
    CHECK_ERR(rl_overlong_penalty(seq, NULL, len, 2, 10, 4, 1.0f, err, sizeof err), RL_EARG,
              err, "len[1] = -3");
    CHECK_ERR(rl_overlong_penalty(seq, NULL, len, 2, 10, 11, 1.0f, err, sizeof err), RL_EARG,
              err, "buffer = 11");
    uint8_t drop[2];
    CHECK_ERR(rl_equal_reward_groups(drop, NULL, NULL, NULL, R, &odd, 0, err, sizeof err),
              RL_ESHAPE, err, "not a multiple");
    rl_fill f;
    CHECK_ERR(rl_fill_init(&f, 0, 1, err, sizeof err), RL_EARG, err, "target = 0");

    /* stats and eval */
    float bad[3] = {1, NAN, 2};
    rl_summary s;
    CHECK_ERR(rl_summarize(&s, bad, NULL, 3, err, sizeof err), RL_EVALUE, err, "x[1] = nan");
    double v;
    CHECK_ERR(
        rl_clip_fractions(&v, NULL, NULL, T8, T8, T8, NULL, 8, 1.5f, 0.2f, 0, err, sizeof err),
        RL_EARG, err, "clip_low = 1.5");
    CHECK_ERR(rl_pass_at_k(&v, 4, 5, 1, err, sizeof err), RL_EARG, err, "c = 5");
    CHECK_ERR(rl_pass_at_k(&v, 4, 1, 5, err, sizeof err), RL_EARG, err, "k = 5");
    CHECK_ERR(rl_pass_at_k(&v, 0, 0, 1, err, sizeof err), RL_EARG, err, "n = 0");
    int w;
    CHECK_ERR(rl_majority_vote(&w, NULL, NULL, 0, err, sizeof err), RL_EARG, err, "k = 0");
    /* a NULL message buffer is allowed */
    CHECK(rl_pass_at_k(&v, 4, 5, 1, NULL, 0) == RL_EARG);
    CHECK(!strcmp(rl_strerror(RL_ESHAPE), "mismatched sizes"));
    return check_done("test_rl_bad_args");
}
