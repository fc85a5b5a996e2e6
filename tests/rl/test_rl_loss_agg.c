/*
 * tests/rl/test_rl_loss_agg.c — the three aggregation modes against hand values, and the
 * micro-batch invariance: a batch split into micro-batches (each weighted with the
 * step-global denominators) gives the same total loss and the same per-token weights as
 * the whole batch, for every mode, with masks and zero-length completions.
 */
#include <stdlib.h>

#include "engine/rl/loss_agg.h"
#include "tests/common/check.h"

static char err[512];

static void test_hand_values(void) {
    /* Two completions: o_1 = entries [0, 2) with ℓ = {1, 3}, o_2 = [3, 7) with
     * ℓ = {2, 2, 2, 6}; entry 2 is prompt (ℓ = 100, must not count).
     *   token-mean:              (1+3+2+2+2+6)/6 = 16/6 = 2.6666667
     *   seq-mean-token-mean:     ((1+3)/2 + (2+2+2+6)/4)/2 = (2 + 3)/2 = 2.5
     *   seq-mean-token-sum-norm: 16/(2·L_max), L_max = 8 → 16/16 = 1.0 */
    int32_t st[2] = {0, 3}, ln[2] = {2, 4};
    rl_spans sp = {.T = 7, .B = 2, .start = st, .len = ln};
    float loss[7] = {1, 3, 100, 2, 2, 2, 6}, w[7];
    double nt, ns;
    CHECK_OK(rl_agg_count(&nt, &ns, &sp, NULL, err, sizeof err), err);
    CHECK(nt == 6 && ns == 2);
    rl_agg_denoms d = {.n_tokens = nt, .n_seqs = ns, .max_len = 8};
    CHECK_OK(rl_agg_weights(w, RL_AGG_TOKEN_MEAN, &sp, NULL, &d, err, sizeof err), err);
    CHECK_NEAR(rl_agg_apply(w, loss, 7), 16.0 / 6.0, 1e-6);
    CHECK(w[2] == 0.0f);
    CHECK_OK(rl_agg_weights(w, RL_AGG_SEQ_MEAN_TOKEN_MEAN, &sp, NULL, &d, err, sizeof err),
             err);
    CHECK_NEAR(rl_agg_apply(w, loss, 7), 2.5, 1e-6);
    CHECK_NEAR(w[0], 0.25, 0);  /* 1/(2 seqs · 2 tokens) */
    CHECK_NEAR(w[3], 0.125, 0); /* 1/(2 · 4) */
    CHECK_OK(rl_agg_weights(w, RL_AGG_SEQ_MEAN_TOKEN_SUM_NORM, &sp, NULL, &d, err, sizeof err),
             err);
    CHECK_NEAR(rl_agg_apply(w, loss, 7), 1.0, 1e-6);

    /* mask out the 6 (truncation or similar): token-mean 10/5 = 2; seq-mean-token-mean
     * (2 + 6/3)/2 = 2; sum-norm 10/16 = 0.625 */
    float mask[7] = {1, 1, 1, 1, 1, 1, 0};
    CHECK_OK(rl_agg_count(&nt, &ns, &sp, mask, err, sizeof err), err);
    CHECK(nt == 5 && ns == 2);
    d.n_tokens = nt;
    d.n_seqs = ns;
    CHECK_OK(rl_agg_weights(w, RL_AGG_TOKEN_MEAN, &sp, mask, &d, err, sizeof err), err);
    CHECK_NEAR(rl_agg_apply(w, loss, 7), 2.0, 1e-6);
    CHECK_OK(rl_agg_weights(w, RL_AGG_SEQ_MEAN_TOKEN_MEAN, &sp, mask, &d, err, sizeof err),
             err);
    CHECK_NEAR(rl_agg_apply(w, loss, 7), 2.0, 1e-6);
    CHECK_OK(rl_agg_weights(w, RL_AGG_SEQ_MEAN_TOKEN_SUM_NORM, &sp, mask, &d, err, sizeof err),
             err);
    CHECK_NEAR(rl_agg_apply(w, loss, 7), 0.625, 1e-6);

    /* a fully masked completion does not count as a sequence */
    float mask2[7] = {0, 0, 1, 1, 1, 1, 1};
    CHECK_OK(rl_agg_count(&nt, &ns, &sp, mask2, err, sizeof err), err);
    CHECK(nt == 4 && ns == 1);

    /* names round-trip; unknown names list the choices */
    for (int m = 0; m < 3; m++) {
        rl_agg_mode got;
        CHECK_OK(rl_agg_parse(rl_agg_name((rl_agg_mode)m), &got, err, sizeof err), err);
        CHECK((int)got == m);
    }
    rl_agg_mode got;
    CHECK_ERR(rl_agg_parse("token_mean", &got, err, sizeof err), RL_EARG, err,
              "expected token-mean, seq-mean-token-mean or seq-mean-token-sum-norm");
}

/* A random batch of B completions packed into one array; split into micro-batches at
 * completion boundaries and re-based so each micro-batch is its own packed array. */
static void test_microbatch_invariance(void) {
    srand(42);
    enum { B = 11, MAXT = 256 };
    int32_t st[B], ln[B];
    int T = 0;
    for (int i = 0; i < B; i++) {
        T += 1 + rand() % 4; /* prompt entries */
        st[i] = T;
        ln[i] = (i == 4) ? 0 : (i == 7 ? 1 : 1 + rand() % 12); /* a zero-length, a single */
        T += ln[i];
    }
    CHECK(T <= MAXT);
    float loss[MAXT], mask[MAXT];
    for (int t = 0; t < T; t++) {
        loss[t] = 4.0f * rand() / RAND_MAX - 2.0f;
        mask[t] = (rand() % 9 == 0) ? 0.0f : 1.0f;
    }
    const int L_max = 16;
    const int cuts[][5] = {{0, 11, -1}, {0, 3, 11, -1}, {0, 1, 2, 9, 11}, {0, 5, 6, 11, -1}};
    for (int use_mask = 0; use_mask < 2; use_mask++)
        for (int mode = 0; mode < 3; mode++) {
            const float *mk = use_mask ? mask : NULL;
            double whole = 0;
            float w_whole[MAXT];
            {
                rl_spans sp = {.T = T, .B = B, .start = st, .len = ln};
                rl_agg_denoms d = {.max_len = L_max};
                CHECK_OK(rl_agg_count(&d.n_tokens, &d.n_seqs, &sp, mk, err, sizeof err), err);
                CHECK_OK(
                    rl_agg_weights(w_whole, (rl_agg_mode)mode, &sp, mk, &d, err, sizeof err),
                    err);
                whole = rl_agg_apply(w_whole, loss, T);
            }
            for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
                /* pass 1: global counts = Σ of every micro-batch's local counts (what an
                 * all-reduce over micro-batches and ranks would produce) */
                rl_agg_denoms d = {.max_len = L_max};
                int nmb = 0;
                while (nmb < 4 && cuts[c][nmb + 1] > 0)
                    nmb++;
                rl_spans mbs[4];
                int32_t mst[4][B], mln[4][B];
                int base[4];
                for (int m = 0; m < nmb; m++) {
                    int b0 = cuts[c][m], b1 = cuts[c][m + 1];
                    base[m] = m == 0 ? 0 : st[b0 - 1] + ln[b0 - 1];
                    int end = b1 == B ? T : st[b1 - 1] + ln[b1 - 1];
                    for (int i = b0; i < b1; i++) {
                        mst[m][i - b0] = st[i] - base[m];
                        mln[m][i - b0] = ln[i];
                    }
                    mbs[m] = (rl_spans){
                        .T = end - base[m], .B = b1 - b0, .start = mst[m], .len = mln[m]};
                    double nt, ns;
                    CHECK_OK(rl_agg_count(&nt, &ns, &mbs[m], mk ? mk + base[m] : NULL, err,
                                          sizeof err),
                             err);
                    d.n_tokens += nt;
                    d.n_seqs += ns;
                }
                /* pass 2: each micro-batch's weighted sum; the step total is their sum */
                double total = 0;
                for (int m = 0; m < nmb; m++) {
                    float w[MAXT];
                    CHECK_OK(rl_agg_weights(w, (rl_agg_mode)mode, &mbs[m],
                                            mk ? mk + base[m] : NULL, &d, err, sizeof err),
                             err);
                    total += rl_agg_apply(w, loss + base[m], mbs[m].T);
                    for (int t = 0; t < mbs[m].T; t++)
                        CHECK(w[t] == w_whole[base[m] + t]);
                }
                CHECK_NEAR(total, whole, 1e-9);
            }
        }

    /* the mistake this module exists to prevent: per-micro-batch denominators give a
     * different number for token-mean (so the test above could fail) */
    rl_spans a = {.T = st[2], .B = 2, .start = st, .len = ln};
    rl_agg_denoms da = {.max_len = L_max};
    float w[MAXT];
    CHECK_OK(rl_agg_count(&da.n_tokens, &da.n_seqs, &a, NULL, err, sizeof err), err);
    CHECK_OK(rl_agg_weights(w, RL_AGG_TOKEN_MEAN, &a, NULL, &da, err, sizeof err), err);
    double local = rl_agg_apply(w, loss, a.T);
    rl_spans all = {.T = T, .B = B, .start = st, .len = ln};
    rl_agg_denoms dall = {.max_len = L_max};
    CHECK_OK(rl_agg_count(&dall.n_tokens, &dall.n_seqs, &all, NULL, err, sizeof err), err);
    CHECK_OK(rl_agg_weights(w, RL_AGG_TOKEN_MEAN, &a, NULL, &dall, err, sizeof err), err);
    CHECK(fabs(rl_agg_apply(w, loss, a.T) - local) > 1e-6);
}

int main(void) {
    test_hand_values();
    test_microbatch_invariance();
    return check_done("test_rl_loss_agg");
}
