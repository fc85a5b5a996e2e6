/*
 * kernels/cpu/embedding.c — token embedding lookup and its deterministic backward.
 */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

/* out[T,C] = wte[ids[t], :] */
static void embedding_forward(rlvr_backend *be, void *out_, const int *ids, const void *wte_,
                              int T, int C) {
    float *out = out_;
    const float *wte = wte_;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * C)) schedule(static)
    for (int t = 0; t < T; t++)
        memcpy(out + (size_t)t * C, wte + (size_t)ids[t] * C, (size_t)C * sizeof(float));
}

/* dwte[V,C] += dout[t] for each t, in token order. Threads split the columns, so every
 * element is summed in the same order whatever the thread count: bit-reproducible. */
static void embedding_backward(rlvr_backend *be, float *dwte, const void *dout_,
                               const int *ids, int T, int C) {
    const float *dout = dout_;
    const int block = 64;
    const int nblocks = (C + block - 1) / block;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * C)) schedule(static)
    for (int cb = 0; cb < nblocks; cb++) {
        int c0 = cb * block, c1 = c0 + block < C ? c0 + block : C;
        for (int t = 0; t < T; t++) {
            float *dst = dwte + (size_t)ids[t] * C;
            const float *src = dout + (size_t)t * C;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}

void cpu_embedding_register(rlvr_backend *be) {
    be->embedding_forward = embedding_forward;
    be->embedding_backward = embedding_backward;
}
