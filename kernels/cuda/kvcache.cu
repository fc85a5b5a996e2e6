/*
 * kernels/cuda/kvcache.cu — the paged KV cache ops for generation (backend.h:
 * kv_store, attention_cached): bf16 cache, fp32 math, the CPU twin is
 * kernels/cpu/kvcache.c.
 *
 * Layout (backend.h): k_cache, v_cache [n_blocks, block_size, Hkv, D]; position p of a
 * sequence lives in slot block_table[p / block_size] * block_size + p % block_size.
 *
 * kv_store: one thread per 8 elements (16-byte copies) when the row Hkv·D is a
 *   multiple of 8 and every pointer is 16-byte aligned, else one thread per element.
 *   A negative slot is skipped (the padding convention of paged caches).
 * attention_cached: one block of CACHED_WARPS warps per (query n, query head h). The
 *   keys 0..pos[n] go in chunks of 32, chunk c to warp c % CACHED_WARPS; inside a chunk
 *   lane l scores key 32c + l (the whole dot product over D, q held in shared memory),
 *   the warp keeps an online softmax (running max m, sum l) and accumulates p·v with
 *   lane l owning elements d = l + 32·i of the output (coalesced reads of v rows).
 *   The warps' partial (m, l, o) are then merged by warp 0 in warp order. Everything is
 *   a fixed-order reduction: the same bits every run. Any D ≤ 256.
 */
#include "kernels/cuda/cuda_internal.cuh"

enum { CACHED_WARPS = 4, CACHED_MAX_D = 256 };

/* ---- kv_store ------------------------------------------------------------------------ */

/* W = 8: 16-byte copies of rows of `row` elements (row % 8 == 0); W = 1: elementwise. */
template <int W>
static __global__ void kv_store_kernel(bf16 *kc, bf16 *vc, const bf16 *k, const bf16 *v,
                                       const int *slots, int T, long long row) {
    const long long per = row / W; /* work items per token row */
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long long)T * per) return;
    const int t = (int)(i / per);
    const long long e = (i % per) * W;
    const int slot = slots[t];
    if (slot < 0) return;
    const size_t src = (size_t)t * row + e, dst = (size_t)slot * row + e;
    if (W == 8) {
        *reinterpret_cast<uint4 *>(kc + dst) = *reinterpret_cast<const uint4 *>(k + src);
        *reinterpret_cast<uint4 *>(vc + dst) = *reinterpret_cast<const uint4 *>(v + src);
    } else {
        kc[dst] = k[src];
        vc[dst] = v[src];
    }
}

/* ---- attention over the cache ---------------------------------------------------------- */

/* Dot product of q (fp32, shared memory) with the bf16 row r[D]. */
template <int VEC>
static __device__ __forceinline__ float cached_dot(const float *q, const bf16 *r, int D) {
    float s = 0.0f;
    if (VEC) {
        for (int d = 0; d < D; d += 8) {
            float f[8];
            load_bf<8>(r + d, f);
#pragma unroll
            for (int i = 0; i < 8; i++) s += q[d + i] * f[i];
        }
    } else {
        for (int d = 0; d < D; d++) s += q[d] * bf2f(r[d]);
    }
    return s;
}

/* NPL = ceil(D/32) output elements per lane; VEC = rows are 16-byte aligned (D % 8 == 0). */
template <int NPL, int VEC>
static __global__ void __launch_bounds__(CACHED_WARPS * 32)
    attention_cached_kernel(bf16 *out, const bf16 *q, const bf16 *kc, const bf16 *vc,
                            const int *block_tables, int max_blocks, int block_size,
                            const int *seq, const int *pos, int Hq, int Hkv, int D,
                            float scale) {
    __shared__ float qs[CACHED_MAX_D];
    __shared__ float wm[CACHED_WARPS], wl[CACHED_WARPS];
    __shared__ float wo[CACHED_WARPS][CACHED_MAX_D];
    const int n = blockIdx.x / Hq, h = blockIdx.x % Hq, hk = h / (Hq / Hkv);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int len = pos[n] + 1;
    const int *table = block_tables + (size_t)seq[n] * max_blocks;
    const size_t krow = (size_t)Hkv * D; /* elements per slot */
    const bf16 *qn = q + ((size_t)n * Hq + h) * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = bf2f(qn[d]);
    __syncthreads();

    float m = -INFINITY, l = 0.0f, acc[NPL];
#pragma unroll
    for (int i = 0; i < NPL; i++) acc[i] = 0.0f;
    for (int c = warp; c * 32 < len; c += CACHED_WARPS) {
        const int j = c * 32 + lane;
        const int valid = j < len;
        size_t slot = 0;
        float s = -INFINITY;
        if (valid) {
            slot = (size_t)table[j / block_size] * block_size + (size_t)(j % block_size);
            s = cached_dot<VEC>(qs, kc + slot * krow + (size_t)hk * D, D) * scale;
        }
        const float mn = fmaxf(m, warp_max(s)); /* finite: key 32c < len is valid */
        const float corr = expf(m - mn);        /* 0 on the first chunk */
        const float p = valid ? expf(s - mn) : 0.0f;
        l = l * corr + warp_sum(p);
#pragma unroll
        for (int i = 0; i < NPL; i++) acc[i] *= corr;
        const int nk = len - c * 32 < 32 ? len - c * 32 : 32;
        for (int jj = 0; jj < nk; jj++) {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
            const size_t sj = (size_t)__shfl_sync(0xffffffffu, (unsigned long long)slot, jj);
            const bf16 *vr = vc + sj * krow + (size_t)hk * D;
#pragma unroll
            for (int i = 0; i < NPL; i++) {
                const int d = lane + 32 * i;
                if (d < D) acc[i] += pj * bf2f(vr[d]);
            }
        }
        m = mn;
    }
    if (lane == 0) {
        wm[warp] = m;
        wl[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < NPL; i++) {
        const int d = lane + 32 * i;
        if (d < D) wo[warp][d] = acc[i];
    }
    __syncthreads();
    if (warp != 0) return;
    float M = -INFINITY;
    for (int w = 0; w < CACHED_WARPS; w++) M = fmaxf(M, wm[w]);
    float L = 0.0f, f[CACHED_WARPS];
    for (int w = 0; w < CACHED_WARPS; w++) {
        f[w] = expf(wm[w] - M); /* a warp with no keys: m = −inf → 0 */
        L += wl[w] * f[w];
    }
    const float inv = 1.0f / L;
    bf16 *o = out + ((size_t)n * Hq + h) * D;
    for (int d = lane; d < D; d += 32) {
        float v = 0.0f;
        for (int w = 0; w < CACHED_WARPS; w++) v += wo[w][d] * f[w];
        o[d] = f2bf(v * inv);
    }
}

/* ---- launchers ------------------------------------------------------------------------- */

static void cu_kv_store(rlvr_backend *be, void *k_cache, void *v_cache, const void *k,
                        const void *v, const int *slots, int T, int Hkv, int D) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0) return;
    if (Hkv <= 0 || D <= 0) {
        cuda_record_error(c, __FILE__, __LINE__,
                          "kv_store: unsupported shape T=%d Hkv=%d D=%d (expected Hkv > 0, "
                          "D > 0)",
                          T, Hkv, D);
        return;
    }
    const long long row = (long long)Hkv * D;
    const int vec = row % 8 == 0 && cuda_aligned16(k_cache) && cuda_aligned16(v_cache) &&
                    cuda_aligned16(k) && cuda_aligned16(v);
    const unsigned threads = 256;
    if (vec) {
        kv_store_kernel<8><<<cuda_blocks((size_t)T * (size_t)(row / 8), threads), threads, 0,
                             c->stream>>>((bf16 *)k_cache, (bf16 *)v_cache, (const bf16 *)k,
                                          (const bf16 *)v, slots, T, row);
    } else {
        kv_store_kernel<1><<<cuda_blocks((size_t)T * (size_t)row, threads), threads, 0,
                             c->stream>>>((bf16 *)k_cache, (bf16 *)v_cache, (const bf16 *)k,
                                          (const bf16 *)v, slots, T, row);
    }
    CU_LAUNCH_CHECK(c, "kv_store_kernel");
}

static void cu_attention_cached(rlvr_backend *be, void *out, const void *q, const void *k_cache,
                                const void *v_cache, const int *block_tables, int max_blocks,
                                int block_size, const int *seq, const int *pos, int N, int Hq,
                                int Hkv, int D, int max_ctx) {
    cuda_ctx *c = cuda_get(be);
    (void)max_ctx; /* each block reads its own pos[n]; no scratch depends on it */
    if (N <= 0) return;
    if (Hq <= 0 || Hkv <= 0 || Hq % Hkv != 0 || D <= 0 || D > CACHED_MAX_D ||
        block_size <= 0 || max_blocks <= 0 || (long long)N * Hq > 0x7fffffffLL) {
        cuda_record_error(c, __FILE__, __LINE__,
                          "attention_cached: unsupported shape N=%d Hq=%d Hkv=%d D=%d "
                          "block_size=%d max_blocks=%d (expected Hq a multiple of Hkv, "
                          "0 < D <= %d, block_size > 0, max_blocks > 0)",
                          N, Hq, Hkv, D, block_size, max_blocks, CACHED_MAX_D);
        return;
    }
    const float scale = 1.0f / sqrtf((float)D);
    const int vec = D % 8 == 0 && cuda_aligned16(k_cache) && cuda_aligned16(v_cache);
    const unsigned grid = (unsigned)(N * Hq);
#define CACHED_LAUNCH(NPLV, VECV)                                                          \
    attention_cached_kernel<NPLV, VECV><<<grid, CACHED_WARPS * 32, 0, c->stream>>>(       \
        (bf16 *)out, (const bf16 *)q, (const bf16 *)k_cache, (const bf16 *)v_cache,        \
        block_tables, max_blocks, block_size, seq, pos, Hq, Hkv, D, scale)
#define CACHED_NPL(NPLV)                                                                   \
    do {                                                                                   \
        if (vec) CACHED_LAUNCH(NPLV, 1);                                                   \
        else CACHED_LAUNCH(NPLV, 0);                                                       \
    } while (0)
    switch ((D + 31) / 32) {
    case 1: CACHED_NPL(1); break;
    case 2: CACHED_NPL(2); break;
    case 3: CACHED_NPL(3); break;
    case 4: CACHED_NPL(4); break;
    case 5: CACHED_NPL(5); break;
    case 6: CACHED_NPL(6); break;
    case 7: CACHED_NPL(7); break;
    default: CACHED_NPL(8); break;
    }
#undef CACHED_NPL
#undef CACHED_LAUNCH
    CU_LAUNCH_CHECK(c, "attention_cached_kernel");
}

void cuda_kvcache_register(rlvr_backend *be) {
    be->kv_store = cu_kv_store;
    be->attention_cached = cu_attention_cached;
}
