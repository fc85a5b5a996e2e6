/*
 * kernels/cpu/rmsnorm.c — RMSNorm as Hugging Face computes it (fp32):
 *   rstd = 1/sqrt(mean(x²) + eps), y = w ⊙ (x · rstd).
 * Backward with x̂ = x·rstd, g = dy ⊙ w:  dx = rstd · (g − x̂ · mean(g ⊙ x̂)),
 * dw += Σ_rows dy ⊙ x̂ (columns split across threads: deterministic).
 */
#include <math.h>

#include "kernels/composite.h"
#include "kernels/cpu/cpu_ops.h"

static void rmsnorm_forward(rlvr_backend *be, void *out_, float *rstd, const void *in_,
                            const void *w_, int N, int C, float eps) {
    float *out = out_;
    const float *in = in_, *w = w_;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)N * C)) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = in + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        rstd[n] = r;
#pragma omp simd
        for (int c = 0; c < C; c++) y[c] = w[c] * (x[c] * r);
    }
}

/* The add (as kernels/cpu/elementwise.c's), then rmsnorm_forward of the sum. */
static void add_rmsnorm_forward(rlvr_backend *be, void *sum_, void *out, float *rstd,
                                const void *a_, const void *b_, const void *w, int N, int C,
                                float eps) {
    float *sum = sum_;
    const float *a = a_, *b = b_;
    const size_t n = (size_t)N * C;
#pragma omp parallel for simd num_threads(cpu_threads_for(be, n)) schedule(static)
    for (size_t i = 0; i < n; i++) sum[i] = a[i] + b[i];
    rmsnorm_forward(be, out, rstd, sum, w, N, C, eps);
}


static void rmsnorm_backward(rlvr_backend *be, void *din_, float *dw, const void *dout_,
                             const void *in_, const void *w_, const float *rstd, int N, int C,
                             int accumulate) {
    float *din = din_;
    const float *dout = dout_, *in = in_, *w = w_;
    if (din) {
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)N * C)) schedule(static)
        for (int n = 0; n < N; n++) {
            const float *x = in + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dx = din + (size_t)n * C;
            const float r = rstd[n];
            double dot = 0.0; /* Σ g ⊙ x̂ */
#pragma omp simd reduction(+ : dot)
            for (int c = 0; c < C; c++) dot += (double)dy[c] * w[c] * (x[c] * r);
            const float mean = (float)(dot / C);
            for (int c = 0; c < C; c++) {
                float v = r * (dy[c] * w[c] - x[c] * r * mean);
                dx[c] = accumulate ? dx[c] + v : v;
            }
        }
    }
    if (dw) {
        const int block = 16;
        const int nblocks = (C + block - 1) / block;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)N * C)) schedule(static)
        for (int cb = 0; cb < nblocks; cb++) {
            int c0 = cb * block, c1 = c0 + block < C ? c0 + block : C;
            double acc[16] = {0};
            for (int n = 0; n < N; n++) {
                const float *x = in + (size_t)n * C, *dy = dout + (size_t)n * C;
                for (int c = c0; c < c1; c++) acc[c - c0] += (double)dy[c] * (x[c] * rstd[n]);
            }
            for (int c = c0; c < c1; c++) dw[c] += (float)acc[c - c0];
        }
    }
}

void cpu_rmsnorm_register(rlvr_backend *be) {
    be->add_rmsnorm_forward = add_rmsnorm_forward;
    be->add_rmsnorm_swiglu = rlvr_add_rmsnorm_swiglu_apart;
    be->add_rmsnorm_matmul = rlvr_add_rmsnorm_matmul_apart;
    be->add_rmsnorm_qkv_store = rlvr_add_rmsnorm_qkv_store_apart;
    be->rmsnorm_forward = rmsnorm_forward;
    be->rmsnorm_backward = rmsnorm_backward;
}
