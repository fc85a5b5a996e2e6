/*
 * kernels/cpu/lmhead.c — the fused LM head: logits z = inv_temp · x·wᵀ, log-softmax,
 * gather of the target token's log-probability, and entropy, forward and backward,
 * without ever holding a tokens×vocab tensor. Work goes in tiles of ROWS tokens ×
 * COLS vocabulary entries (one sgemm each); per row an online log-sum-exp keeps
 * running max m, s = Σ e^{z−m} and u = Σ e^{z−m}·z, so that at the end
 *   lse = m + log s,  entropy = lse − u/s,  logp = z_target − lse.
 * Backward, with p = e^{z − lse} recomputed tile by tile:
 *   dz_j = dlogp·(δ_{j,target} − p_j) − dent·p_j·(z_j − lse + H)
 *   dx = inv_temp · dz·w,  dw += inv_temp · dzᵀ·x.
 * Peak scratch: ROWS × COLS floats (8 MiB), independent of T and V.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_expf.h"
#include "kernels/cpu/cpu_ops.h"

enum { LMHEAD_ROWS = 1024, LMHEAD_COLS = 2048 };

static void lmhead_forward(rlvr_backend *be, float *logp, float *entropy, float *lse,
                           const void *x_, const void *w_, const int *targets, int T, int C,
                           int V, float inv_temp) {
    const float *x = x_, *w = w_;
    float *z = malloc((size_t)LMHEAD_ROWS * LMHEAD_COLS * sizeof(float));
    double *m = malloc(LMHEAD_ROWS * sizeof(double) * 3);
    if (!z || !m) {
        free(z);
        free(m);
        ((cpu_ctx *)be->ctx)->err = "cpu lmhead_forward: out of memory";
        return;
    }
    double *s = m + LMHEAD_ROWS, *u = s + LMHEAD_ROWS;
    const int nt = cpu_threads(be);
    for (int r0 = 0; r0 < T; r0 += LMHEAD_ROWS) {
        const int R = T - r0 < LMHEAD_ROWS ? T - r0 : LMHEAD_ROWS;
        for (int r = 0; r < R; r++) {
            m[r] = -INFINITY;
            s[r] = u[r] = 0.0;
        }
        for (int v0 = 0; v0 < V; v0 += LMHEAD_COLS) {
            const int W = V - v0 < LMHEAD_COLS ? V - v0 : LMHEAD_COLS;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, W, C, inv_temp,
                        x + (size_t)r0 * C, C, w + (size_t)v0 * C, C, 0.0f, z, W);
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int r = 0; r < R; r++) {
                const float *zr = z + (size_t)r * W;
                float mx = (float)m[r];
#pragma omp simd reduction(max : mx)
                for (int j = 0; j < W; j++) mx = zr[j] > mx ? zr[j] : mx;
                /* Tile sums in float (vectorised), the running totals in double. */
                float ts = 0.0f, tu = 0.0f;
#pragma omp simd reduction(+ : ts, tu)
                for (int j = 0; j < W; j++) {
                    const float e = cpu_expf(zr[j] - mx);
                    ts += e;
                    tu += e * zr[j];
                }
                double scale = isinf(m[r]) ? 0.0 : exp(m[r] - mx);
                double ss = s[r] * scale + ts, uu = u[r] * scale + tu;
                m[r] = mx;
                s[r] = ss;
                u[r] = uu;
                const int tg = targets[r0 + r];
                if (tg >= v0 && tg < v0 + W) logp[r0 + r] = zr[tg - v0]; /* z_target for now */
            }
        }
        for (int r = 0; r < R; r++) {
            const double l = m[r] + log(s[r]);
            lse[r0 + r] = (float)l;
            if (entropy) entropy[r0 + r] = (float)(l - u[r] / s[r]);
            const int tg = targets[r0 + r];
            logp[r0 + r] = tg >= 0 ? (float)((double)logp[r0 + r] - l) : 0.0f;
        }
    }
    free(z);
    free(m);
}

static void lmhead_backward(rlvr_backend *be, void *dx_, float *dw, const float *dlogp,
                            const float *dentropy, const void *x_, const void *w_,
                            const int *targets, const float *lse, const float *entropy, int T,
                            int C, int V, float inv_temp) {
    float *dx = dx_;
    const float *x = x_, *w = w_;
    float *z = malloc((size_t)LMHEAD_ROWS * LMHEAD_COLS * sizeof(float));
    if (!z) {
        ((cpu_ctx *)be->ctx)->err = "cpu lmhead_backward: out of memory";
        return;
    }
    const int nt = cpu_threads(be);
    if (dx) memset(dx, 0, (size_t)T * C * sizeof(float));
    for (int r0 = 0; r0 < T; r0 += LMHEAD_ROWS) {
        const int R = T - r0 < LMHEAD_ROWS ? T - r0 : LMHEAD_ROWS;
        for (int v0 = 0; v0 < V; v0 += LMHEAD_COLS) {
            const int W = V - v0 < LMHEAD_COLS ? V - v0 : LMHEAD_COLS;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, R, W, C, inv_temp,
                        x + (size_t)r0 * C, C, w + (size_t)v0 * C, C, 0.0f, z, W);
            /* z → dz in place */
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int r = 0; r < R; r++) {
                float *zr = z + (size_t)r * W;
                const int t = r0 + r, tg = targets[t];
                const float l = lse[t];
                const float gl = tg >= 0 ? dlogp[t] : 0.0f;
                const float ge = dentropy ? dentropy[t] : 0.0f;
                const float H = dentropy ? entropy[t] : 0.0f;
                if (ge != 0.0f) {
#pragma omp simd
                    for (int j = 0; j < W; j++) {
                        const float lp = zr[j] - l, p = cpu_expf(lp);
                        zr[j] = -gl * p - ge * p * (lp + H);
                    }
                } else {
#pragma omp simd
                    for (int j = 0; j < W; j++) zr[j] = -gl * cpu_expf(zr[j] - l);
                }
                if (tg >= v0 && tg < v0 + W) zr[tg - v0] += gl;
            }
            if (dx)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, C, W, inv_temp, z, W,
                            w + (size_t)v0 * C, C, 1.0f, dx + (size_t)r0 * C, C);
            if (dw)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, W, C, R, inv_temp, z, W,
                            x + (size_t)r0 * C, C, 1.0f, dw + (size_t)v0 * C, C);
        }
    }
    free(z);
}

void cpu_lmhead_register(rlvr_backend *be) {
    be->lmhead_forward = lmhead_forward;
    be->lmhead_backward = lmhead_backward;
}
