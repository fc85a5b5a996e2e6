/*
 * kernels/cuda/tensor_core.cuh — the sm_80+ building blocks the tensor-core kernels share
 * (flash_attention.cu, flash_attention2.cu, skinny_gemm.cu): the bf16 mma.sync, operand
 * packing, 16/4-byte cp.async with its commit/wait, ldmatrix.x4 (plain and .trans) and the
 * two ldmatrix lane-address patterns. Each is one PTX instruction or a few integer ops.
 * With RLVR_CUDA_EMU (tests/emu: the kernels run on the CPU) the PTX wrappers come from
 * tests/emu/tensor_core_emu.h instead.
 *
 * Fragments of mma.sync m16n8k16 (g = lane/4, t = lane%4):
 *   A (16×16, row): a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..)
 *   B (16×8, k × n, col): b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g)
 *   C (16×8 fp32): c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1)
 * ldmatrix.x4: lanes 8i..8i+7 give the row addresses of matrix i; register i returns
 * matrix i with lane (g, t) holding row g, columns 2t..2t+1 (with .trans: rows 2t..2t+1
 * of column g).
 */
#ifndef RLVR_KERNELS_CUDA_TENSOR_CORE_CUH
#define RLVR_KERNELS_CUDA_TENSOR_CORE_CUH

#include <string.h>

#include "kernels/cuda/cuda_internal.cuh"

#ifdef RLVR_CUDA_EMU
/* the CPU emulation of the PTX wrappers (tests/emu: CUDA kernels run on the CPU in CI) */
#include "tests/emu/tensor_core_emu.h"
#else
/* c[16×8] += a[16×16] · b[16×8], bf16 inputs, fp32 accumulators. */
static __device__ __forceinline__ void tc_mma(float *c, const uint32_t *a, uint32_t b0,
                                              uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

static __device__ __forceinline__ uint32_t tc_smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16 bytes global → shared, bypassing L1; bytes < 16 zero-fills the rest (0: no read). */
static __device__ __forceinline__ void tc_cp16(bf16 *dst, const bf16 *src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(tc_smem_addr(dst)),
                 "l"(src), "r"(bytes));
}

/* 4 bytes global → shared (f32 rows); bytes 0 writes a zero. */
static __device__ __forceinline__ void tc_cp4(float *dst, const float *src, int bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(tc_smem_addr(dst)),
                 "l"(src), "r"(bytes));
}

static __device__ __forceinline__ void tc_commit(void) {
    asm volatile("cp.async.commit_group;\n" ::: "memory");
}

/* Waits until at most N committed groups of this thread are still in flight; the
 * block-wide __syncthreads that follows makes every thread's copies visible. */
template <int N> static __device__ __forceinline__ void tc_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* Four 8×8 bf16 matrices from shared memory; p is this lane's row address. */
static __device__ __forceinline__ void tc_ldsm(uint32_t *r, const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tc_smem_addr(p)));
}
static __device__ __forceinline__ void tc_ldsm_t(uint32_t *r, const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tc_smem_addr(p)));
}

#endif /* RLVR_CUDA_EMU */

/* Two floats → one register of two bf16 (lo in the low half), rounding to nearest even. */
static __device__ __forceinline__ uint32_t tc_pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
}

/* The A fragment of k-chunk kc from the fp32 accumulators c[n-tile][4] of a 16-row tile
 * (a C fragment pair reused as an A operand, rounded to bf16). */
static __device__ __forceinline__ void tc_acc_to_a(uint32_t *a, const float (*c)[4], int kc) {
    a[0] = tc_pack(c[2 * kc][0], c[2 * kc][1]);
    a[1] = tc_pack(c[2 * kc][2], c[2 * kc][3]);
    a[2] = tc_pack(c[2 * kc + 1][0], c[2 * kc + 1][1]);
    a[3] = tc_pack(c[2 * kc + 1][2], c[2 * kc + 1][3]);
}

/* Lane offsets (elements) of the two ldmatrix address patterns in a [rows][LD] tile
 * (r = lane % 8):
 *   P1: row (lane/8 & 1)·8 + r, column (lane/16)·8 — non-trans: the A fragment of a 16×16
 *       block; .trans on a row-major [k][n] tile: {b0,b1} of two neighbouring n-tiles;
 *   P2: row (lane/16)·8 + r, column (lane/8 & 1)·8 — non-trans on a row-major [n][k]
 *       tile (Bᵀ stored): {b0,b1} of two neighbouring n-tiles. */
template <int LD> static __device__ __forceinline__ int tc_p1(int lane) {
    return ((lane & 7) + ((lane >> 3) & 1) * 8) * LD + ((lane >> 4) & 1) * 8;
}
template <int LD> static __device__ __forceinline__ int tc_p2(int lane) {
    return ((lane & 7) + ((lane >> 4) & 1) * 8) * LD + ((lane >> 3) & 1) * 8;
}

#endif
