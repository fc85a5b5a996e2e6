/*
 * kernels/cpu/attention.c — causal self-attention over packed variable-length
 * sequences with grouped-query attention, fp32, in query blocks through sgemm.
 *
 * Shapes: q[T,Hq,D], k/v[T,Hkv,D], out[T,Hq,D], lse[T,Hq]; offsets[B+1] bound the
 * sequences. Query head h reads KV head h / (Hq/Hkv). Scores s_ij = q_i·k_j / sqrt(D)
 * for j ≤ i within the sequence; lse_i = log Σ_j exp(s_ij) is saved so the backward
 * recomputes P_ij = exp(s_ij − lse_i) without storing the T×T matrix.
 * Backward: dP_ij = dout_i·v_j, Δ_i = dout_i·out_i, dS_ij = P_ij (dP_ij − Δ_i),
 * dq_i = scale Σ_j dS_ij k_j, dk_j = scale Σ_i dS_ij q_i, dv_j = Σ_i P_ij dout_i.
 *
 * Work goes in blocks of ATT_BLK query rows of one (sequence, head): rows i0..i1 of a
 * sequence starting at `start` see keys start..i1, so each block is a handful of
 * single-threaded sgemms on strided views of q/k/v (no copies):
 *   forward   S = scale·Q_blk·Kᵀ → masked softmax (row max, lse) → O_blk = P·V
 *   backward  S, P = exp(S − lse) (masked), dP = dO_blk·Vᵀ, dS = scale·P∘(dP − Δ),
 *             dQ_blk = dS·K, dK += dSᵀ·Q_blk, dV += Pᵀ·dO_blk.
 * Inside an OpenMP parallel region OpenBLAS (OpenMP build) runs each call on the
 * calling thread. Scratch per thread: 2 × ATT_BLK × (longest sequence) floats
 * (2 MiB at length 4096). The forward is parallel over (query block, sequence, head);
 * the backward over (sequence, KV head): each task owns its dk/dv rows and the dq rows
 * of its query heads, so there are no races, and since the blocking does not depend on
 * the thread count, results are the same bits for any number of threads.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_expf.h"
#include "kernels/cpu/cpu_ops.h"

enum { ATT_BLK = 64 };

/* Longest sequence from the offsets themselves (the scratch size must not trust max_len). */
static int longest_seq(const int *offsets, int B) {
    int m = 1;
    for (int b = 0; b < B; b++)
        if (offsets[b + 1] - offsets[b] > m) m = offsets[b + 1] - offsets[b];
    return m;
}

static void attention_forward(rlvr_backend *be, void *out_, float *lse, const void *q_,
                              const void *k_, const void *v_, const int *offsets, int B,
                              int T, int Hq, int Hkv, int D, int max_len) {
    float *out = out_;
    const float *q = q_, *k = k_, *v = v_;
    const int group = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    const int L = longest_seq(offsets, B), NB = (L + ATT_BLK - 1) / ATT_BLK;
    const size_t qs = (size_t)Hq * D, ks = (size_t)Hkv * D; /* row strides */
    int failed = 0;
    (void)max_len;
    (void)T;
#pragma omp parallel num_threads(cpu_threads(be))
    {
        float *s = malloc((size_t)ATT_BLK * L * sizeof(float));
        if (!s) {
#pragma omp atomic write
            failed = 1;
        }
        /* Task order: last (largest) query blocks first, for dynamic load balance. */
#pragma omp for schedule(dynamic, 1)
        for (long task = 0; task < (long)NB * B * Hq; task++) {
            const int qb = NB - 1 - (int)(task / ((long)B * Hq));
            const int b = (int)(task % ((long)B * Hq)) / Hq, h = (int)(task % Hq);
            const int start = offsets[b], len = offsets[b + 1] - start;
            if (!s || qb * ATT_BLK >= len) continue;
            const int r0 = qb * ATT_BLK; /* first query row of the block, within the sequence */
            const int m = len - r0 < ATT_BLK ? len - r0 : ATT_BLK, n = r0 + m;
            const int hk = h / group;
            const float *qblk = q + (size_t)(start + r0) * qs + (size_t)h * D;
            const float *kseq = k + (size_t)start * ks + (size_t)hk * D;
            const float *vseq = v + (size_t)start * ks + (size_t)hk * D;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, D, scale, qblk, (int)qs,
                        kseq, (int)ks, 0.0f, s, n);
            for (int r = 0; r < m; r++) {
                float *sr = s + (size_t)r * n;
                const int nv = r0 + r + 1; /* keys 0..r0+r are visible */
                float mx = -INFINITY;
                for (int j = 0; j < nv; j++) mx = sr[j] > mx ? sr[j] : mx;
                float l = 0.0f;
#pragma omp simd reduction(+ : l)
                for (int j = 0; j < nv; j++) {
                    const float e = cpu_expf(sr[j] - mx);
                    sr[j] = e;
                    l += e;
                }
                const float inv = 1.0f / l;
#pragma omp simd
                for (int j = 0; j < nv; j++) sr[j] *= inv;
                for (int j = nv; j < n; j++) sr[j] = 0.0f;
                lse[(size_t)(start + r0 + r) * Hq + h] = mx + logf(l);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, n, 1.0f, s, n, vseq,
                        (int)ks, 0.0f, out + (size_t)(start + r0) * qs + (size_t)h * D, (int)qs);
        }
        free(s);
    }
    if (failed && !((cpu_ctx *)be->ctx)->err)
        ((cpu_ctx *)be->ctx)->err = "cpu attention_forward: out of memory";
}

static void attention_backward(rlvr_backend *be, void *dq_, void *dk_, void *dv_,
                               const void *dout_, const void *q_, const void *k_,
                               const void *v_, const void *out_, const float *lse,
                               const int *offsets, int B, int T, int Hq, int Hkv, int D,
                               int max_len) {
    float *dq = dq_, *dk = dk_, *dv = dv_;
    const float *dout = dout_, *q = q_, *k = k_, *v = v_, *out = out_;
    const int group = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    const int L = longest_seq(offsets, B);
    const size_t qs = (size_t)Hq * D, ks = (size_t)Hkv * D;
    int failed = 0;
    (void)max_len;
    (void)T;
#pragma omp parallel num_threads(cpu_threads(be))
    {
        float *p = malloc((size_t)2 * ATT_BLK * L * sizeof(float));
        float delta[ATT_BLK];
        if (!p) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < B * Hkv; task++) {
            const int b = task / Hkv, hk = task % Hkv;
            const int start = offsets[b], len = offsets[b + 1] - start;
            float *dkseq = dk + (size_t)start * ks + (size_t)hk * D;
            float *dvseq = dv + (size_t)start * ks + (size_t)hk * D;
            for (int j = 0; j < len; j++) {
                memset(dkseq + (size_t)j * ks, 0, (size_t)D * sizeof(float));
                memset(dvseq + (size_t)j * ks, 0, (size_t)D * sizeof(float));
            }
            if (!p) continue;
            float *dp = p + (size_t)ATT_BLK * L;
            const float *kseq = k + (size_t)start * ks + (size_t)hk * D;
            const float *vseq = v + (size_t)start * ks + (size_t)hk * D;
            for (int h = hk * group; h < (hk + 1) * group; h++) {
                for (int r0 = 0; r0 < len; r0 += ATT_BLK) {
                    const int m = len - r0 < ATT_BLK ? len - r0 : ATT_BLK, n = r0 + m;
                    const size_t blk_off = (size_t)(start + r0) * qs + (size_t)h * D;
                    const float *qblk = q + blk_off, *doblk = dout + blk_off;
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, D, scale, qblk,
                                (int)qs, kseq, (int)ks, 0.0f, p, n);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, D, 1.0f, doblk,
                                (int)qs, vseq, (int)ks, 0.0f, dp, n);
                    for (int r = 0; r < m; r++) {
                        const float *dor = doblk + (size_t)r * qs, *orow = out + blk_off + (size_t)r * qs;
                        float d = 0.0f;
#pragma omp simd reduction(+ : d)
                        for (int c = 0; c < D; c++) d += dor[c] * orow[c];
                        delta[r] = d;
                    }
                    for (int r = 0; r < m; r++) {
                        float *pr = p + (size_t)r * n, *dpr = dp + (size_t)r * n;
                        const int nv = r0 + r + 1;
                        const float l = lse[(size_t)(start + r0 + r) * Hq + h], dl = delta[r];
#pragma omp simd
                        for (int j = 0; j < nv; j++) {
                            const float pij = cpu_expf(pr[j] - l);
                            pr[j] = pij;
                            dpr[j] = pij * (dpr[j] - dl) * scale;
                        }
                        for (int j = nv; j < n; j++) pr[j] = dpr[j] = 0.0f;
                    }
                    /* dQ_blk = dS·K (written), dK += dSᵀ·Q_blk, dV += Pᵀ·dO_blk */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, D, n, 1.0f, dp, n,
                                kseq, (int)ks, 0.0f, dq + blk_off, (int)qs);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, m, 1.0f, dp, n,
                                qblk, (int)qs, 1.0f, dkseq, (int)ks);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, D, m, 1.0f, p, n,
                                doblk, (int)qs, 1.0f, dvseq, (int)ks);
                }
            }
        }
        free(p);
    }
    if (failed && !((cpu_ctx *)be->ctx)->err)
        ((cpu_ctx *)be->ctx)->err = "cpu attention_backward: out of memory";
}

void cpu_attention_register(rlvr_backend *be) {
    be->attention_forward = attention_forward;
    be->attention_backward = attention_backward;
}
