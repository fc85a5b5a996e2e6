/*
 * kernels/cuda/cuda_backend.h — CUDA-backend extras beyond the op table (backend.h):
 * knobs that tests use to drive code paths a small input would not reach.
 */
#ifndef RLVR_KERNELS_CUDA_BACKEND_H
#define RLVR_KERNELS_CUDA_BACKEND_H

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sets the LM head chunk shape (tokens per chunk, vocabulary entries per chunk; the
 * latter is rounded up to a multiple of 8). Values <= 0 restore the automatic shape
 * (up to 1024 tokens forward, 4096 backward, entries to fill 2^25 elements: 128 MiB of
 * fp32 logits scratch at most; lmhead.cu), also the default unless RLVR_LM_CHUNKS=TxV
 * sets one.
 * Returns 0, or -1 when be is not a CUDA backend. */
int rlvr_cuda_set_lmhead_chunks(rlvr_backend *be, int tokens, int vocab);

/* matmul_forward with at most 8 rows through the GEMV kernel (on != 0, the default
 * unless RLVR_GEMV=0) or cuBLAS (0); for tests and benchmarks. -1 when be is not CUDA. */
int rlvr_cuda_set_gemv(rlvr_backend *be, int on);

/* matmul_forward with 1..256 rows (after the GEMV, when that applies) through the
 * tensor-core skinny GEMM of skinny_gemm.cu (on == 1: every shape it covers; 2: only
 * where OC <= 1.5·IC; 3: where timing it against cuBLAS at the shape's first call chose it,
 * gemm_tune.cu; off by default unless RLVR_SKINNY=1, 2 or tune) or cuBLAS (0); shapes it
 * does not cover (IC % 8 != 0, unaligned pointers) always take cuBLAS. For tests and
 * benchmarks. -1 when be is not CUDA. */
int rlvr_cuda_set_skinny(rlvr_backend *be, int on);

/* attention_cached through the split-K kernel on tensor cores (mode 2), the scalar
 * split-K kernel (1), the one-block-per-query-head kernel (0), or the choice of the
 * environment (< 0: RLVR_DECODE_ATTN=head selects the per-head kernel, =split the scalar
 * split-K one, anything else the tensor-core one, the default; read at the next call). Shapes a kernel does not cover (kvcache.cu) take the next one
 * down (mma → split → head). For tests and benchmarks. Returns 0, or -1 when be is not a
 * CUDA backend. */
int rlvr_cuda_set_decode_attention(rlvr_backend *be, int mode);

/* The decode-step fusions (on > 0, the default unless RLVR_DECODE_FUSE=0): matmul_swiglu_
 * forward runs the gate|up GEMV and the SwiGLU as one kernel for <= 8 rows (the same bits
 * as the two ops). 0 turns them off, < 0 restores the environment's choice (read at the
 * next call). For tests and benchmarks. -1 when be is not a CUDA backend. */
int rlvr_cuda_set_decode_fuse(rlvr_backend *be, int on);

/* Programmatic dependent launch of the decode-step kernels (on > 0): each may start while
 * the kernel before it finishes, waiting inside for it (cuda_internal.cuh:
 * cuda_launch_dep, pdl_begin). 0 off, < 0 the default (on where the device has compute
 * capability 9.0 or later, unless RLVR_DECODE_PDL=0; read at the next launch). -1 when be is not a CUDA backend. */
int rlvr_cuda_set_pdl(rlvr_backend *be, int on);

/* rmsnorm_backward through the fused kernel of rmsnorm.cu (fused > 0: din and the dw
 * partials in one pass, then a fixed-order sum; shapes wider than it covers take the
 * two-pass kernels), the two-pass kernels (0), or the environment's choice (< 0: the
 * fused one, the default, unless RLVR_RMSNORM_BWD=twopass; read at the next call). For tests and benchmarks. -1 when be is not a CUDA backend. */
int rlvr_cuda_set_rmsnorm_backward(rlvr_backend *be, int fused);

/* qkv_split/qkv_merge and add_rmsnorm_forward through 16-byte row kernels (on > 0; the
 * shapes they cover: D % 16 == 0, C % 8 == 0 and C <= 4096, 16-byte aligned tensors), the
 * element-wise kernels (0), or the environment's choice (< 0: the row kernels, the
 * default, unless RLVR_ROW_VEC=0; read at the next call). -1 when be is not a CUDA backend. */
int rlvr_cuda_set_row_vec(rlvr_backend *be, int on);

/* The LM head's forward keeps its fp32 logits [T, V] for the backward that follows, which
 * then skips the logits GEMM, when T·V·4 <= bytes (0: off; < 0: the environment's
 * RLVR_LM_KEEP_GB, else the default 8 GB but at most an eighth of the device's memory;
 * read at the next call). The backward uses them only when
 * its x, w, T, C, V and inv_temp are the latest forward's (callers must not change x or w
 * in between; the model never does). -1 when be is not a CUDA backend. */
int rlvr_cuda_set_lmhead_keep(rlvr_backend *be, long long bytes);

/* GEMM kernels chosen by measurement (gemm_tune.cu): mode 1 times cublasGemmEx's default
 * against cublasLt's proposals at a decode shape's first call outside a capture (a side
 * of at most 256) and keeps the fastest; 3 the same for every shape; 2 takes the first
 * Lt proposal untimed on every shape (tests: the Lt path); 0 off (cublasGemmEx's default
 * everywhere); < 0 the environment's choice (RLVR_GEMM_TUNE=1: mode 1, all: 3, first: 2,
 * else off, the default; read at the next GEMM). Shapes already chosen keep their
 * choice. RLVR_GEMM_TUNE_FILE=PATH keeps the choices across runs (read when the tuner is
 * made, written when the backend is destroyed): the same kernels, so the same bits, run
 * after run. -1 when be is not a CUDA backend. */
int rlvr_cuda_set_gemm_tune(rlvr_backend *be, int mode);

/* What the GEMM tuner did (all 0 before its first use). */
typedef struct {
    int shapes;        /* GEMM shapes tuned (timed, or mode 2's first proposal) */
    int lt_picked;     /* ... of which kept a cublasLt algorithm */
    int paths;         /* matmul_forward shapes RLVR_SKINNY=tune (set_skinny 3) timed */
    int skinny_picked; /* ... of which kept the skinny GEMM */
    int loaded;        /* choices read from RLVR_GEMM_TUNE_FILE (gemm_tune.cu) */
} rlvr_cuda_tune_stats;
int rlvr_cuda_gemm_tune_stats(rlvr_backend *be, rlvr_cuda_tune_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* RLVR_KERNELS_CUDA_BACKEND_H */
