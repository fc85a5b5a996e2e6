/*
 * tests/rl/test_rl_policy_grad.c — engine/rl feeding the backend's policy_loss op (CPU):
 * GRPO advantages broadcast over a packed batch, aggregation weights as the op's `weight`
 * input. Proves, for every aggregation mode, that splitting the batch into micro-batches
 * (with step-global denominators) gives the same dlogp for every token and the same total
 * loss as the whole batch; and that rl_kl_estimate reproduces the op's KL values exactly.
 */
#include <stdlib.h>

#include "engine/rl/advantage.h"
#include "engine/rl/kl.h"
#include "engine/rl/loss_agg.h"
#include "kernels/backend.h"
#include "tests/common/check.h"

static char err[512];

enum { B = 12, G = 4, MAXT = 400 };

/* Runs policy_loss on entries [t0, t0 + n) and returns Σ w·loss; dlogp/kl written at t0. */
static double run_op(rlvr_backend *be, const rlvr_policy_loss_params *pp, float *dlogp,
                     float *kl, const float *lp, const float *old, const float *ref,
                     const float *adv, const float *w, int t0, int n) {
    size_t bytes = (size_t)n * sizeof(float);
    float *d[9];
    for (int k = 0; k < 9; k++)
        d[k] = be->alloc(be, bytes ? bytes : 4);
    const float *in[5] = {lp + t0, old + t0, ref + t0, adv + t0, w + t0};
    for (int k = 0; k < 5; k++)
        be->to_device(be, d[k], in[k], bytes);
    be->policy_loss(be, d[5], d[6], d[7], d[8], d[0], d[1], d[2], d[3], d[4], n, pp);
    float *loss = malloc(bytes ? bytes : 4);
    be->to_host(be, loss, d[5], bytes);
    be->to_host(be, kl + t0, d[6], bytes);
    be->to_host(be, dlogp + t0, d[8], bytes);
    double s = rl_agg_apply(w + t0, loss, n);
    free(loss);
    for (int k = 0; k < 9; k++)
        be->free(be, d[k]);
    return s;
}

int main(void) {
    rlvr_backend *be = rlvr_backend_create("cpu", 1, err, sizeof err);
    if (!be) {
        fprintf(stderr, "test_rl_policy_grad: %s\n", err);
        return 1;
    }
    srand(99);
    /* packed batch: prompt gap then completion, one zero-length completion */
    int32_t st[B], ln[B];
    int T = 0;
    for (int i = 0; i < B; i++) {
        T += 2 + rand() % 5;
        st[i] = T;
        ln[i] = i == 5 ? 0 : 1 + rand() % 20;
        T += ln[i];
    }
    T += 1;
    CHECK(T <= MAXT);
    rl_spans sp = {.T = T, .B = B, .start = st, .len = ln};
    float R[B], A[B], adv[MAXT], lp[MAXT], old[MAXT], ref[MAXT], mask[MAXT];
    for (int i = 0; i < B; i++)
        R[i] = (float)(rand() % 2);
    rl_groups g = {.n = B, .group_size = G};
    rl_grpo_params gp = rl_grpo_defaults();
    CHECK_OK(rl_grpo_advantages(A, NULL, NULL, R, &g, &gp, err, sizeof err), err);
    CHECK_OK(rl_broadcast(adv, A, &sp, err, sizeof err), err);
    for (int t = 0; t < T; t++) {
        old[t] = -3.0f * rand() / RAND_MAX;
        lp[t] = old[t] + 0.6f * rand() / RAND_MAX - 0.3f; /* ρ within ±0.3 in log: clips */
        ref[t] = old[t] + 0.4f * rand() / RAND_MAX - 0.2f;
        mask[t] = rand() % 7 ? 1.0f : 0.0f;
    }
    rlvr_policy_loss_params pp = {.clip_low = 0.2f,
                                  .clip_high = 0.28f,
                                  .dual_clip = 3.0f,
                                  .kl_coef = 0.04f,
                                  .kl_estimator = RLVR_KL_K3};
    const int cuts[] = {0, 3, 4, 9, B}, ncut = 4;
    for (int mode = 0; mode < 3; mode++) {
        rl_agg_denoms d = {.max_len = 20};
        float w[MAXT], dl_whole[MAXT], dl_mb[MAXT], kl[MAXT];
        CHECK_OK(rl_agg_count(&d.n_tokens, &d.n_seqs, &sp, mask, err, sizeof err), err);
        CHECK_OK(rl_agg_weights(w, (rl_agg_mode)mode, &sp, mask, &d, err, sizeof err), err);
        double whole = run_op(be, &pp, dl_whole, kl, lp, old, ref, adv, w, 0, T);

        /* micro-batches: each its own packed array from the end of the previous one */
        rl_agg_denoms dm = {.max_len = 20};
        rl_spans mbs[4];
        int32_t mst[4][B], mln[4][B];
        int base[4], end[4];
        for (int m = 0; m < ncut; m++) {
            int b0 = cuts[m], b1 = cuts[m + 1];
            base[m] = m == 0 ? 0 : end[m - 1];
            end[m] = b1 == B ? T : st[b1 - 1] + ln[b1 - 1];
            for (int i = b0; i < b1; i++)
                mst[m][i - b0] = st[i] - base[m], mln[m][i - b0] = ln[i];
            mbs[m] =
                (rl_spans){.T = end[m] - base[m], .B = b1 - b0, .start = mst[m], .len = mln[m]};
            double nt, ns;
            CHECK_OK(rl_agg_count(&nt, &ns, &mbs[m], mask + base[m], err, sizeof err), err);
            dm.n_tokens += nt, dm.n_seqs += ns;
        }
        CHECK(dm.n_tokens == d.n_tokens && dm.n_seqs == d.n_seqs);
        double total = 0;
        float wm[MAXT];
        for (int m = 0; m < ncut; m++) {
            CHECK_OK(rl_agg_weights(wm + base[m], (rl_agg_mode)mode, &mbs[m], mask + base[m],
                                    &dm, err, sizeof err),
                     err);
            total += run_op(be, &pp, dl_mb, kl, lp, old, ref, adv, wm, base[m], mbs[m].T);
        }
        CHECK_NEAR(total, whole, 1e-9);
        int same = 1, nonzero = 0;
        for (int t = 0; t < T; t++) {
            same &= dl_mb[t] == dl_whole[t];
            nonzero += dl_whole[t] != 0.0f;
        }
        CHECK(same);
        CHECK(nonzero > T / 3); /* the gradient is real, not all zeros */

        /* host KL estimate == the op's KL, bit for bit */
        int kl_same = 1;
        for (int t = 0; t < T; t++)
            kl_same &= rl_kl_estimate(lp[t], ref[t], RLVR_KL_K3) == kl[t];
        CHECK(kl_same);
    }
    be->destroy(be);
    return check_done("test_rl_policy_grad");
}
