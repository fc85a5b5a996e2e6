/*
 * tests/ops/test_ops_forward.c — every forward op of the CPU backend against a naive
 * double-precision formula written here from kernels/backend.h (matmul, HF RMSNorm,
 * HF half-split rope, causal varlen GQA attention with lse, SwiGLU, add, fused LM head
 * vs a full softmax, the policy loss in every branch, PyTorch AdamW over 3 steps,
 * sumsq, embedding), plus the memory functions (alloc/zero/copy/to_device/to_host,
 * act_from_f32/act_to_f32/cast_f32_to_act round trips).
 *
 * Sizes are odd on purpose so that vector tails and chunk boundaries are crossed.
 */
#include "tests/ops/ops_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fp32 results compared with double references: a few ulps of the operands' scale. */
#define TOL_A 2e-5
#define TOL_R 2e-5

/* ---- memory functions ----------------------------------------------------------------- */

static void test_memory(ot_ctx *c, ot_rng *r) {
    rlvr_backend *be = c->be;
    const size_t n = 1031;
    float *h = ot_host_f32(n), *back = ot_host_f32(n);
    double *want = ot_host_f64(n);
    ot_fill(r, h, n, -3.0f, 3.0f);
    h[0] = 0.0f;
    h[1] = -0.0f;
    h[2] = 1e-30f;
    h[3] = 65504.0f;
    h[4] = 1.00390625f; /* needs rounding in bf16 */
    for (size_t i = 0; i < n; i++)
        want[i] = ot_act_round(be, h[i]);

    ot_check(c, "backend", "identity",
             be->act_size == (be->act_dtype == RLVR_DTYPE_F32 ? 4u : 2u),
             "act_size %zu does not match act_dtype %d", be->act_size, (int)be->act_dtype);

    /* act round trip */
    void *a = ot_act_new(c, h, n);
    ot_act_get(c, back, a, n);
    ot_check_close(c, "act_from_f32/act_to_f32", "n=1031", "round trip", back, want, n, 0, 0);

    /* copy (dev → dev) of act memory, then act_to_f32 */
    void *b = ot_act_new(c, NULL, n);
    be->copy(be, b, a, n * be->act_size);
    ot_act_get(c, back, b, n);
    ot_check_close(c, "copy", "act n=1031", "copied values", back, want, n, 0, 0);

    /* zero a sub-range: only that range becomes 0 */
    be->zero(be, (char *)b + 100 * be->act_size, 200 * be->act_size);
    ot_act_get(c, back, b, n);
    for (size_t i = 100; i < 300; i++)
        want[i] = 0.0;
    ot_check_close(c, "zero", "act [100,300)", "values", back, want, n, 0, 0);

    /* f32 to_device / to_host / copy / zero */
    float *f = ot_f32_new(c, h, n), *g = ot_f32_new(c, NULL, n);
    be->copy(be, g, f, n * sizeof(float));
    ot_f32_get(c, back, g, n);
    ot_check_bits(c, "to_device/copy/to_host", "f32 n=1031", "values", back, h, n);
    be->zero(be, g, n * sizeof(float));
    ot_f32_get(c, back, g, n);
    for (size_t i = 0; i < n; i++)
        want[i] = 0.0;
    ot_check_close(c, "zero", "f32 n=1031", "values", back, want, n, 0, 0);

    /* cast_f32_to_act: backend f32 → act */
    be->cast_f32_to_act(be, b, f, n);
    ot_act_get(c, back, b, n);
    for (size_t i = 0; i < n; i++)
        want[i] = ot_act_round(be, h[i]);
    ot_check_close(c, "cast_f32_to_act", "n=1031", "values", back, want, n, 0, 0);

    /* i32 round trip */
    int ih[37], iback[37];
    for (int i = 0; i < 37; i++)
        ih[i] = i * 7919 - 100000;
    int *id = ot_i32_new(c, ih, 37);
    be->to_host(be, iback, id, sizeof(ih));
    ot_check(c, "to_device/to_host", "i32 n=37", memcmp(ih, iback, sizeof(ih)) == 0,
             "int values changed in a round trip");
    be->sync(be);
    ot_check_no_error(c, "memory", "after round trips");

    ot_free(c, a);
    ot_free(c, b);
    ot_free(c, f);
    ot_free(c, g);
    ot_free(c, id);
    free(h);
    free(back);
    free(want);
}

/* ---- embedding ------------------------------------------------------------------------- */

static void test_embedding(ot_ctx *c, ot_rng *r) {
    const int V = 53, C = 37, T = 41;
    float *wte = ot_host_f32((size_t)V * C), *out = ot_host_f32((size_t)T * C);
    float *dout = ot_host_f32((size_t)T * C), *dw = ot_host_f32((size_t)V * C);
    double *want = ot_host_f64((size_t)V * C);
    int ids[41];
    ot_fill(r, wte, (size_t)V * C, -1, 1);
    ot_fill(r, dout, (size_t)T * C, -1, 1);
    for (int t = 0; t < T; t++)
        ids[t] = ot_rng_int(r, 7); /* many repeats */
    ids[0] = 0;
    ids[1] = V - 1;
    ids[2] = V - 1;
    ids[40] = 25;

    void *d_wte = ot_act_new(c, wte, (size_t)V * C),
         *d_out = ot_act_new(c, NULL, (size_t)T * C);
    int *d_ids = ot_i32_new(c, ids, T);
    c->be->embedding_forward(c->be, d_out, d_ids, d_wte, T, C);
    ot_act_get(c, out, d_out, (size_t)T * C);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++)
            want[(size_t)t * C + i] = wte[(size_t)ids[t] * C + i];
    ot_check_close(c, "embedding_forward", "V=53 C=37 T=41", "out", out, want, (size_t)T * C, 0,
                   0);

    /* backward accumulates (+=) into a pre-filled dwte */
    float *pre = ot_host_f32((size_t)V * C);
    ot_fill(r, pre, (size_t)V * C, -0.5f, 0.5f);
    void *d_dout = ot_act_new(c, dout, (size_t)T * C);
    float *d_dw = ot_f32_new(c, pre, (size_t)V * C);
    c->be->embedding_backward(c->be, d_dw, d_dout, d_ids, T, C);
    ot_f32_get(c, dw, d_dw, (size_t)V * C);
    for (size_t i = 0; i < (size_t)V * C; i++)
        want[i] = pre[i];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i++)
            want[(size_t)ids[t] * C + i] += dout[(size_t)t * C + i];
    ot_check_close(c, "embedding_backward", "V=53 C=37 T=41 prefilled", "dwte (+=)", dw, want,
                   (size_t)V * C, 1e-6, 1e-6);
    ot_check_no_error(c, "embedding", "all");
    ot_free(c, d_wte);
    ot_free(c, d_out);
    ot_free(c, d_ids);
    ot_free(c, d_dout);
    ot_free(c, d_dw);
    free(wte);
    free(out);
    free(dout);
    free(dw);
    free(want);
    free(pre);
}

/* ---- RMSNorm (HF: y = w ⊙ x / sqrt(mean(x²) + eps)) ----------------------------------------
 */

static void test_rmsnorm(ot_ctx *c, ot_rng *r) {
    const int N = 9, C = 67;
    const float eps = 1e-5f;
    float *x = ot_host_f32((size_t)N * C), *w = ot_host_f32(C),
          *out = ot_host_f32((size_t)N * C);
    float rstd[9];
    double *want = ot_host_f64((size_t)N * C), want_rstd[9];
    ot_fill(r, x, (size_t)N * C, -2, 2);
    ot_fill(r, w, C, 0.5f, 1.5f);
    for (int i = 0; i < C; i++) {
        x[1 * C + i] = 0.0f;    /* all-zero row: rstd = 1/sqrt(eps) */
        x[2 * C + i] *= 100.0f; /* large row */
        x[3 * C + i] *= 1e-3f;  /* small row, comparable to eps */
    }
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < C; i++)
            ss += (double)x[n * C + i] * x[n * C + i];
        double rs = 1.0 / sqrt(ss / C + (double)eps);
        want_rstd[n] = rs;
        for (int i = 0; i < C; i++)
            want[n * C + i] = (double)w[i] * x[n * C + i] * rs;
    }
    void *d_x = ot_act_new(c, x, (size_t)N * C), *d_w = ot_act_new(c, w, C);
    void *d_out = ot_act_new(c, NULL, (size_t)N * C);
    float *d_rstd = ot_f32_new(c, NULL, N);
    c->be->rmsnorm_forward(c->be, d_out, d_rstd, d_x, d_w, N, C, eps);
    ot_act_get(c, out, d_out, (size_t)N * C);
    ot_f32_get(c, rstd, d_rstd, N);
    ot_check_close(c, "rmsnorm_forward", "N=9 C=67 eps=1e-5", "out", out, want, (size_t)N * C,
                   TOL_A, TOL_R);
    ot_check_close(c, "rmsnorm_forward", "N=9 C=67 eps=1e-5", "rstd", rstd, want_rstd, N, 0,
                   TOL_R);
    ot_check_no_error(c, "rmsnorm_forward", "all");
    ot_free(c, d_x);
    ot_free(c, d_w);
    ot_free(c, d_out);
    ot_free(c, d_rstd);
    free(x);
    free(w);
    free(out);
    free(want);
}

/* ---- matmul: out = in·wᵀ + b ------------------------------------------------------------ */

static void matmul_case(ot_ctx *c, ot_rng *r, int N, int IC, int OC, int with_bias) {
    char cas[96];
    snprintf(cas, sizeof cas, "N=%d IC=%d OC=%d bias=%s", N, IC, OC,
             with_bias ? "yes" : "NULL");
    float *in = ot_host_f32((size_t)N * IC), *w = ot_host_f32((size_t)OC * IC);
    float *b = ot_host_f32(OC), *out = ot_host_f32((size_t)N * OC);
    double *want = ot_host_f64((size_t)N * OC);
    ot_fill(r, in, (size_t)N * IC, -1, 1);
    ot_fill(r, w, (size_t)OC * IC, -1, 1);
    ot_fill(r, b, OC, -1, 1);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = with_bias ? b[o] : 0.0;
            for (int i = 0; i < IC; i++)
                s += (double)in[(size_t)n * IC + i] * w[(size_t)o * IC + i];
            want[(size_t)n * OC + o] = s;
        }
    void *d_in = ot_act_new(c, in, (size_t)N * IC), *d_w = ot_act_new(c, w, (size_t)OC * IC);
    void *d_b = ot_act_new(c, b, OC);
    /* pre-fill out with garbage: forward must overwrite */
    for (size_t i = 0; i < (size_t)N * OC; i++)
        out[i] = 777.0f;
    void *d_out = ot_act_new(c, out, (size_t)N * OC);
    c->be->matmul_forward(c->be, d_out, d_in, d_w, with_bias ? d_b : NULL, N, IC, OC);
    ot_act_get(c, out, d_out, (size_t)N * OC);
    ot_check_close(c, "matmul_forward", cas, "out", out, want, (size_t)N * OC,
                   TOL_A * sqrt((double)IC), TOL_R);
    ot_check_no_error(c, "matmul_forward", cas);
    ot_free(c, d_in);
    ot_free(c, d_w);
    ot_free(c, d_b);
    ot_free(c, d_out);
    free(in);
    free(w);
    free(b);
    free(out);
    free(want);
}

/* ---- rope (HF half-split) ------------------------------------------------------------------
 */

static void rope_ref(double *y, const float *x, const int *pos, const float *inv, int T, int H,
                     int D, int sign) {
    int h2 = D / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < h2; i++) {
                float ang = (float)pos[t] * inv[i]; /* fp32 angle, per the contract */
                double cs = cos((double)ang), sn = sign * sin((double)ang);
                size_t o = ((size_t)t * H + h) * D;
                double x1 = x[o + i], x2 = x[o + i + h2];
                y[o + i] = x1 * cs - x2 * sn;
                y[o + i + h2] = x2 * cs + x1 * sn;
            }
}

static void test_rope(ot_ctx *c, ot_rng *r) {
    const int T = 9, H = 3, D = 8;
    const int pos[9] = {0,    1,      2,      0,     5,
                        4097, 123457, 131000, 131071}; /* packed, non-contiguous */
    const char *cas = "T=9 H=3 D=8 llama3 inv_freq";
    size_t n = (size_t)T * H * D;
    float inv[4];
    ot_llama3_inv_freq(inv, D, 500000.0, 8.0, 1.0, 4.0, 8192.0);
    float *x = ot_host_f32(n), *y = ot_host_f32(n);
    double *want = ot_host_f64(n), *orig = ot_host_f64(n);
    ot_fill(r, x, n, -1, 1);
    for (size_t i = 0; i < n; i++)
        orig[i] = x[i];
    void *d_x = ot_act_new(c, x, n);
    float *d_inv = ot_f32_new(c, inv, 4);
    int *d_pos = ot_i32_new(c, pos, T);

    c->be->rope_forward(c->be, d_x, d_pos, d_inv, T, H, D);
    ot_act_get(c, y, d_x, n);
    rope_ref(want, x, pos, inv, T, H, D, +1);
    ot_check_close(c, "rope_forward", cas, "x (in place)", y, want, n, TOL_A, TOL_R);

    /* backward is the transpose rotation: applied to y it gives x back */
    c->be->rope_backward(c->be, d_x, d_pos, d_inv, T, H, D);
    ot_act_get(c, y, d_x, n);
    ot_check_close(c, "rope_backward", cas, "rope_backward(rope_forward(x)) = x", y, orig, n,
                   TOL_A, TOL_R);

    /* backward alone against the −angle formula */
    ot_act_set(c, d_x, x, n);
    c->be->rope_backward(c->be, d_x, d_pos, d_inv, T, H, D);
    ot_act_get(c, y, d_x, n);
    rope_ref(want, x, pos, inv, T, H, D, -1);
    ot_check_close(c, "rope_backward", cas, "dx (in place)", y, want, n, TOL_A, TOL_R);
    ot_check_no_error(c, "rope", cas);
    ot_free(c, d_x);
    ot_free(c, d_inv);
    ot_free(c, d_pos);
    free(x);
    free(y);
    free(want);
    free(orig);
}

/* ---- attention ------------------------------------------------------------------------------
 */

static void attention_ref(double *out, double *lse, const float *q, const float *k,
                          const float *v, const int *off, int B, int Hq, int Hkv, int D) {
    double scale = 1.0 / sqrt((double)D);
    int grp = Hq / Hkv;
    for (int b = 0; b < B; b++)
        for (int t = off[b]; t < off[b + 1]; t++)
            for (int h = 0; h < Hq; h++) {
                int kh = h / grp;
                const float *qt = q + ((size_t)t * Hq + h) * D;
                double mx = -INFINITY, s[256];
                for (int j = off[b]; j <= t; j++) {
                    const float *kj = k + ((size_t)j * Hkv + kh) * D;
                    double d = 0;
                    for (int i = 0; i < D; i++)
                        d += (double)qt[i] * kj[i];
                    s[j - off[b]] = d * scale;
                    if (s[j - off[b]] > mx) mx = s[j - off[b]];
                }
                double z = 0;
                for (int j = off[b]; j <= t; j++)
                    z += exp(s[j - off[b]] - mx);
                double *o = out + ((size_t)t * Hq + h) * D;
                for (int i = 0; i < D; i++)
                    o[i] = 0;
                for (int j = off[b]; j <= t; j++) {
                    double p = exp(s[j - off[b]] - mx) / z;
                    const float *vj = v + ((size_t)j * Hkv + kh) * D;
                    for (int i = 0; i < D; i++)
                        o[i] += p * vj[i];
                }
                lse[(size_t)t * Hq + h] = mx + log(z);
            }
}

static void attention_case(ot_ctx *c, ot_rng *r, const int *lens, int B, int Hq, int Hkv, int D,
                           float qscale) {
    char cas[128];
    int off[16], T = 0, max_len = 0;
    off[0] = 0;
    int pos = snprintf(cas, sizeof cas, "Hq=%d Hkv=%d D=%d lens={", Hq, Hkv, D);
    for (int b = 0; b < B; b++) {
        off[b + 1] = off[b] + lens[b];
        if (lens[b] > max_len) max_len = lens[b];
        pos += snprintf(cas + pos, sizeof cas - pos, "%s%d", b ? "," : "", lens[b]);
    }
    snprintf(cas + pos, sizeof cas - pos, "}");
    T = off[B];
    size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
    float *q = ot_host_f32(nq), *k = ot_host_f32(nk), *v = ot_host_f32(nk);
    float *out = ot_host_f32(nq), *lse = ot_host_f32((size_t)T * Hq);
    double *want = ot_host_f64(nq), *want_lse = ot_host_f64((size_t)T * Hq);
    ot_fill(r, q, nq, -qscale, qscale);
    ot_fill(r, k, nk, -qscale, qscale);
    ot_fill(r, v, nk, -1, 1);
    attention_ref(want, want_lse, q, k, v, off, B, Hq, Hkv, D);
    void *d_q = ot_act_new(c, q, nq), *d_k = ot_act_new(c, k, nk), *d_v = ot_act_new(c, v, nk);
    void *d_out = ot_act_new(c, NULL, nq);
    float *d_lse = ot_f32_new(c, NULL, (size_t)T * Hq);
    int *d_off = ot_i32_new(c, off, B + 1);
    c->be->attention_forward(c->be, d_out, d_lse, d_q, d_k, d_v, d_off, B, T, Hq, Hkv, D,
                             max_len);
    ot_act_get(c, out, d_out, nq);
    ot_f32_get(c, lse, d_lse, (size_t)T * Hq);
    ot_check_close(c, "attention_forward", cas, "out", out, want, nq, TOL_A, TOL_R);
    ot_check_close(c, "attention_forward", cas, "lse", lse, want_lse, (size_t)T * Hq, TOL_A,
                   TOL_R);
    ot_check_no_error(c, "attention_forward", cas);
    ot_free(c, d_q);
    ot_free(c, d_k);
    ot_free(c, d_v);
    ot_free(c, d_out);
    ot_free(c, d_lse);
    ot_free(c, d_off);
    free(q);
    free(k);
    free(v);
    free(out);
    free(lse);
    free(want);
    free(want_lse);
}

/* ---- SwiGLU and add ---------------------------------------------------------------------- */

static void test_swiglu_add(ot_ctx *c, ot_rng *r) {
    const size_t n = 1001;
    float *g = ot_host_f32(n), *u = ot_host_f32(n), *out = ot_host_f32(n);
    double *want = ot_host_f64(n);
    ot_fill(r, g, n, -6, 6);
    ot_fill(r, u, n, -2, 2);
    g[0] = -30.0f; /* silu saturates to 0 */
    g[1] = 30.0f;  /* silu(x) = x */
    g[2] = 0.0f;
    for (size_t i = 0; i < n; i++)
        want[i] = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    void *d_g = ot_act_new(c, g, n), *d_u = ot_act_new(c, u, n), *d_o = ot_act_new(c, NULL, n);
    c->be->swiglu_forward(c->be, d_o, d_g, d_u, n);
    ot_act_get(c, out, d_o, n);
    ot_check_close(c, "swiglu_forward", "n=1001", "out", out, want, n, TOL_A, TOL_R);

    /* add, out-of-place and aliased (out = a, out = b) */
    for (size_t i = 0; i < n; i++)
        want[i] = (double)g[i] + u[i];
    c->be->add(c->be, d_o, d_g, d_u, n);
    ot_act_get(c, out, d_o, n);
    ot_check_close(c, "add", "n=1001 out-of-place", "out", out, want, n, 1e-6, 1e-7);
    c->be->add(c->be, d_g, d_g, d_u, n);
    ot_act_get(c, out, d_g, n);
    ot_check_close(c, "add", "n=1001 out aliases a", "out", out, want, n, 1e-6, 1e-7);
    ot_act_set(c, d_g, g, n);
    c->be->add(c->be, d_u, d_g, d_u, n);
    ot_act_get(c, out, d_u, n);
    ot_check_close(c, "add", "n=1001 out aliases b", "out", out, want, n, 1e-6, 1e-7);
    ot_check_no_error(c, "swiglu/add", "all");
    ot_free(c, d_g);
    ot_free(c, d_u);
    ot_free(c, d_o);
    free(g);
    free(u);
    free(out);
    free(want);
}

/* ---- fused LM head vs a full softmax ---------------------------------------------------- */

static void lmhead_case(ot_ctx *c, ot_rng *r, int T, int C, int V, float inv_temp,
                        int with_entropy) {
    char cas[128];
    snprintf(cas, sizeof cas, "T=%d C=%d V=%d inv_temp=%.4g entropy=%s", T, C, V, inv_temp,
             with_entropy ? "yes" : "NULL");
    float *x = ot_host_f32((size_t)T * C), *w = ot_host_f32((size_t)V * C);
    float *logp = ot_host_f32(T), *ent = ot_host_f32(T), *lse = ot_host_f32(T);
    double *wl = ot_host_f64(T), *we = ot_host_f64(T), *wlse = ot_host_f64(T);
    double *z = ot_host_f64(V);
    int *tg = ot_xmalloc(sizeof(int) * T);
    ot_fill(r, x, (size_t)T * C, -1, 1);
    ot_fill(r, w, (size_t)V * C, -1, 1);
    for (int t = 0; t < T; t++)
        tg[t] = ot_rng_int(r, V);
    tg[0] = 0;
    tg[T - 1] = V - 1;
    tg[T / 2] = -1; /* masked rows: logp 0, lse and entropy still computed */
    tg[T / 3] = -1;
    for (int t = 0; t < T; t++) {
        double mx = -INFINITY;
        for (int j = 0; j < V; j++) {
            double s = 0;
            for (int i = 0; i < C; i++)
                s += (double)x[(size_t)t * C + i] * w[(size_t)j * C + i];
            z[j] = s * inv_temp;
            if (z[j] > mx) mx = z[j];
        }
        double sum = 0;
        for (int j = 0; j < V; j++)
            sum += exp(z[j] - mx);
        double l = mx + log(sum), h = 0;
        for (int j = 0; j < V; j++) {
            double p = exp(z[j] - l);
            h -= p * (z[j] - l);
        }
        wlse[t] = l;
        we[t] = h;
        wl[t] = tg[t] >= 0 ? z[tg[t]] - l : 0.0;
    }
    void *d_x = ot_act_new(c, x, (size_t)T * C), *d_w = ot_act_new(c, w, (size_t)V * C);
    int *d_tg = ot_i32_new(c, tg, T);
    float *d_logp = ot_f32_new(c, NULL, T), *d_ent = ot_f32_new(c, NULL, T);
    float *d_lse = ot_f32_new(c, NULL, T);
    c->be->lmhead_forward(c->be, d_logp, with_entropy ? d_ent : NULL, d_lse, d_x, d_w, d_tg, T,
                          C, V, inv_temp);
    ot_f32_get(c, logp, d_logp, T);
    ot_f32_get(c, lse, d_lse, T);
    ot_check_close(c, "lmhead_forward", cas, "logp", logp, wl, T, TOL_A, TOL_R);
    ot_check_close(c, "lmhead_forward", cas, "lse", lse, wlse, T, TOL_A, TOL_R);
    ot_check(c, "lmhead_forward", cas, logp[T / 2] == 0.0f && logp[T / 3] == 0.0f,
             "rows with target -1 must give logp exactly 0, got %.9g and %.9g",
             (double)logp[T / 2], (double)logp[T / 3]);
    if (with_entropy) {
        ot_f32_get(c, ent, d_ent, T);
        ot_check_close(c, "lmhead_forward", cas, "entropy", ent, we, T, TOL_A, TOL_R);
    }
    ot_check_no_error(c, "lmhead_forward", cas);
    ot_free(c, d_x);
    ot_free(c, d_w);
    ot_free(c, d_tg);
    ot_free(c, d_logp);
    ot_free(c, d_ent);
    ot_free(c, d_lse);
    free(x);
    free(w);
    free(logp);
    free(ent);
    free(lse);
    free(wl);
    free(we);
    free(wlse);
    free(z);
    free(tg);
}

/* ---- policy loss ------------------------------------------------------------------------- */

/* The header's formulas, in double. ref NULL → KL = 0. */
static void policy_ref(double logp, double old, const float *ref, double A, double wt,
                       const rlvr_policy_loss_params *p, double *loss, double *kl,
                       double *clipped, double *dlogp) {
    double lr = logp - old;
    int lr_cl = 0;
    if (lr > 20) lr = 20, lr_cl = 1;
    if (lr < -20) lr = -20, lr_cl = 1;
    double rho = exp(lr);
    double crho = fmin(fmax(rho, 1.0 - p->clip_low), 1.0 + p->clip_high);
    double un = -A * rho, cl = -A * crho;
    double l, dl;
    int clip;
    if (cl > un) {
        l = cl, dl = 0, clip = 1;
    } else {
        l = un, dl = lr_cl ? 0.0 : -A * rho, clip = 0;
    }
    if (p->dual_clip > 0 && A < 0 && -p->dual_clip * A < l)
        l = -p->dual_clip * A, dl = 0, clip = 1;
    double k = 0, dk = 0;
    if (ref) {
        double d = (double)*ref - logp;
        int d_cl = 0;
        if (d > 20) d = 20, d_cl = 1;
        if (d < -20) d = -20, d_cl = 1;
        if (p->kl_estimator == RLVR_KL_K1) {
            k = -d, dk = d_cl ? 0 : 1.0;
        } else if (p->kl_estimator == RLVR_KL_K2) {
            k = 0.5 * d * d, dk = d_cl ? 0 : -d;
        } else {
            k = exp(d) - d - 1;
            dk = d_cl ? 0 : 1.0 - exp(d);
            if (k > 10) k = 10, dk = 0;
            if (k < -10) k = -10, dk = 0;
        }
    }
    *loss = l + p->kl_coef * k;
    *kl = k;
    *clipped = clip;
    *dlogp = wt * (dl + p->kl_coef * dk);
}

static void policy_case(ot_ctx *c, ot_rng *r, const rlvr_policy_loss_params *p, int with_ref,
                        int with_optional_outputs, const char *cas) {
    float logp[64], old[64], ref[64], adv[64], wt[64];
    float loss[64], kl[64], clip[64], dl[64];
    double wloss[64], wkl[64], wclip[64], wdl[64];
    int T = ot_policy_tokens(r, logp, old, ref, adv, wt);
    for (int t = 0; t < T; t++)
        policy_ref(logp[t], old[t], with_ref ? &ref[t] : NULL, adv[t], wt[t], p, &wloss[t],
                   &wkl[t], &wclip[t], &wdl[t]);
    float *d_lp = ot_f32_new(c, logp, T), *d_old = ot_f32_new(c, old, T);
    float *d_ref = ot_f32_new(c, ref, T), *d_adv = ot_f32_new(c, adv, T);
    float *d_wt = ot_f32_new(c, wt, T), *d_loss = ot_f32_new(c, NULL, T);
    float *d_kl = ot_f32_new(c, NULL, T), *d_clip = ot_f32_new(c, NULL, T);
    float *d_dl = ot_f32_new(c, NULL, T);
    c->be->policy_loss(c->be, d_loss, with_optional_outputs ? d_kl : NULL,
                       with_optional_outputs ? d_clip : NULL, d_dl, d_lp, d_old,
                       with_ref ? d_ref : NULL, d_adv, d_wt, T, p);
    ot_f32_get(c, loss, d_loss, T);
    ot_f32_get(c, dl, d_dl, T);
    ot_check_close(c, "policy_loss", cas, "loss", loss, wloss, T, 1e-5, 1e-5);
    ot_check_close(c, "policy_loss", cas, "dlogp", dl, wdl, T, 1e-5, 1e-5);
    if (with_optional_outputs) {
        ot_f32_get(c, kl, d_kl, T);
        ot_f32_get(c, clip, d_clip, T);
        ot_check_close(c, "policy_loss", cas, "kl", kl, wkl, T, 1e-5, 1e-5);
        ot_check_close(c, "policy_loss", cas, "clipped", clip, wclip, T, 0, 0);
    }
    ot_check_no_error(c, "policy_loss", cas);
    ot_free(c, d_lp);
    ot_free(c, d_old);
    ot_free(c, d_ref);
    ot_free(c, d_adv);
    ot_free(c, d_wt);
    ot_free(c, d_loss);
    ot_free(c, d_kl);
    ot_free(c, d_clip);
    ot_free(c, d_dl);
}

static void test_policy_loss(ot_ctx *c, ot_rng *r) {
    rlvr_policy_loss_params p = {0.2f, 0.2f, 3.0f, 0.05f, RLVR_KL_K3};
    policy_case(c, r, &p, 1, 1, "k3 beta=0.05 dual=3 eps=0.2/0.2");
    p.kl_estimator = RLVR_KL_K1;
    policy_case(c, r, &p, 1, 1, "k1 beta=0.05 dual=3 eps=0.2/0.2");
    p.kl_estimator = RLVR_KL_K2;
    p.clip_high = 0.28f;
    p.dual_clip = 0.0f;
    policy_case(c, r, &p, 1, 1, "k2 beta=0.05 no dual eps=0.2/0.28");
    p.kl_estimator = RLVR_KL_K3;
    p.kl_coef = 0.5f;
    policy_case(c, r, &p, 1, 0, "k3 beta=0.5 no dual, kl/clipped NULL");
    p.dual_clip = 3.0f;
    policy_case(c, r, &p, 0, 1, "ref_logp NULL beta=0.5 dual=3");
    p.kl_coef = 0.0f;
    policy_case(c, r, &p, 1, 1, "k3 beta=0 (KL reported, not in loss)");
}

/* ---- AdamW over 3 steps vs torch.optim.AdamW ------------------------------------------------
 */

static void adamw_case(ot_ctx *c, ot_rng *r, int use_master) {
    const size_t n = 1001;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, gs = 0.5f;
    const char *cas = use_master ? "n=1001 master!=NULL 3 steps" : "n=1001 master=NULL 3 steps";
    float *th = ot_host_f32(n), *g = ot_host_f32(n), *m = ot_host_f32(n), *v = ot_host_f32(n);
    float *got = ot_host_f32(n);
    double *rt = ot_host_f64(n), *rm = ot_host_f64(n), *rv = ot_host_f64(n);
    ot_fill(r, th, n, -1, 1);
    for (size_t i = 0; i < n; i++)
        rt[i] = th[i];
    float *d_master = use_master ? ot_f32_new(c, th, n) : NULL;
    void *d_param = use_master ? ot_act_new(c, th, n) : (void *)ot_f32_new(c, th, n);
    float *d_g = ot_f32_new(c, NULL, n), *d_m = ot_f32_new(c, NULL, n);
    float *d_v = ot_f32_new(c, NULL, n);
    for (int step = 1; step <= 3; step++) {
        ot_fill(r, g, n, -2, 2);
        g[0] = 0.0f; /* zero gradient: m = v = 0 at step 1, no Adam update */
        g[1] = 1e-6f;
        g[2] = 50.0f;
        ot_f32_set(c, d_g, g, n);
        c->be->adamw(c->be, d_param, d_master, d_g, d_m, d_v, n, lr, b1, b2, eps, wd, gs, step);
        double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
        for (size_t i = 0; i < n; i++) {
            double gg = (double)g[i] * gs;
            rm[i] = b1 * rm[i] + (1.0 - b1) * gg;
            rv[i] = b2 * rv[i] + (1.0 - b2) * gg * gg;
            /* torch: p.mul_(1 − lr·wd); p.addcdiv_(m, sqrt(v)/sqrt(bc2) + eps, −lr/bc1) */
            rt[i] = rt[i] * (1.0 - (double)lr * wd) -
                    (lr / bc1) * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + eps);
        }
        char sc[96];
        snprintf(sc, sizeof sc, "%s, after step %d", cas, step);
        ot_f32_get(c, m, d_m, n);
        ot_f32_get(c, v, d_v, n);
        ot_check_close(c, "adamw", sc, "m", m, rm, n, 1e-7, 1e-5);
        ot_check_close(c, "adamw", sc, "v", v, rv, n, 1e-9, 1e-5);
        if (use_master) {
            ot_f32_get(c, got, d_master, n);
            ot_check_close(c, "adamw", sc, "master", got, rt, n, 2e-6, 1e-6);
            double *rounded = ot_host_f64(n);
            for (size_t i = 0; i < n; i++)
                rounded[i] = ot_act_round(c->be, got[i]);
            ot_act_get(c, got, d_param, n);
            ot_check_close(c, "adamw", sc, "param = act(master)", got, rounded, n, 0, 0);
            free(rounded);
        } else {
            ot_f32_get(c, got, d_param, n);
            ot_check_close(c, "adamw", sc, "param (f32, in place)", got, rt, n, 2e-6, 1e-6);
        }
    }
    ot_check_no_error(c, "adamw", cas);
    ot_free(c, d_master);
    ot_free(c, d_param);
    ot_free(c, d_g);
    ot_free(c, d_m);
    ot_free(c, d_v);
    free(th);
    free(g);
    free(m);
    free(v);
    free(got);
    free(rt);
    free(rm);
    free(rv);
}

/* ---- sumsq --------------------------------------------------------------------------------
 */

static void test_sumsq(ot_ctx *c, ot_rng *r) {
    static const size_t ns[] = {0, 1, 7, 100003, 300007};
    for (int k = 0; k < 5; k++) {
        size_t n = ns[k];
        float *x = ot_host_f32(n);
        ot_fill(r, x, n, -3, 3);
        double want = 0;
        for (size_t i = 0; i < n; i++)
            want += (double)x[i] * x[i];
        float *d = ot_f32_new(c, n ? x : NULL, n);
        double got = c->be->sumsq(c->be, d, n);
        char cas[32];
        snprintf(cas, sizeof cas, "n=%zu", n);
        ot_check(c, "sumsq", cas, fabs(got - want) <= 1e-6 * want + 1e-30,
                 "got %.17g want %.17g (rel %.3e)", got, want,
                 want > 0 ? fabs(got - want) / want : fabs(got));
        ot_free(c, d);
        free(x);
    }
    ot_check_no_error(c, "sumsq", "all");
}

int main(void) {
    ot_ctx c = {ot_cpu_backend(2), 0, 0};
    ot_rng r;
    ot_rng_seed(&r, 20240611);
    test_memory(&c, &r);
    test_embedding(&c, &r);
    test_rmsnorm(&c, &r);
    matmul_case(&c, &r, 37, 67, 129, 1);
    matmul_case(&c, &r, 37, 67, 129, 0);
    matmul_case(&c, &r, 1, 5, 3, 1);
    matmul_case(&c, &r, 65, 257, 33, 0);
    test_rope(&c, &r);
    {
        const int l1[] = {1, 5, 13}, l2[] = {17, 3}, l3[] = {9};
        attention_case(&c, &r, l1, 3, 6, 2, 8, 1.5f);
        attention_case(&c, &r, l2, 2, 4, 1, 64, 0.6f);
        attention_case(&c, &r, l3, 1, 2, 2, 5, 2.0f);
        const int l4[] = {2, 1, 1, 40, 7};
        attention_case(&c, &r, l4, 5, 8, 4, 16, 1.0f);
    }
    test_swiglu_add(&c, &r);
    lmhead_case(&c, &r, 37, 13, 1037, 1.0f, 1);
    lmhead_case(&c, &r, 37, 13, 1037, 1.0f / 0.7f, 0);
    lmhead_case(&c, &r, 67, 29, 5003, 1.25f, 1);
    lmhead_case(&c, &r, 3, 5, 2, 1.0f, 1);
    lmhead_case(&c, &r, 263, 11, 16411, 0.9f, 1); /* several token and vocab tiles */
    test_policy_loss(&c, &r);
    adamw_case(&c, &r, 0);
    adamw_case(&c, &r, 1);
    test_sumsq(&c, &r);
    int rc = ot_finish(&c, "test_ops_forward");
    c.be->destroy(c.be);
    return rc;
}
