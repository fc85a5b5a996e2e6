/*
 * kernels/cpu/cpu_ops.h — internal declarations shared by the CPU reference backend's
 * files: one file per op family, each implementing the backend.h entries it names.
 * Everything here is fp32 (act memory is float) and threaded with OpenMP.
 */
#ifndef RLVR_KERNELS_CPU_OPS_H
#define RLVR_KERNELS_CPU_OPS_H

#include "kernels/backend.h"

typedef struct {
    int threads;         /* OpenMP threads per op */
    const char *err;     /* first error (static string), NULL when none */
} cpu_ctx;

static inline int cpu_threads(const rlvr_backend *be) { return ((cpu_ctx *)be->ctx)->threads; }

/* Threads for a loop over `work` elementary operations: one below ~64k, where waking a
 * team costs more than it saves (decode steps of small models are made of such ops). */
enum { CPU_PARALLEL_MIN_WORK = 1 << 16 };
static inline int cpu_threads_for(const rlvr_backend *be, size_t work) {
    return work < CPU_PARALLEL_MIN_WORK ? 1 : cpu_threads(be);
}

/* Fills the op entries of the table (memory entries are set by cpu_backend.c). */
void cpu_embedding_register(rlvr_backend *be);
void cpu_rmsnorm_register(rlvr_backend *be);
void cpu_matmul_register(rlvr_backend *be);
void cpu_rope_register(rlvr_backend *be);
void cpu_attention_register(rlvr_backend *be);
void cpu_elementwise_register(rlvr_backend *be);
void cpu_lmhead_register(rlvr_backend *be);
void cpu_loss_register(rlvr_backend *be);
void cpu_optim_register(rlvr_backend *be);
void cpu_kvcache_register(rlvr_backend *be);
void cpu_sample_register(rlvr_backend *be);

#endif
