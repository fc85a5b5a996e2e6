/*
 * kernels/cpu/attention.c — causal self-attention over packed variable-length
 * sequences with grouped-query attention, the readable reference.
 *
 * Shapes: q[T,Hq,D], k/v[T,Hkv,D], out[T,Hq,D], lse[T,Hq]; offsets[B+1] bound the
 * sequences. Query head h reads KV head h / (Hq/Hkv). Scores s_ij = q_i·k_j / sqrt(D)
 * for j ≤ i within the sequence; lse_i = log Σ_j exp(s_ij) is saved so the backward
 * recomputes P_ij = exp(s_ij − lse_i) without storing the T×T matrix.
 * Backward: dP_ij = dout_i·v_j, Δ_i = dout_i·out_i, dS_ij = P_ij (dP_ij − Δ_i),
 * dq_i = scale Σ_j dS_ij k_j, dk_j = scale Σ_i dS_ij q_i, dv_j = Σ_i P_ij dout_i.
 * The backward is parallel over (sequence, KV head): each task owns its dk/dv rows and
 * the dq rows of its query heads, so there are no races and results are deterministic.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

static float dotf(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void attention_forward(rlvr_backend *be, void *out_, float *lse, const void *q_,
                              const void *k_, const void *v_, const int *offsets, int B,
                              int T, int Hq, int Hkv, int D, int max_len) {
    float *out = out_;
    const float *q = q_, *k = k_, *v = v_;
    const int group = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel num_threads(cpu_threads(be))
    {
        float *p = malloc((size_t)(max_len > 0 ? max_len : 1) * sizeof(float));
#pragma omp for schedule(dynamic, 4)
        for (int task = 0; task < T * Hq; task++) {
            const int t = task / Hq, h = task % Hq, hk = h / group;
            int lo = 0, hi = B - 1; /* the sequence b with offsets[b] <= t < offsets[b+1] */
            while (lo < hi) {
                int mid = (lo + hi + 1) / 2;
                if (offsets[mid] <= t) lo = mid; else hi = mid - 1;
            }
            const int start = offsets[lo];
            const float *qi = q + ((size_t)t * Hq + h) * D;
            float m = -INFINITY;
            for (int j = start; j <= t; j++) {
                float s = dotf(qi, k + ((size_t)j * Hkv + hk) * D, D) * scale;
                p[j - start] = s;
                if (s > m) m = s;
            }
            float l = 0.0f;
            for (int j = start; j <= t; j++) l += (p[j - start] = expf(p[j - start] - m));
            float *o = out + ((size_t)t * Hq + h) * D;
            memset(o, 0, (size_t)D * sizeof(float));
            for (int j = start; j <= t; j++) {
                const float w = p[j - start] / l;
                const float *vj = v + ((size_t)j * Hkv + hk) * D;
                for (int d = 0; d < D; d++) o[d] += w * vj[d];
            }
            lse[(size_t)t * Hq + h] = m + logf(l);
        }
        free(p);
    }
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
    (void)max_len;
    memset(dq, 0, (size_t)T * Hq * D * sizeof(float));
    memset(dk, 0, (size_t)T * Hkv * D * sizeof(float));
    memset(dv, 0, (size_t)T * Hkv * D * sizeof(float));
#pragma omp parallel for num_threads(cpu_threads(be)) schedule(dynamic, 1)
    for (int task = 0; task < B * Hkv; task++) {
        const int b = task / Hkv, hk = task % Hkv;
        const int start = offsets[b], end = offsets[b + 1];
        for (int h = hk * group; h < (hk + 1) * group; h++) {
            for (int i = start; i < end; i++) {
                const size_t qi_off = ((size_t)i * Hq + h) * D;
                const float *qi = q + qi_off, *doi = dout + qi_off;
                const float delta = dotf(doi, out + qi_off, D);
                const float l = lse[(size_t)i * Hq + h];
                float *dqi = dq + qi_off;
                for (int j = start; j <= i; j++) {
                    const size_t kj_off = ((size_t)j * Hkv + hk) * D;
                    const float *kj = k + kj_off, *vj = v + kj_off;
                    const float pij = expf(dotf(qi, kj, D) * scale - l);
                    const float ds = pij * (dotf(doi, vj, D) - delta) * scale;
                    float *dkj = dk + kj_off, *dvj = dv + kj_off;
                    for (int d = 0; d < D; d++) {
                        dqi[d] += ds * kj[d];
                        dkj[d] += ds * qi[d];
                        dvj[d] += pij * doi[d];
                    }
                }
            }
        }
    }
}

void cpu_attention_register(rlvr_backend *be) {
    be->attention_forward = attention_forward;
    be->attention_backward = attention_backward;
}
