/*
 * kernels/cpu/cpu_backend.c — the CPU reference backend: memory entries of the op
 * table (host memory, act dtype = fp32) and assembly of the per-family op files.
 * OpenBLAS runs the matmuls with the same thread count as the OpenMP loops.
 */
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu_ops.h"

static void cpu_destroy(rlvr_backend *be) {
    if (!be) return;
    free(be->ctx);
    free(be);
}
static const char *cpu_error(rlvr_backend *be) { return ((cpu_ctx *)be->ctx)->err; }
static void *cpu_alloc(rlvr_backend *be, size_t bytes) {
    /* 64-byte alignment for AVX-512 loads; never a zero-size request. */
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p && !((cpu_ctx *)be->ctx)->err) ((cpu_ctx *)be->ctx)->err = "cpu backend: out of memory";
    return p;
}
static void cpu_free(rlvr_backend *be, void *p) { (void)be; free(p); }
static void cpu_zero(rlvr_backend *be, void *p, size_t bytes) { (void)be; memset(p, 0, bytes); }
static void cpu_copy(rlvr_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (dst != src) memmove(dst, src, bytes);
}
static void cpu_act_from_f32(rlvr_backend *be, void *dst, const float *src, size_t n) {
    cpu_copy(be, dst, src, n * sizeof(float));
}
static void cpu_act_to_f32(rlvr_backend *be, float *dst, const void *src, size_t n) {
    cpu_copy(be, dst, src, n * sizeof(float));
}
static void cpu_cast_f32_to_act(rlvr_backend *be, void *dst, const float *src, size_t n) {
    cpu_copy(be, dst, src, n * sizeof(float));
}
static void cpu_sync(rlvr_backend *be) { (void)be; }

rlvr_backend *rlvr_cpu_backend_create(int threads) {
    rlvr_backend *be = calloc(1, sizeof *be);
    cpu_ctx *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return NULL;
    }
    ctx->threads = threads > 0 ? threads : omp_get_max_threads();
    openblas_set_num_threads(ctx->threads);
    be->name = "cpu";
    be->act_dtype = RLVR_DTYPE_F32;
    be->act_size = sizeof(float);
    be->qkv_store_fused_rows = INT_MAX; /* its two ops apart cost what they cost fused */
    be->ctx = ctx;
    be->destroy = cpu_destroy;
    be->error = cpu_error;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->zero = cpu_zero;
    be->copy = cpu_copy;
    be->to_device = cpu_copy;
    be->to_host = cpu_copy;
    be->act_from_f32 = cpu_act_from_f32;
    be->act_to_f32 = cpu_act_to_f32;
    be->cast_f32_to_act = cpu_cast_f32_to_act;
    be->sync = cpu_sync;
    cpu_embedding_register(be);
    cpu_rmsnorm_register(be);
    cpu_matmul_register(be);
    cpu_rope_register(be);
    cpu_attention_register(be);
    cpu_elementwise_register(be);
    cpu_lmhead_register(be);
    cpu_loss_register(be);
    cpu_optim_register(be);
    cpu_kvcache_register(be);
    cpu_sample_register(be);
    return be;
}
