/*
 * kernels/cpu/rope.c — rotary position embedding, Hugging Face half-split convention:
 * for i < D/2, angle = (float)pos·inv_freq[i] (fp32, as transformers computes it),
 * (x_i, x_{i+D/2}) → (x_i·cos − x_{i+D/2}·sin, x_{i+D/2}·cos + x_i·sin).
 * The backward is the transpose rotation (−angle). In place on x[T,H,D].
 */
#include <math.h>

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

void cpu_rope_register(rlvr_backend *be) {
    be->rope_forward = rope_forward;
    be->rope_backward = rope_backward;
}
