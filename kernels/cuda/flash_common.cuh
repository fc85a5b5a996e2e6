/*
 * kernels/cuda/flash_common.cuh — device code the two fused attention implementations
 * (flash_attention.cu, flash_attention2.cu) share: the forward's masked online-softmax
 * step and epilogue, and the dK/dV kernels' epilogue.
 */
#ifndef RLVR_KERNELS_CUDA_FLASH_COMMON_CUH
#define RLVR_KERNELS_CUDA_FLASH_COMMON_CUH

#include "kernels/cuda/cuda_internal.cuh"
#include "kernels/cuda/tensor_core.cuh"

/* One key tile of the forward, after S = Q·Kᵀ: s[BC/8][4] (C fragments of this warp's 16
 * query rows r0 = row g, r1 = row g + 8, keys k0 + nt·8 + 2t..) is causally masked (key <=
 * row) and scaled to the log2 domain, then folded into the running max m[2], the lane's
 * part of the row sum l[2] and the output accumulators o[D/8][4] (rescaled by
 * 2^(m_old − m_new)); s is left holding P = 2^(s − m) for O += P·V. A row with no visible
 * key yet keeps m = −inf and contributes nothing. The four lanes of a quad share a row. */
template <int BC, int D>
static __device__ __forceinline__ void flash_softmax_step(float (*s)[4], float *m, float *l,
                                                          float (*o)[4], int k0, int r0, int r1,
                                                          int t, float scale_log2) {
#pragma unroll
    for (int nt = 0; nt < BC / 8; nt++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int key = k0 + nt * 8 + 2 * t + (e & 1);
            const int row = e < 2 ? r0 : r1;
            s[nt][e] = key <= row ? s[nt][e] * scale_log2 : -INFINITY;
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < BC / 8; nt++)
            mx = fmaxf(mx, fmaxf(s[nt][2 * r], s[nt][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mn = fmaxf(m[r], mx);
        const float mu = mn == -INFINITY ? 0.0f : mn; /* no visible key yet */
        const float corr = exp2f(m[r] - mu);          /* 0 while m = −inf */
        float rs = 0.0f;
#pragma unroll
        for (int nt = 0; nt < BC / 8; nt++) {
            const float e0 = exp2f(s[nt][2 * r] - mu);
            const float e1 = exp2f(s[nt][2 * r + 1] - mu);
            s[nt][2 * r] = e0;
            s[nt][2 * r + 1] = e1;
            rs += e0 + e1;
        }
        l[r] = l[r] * corr + rs; /* this lane's part of the row sum */
        m[r] = mn;
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++) {
            o[nd][2 * r] *= corr;
            o[nd][2 * r + 1] *= corr;
        }
    }
}

/* The forward's result for this thread's rows r0 and r0 + 8 (of a sequence of len tokens
 * starting at token `start`, query head h) from its accumulators: the quad's row sums
 * l completed by two shuffles, out = o / l in bf16, lse = ln 2·m + ln l (natural log);
 * rows past len are not written. */
template <int D>
static __device__ __forceinline__ void flash_fwd_store(bf16 *out, float *lse, const float (*o)[4],
                                                     const float *m, float *l, int r0, int len,
                                                     int start, int Hq, int h, int t) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        const int row = r0 + 8 * r;
        if (row >= len) continue;
        const float inv = 1.0f / l[r];
        bf16 *orow = out + ((size_t)(start + row) * Hq + h) * D + 2 * t;
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++)
            *reinterpret_cast<uint32_t *>(orow + nd * 8) =
                tc_pack(o[nd][2 * r] * inv, o[nd][2 * r + 1] * inv);
        if (t == 0) lse[(size_t)(start + row) * Hq + h] = m[r] * 0.6931471805599453f /* ln 2 */ + logf(l[r]);
    }
}

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

/* GQA's group sum of the per-query-head fp32 dK/dV partials dkp, dvp [T, Hq, D]: dk[tok,
 * hk, d..d+3] = Σ_{j < group} dkp[tok, hk·group + j, d..d+3] in head order, rounded once
 * to bf16; the same for dv. Loads through L2 (__ldcg): inside the dK/dV kernels the
 * partials come from other blocks of the same launch. */
static __device__ __forceinline__ void flash_group_sum_quad(bf16 *dk, bf16 *dv,
                                                            const float *dkp, const float *dvp,
                                                            long long tok, int hk, int d, int Hkv,
                                                            int group, int D) {
    const size_t src = ((size_t)tok * Hkv * group + (size_t)hk * group) * D + d;
    float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f), c = a;
    for (int j = 0; j < group; j++) {
        const float4 x = __ldcg(reinterpret_cast<const float4 *>(dkp + src + (size_t)j * D));
        const float4 y = __ldcg(reinterpret_cast<const float4 *>(dvp + src + (size_t)j * D));
        a.x += x.x;
        a.y += x.y;
        a.z += x.z;
        a.w += x.w;
        c.x += y.x;
        c.y += y.y;
        c.z += y.z;
        c.w += y.w;
    }
    const size_t dst = ((size_t)tok * Hkv + hk) * D + d;
    *reinterpret_cast<uint2 *>(dk + dst) = make_uint2(tc_pack(a.x, a.y), tc_pack(a.z, a.w));
    *reinterpret_cast<uint2 *>(dv + dst) = make_uint2(tc_pack(c.x, c.y), tc_pack(c.z, c.w));
}

/* The group sum as its own kernel (flash1; flash2 at D 128 or with RLVR_ATTN_GQA=separate):
 * one thread per four elements of dk, quads = T·Hkv·D/4 (D % 4 == 0). */
static __global__ void flash_group_sum_kernel(bf16 *dk, bf16 *dv, const float *dkp,
                                              const float *dvp, long long quads, int Hkv,
                                              int group, int D) {
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= quads) return;
    const int per = D / 4;
    const long long th = i / per; /* t·Hkv + hk */
    flash_group_sum_quad(dk, dv, dkp, dvp, th / Hkv, (int)(th % Hkv), (int)(i % per) * 4, Hkv,
                         group, D);
}

#endif
