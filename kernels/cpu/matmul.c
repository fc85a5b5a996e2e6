/*
 * kernels/cpu/matmul.c — the linear layer y = x·wᵀ + b (Hugging Face weight layout
 * w[OC, IC]) and its backward, through OpenBLAS sgemm.
 */
#include <cblas.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

/* out[N,OC] = in[N,IC] · w[OC,IC]ᵀ + bias[OC] */
static void matmul_forward(rlvr_backend *be, void *out_, const void *in, const void *w,
                           const void *bias_, int N, int IC, int OC) {
    float *out = out_;
    const float *bias = bias_;
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)N * OC)) schedule(static)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    if (N == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, in, IC, w, IC, beta,
                out, OC);
}

/* din[N,IC] (=/+=) dout[N,OC]·w[OC,IC]; dw[OC,IC] += doutᵀ·in; dbias[OC] += Σ_n dout */
static void matmul_backward(rlvr_backend *be, void *din, float *dw, float *dbias,
                            const void *dout_, const void *in, const void *w, int N, int IC,
                            int OC, int accumulate) {
    const float *dout = dout_;
    if (N == 0) return;
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, w,
                    IC, accumulate ? 1.0f : 0.0f, din, IC);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, in, IC,
                    1.0f, dw, IC);
    if (dbias) {
        /* Column sums in row order, columns split across threads: deterministic. */
        const int block = 16;
        const int nblocks = (OC + block - 1) / block;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)N * OC)) schedule(static)
        for (int cb = 0; cb < nblocks; cb++) {
            int c0 = cb * block, c1 = c0 + block < OC ? c0 + block : OC;
            double acc[16] = {0};
            for (int n = 0; n < N; n++)
                for (int c = c0; c < c1; c++) acc[c - c0] += dout[(size_t)n * OC + c];
            for (int c = c0; c < c1; c++) dbias[c] += (float)acc[c - c0];
        }
    }
}

void cpu_matmul_register(rlvr_backend *be) {
    be->matmul_forward = matmul_forward;
    be->matmul_backward = matmul_backward;
}
