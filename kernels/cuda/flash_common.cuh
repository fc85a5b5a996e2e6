/*
 * kernels/cuda/flash_common.cuh — device code the two fused attention implementations
 * (flash_attention.cu, flash_attention2.cu) share: the dK/dV kernels' epilogue.
 */
#ifndef RLVR_KERNELS_CUDA_FLASH_COMMON_CUH
#define RLVR_KERNELS_CUDA_FLASH_COMMON_CUH

#include "kernels/cuda/cuda_internal.cuh"
#include "kernels/cuda/tensor_core.cuh"

/* A dK/dV block's result for this thread's two key rows kr0, kr1 (of a sequence of len
 * keys starting at token `start`) from its mma accumulators dka/dva[D/8][4] (C fragment
 * columns 2t, 2t+1 of each 8-wide n-tile): with GQA partials (dkp != NULL) fp32 into
 * dkp/dvp[T, Hq, D] at query head h (dk scaled), otherwise bf16 into dk/dv[T, Hkv, D] at
 * KV head hk. Rows past len are not written. */
template <int D>
static __device__ __forceinline__ void flash_store_dkdv(bf16 *dk, bf16 *dv, float *dkp,
                                                        float *dvp, const float (*dka)[4],
                                                        const float (*dva)[4], int kr0, int kr1,
                                                        int len, int start, int Hq, int Hkv,
                                                        int h, int hk, int t, float scale) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int key = r ? kr1 : kr0;
        if (key >= len) continue;
        if (dkp) {
            const size_t po = ((size_t)(start + key) * Hq + h) * D + 2 * t;
#pragma unroll
            for (int nd = 0; nd < D / 8; nd++) {
                *reinterpret_cast<float2 *>(dkp + po + nd * 8) =
                    make_float2(dka[nd][2 * r] * scale, dka[nd][2 * r + 1] * scale);
                *reinterpret_cast<float2 *>(dvp + po + nd * 8) =
                    make_float2(dva[nd][2 * r], dva[nd][2 * r + 1]);
            }
            continue;
        }
        const size_t off = ((size_t)(start + key) * Hkv + hk) * D + 2 * t;
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++) {
            *reinterpret_cast<uint32_t *>(dk + off + nd * 8) =
                tc_pack(dka[nd][2 * r] * scale, dka[nd][2 * r + 1] * scale);
            *reinterpret_cast<uint32_t *>(dv + off + nd * 8) =
                tc_pack(dva[nd][2 * r], dva[nd][2 * r + 1]);
        }
    }
}

#endif
