/*
 * kernels/composite.h — the fused ops of the op table (backend.h: matmul_swiglu_forward,
 * add_rmsnorm_swiglu, add_rmsnorm_matmul, qkv_split_store, add_rmsnorm_qkv_store,
 * qkv_attention_cached) as the ops they stand for, run
 * in order through the table. The CPU backend registers these as its implementation (it
 * has nothing to fuse, and a wrapping backend, such as a recording one, sees the separate
 * ops); the CUDA backend runs them where its fused kernel does not apply.
 */
#ifndef RLVR_KERNELS_COMPOSITE_H
#define RLVR_KERNELS_COMPOSITE_H

#include "kernels/backend.h"

/* gu = x·wᵀ (w the stacked gate|up [2F, C]), out = silu(gate)·up. */
static inline void rlvr_matmul_swiglu_apart(rlvr_backend *be, void *out, void *gu,
                                            const void *x, const void *w, int T, int C, int F) {
    be->matmul_forward(be, gu, x, w, NULL, T, C, 2 * F);
    be->swiglu_packed_forward(be, out, gu, T, F);
}

/* sum = a + b, ln = rmsnorm(sum)·norm_w, then the gate|up projection + SwiGLU of ln. */
static inline void rlvr_add_rmsnorm_swiglu_apart(rlvr_backend *be, void *sum, void *ln,
                                                 float *rstd, const void *a, const void *b,
                                                 const void *norm_w, float eps, void *out,
                                                 void *gu, const void *w, int N, int C,
                                                 int F) {
    be->add_rmsnorm_forward(be, sum, ln, rstd, a, b, norm_w, N, C, eps);
    be->matmul_swiglu_forward(be, out, gu, ln, w, N, C, F);
}

/* sum = a + b, ln = rmsnorm(sum)·norm_w, then out = ln·wᵀ (+ bias). */
static inline void rlvr_add_rmsnorm_matmul_apart(rlvr_backend *be, void *sum, void *ln,
                                                 float *rstd, const void *a, const void *b,
                                                 const void *norm_w, float eps, void *out,
                                                 const void *w, const void *bias, int N,
                                                 int C, int OC) {
    be->add_rmsnorm_forward(be, sum, ln, rstd, a, b, norm_w, N, C, eps);
    be->matmul_forward(be, out, ln, w, bias, N, C, OC);
}

/* The split of the stacked q|k|v, then k and v into their cache slots. */
static inline void rlvr_qkv_split_store_apart(rlvr_backend *be, void *q, void *k, void *v,
                                              void *k_cache, void *v_cache, const int *slots,
                                              const void *qkv, const int *pos,
                                              const float *inv_freq, int T, int Hq, int Hkv,
                                              int D) {
    be->qkv_split(be, q, k, v, qkv, pos, inv_freq, T, Hq, Hkv, D);
    be->kv_store(be, k_cache, v_cache, k, v, slots, T, Hkv, D);
}

/* add_rmsnorm_matmul of the stacked q|k|v projection into qkv, then qkv_split_store. */
static inline void rlvr_add_rmsnorm_qkv_store_apart(
    rlvr_backend *be, void *sum, void *ln, float *rstd, const void *a, const void *b,
    const void *norm_w, float eps, void *qkv, const void *w, const void *bias, void *q, void *k,
    void *v, void *k_cache, void *v_cache, const int *slots, const int *pos,
    const float *inv_freq, int N, int C, int Hq, int Hkv, int D) {
    be->add_rmsnorm_matmul(be, sum, ln, rstd, a, b, norm_w, eps, qkv, w, bias, N, C,
                           (Hq + 2 * Hkv) * D);
    be->qkv_split_store(be, q, k, v, k_cache, v_cache, slots, qkv, pos, inv_freq, N, Hq, Hkv,
                        D);
}

/* qkv_split_store of qkv into q, k, v and the cache, then attention_cached of q. */
static inline void rlvr_qkv_attention_cached_apart(
    rlvr_backend *be, void *out, void *q, void *k, void *v, const void *qkv, void *k_cache,
    void *v_cache, const int *slots, const int *pos, const float *inv_freq,
    const int *block_tables, int max_blocks, int block_size, const int *seq, const int *share,
    int N, int Hq, int Hkv, int D, int max_ctx) {
    if (be->qkv_split_store) {
        be->qkv_split_store(be, q, k, v, k_cache, v_cache, slots, qkv, pos, inv_freq, N, Hq,
                            Hkv, D);
    } else {
        be->qkv_split(be, q, k, v, qkv, pos, inv_freq, N, Hq, Hkv, D);
        be->kv_store(be, k_cache, v_cache, k, v, slots, N, Hkv, D);
    }
    be->attention_cached(be, out, q, k_cache, v_cache, block_tables, max_blocks, block_size,
                         seq, pos, share, N, Hq, Hkv, D, max_ctx);
}

#endif
