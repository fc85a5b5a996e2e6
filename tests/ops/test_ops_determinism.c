/*
 * tests/ops/test_ops_determinism.c — the two ops the header promises are deterministic
 * (embedding_backward: "same bits every run"; sumsq: "fixed reduction order") give
 * bit-identical results run to run and across CPU backends created with 1, 2 and 3
 * threads. Training is "deterministic by seed, bit for bit on CPU" only if these hold.
 *
 * Then every other op, forward and backward, runs at 1, 2 and 3 threads on inputs large
 * enough to be split between threads, and must give the same values (to fp32 rounding):
 * test_ops_gradcheck proves the gradients at one thread, this ties the threaded paths
 * (partitioning, races, per-thread scratch) to those results.
 */
#include "tests/ops/ops_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBE 3
static const int threads[NBE] = {1, 2, 3};

/* dwte after embedding_backward on backend be, starting from pre. */
static void emb_grad(ot_ctx *c, float *dw_out, const float *pre, const float *dout,
                     const int *ids, int V, int T, int C) {
    void *d_dout = ot_act_new(c, dout, (size_t)T * C);
    int *d_ids = ot_i32_new(c, ids, T);
    float *d_dw = ot_f32_new(c, pre, (size_t)V * C);
    c->be->embedding_backward(c->be, d_dw, d_dout, d_ids, T, C);
    ot_f32_get(c, dw_out, d_dw, (size_t)V * C);
    ot_free(c, d_dout);
    ot_free(c, d_ids);
    ot_free(c, d_dw);
}

static double sumsq_on(ot_ctx *c, const float *x, size_t n) {
    float *d = ot_f32_new(c, x, n);
    double s = c->be->sumsq(c->be, d, n);
    ot_free(c, d);
    return s;
}

/* ---- every op at 1, 2 and 3 threads -------------------------------------------------------
 */

/* Results of one run, as named segments of one float array. */
typedef struct {
    float *v;
    size_t n, cap;
    const char *name[64];
    size_t off[65];
    int nseg;
} results;

static void keep(results *R, const char *name, const float *x, size_t n) {
    if (R->n + n > R->cap) {
        size_t cap = (R->n + n) * 2;
        float *v = realloc(R->v, cap * sizeof(float));
        if (!v) {
            fprintf(stderr, "ops test: out of host memory\n");
            exit(1);
        }
        R->v = v;
        R->cap = cap;
    }
    memcpy(R->v + R->n, x, n * sizeof(float));
    R->name[R->nseg] = name;
    R->off[R->nseg++] = R->n;
    R->n += n;
    R->off[R->nseg] = R->n;
}

static void keep_act(ot_ctx *c, results *R, const char *name, const void *d, size_t n) {
    float *h = ot_host_f32(n);
    ot_act_get(c, h, d, n);
    keep(R, name, h, n);
    free(h);
}

static void keep_f32(ot_ctx *c, results *R, const char *name, const float *d, size_t n) {
    float *h = ot_host_f32(n);
    ot_f32_get(c, h, d, n);
    keep(R, name, h, n);
    free(h);
}

static void *act_rand(ot_ctx *c, ot_rng *rg, size_t n, float lo, float hi) {
    float *h = ot_host_f32(n);
    ot_fill(rg, h, n, lo, hi);
    void *d = ot_act_new(c, h, n);
    free(h);
    return d;
}

static float *f32_rand(ot_ctx *c, ot_rng *rg, size_t n, float lo, float hi) {
    float *h = ot_host_f32(n);
    ot_fill(rg, h, n, lo, hi);
    float *d = ot_f32_new(c, h, n);
    free(h);
    return d;
}

/* Runs every op on inputs drawn from a fixed seed; the same sequence on every backend. */
static void run_suite(ot_ctx *c, results *R) {
    rlvr_backend *be = c->be;
    ot_rng rg;
    ot_rng_seed(&rg, 99);
    { /* matmul, accumulate = 1 onto a pre-fill */
        const int N = 67, IC = 129, OC = 95;
        void *x = act_rand(c, &rg, (size_t)N * IC, -1, 1),
             *w = act_rand(c, &rg, (size_t)OC * IC, -1, 1);
        void *b = act_rand(c, &rg, OC, -1, 1), *out = ot_act_new(c, NULL, (size_t)N * OC);
        void *dout = act_rand(c, &rg, (size_t)N * OC, -1, 1),
             *dx = act_rand(c, &rg, (size_t)N * IC, -1, 1);
        float *dw = f32_rand(c, &rg, (size_t)OC * IC, -1, 1), *db = f32_rand(c, &rg, OC, -1, 1);
        be->matmul_forward(be, out, x, w, b, N, IC, OC);
        be->matmul_backward(be, dx, dw, db, dout, x, w, N, IC, OC, 1);
        keep_act(c, R, "matmul_forward out", out, (size_t)N * OC);
        keep_act(c, R, "matmul_backward din", dx, (size_t)N * IC);
        keep_f32(c, R, "matmul_backward dw", dw, (size_t)OC * IC);
        keep_f32(c, R, "matmul_backward dbias", db, OC);
        void *bufs[] = {x, w, b, out, dout, dx, dw, db};
        for (size_t i = 0; i < 8; i++)
            ot_free(c, bufs[i]);
    }
    { /* rmsnorm */
        const int N = 67, C = 129;
        void *x = act_rand(c, &rg, (size_t)N * C, -2, 2), *w = act_rand(c, &rg, C, 0.5f, 1.5f);
        void *out = ot_act_new(c, NULL, (size_t)N * C),
             *dout = act_rand(c, &rg, (size_t)N * C, -1, 1);
        void *dx = ot_act_new(c, NULL, (size_t)N * C);
        float *rstd = ot_f32_new(c, NULL, N), *dw = f32_rand(c, &rg, C, -1, 1);
        be->rmsnorm_forward(be, out, rstd, x, w, N, C, 1e-6f);
        be->rmsnorm_backward(be, dx, dw, dout, x, w, rstd, N, C, 0);
        keep_act(c, R, "rmsnorm_forward out", out, (size_t)N * C);
        keep_f32(c, R, "rmsnorm_forward rstd", rstd, N);
        keep_act(c, R, "rmsnorm_backward din", dx, (size_t)N * C);
        keep_f32(c, R, "rmsnorm_backward dw", dw, C);
        void *bufs[] = {x, w, out, dout, dx, rstd, dw};
        for (size_t i = 0; i < 7; i++)
            ot_free(c, bufs[i]);
    }
    { /* rope */
        const int T = 67, H = 5, D = 16;
        int pos[67];
        for (int t = 0; t < T; t++)
            pos[t] = (t * 37) % 101;
        float inv[8];
        ot_llama3_inv_freq(inv, D, 500000.0, 8.0, 1.0, 4.0, 8192.0);
        void *x = act_rand(c, &rg, (size_t)T * H * D, -1, 1),
             *dx = act_rand(c, &rg, (size_t)T * H * D, -1, 1);
        int *dpos = ot_i32_new(c, pos, T);
        float *dinv = ot_f32_new(c, inv, D / 2);
        be->rope_forward(be, x, dpos, dinv, T, H, D);
        be->rope_backward(be, dx, dpos, dinv, T, H, D);
        keep_act(c, R, "rope_forward x", x, (size_t)T * H * D);
        keep_act(c, R, "rope_backward dx", dx, (size_t)T * H * D);
        void *bufs[] = {x, dx, dpos, dinv};
        for (size_t i = 0; i < 4; i++)
            ot_free(c, bufs[i]);
    }
    { /* attention */
        const int B = 4, Hq = 8, Hkv = 2, D = 16, off[5] = {0, 1, 31, 95, 102}, T = 102;
        size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
        void *q = act_rand(c, &rg, nq, -1, 1), *k = act_rand(c, &rg, nk, -1, 1);
        void *v = act_rand(c, &rg, nk, -1, 1), *out = ot_act_new(c, NULL, nq);
        void *dout = act_rand(c, &rg, nq, -1, 1), *dq = ot_act_new(c, NULL, nq);
        void *dk = ot_act_new(c, NULL, nk), *dv = ot_act_new(c, NULL, nk);
        float *lse = ot_f32_new(c, NULL, (size_t)T * Hq);
        int *doff = ot_i32_new(c, off, B + 1);
        be->attention_forward(be, out, lse, q, k, v, doff, B, T, Hq, Hkv, D, 64);
        be->attention_backward(be, dq, dk, dv, dout, q, k, v, out, lse, doff, B, T, Hq, Hkv, D,
                               64);
        keep_act(c, R, "attention_forward out", out, nq);
        keep_f32(c, R, "attention_forward lse", lse, (size_t)T * Hq);
        keep_act(c, R, "attention_backward dq", dq, nq);
        keep_act(c, R, "attention_backward dk", dk, nk);
        keep_act(c, R, "attention_backward dv", dv, nk);
        void *bufs[] = {q, k, v, out, dout, dq, dk, dv, lse, doff};
        for (size_t i = 0; i < 10; i++)
            ot_free(c, bufs[i]);
    }
    { /* swiglu, add */
        const size_t n = 10007;
        void *g = act_rand(c, &rg, n, -5, 5), *u = act_rand(c, &rg, n, -2, 2);
        void *out = ot_act_new(c, NULL, n), *dout = act_rand(c, &rg, n, -1, 1);
        void *dg = ot_act_new(c, NULL, n), *du = ot_act_new(c, NULL, n);
        be->swiglu_forward(be, out, g, u, n);
        be->swiglu_backward(be, dg, du, dout, g, u, n);
        be->add(be, g, g, u, n);
        keep_act(c, R, "swiglu_forward out", out, n);
        keep_act(c, R, "swiglu_backward dgate", dg, n);
        keep_act(c, R, "swiglu_backward dup", du, n);
        keep_act(c, R, "add out", g, n);
        void *bufs[] = {g, u, out, dout, dg, du};
        for (size_t i = 0; i < 6; i++)
            ot_free(c, bufs[i]);
    }
    { /* lmhead with entropy, tokens past one tile */
        const int T = 300, C = 16, V = 9001;
        int *tg = ot_xmalloc(sizeof(int) * T);
        for (int t = 0; t < T; t++)
            tg[t] = t % 17 == 3 ? -1 : ot_rng_int(&rg, V);
        void *x = act_rand(c, &rg, (size_t)T * C, -1, 1),
             *w = act_rand(c, &rg, (size_t)V * C, -1, 1);
        int *dtg = ot_i32_new(c, tg, T);
        float *logp = ot_f32_new(c, NULL, T), *ent = ot_f32_new(c, NULL, T);
        float *lse = ot_f32_new(c, NULL, T), *dl = f32_rand(c, &rg, T, -1, 1);
        float *de = f32_rand(c, &rg, T, -1, 1), *dw = f32_rand(c, &rg, (size_t)V * C, -1, 1);
        void *dx = ot_act_new(c, NULL, (size_t)T * C);
        be->lmhead_forward(be, logp, ent, lse, x, w, dtg, T, C, V, 1.25f);
        be->lmhead_backward(be, dx, dw, dl, de, x, w, dtg, lse, ent, T, C, V, 1.25f);
        keep_f32(c, R, "lmhead_forward logp", logp, T);
        keep_f32(c, R, "lmhead_forward entropy", ent, T);
        keep_f32(c, R, "lmhead_forward lse", lse, T);
        keep_act(c, R, "lmhead_backward dx", dx, (size_t)T * C);
        keep_f32(c, R, "lmhead_backward dw", dw, (size_t)V * C);
        void *bufs[] = {x, w, dtg, logp, ent, lse, dl, de, dw, dx};
        for (size_t i = 0; i < 10; i++)
            ot_free(c, bufs[i]);
        free(tg);
    }
    { /* policy loss */
        float lp[64], old[64], ref[64], adv[64], wt[64];
        int T = ot_policy_tokens(&rg, lp, old, ref, adv, wt);
        rlvr_policy_loss_params p = {0.2f, 0.28f, 3.0f, 0.04f, RLVR_KL_K3};
        float *d[9];
        const float *src[5] = {lp, old, ref, adv, wt};
        for (int i = 0; i < 5; i++)
            d[i] = ot_f32_new(c, src[i], T);
        for (int i = 5; i < 9; i++)
            d[i] = ot_f32_new(c, NULL, T);
        be->policy_loss(be, d[5], d[6], d[7], d[8], d[0], d[1], d[2], d[3], d[4], T, &p);
        keep_f32(c, R, "policy_loss loss", d[5], T);
        keep_f32(c, R, "policy_loss kl", d[6], T);
        keep_f32(c, R, "policy_loss clipped", d[7], T);
        keep_f32(c, R, "policy_loss dlogp", d[8], T);
        for (int i = 0; i < 9; i++)
            ot_free(c, d[i]);
    }
    { /* adamw, two steps */
        const size_t n = 10007;
        float *th = f32_rand(c, &rg, n, -1, 1), *g = f32_rand(c, &rg, n, -1, 1);
        float *m = ot_f32_new(c, NULL, n), *v = ot_f32_new(c, NULL, n);
        for (int step = 1; step <= 2; step++)
            be->adamw(be, th, NULL, g, m, v, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f, step);
        keep_f32(c, R, "adamw param", th, n);
        keep_f32(c, R, "adamw m", m, n);
        keep_f32(c, R, "adamw v", v, n);
        float *bufs[] = {th, g, m, v};
        for (size_t i = 0; i < 4; i++)
            ot_free(c, bufs[i]);
    }
}

static void test_thread_invariance(ot_ctx *cs, int nbe) {
    results R0 = {0}, Rb;
    run_suite(&cs[0], &R0);
    for (int b = 1; b < nbe; b++) {
        memset(&Rb, 0, sizeof Rb);
        run_suite(&cs[b], &Rb);
        char cas[48];
        snprintf(cas, sizeof cas, "threads=%d vs threads=1", threads[b]);
        if (!ot_check(&cs[0], "thread invariance", cas, Rb.nseg == R0.nseg && Rb.n == R0.n,
                      "different result layout"))
            continue;
        for (int i = 0; i < R0.nseg; i++) {
            size_t o = R0.off[i], n = R0.off[i + 1] - o;
            double *want = ot_host_f64(n), mx = 0;
            for (size_t j = 0; j < n; j++) {
                want[j] = R0.v[o + j];
                mx = fmax(mx, fabs(want[j]));
            }
            ot_check_close(&cs[0], R0.name[i], cas, "values", Rb.v + o, want, n, 1e-6 * mx,
                           1e-5);
            free(want);
        }
        free(Rb.v);
    }
    free(R0.v);
}

int main(void) {
    ot_ctx cs[NBE];
    for (int i = 0; i < NBE; i++)
        cs[i] = (ot_ctx){ot_cpu_backend(threads[i]), 0, 0};
    ot_ctx *c0 = &cs[0];
    ot_rng rg;
    ot_rng_seed(&rg, 4242);

    /* embedding_backward: many tokens hit few rows, so the per-row sums are long and any
     * thread-dependent summation order shows in the low bits. Values span 6 decades. */
    const int V = 50, C = 67, T = 20011;
    float *dout = ot_host_f32((size_t)T * C), *pre = ot_host_f32((size_t)V * C);
    int *ids = ot_xmalloc(sizeof(int) * T);
    ot_fill(&rg, dout, (size_t)T * C, -1, 1);
    for (size_t i = 0; i < (size_t)T * C; i += 7)
        dout[i] *= 1e-3f;
    for (size_t i = 3; i < (size_t)T * C; i += 11)
        dout[i] *= 1e3f;
    ot_fill(&rg, pre, (size_t)V * C, -1, 1);
    for (int t = 0; t < T; t++)
        ids[t] = ot_rng_int(&rg, V) % (V - 3); /* last rows unused */
    float *ref = ot_host_f32((size_t)V * C), *got = ot_host_f32((size_t)V * C);
    emb_grad(c0, ref, pre, dout, ids, V, T, C);
    for (int rep = 0; rep < 2; rep++)
        for (int b = 0; b < NBE; b++) {
            char cas[96];
            snprintf(cas, sizeof cas, "V=50 C=67 T=20011 threads=%d vs 1, run %d", threads[b],
                     rep + 1);
            emb_grad(&cs[b], got, pre, dout, ids, V, T, C);
            ot_check_bits(c0, "embedding_backward", cas, "dwte", got, ref, (size_t)V * C);
        }

    /* sumsq over 1e6 + 3 values of mixed magnitude */
    const size_t n = 1000003;
    float *x = ot_host_f32(n);
    ot_fill(&rg, x, n, -2, 2);
    for (size_t i = 0; i < n; i += 5)
        x[i] *= 1e-4f;
    for (size_t i = 1; i < n; i += 97)
        x[i] *= 3e3f;
    double s_ref = sumsq_on(c0, x, n);
    for (int rep = 0; rep < 2; rep++)
        for (int b = 0; b < NBE; b++) {
            char cas[96];
            snprintf(cas, sizeof cas, "n=1000003 threads=%d vs 1, run %d", threads[b], rep + 1);
            double s = sumsq_on(&cs[b], x, n);
            ot_check(c0, "sumsq", cas, memcmp(&s, &s_ref, sizeof s) == 0,
                     "got %.17g, threads=1 gave %.17g (diff %.3e)", s, s_ref, s - s_ref);
        }

    test_thread_invariance(cs, NBE);

    for (int b = 0; b < NBE; b++) {
        char cas[32];
        snprintf(cas, sizeof cas, "threads=%d", threads[b]);
        ot_check_no_error(&cs[b], "determinism", cas);
        c0->checks += b ? cs[b].checks : 0;
        c0->failures += b ? cs[b].failures : 0;
    }
    int rc = ot_finish(c0, "test_ops_determinism");
    for (int b = 0; b < NBE; b++)
        cs[b].be->destroy(cs[b].be);
    free(dout);
    free(pre);
    free(ids);
    free(ref);
    free(got);
    free(x);
    return rc;
}
