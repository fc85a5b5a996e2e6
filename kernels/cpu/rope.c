/*
 * kernels/cpu/rope.c — rotary position embedding, Hugging Face half-split convention:
 * for i < D/2, angle = (float)pos·inv_freq[i] (fp32, as transformers computes it),
 * (x_i, x_{i+D/2}) → (x_i·cos − x_{i+D/2}·sin, x_{i+D/2}·cos + x_i·sin).
 * The backward is the transpose rotation (−angle). In place on x[T,H,D].
 * Also the stacked projection's split and merge (backend.h: qkv_split, qkv_merge): row
 * copies between qkv[T, (Hq+2·Hkv)·D] and q/k/v, then the same rotation in place.
 */
#include <math.h>
#include <string.h>

#include "kernels/composite.h"
#include "kernels/cpu/cpu_ops.h"

enum { ROPE_BLK = 64 };

static void rope_apply(rlvr_backend *be, float *x, const int *pos, const float *inv_freq,
                       int T, int H, int D, float sign) {
    const int half = D / 2;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * H * D)) schedule(static)
    for (int t = 0; t < T; t++) {
        /* cos/sin of this token's angles once, in blocks of ROPE_BLK frequencies, then a
         * vectorised rotation of every head over that block. */
        float c[ROPE_BLK], s[ROPE_BLK];
        for (int i0 = 0; i0 < half; i0 += ROPE_BLK) {
            const int n = half - i0 < ROPE_BLK ? half - i0 : ROPE_BLK;
            for (int i = 0; i < n; i++) {
                const float angle = (float)pos[t] * inv_freq[i0 + i];
                c[i] = cosf(angle);
                s[i] = sign * sinf(angle);
            }
            for (int h = 0; h < H; h++) {
                float *x1 = x + ((size_t)t * H + h) * D + i0, *x2 = x1 + half;
#pragma omp simd
                for (int i = 0; i < n; i++) {
                    const float a = x1[i], b = x2[i];
                    x1[i] = a * c[i] - b * s[i];
                    x2[i] = b * c[i] + a * s[i];
                }
            }
        }
    }
}

static void rope_forward(rlvr_backend *be, void *x, const int *pos, const float *inv_freq,
                         int T, int H, int D) {
    rope_apply(be, x, pos, inv_freq, T, H, D, 1.0f);
}
static void rope_backward(rlvr_backend *be, void *dx, const int *pos, const float *inv_freq,
                          int T, int H, int D) {
    rope_apply(be, dx, pos, inv_freq, T, H, D, -1.0f);
}

/* Copies rows between the stacked [T, (Hq+2·Hkv)·D] layout and q/k/v (to_stacked: into
 * qkv). */
static void qkv_copy(rlvr_backend *be, float *qkv, float *q, float *k, float *v, int T,
                     int Hq, int Hkv, int D, int to_stacked) {
    const size_t qd = (size_t)Hq * D, kvd = (size_t)Hkv * D, row = qd + 2 * kvd;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * row)) schedule(static)
    for (int t = 0; t < T; t++) {
        float *s = qkv + (size_t)t * row;
        float *parts[3] = {q + (size_t)t * qd, k + (size_t)t * kvd, v + (size_t)t * kvd};
        const size_t off[3] = {0, qd, qd + kvd}, len[3] = {qd, kvd, kvd};
        for (int p = 0; p < 3; p++) {
            if (to_stacked) memcpy(s + off[p], parts[p], len[p] * sizeof(float));
            else memcpy(parts[p], s + off[p], len[p] * sizeof(float));
        }
    }
}

static void qkv_split(rlvr_backend *be, void *q, void *k, void *v, const void *qkv,
                      const int *pos, const float *inv_freq, int T, int Hq, int Hkv, int D) {
    qkv_copy(be, (float *)qkv, q, k, v, T, Hq, Hkv, D, 0);
    if (!pos) return;
    rope_apply(be, q, pos, inv_freq, T, Hq, D, 1.0f);
    rope_apply(be, k, pos, inv_freq, T, Hkv, D, 1.0f);
}

static void qkv_merge(rlvr_backend *be, void *dqkv, const void *dq, const void *dk,
                      const void *dv, const int *pos, const float *inv_freq, int T, int Hq,
                      int Hkv, int D) {
    qkv_copy(be, dqkv, (float *)dq, (float *)dk, (float *)dv, T, Hq, Hkv, D, 1);
    if (!pos) return;
    /* rotate the q and k parts in place: heads 0..Hq-1 and Hq..Hq+Hkv-1 of each row,
     * seen as a [T, Hq+2·Hkv, D] tensor whose first Hq+Hkv heads are rotated */
    const int half = D / 2, H = Hq + Hkv, stride = Hq + 2 * Hkv;
    float *x = dqkv;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * H * D)) schedule(static)
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            const float angle = (float)pos[t] * inv_freq[i];
            const float c = cosf(angle), s = -sinf(angle);
            for (int h = 0; h < H; h++) {
                float *x1 = x + ((size_t)t * stride + h) * D + i, *x2 = x1 + half;
                const float a = *x1, b = *x2;
                *x1 = a * c - b * s;
                *x2 = b * c + a * s;
            }
        }
}

void cpu_rope_register(rlvr_backend *be) {
    be->rope_forward = rope_forward;
    be->rope_backward = rope_backward;
    be->qkv_split = qkv_split;
    be->qkv_split_store = rlvr_qkv_split_store_apart;
    be->qkv_merge = qkv_merge;
}
