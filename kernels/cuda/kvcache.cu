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
 *   a fixed-order reduction: the same bits every run. Any D ≤ 256. RLVR_DECODE_ATTN=head
 *   selects it for every shape.
 * attention_cached, split-K (flash-decoding; the default from the fourth H200 run to the
 *   sixth, 1.56x the per-head kernel's tokens/s on the 256-sequence workload; now
 *   RLVR_DECODE_ATTN=split, and the fallback of the tensor-core form): one block of 4 warps per (split, KV head, query)
 *   loads tiles of the split's K and V rows into shared memory once (16-byte cp.async,
 *   the next tile prefetched while one is computed) and runs all Hq/Hkv query heads of
 *   the group against them with an online softmax per head; the splits of a query are
 *   merged in split order by a second kernel. The number of splits per query follows
 *   pos[n] on the device (at most the launch's S, chosen from N·Hkv and the SM count),
 *   so the launch shape and the fixed-size scratch do not depend on positions and a
 *   recorded CUDA graph stays correct as contexts grow. D % 8 == 0, D ≤ 256, Hq/Hkv ≤ 8;
 *   other shapes take the per-head kernel. Fixed-order reductions, no atomics.
 * attention_cached, split-K on tensor cores (the default since the sixth H200 run,
 *   session 17: 256-sequence workload 34.6k -> 51.6k output tok/s, batch 1 1.26 -> 1.14
 *   ms/token): the same splits, grid and combine kernel, but the group's query heads are the
 *   rows of an mma.sync tile, so scores and p·v of a 16-key tile are a few tensor-core
 *   instructions instead of 16·D·group scalar FMAs; see attention_split_mma_kernel.
 *   D 64 or 128, Hq/Hkv <= 16; other shapes take the scalar split-K or per-head kernel.
 *   Opt-in paired rows (RLVR_DECODE_ATTN_PAIR=1, group <= 8): two neighbouring queries per
 *   block, a tile that is the same cache slots for both copied and multiplied once; the
 *   same bits (see attention_split_mma_kernel).
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/composite.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_internal.cuh"
#include "kernels/cuda/flash_common.cuh"

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

/* ---- attention over the cache: split-K, GQA-aware (opt-in) ------------------------------ */

/* Block shape and limits of the split-K kernel (see the file comment). */
enum {
    SPLIT_THREADS = 128,        /* 4 warps */
    SPLIT_UNIT = 64,            /* a split's keys are a multiple of this (the last one apart) */
    SPLIT_MAX = 64,             /* splits per (query, KV head) */
    SPLIT_GMAX = 8,             /* query heads per KV head */
    SPLIT_SMEM = 48 * 1024 - 64, /* dynamic shared memory per block, at most (no opt-in;
                                  * 64 bytes left for split_finish's static flag) */
    SPLIT_BLOCKS_PER_SM = 4,    /* blocks wanted per SM when choosing the split count */
};
/* Partials scratch: always this size, so the buffer never moves once it exists (CUDA graphs
 * recorded with it stay valid); the split count is capped to fit. */
static const size_t SPLIT_SCRATCH_BYTES = (size_t)8 << 20;
/* Its first part: one finished-split counter per (query, KV head) (split_finish). */
static const size_t SPLIT_COUNTER_BYTES = (size_t)64 << 10;

/* Keys per split of a context of len >= 1 keys cut into at most max_splits splits: a multiple
 * of SPLIT_UNIT; the number of splits used is ceil(len / per) <= max_splits. Both kernels
 * derive it from pos[n] on the device, so a recorded launch follows growing contexts.
 * per_fixed > 0 (RLVR_DECODE_SPLIT_KEYS): that many keys per split whatever the context,
 * the launch's max_splits being enough for the cache's longest context. */
static __device__ __forceinline__ int split_keys(int len, int max_splits, int per_fixed) {
    if (per_fixed > 0) return per_fixed;
    const int per = (len + max_splits - 1) / max_splits;
    return (per + SPLIT_UNIT - 1) / SPLIT_UNIT * SPLIT_UNIT;
}

/* What one block of a split-K launch (blockIdx.x = (n·Hkv + hk)·S + split) works on: query
 * n, KV head hk, keys [k0, k1) of the ns splits its context uses. False when the block has
 * nothing to do (a context that needs fewer splits, or pos[n] < 0, outside the contract). */
typedef struct {
    int n, hk, split, ns, k0, k1;
} split_block;

/* Split `split` of query n's context for KV head hk (the fields above); false when that
 * split has no keys (a context that needs fewer splits, or pos[n] < 0). */
static __device__ __forceinline__ bool split_range(split_block *b, int n, int hk, int split,
                                                   const int *pos, int S, int per_fixed) {
    b->n = n;
    b->hk = hk;
    b->split = split;
    const int len = pos[n] + 1;
    if (len <= 0) return false;
    const int per = split_keys(len, S, per_fixed);
    b->ns = (len + per - 1) / per;
    if (split >= b->ns) return false;
    b->k0 = split * per;
    b->k1 = min(len, b->k0 + per);
    return true;
}

static __device__ __forceinline__ bool split_block_of(split_block *b, const int *pos, int Hkv,
                                                      int S, int per_fixed) {
    const int nh = (int)(blockIdx.x / (unsigned)S);
    return split_range(b, nh / Hkv, nh % Hkv, (int)(blockIdx.x % (unsigned)S), pos, S,
                       per_fixed);
}

/* Element d of one (n, h)'s merged output from its ns split partials po [S][D], ml [S][2]
 * (unnormalised o, natural-log max m, sum l), in split order: M = max m_i,
 * w_i = exp(m_i − M), out = Σ w_i o_i / Σ w_i l_i (bf16). L2 loads (__ldcg): inside the
 * split kernel the partials come from other blocks of the same launch. */
static __device__ __forceinline__ bf16 split_merge(const float *po, const float *ml, int ns,
                                                   int d, int D) {
    float M = -INFINITY;
    for (int i = 0; i < ns; i++) M = fmaxf(M, __ldcg(ml + 2 * i));
    float l = 0.0f, acc = 0.0f;
    for (int i = 0; i < ns; i++) {
        const float w = expf(__ldcg(ml + 2 * i) - M);
        l += w * __ldcg(ml + 2 * i + 1);
        acc += w * __ldcg(po + (size_t)i * D + d);
    }
    const float inv = 1.0f / l;
    return f2bf(acc * inv);
}

/* Called by every thread of a split block (query n, KV head hk, ns > 1 splits) after its
 * partial stores: counts the block as finished in *counter, and the last of the ns blocks
 * to finish merges the group's rows (split_merge, as the combine kernel would) and resets
 * the counter to 0 for the next launch (a graph replay starts from zero). Saves the
 * combine kernel's launch; the same bits. */
static __device__ void split_finish(unsigned *counter, bf16 *out, const float *part_o,
                                    const float *part_ml, int n, int hk, int group, int Hq,
                                    int D, int S, int ns) {
    if (!cuda_block_is_last(counter, (unsigned)ns)) return;
    for (int e = threadIdx.x; e < group * D; e += blockDim.x) {
        const int g = e / D, d = e - g * D;
        const size_t item = (size_t)n * Hq + (size_t)hk * group + g;
        out[item * D + d] = split_merge(part_o + item * S * D, part_ml + item * S * 2, ns, d, D);
    }
}

/* Byte offsets into the split kernel's dynamic shared memory:
 *   kv  nbuf × (K tile, V tile), each [tile][row] bf16 (row = D rounded up to an odd number
 *       of 16-byte chunks: 16-byte reads of different rows at the same column hit different
 *       banks); reused after the last tile for the PV partials red[R][gmax][D] f32;
 *   qs  the group's query rows [gmax][D] f32 (zero rows past the group);
 *   ps  scores, then probabilities, of the current tile [tile][gmax] f32;
 *   cs  per head: this tile's rescale factor, then the split's m and l: 3·[gmax] f32. */
typedef struct {
    int qs, ps, cs, total;
} split_layout;

static __host__ __device__ __forceinline__ split_layout split_layout_of(int D, int tile,
                                                                         int gmax, int nbuf) {
    const int dc = D / 8, row = (dc | 1) * 8;
    const int kv = nbuf * 2 * tile * row * 2;
    const int red = (SPLIT_THREADS / dc) * gmax * D * 4;
    split_layout L;
    L.qs = kv > red ? kv : red;
    L.ps = L.qs + gmax * D * 4;
    L.cs = L.ps + tile * gmax * 4;
    L.total = L.cs + 3 * gmax * 4;
    return L;
}

/* Issues the copies of key positions p0 .. p0+tile-1 (those < p1; zero rows beyond) of one
 * KV head into the shared tiles sk, sv [tile][row]; kb, vb point at the head's first element
 * in slot 0 of the caches. One 16-byte chunk per thread and step. */
static __device__ __forceinline__ void split_load_tile(bf16 *sk, bf16 *sv, const bf16 *kb,
                                                       const bf16 *vb, const int *table,
                                                       int block_size, size_t krow, int p0,
                                                       int p1, int tile, int dc, int row) {
    for (int i = threadIdx.x; i < tile * dc; i += SPLIT_THREADS) {
        const int r = i / dc, c = i - r * dc, p = p0 + r;
        bf16 *dk = sk + r * row + c * 8, *dv = sv + r * row + c * 8;
        if (p < p1) {
            const size_t slot = (size_t)table[p / block_size] * block_size + p % block_size;
            const size_t off = slot * krow + (size_t)c * 8;
            tc_cp16(dk, kb + off, 16);
            tc_cp16(dv, vb + off, 16);
        } else {
            *reinterpret_cast<uint4 *>(dk) = make_uint4(0u, 0u, 0u, 0u);
            *reinterpret_cast<uint4 *>(dv) = make_uint4(0u, 0u, 0u, 0u);
        }
    }
}

/* One block per (split, KV head hk, query n), blockIdx.x = (n·Hkv + hk)·S + split: the keys
 * [split·per, min(len, (split+1)·per)) of query n's sequence against the group = Hq/Hkv query
 * heads hk·group .. hk·group+group-1 (group <= GMAX). TILE keys per shared-memory tile
 * (TILE·(128/TILE) = 128 threads); nbuf = 2 prefetches the next tile while computing one.
 *   scores:  thread (slice sl = tid / TILE, key j = tid % TILE) scores key j against heads
 *            g = sl + (128/TILE)·i (K row and q rows from shared memory, fp32);
 *   softmax: warp w keeps the running (m, l) of heads g = w + 4i and turns the tile's scores
 *            into p = exp(s − m_new), with the rescale factor exp(m_old − m_new);
 *   p·v:     thread (r = tid / DC, chunk c = tid % DC) owns elements 8c..8c+7 of every head's
 *            output for the keys j ≡ r (mod R), R = 128 / DC, in registers; after the last
 *            tile the R partials are summed in order r = 0..R-1.
 * With one split (ns = 1) the block writes out (bf16, divided by l); otherwise the partials
 * o (unnormalised, f32), m, l go to part_o [N, Hq, S, D] and part_ml [N, Hq, S, 2]. */
template <int TILE, int GMAX>
static __global__ void __launch_bounds__(SPLIT_THREADS)
    attention_split_kernel(bf16 *out, float *part_o, float *part_ml, unsigned *counters,
                           const bf16 *q, const bf16 *kc, const bf16 *vc,
                           const int *block_tables, int max_blocks, int block_size,
                           const int *seq, const int *pos, int Hq, int Hkv, int D, int S,
                           int per_fixed, int nbuf, float scale) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    enum { NSL = SPLIT_THREADS / TILE, HPS = (GMAX + NSL - 1) / NSL, HPW = (GMAX + 3) / 4 };
    extern __shared__ __align__(16) unsigned char split_smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    split_block sb;
    if (!split_block_of(&sb, pos, Hkv, S, per_fixed)) return; /* the same for the block */
    const int n = sb.n, hk = sb.hk, split = sb.split, ns = sb.ns, k0 = sb.k0, k1 = sb.k1;
    const int group = Hq / Hkv;
    const int ntiles = (k1 - k0 + TILE - 1) / TILE;

    const int dc = D / 8, row = (dc | 1) * 8, R = SPLIT_THREADS / dc;
    const split_layout L = split_layout_of(D, TILE, GMAX, nbuf);
    bf16 *kv = reinterpret_cast<bf16 *>(split_smem);
    float *red = reinterpret_cast<float *>(split_smem);
    float *qs = reinterpret_cast<float *>(split_smem + L.qs);
    float *ps = reinterpret_cast<float *>(split_smem + L.ps);
    float *cs = reinterpret_cast<float *>(split_smem + L.cs);
    float *msh = cs + GMAX, *lsh = msh + GMAX;
    const size_t tile_elems = (size_t)TILE * row; /* one K or V tile */

    const int *table = block_tables + (size_t)seq[n] * max_blocks;
    const size_t krow = (size_t)Hkv * D;
    const bf16 *kb = kc + (size_t)hk * D, *vb = vc + (size_t)hk * D;
    const bf16 *qg = q + ((size_t)n * Hq + (size_t)hk * group) * D;
    for (int i = tid; i < GMAX * D; i += SPLIT_THREADS)
        qs[i] = i < group * D ? bf2f(qg[i]) : 0.0f;
    for (int i = tid; i < TILE * GMAX; i += SPLIT_THREADS) ps[i] = 0.0f;

    const int sj = tid % TILE, sl = tid / TILE; /* scores */
    const int vc8 = tid % dc, vr = tid / dc;    /* p·v; threads with vr >= R idle there */
    float acc[GMAX][8];
#pragma unroll
    for (int g = 0; g < GMAX; g++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[g][e] = 0.0f;
    float m_run[HPW], l_run[HPW];
#pragma unroll
    for (int i = 0; i < HPW; i++) {
        m_run[i] = -INFINITY;
        l_run[i] = 0.0f;
    }

    for (int t = 0; t < ntiles; t++) {
        const int buf = nbuf == 2 ? (t & 1) : 0;
        if (t == 0 || nbuf == 1) {
            bf16 *sk = kv + (size_t)buf * 2 * tile_elems;
            split_load_tile(sk, sk + tile_elems, kb, vb, table, block_size, krow,
                            k0 + t * TILE, k1, TILE, dc, row);
            tc_commit();
        }
        if (nbuf == 2 && t + 1 < ntiles) {
            /* the other buffer was last read in iteration t-1, which ended in a barrier */
            bf16 *sk = kv + (size_t)((t + 1) & 1) * 2 * tile_elems;
            split_load_tile(sk, sk + tile_elems, kb, vb, table, block_size, krow,
                            k0 + (t + 1) * TILE, k1, TILE, dc, row);
            tc_commit();
            tc_wait<1>(); /* tile t has landed, tile t+1 may be in flight */
        } else {
            tc_wait<0>();
        }
        __syncthreads();
        const bf16 *sk = kv + (size_t)buf * 2 * tile_elems, *sv = sk + tile_elems;
        const int nvalid = min(TILE, k1 - (k0 + t * TILE));

        /* scores s = q·k · scale; −inf past the split's last key */
        {
            float s[HPS];
#pragma unroll
            for (int i = 0; i < HPS; i++) s[i] = 0.0f;
            const bf16 *kr = sk + (size_t)sj * row;
            for (int c = 0; c < dc; c++) {
                float kf[8];
                load_bf<8>(kr + c * 8, kf);
#pragma unroll
                for (int i = 0; i < HPS; i++) {
                    const int g = sl + NSL * i;
                    if (g < group) {
                        const float4 qa = *reinterpret_cast<const float4 *>(qs + g * D + c * 8);
                        const float4 qb =
                            *reinterpret_cast<const float4 *>(qs + g * D + c * 8 + 4);
                        s[i] += qa.x * kf[0] + qa.y * kf[1] + qa.z * kf[2] + qa.w * kf[3] +
                                qb.x * kf[4] + qb.y * kf[5] + qb.z * kf[6] + qb.w * kf[7];
                    }
                }
            }
#pragma unroll
            for (int i = 0; i < HPS; i++) {
                const int g = sl + NSL * i;
                if (g < group) ps[sj * GMAX + g] = sj < nvalid ? s[i] * scale : -INFINITY;
            }
        }
        __syncthreads();

        /* online softmax, warp w owning heads w, w+4 */
#pragma unroll
        for (int i = 0; i < HPW; i++) {
            const int g = warp + 4 * i;
            if (g < group) {
                float x[TILE / 32], mt = -INFINITY;
#pragma unroll
                for (int u = 0; u < TILE / 32; u++) {
                    x[u] = ps[(lane + 32 * u) * GMAX + g];
                    mt = fmaxf(mt, x[u]);
                }
                const float mn = fmaxf(m_run[i], warp_max(mt)); /* finite: key 0 is valid */
                const float corr = expf(m_run[i] - mn);         /* 0 on the first tile */
                float sum = 0.0f;
#pragma unroll
                for (int u = 0; u < TILE / 32; u++) {
                    const float p = expf(x[u] - mn); /* 0 for −inf */
                    ps[(lane + 32 * u) * GMAX + g] = p;
                    sum += p;
                }
                l_run[i] = l_run[i] * corr + warp_sum(sum);
                m_run[i] = mn;
                if (lane == 0) cs[g] = corr;
            }
        }
        __syncthreads();

        /* o = o·corr + Σ_j p_j v_j over this thread's keys and chunk, every head */
        if (vr < R) {
#pragma unroll
            for (int g = 0; g < GMAX; g++) {
                if (g < group) {
                    const float f = cs[g];
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[g][e] *= f;
                }
            }
            for (int j = vr; j < nvalid; j += R) {
                float vf[8], pj[GMAX];
                load_bf<8>(sv + (size_t)j * row + vc8 * 8, vf);
#pragma unroll
                for (int g = 0; g < GMAX; g += 2) {
                    const float2 p2 = *reinterpret_cast<const float2 *>(ps + j * GMAX + g);
                    pj[g] = p2.x;
                    pj[g + 1] = p2.y;
                }
#pragma unroll
                for (int g = 0; g < GMAX; g++) {
                    if (g < group) {
#pragma unroll
                        for (int e = 0; e < 8; e++) acc[g][e] += pj[g] * vf[e];
                    }
                }
            }
        }
        __syncthreads(); /* the tile buffer, ps and cs are free again */
    }

    /* the split's statistics, then its PV partials summed over r in order */
#pragma unroll
    for (int i = 0; i < HPW; i++) {
        const int g = warp + 4 * i;
        if (g < group && lane == 0) {
            msh[g] = m_run[i];
            lsh[g] = l_run[i];
        }
    }
    if (vr < R) {
#pragma unroll
        for (int g = 0; g < GMAX; g++) {
            if (g < group) {
                float *dst = red + ((size_t)vr * GMAX + g) * D + vc8 * 8;
                *reinterpret_cast<float4 *>(dst) =
                    make_float4(acc[g][0], acc[g][1], acc[g][2], acc[g][3]);
                *reinterpret_cast<float4 *>(dst + 4) =
                    make_float4(acc[g][4], acc[g][5], acc[g][6], acc[g][7]);
            }
        }
    }
    __syncthreads();
    for (int e = tid; e < group * D; e += SPLIT_THREADS) {
        const int g = e / D, d = e - g * D;
        float o = 0.0f;
        for (int r = 0; r < R; r++) o += red[((size_t)r * GMAX + g) * D + d];
        const size_t nh_q = (size_t)n * Hq + (size_t)hk * group + g; /* row of out */
        if (ns == 1) {
            out[nh_q * D + d] = f2bf(o / lsh[g]);
        } else {
            const size_t idx = nh_q * S + split;
            part_o[idx * D + d] = o;
            if (d == 0) {
                part_ml[2 * idx] = msh[g];
                part_ml[2 * idx + 1] = lsh[g];
            }
        }
    }
    if (ns > 1 && counters)
        split_finish(counters + (size_t)n * Hkv + hk, out, part_o, part_ml, n, hk, group, Hq, D,
                     S, ns);
}

/* Merges the splits of each (n, h) (split_merge). One warp per (n, h), lane owning
 * d = lane + 32k. Rows whose context used one split were written by the split kernel and
 * are skipped. (With the decode fusions on, the split kernels merge in their last block
 * instead: split_finish.) */
static __global__ void __launch_bounds__(128)
    attention_split_combine_kernel(bf16 *out, const float *part_o, const float *part_ml,
                                   const int *pos, int N, int Hq, int D, int S,
                                   int per_fixed) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    const long long item = (long long)blockIdx.x * 4 + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (item >= (long long)N * Hq) return;
    const int n = (int)(item / Hq);
    const int len = pos[n] + 1;
    if (len <= 0) return;
    const int per = split_keys(len, S, per_fixed), ns = (len + per - 1) / per;
    if (ns <= 1) return;
    const float *ml = part_ml + (size_t)item * S * 2;
    const float *po = part_o + (size_t)item * S * D;
    for (int d = lane; d < D; d += 32) out[(size_t)item * D + d] = split_merge(po, ml, ns, d, D);
}

/* ---- attention over the cache: split-K on tensor cores (the default) ------------------- */

/* The group's query heads are the 16 rows of an mma.sync A operand (rows past the group are
 * zero), so S = Q·Kᵀ and O += P·V of a 16-key tile take 2·D/16 + D/16·2 tensor-core
 * instructions where the split kernel above spends 16·D·group scalar FMAs per key on the
 * CUDA cores. One block of MMA_WARPS warps per (split, KV head, query n), the same grid,
 * split count and partials as the split kernel (so the same combine kernel); inside the
 * split, warp w takes the 16-key tiles w, w + 4, ... with its own NST-stage ring of shared
 * tiles (cp.async, zero rows past the split; the warp's next NST − 1 tiles in flight while
 * it computes one), its own online softmax (flash_softmax_step,
 * log2 domain, the split's end as the mask) and its own O[16][D]; the four warps' (m, l, O)
 * are merged in warp order at the end. D = 64 or 128, group <= 16. Fixed-order reductions,
 * no atomics.
 *
 * Paired rows (PAIR; RLVR_DECODE_ATTN_PAIR=1, group <= 8): one block per (split, KV head,
 * query pair 2p, 2p + 1), the first query's heads in A rows 0..7, the second's in rows
 * 8..15, each half with its own context, splits and mask (flash_softmax_step's two row
 * limits). A tile whose 16 keys are the same cache slots for both halves — the G samples
 * of a group share their prompt's blocks, and the sampler puts them side by side — is
 * copied and multiplied once for both; otherwise each half's tile is copied, the scores of
 * each half taken from its own product, and P·V run twice, each time with the other half's
 * probabilities zero. Every row sees the same keys in the same order with the same
 * arithmetic as unpaired (what the other half adds is 0·V, V finite), so the bits are the
 * unpaired kernel's; the softmax step runs once for both halves, shared tiles are read
 * once, and half the blocks are launched. */
/* MMA_STAGES: shared K|V tile stages per warp (the default, as measured in the sixth H200
 * run; RLVR_DECODE_ATTN_STAGES=3 or 4 for A/B runs: more of a warp's tiles in flight, but
 * fewer blocks per SM — D 64: 36 / 55 / 74 KB of shared memory per block for 2 / 3 / 4
 * stages, so 5 (the register limit at 96 registers) / 4 / 3 blocks per SM; D 128: 68 /
 * 102 / 136 KB, 3 / 2 / 1; paired rows need twice the tiles per stage). */
enum { MMA_WARPS = 4, MMA_KEYS = 16, MMA_PAD = 8, MMA_GMAX = 16, MMA_STAGES = 2 };
#define MMA_LN2 0.6931471805599453f

template <int D, int NST, bool PAIR> struct mma_shape {
    static constexpr int LD = D + MMA_PAD; /* elements per shared row (16-byte reads of 8
                                            * rows at one column hit different banks) */
    static constexpr int TILE = MMA_KEYS * LD; /* elements of one K or V tile */
    /* per stage: K, V (and the second half's K, V when paired) */
    static constexpr int STAGE = (PAIR ? 4 : 2) * TILE;
    /* per warp: NST stages; reused after the loop for the merge: per warp O [16][D],
     * m [16], l [16] f32 */
    static constexpr size_t TILES = (size_t)MMA_WARPS * NST * STAGE * 2;
    static constexpr size_t MERGE = (size_t)MMA_WARPS * (16 * D + 32) * 4;
    static constexpr size_t SMEM = TILES > MERGE ? TILES : MERGE;
};

/* Copies key positions p0 .. p0+15 (those < p1; zero rows beyond) of one KV head into the
 * warp's tiles sk, sv [16][LD] by 16-byte cp.async; kb, vb point at the head's first element
 * in slot 0 of the caches. Lane l copies chunk l % CH of rows l / CH + j·(32 / CH). When
 * the 16 positions lie in one cache block (every tile when block_size is a multiple of 16:
 * tiles start at multiples of 16, splits at multiples of SPLIT_UNIT), their slots are
 * consecutive: one table read and one division per tile, and a lane's chunks sit at fixed
 * strides from its first. Else each row's slot comes from the table. The same copies
 * either way. */
template <int D>
static __device__ __forceinline__ void mma_load_tile(bf16 *sk, bf16 *sv, const bf16 *kb,
                                                     const bf16 *vb, const int *table,
                                                     int block_size, size_t krow, int p0,
                                                     int p1, int lane) {
    constexpr int CH = D / 8, LD = D + MMA_PAD, RPS = 32 / CH, STEPS = MMA_KEYS * CH / 32;
    static_assert(32 % CH == 0 && (MMA_KEYS * CH) % 32 == 0, "a row's chunks within a warp");
    const int r0 = lane / CH, c8 = (lane % CH) * 8;
    const int blk = p0 / block_size, first = p0 - blk * block_size;
    if (first + MMA_KEYS <= block_size) { /* one block: consecutive slots */
        const size_t base = ((size_t)table[blk] * block_size + first + r0) * krow + c8;
#pragma unroll
        for (int j = 0; j < STEPS; j++) {
            const int r = r0 + j * RPS;
            const bool ok = p0 + r < p1;
            const size_t off = ok ? base + (size_t)(j * RPS) * krow : (size_t)c8;
            tc_cp16(sk + r * LD + c8, kb + off, ok ? 16 : 0);
            tc_cp16(sv + r * LD + c8, vb + off, ok ? 16 : 0);
        }
        return;
    }
#pragma unroll
    for (int j = 0; j < STEPS; j++) {
        const int r = r0 + j * RPS, p = p0 + r;
        const bool ok = p < p1;
        size_t off = 0;
        if (ok) off = ((size_t)table[p / block_size] * block_size + p % block_size) * krow;
        tc_cp16(sk + r * LD + c8, kb + off + c8, ok ? 16 : 0);
        tc_cp16(sv + r * LD + c8, vb + off + c8, ok ? 16 : 0);
    }
}

/* What one block of the tensor-core kernel works on: h[0] (and, paired, h[1]: the query
 * after it) with live[i] when that half has keys in this split; nt[i] its 16-key tiles
 * (0 when not live); tab[i] its sequence's block table. */
typedef struct {
    split_block h[2];
    bool live[2];
    int nt[2];
    const int *tab[2];
    int hk, split; /* the same for both halves */
} mma_block;

/* The block's rows (blockIdx.x = (u·Hkv + hk)·S + split, u the query, or paired the query
 * pair 2u, 2u + 1); false when no half has keys in this split. */
template <bool PAIR>
static __device__ __forceinline__ bool mma_block_of(mma_block *b, const int *pos,
                                                    const int *seq, const int *block_tables,
                                                    int max_blocks, int N, int Hkv, int S,
                                                    int per_fixed) {
    const int unit = (int)(blockIdx.x / (unsigned)S), split = (int)(blockIdx.x % (unsigned)S);
    const int hk = unit % Hkv, u = unit / Hkv;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int n = PAIR ? 2 * u + i : u;
        b->live[i] = (PAIR || i == 0) && n < N &&
                     split_range(&b->h[i], n, hk, split, pos, S, per_fixed);
        b->nt[i] = b->live[i] ? (b->h[i].k1 - b->h[i].k0 + MMA_KEYS - 1) / MMA_KEYS : 0;
        b->tab[i] = b->live[i] ? block_tables + (size_t)seq[n] * max_blocks : NULL;
    }
    b->hk = hk;
    b->split = split;
    return b->live[0] || b->live[1];
}

/* Tile tl of a paired block: MMA_T0 / MMA_T1 when half 0 / 1 has keys there, MMA_TSHARED
 * when both do and their 16 keys are the same cache slots (the same positions inside one
 * cache block that both tables name): one copy, one product for both. */
enum { MMA_T0 = 1, MMA_T1 = 2, MMA_TSHARED = 4 };
static __device__ __forceinline__ int mma_pair_kind(const mma_block &b, int block_size,
                                                    int tl) {
    const int kind = (tl < b.nt[0] ? MMA_T0 : 0) | (tl < b.nt[1] ? MMA_T1 : 0);
    if (kind != (MMA_T0 | MMA_T1)) return kind;
    const int p = b.h[0].k0 + tl * MMA_KEYS;
    if (p != b.h[1].k0 + tl * MMA_KEYS) return kind;
    const int blk = p / block_size;
    if (p - blk * block_size + MMA_KEYS > block_size || b.tab[0][blk] != b.tab[1][blk])
        return kind;
    return kind | MMA_TSHARED;
}

/* Issues the copies of tile tl into stage st ([K, V] for half 0 or the shared tile, then
 * [K, V] for half 1's own tile). Unpaired: half 0's tile. */
template <int D, bool PAIR>
static __device__ __forceinline__ void mma_stage_load(bf16 *st, const mma_block &b,
                                                      const bf16 *kb, const bf16 *vb,
                                                      int block_size, size_t krow, int tl,
                                                      int lane) {
    constexpr int TILE = MMA_KEYS * (D + MMA_PAD);
    const int kind = PAIR ? mma_pair_kind(b, block_size, tl) : MMA_T0;
    if (kind & MMA_T0) {
        const int end = (kind & MMA_TSHARED) ? max(b.h[0].k1, b.h[1].k1) : b.h[0].k1;
        mma_load_tile<D>(st, st + TILE, kb, vb, b.tab[0], block_size, krow,
                         b.h[0].k0 + tl * MMA_KEYS, end, lane);
    }
    if (PAIR && (kind & MMA_T1) && !(kind & MMA_TSHARED))
        mma_load_tile<D>(st + 2 * TILE, st + 3 * TILE, kb, vb, b.tab[1], block_size, krow,
                         b.h[1].k0 + tl * MMA_KEYS, b.h[1].k1, lane);
}

/* s = Q·Kᵀ of a 16-key tile Kt [16][LD] (qf: Q's A fragments; p2: tc_p2's lane offset). */
template <int D>
static __device__ __forceinline__ void mma_scores(float (*s)[4], const uint32_t (*qf)[4],
                                                  const bf16 *Kt, int p2) {
#pragma unroll
    for (int nt = 0; nt < MMA_KEYS / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int kd = 0; kd < D / 16; kd++) {
        uint32_t bk[4];
        tc_ldsm(bk, Kt + kd * 16 + p2);
        tc_mma(s[0], qf[kd], bk[0], bk[1]);
        tc_mma(s[1], qf[kd], bk[2], bk[3]);
    }
}

/* o += P·V of a 16-key tile Vt [16][LD] (a: P's A fragment; p1: tc_p1's lane offset). */
template <int D>
static __device__ __forceinline__ void mma_pv(float (*o)[4], const uint32_t *a, const bf16 *Vt,
                                              int p1) {
#pragma unroll
    for (int np = 0; np < D / 16; np++) {
        uint32_t bv[4];
        tc_ldsm_t(bv, Vt + np * 16 + p1);
        tc_mma(o[2 * np], a, bv[0], bv[1]);
        tc_mma(o[2 * np + 1], a, bv[2], bv[3]);
    }
}

/* qkv_attention_cached's part (QKV): q read from the stacked q|k|v rows and rotated in
 * registers; each query's new k (rotated) and v stored into its cache slot by the block of
 * its last split (the only block that reads that position) before any of its tiles are
 * copied. Zero for attention_cached. */
typedef struct {
    const bf16 *qkv; /* [N, (Hq + 2·Hkv)·D] */
    bf16 *kc, *vc;   /* the caches the kernel reads, written here */
    const int *slots;
    const float *inv_freq;
} mma_qkv;

/* Stores the new k (rotated at its position, as qkv_move rotates it) and v of each half
 * whose last split this block runs (a negative slot: nothing). */
template <int D>
static __device__ __forceinline__ void mma_store_new_kv(const mma_block &b, const mma_qkv &qx,
                                                        const int *pos, int Hq, int Hkv,
                                                        int tid) {
    const size_t row = (size_t)(Hq + 2 * Hkv) * D;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (!b.live[i] || b.h[i].split != b.h[i].ns - 1) continue;
        const int n = b.h[i].n, slot = qx.slots[n];
        if (slot < 0) continue;
        const bf16 *ks = qx.qkv + (size_t)n * row + (size_t)(Hq + b.hk) * D;
        const bf16 *vs = ks + (size_t)Hkv * D;
        bf16 *kd = qx.kc + ((size_t)slot * Hkv + b.hk) * D;
        bf16 *vd = qx.vc + ((size_t)slot * Hkv + b.hk) * D;
        for (int d = tid; d < D / 2; d += MMA_WARPS * 32) {
            float sn, co, x1 = bf2f(ks[d]), x2 = bf2f(ks[d + D / 2]);
            rope_angle(pos[n], qx.inv_freq[d], 1.0f, &sn, &co);
            rope_rotate(&x1, &x2, sn, co);
            kd[d] = f2bf(x1);
            kd[d + D / 2] = f2bf(x2);
        }
        for (int d = tid; d < D; d += MMA_WARPS * 32) vd[d] = vs[d];
    }
}

/* One register of two bf16 (a tc_pack'ed pair) → two floats. */
static __device__ __forceinline__ void mma_unpack(uint32_t u, float *lo, float *hi) {
    bf16 h[2];
    memcpy(h, &u, 4);
    *lo = bf2f(h[0]);
    *hi = bf2f(h[1]);
}

/* Rotates Q's A fragments at the rows' positions (p0: rows g, p1: rows g + 8) as qkv_move
 * rotates q (column c with c + D/2 at angle pos·inv_freq[c], rounded to bf16): a lane
 * holds columns 2t, 2t+1, 2t+8, 2t+9 of every 16-column chunk, so column c's partner sits
 * in the same lane D/32 chunks later. */
template <int D>
static __device__ __forceinline__ void mma_rotate_q(uint32_t (*qf)[4], int p0, int p1,
                                                    const float *inv_freq, int t) {
#pragma unroll
    for (int kd = 0; kd < D / 32; kd++) {
#pragma unroll
        for (int j = 0; j < 2; j++) { /* columns 2t, 2t+1 (j 0) and 2t+8, 2t+9 (j 1) */
            float x1[2][2], x2[2][2]; /* [row half r][element e] */
#pragma unroll
            for (int r = 0; r < 2; r++) {
                mma_unpack(qf[kd][r + 2 * j], &x1[r][0], &x1[r][1]);
                mma_unpack(qf[kd + D / 32][r + 2 * j], &x2[r][0], &x2[r][1]);
            }
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const float f = inv_freq[kd * 16 + 2 * t + 8 * j + e];
                float sn, co;
                rope_angle(p0, f, 1.0f, &sn, &co);
                rope_rotate(&x1[0][e], &x2[0][e], sn, co);
                if (p1 != p0) rope_angle(p1, f, 1.0f, &sn, &co);
                rope_rotate(&x1[1][e], &x2[1][e], sn, co);
            }
#pragma unroll
            for (int r = 0; r < 2; r++) {
                qf[kd][r + 2 * j] = tc_pack(x1[r][0], x1[r][1]);
                qf[kd + D / 32][r + 2 * j] = tc_pack(x2[r][0], x2[r][1]);
            }
        }
    }
}

template <int D, int NST, bool PAIR, bool QKV>
static __global__ void __launch_bounds__(MMA_WARPS * 32)
    attention_split_mma_kernel(bf16 *out, float *part_o, float *part_ml, unsigned *counters,
                               const bf16 *q, const bf16 *kc, const bf16 *vc,
                               const int *block_tables, int max_blocks, int block_size,
                               const int *seq, const int *pos, int N, int Hq, int Hkv, int S,
                               int per_fixed, float scale_log2, mma_qkv qx) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    typedef mma_shape<D, NST, PAIR> SH;
    static_assert(NST >= 2, "stages: at least two");
    constexpr int LD = SH::LD;
    extern __shared__ __align__(128) unsigned char mma_smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    mma_block b;
    if (!mma_block_of<PAIR>(&b, pos, seq, block_tables, max_blocks, N, Hkv, S, per_fixed))
        return; /* the same for the block */
    const int hk = b.hk;
    const int group = Hq / Hkv;
    if (QKV) { /* this step's k and v where this block runs a query's last split */
        mma_store_new_kv<D>(b, qx, pos, Hq, Hkv, tid);
        __syncthreads(); /* stored before any warp copies its tiles */
    }
    const int ntiles = max(b.nt[0], b.nt[1]);

    const size_t krow = (size_t)Hkv * D;
    const bf16 *kb = kc + (size_t)hk * D, *vb = vc + (size_t)hk * D;
    /* the warp's ring of stages */
    bf16 *wt = reinterpret_cast<bf16 *>(mma_smem) + (size_t)warp * NST * SH::STAGE;

    /* Q's A fragments (rows g and g + 8: query heads hk·group + row of query h[0], or paired
     * head hk·group + g of h[0] and of h[1]; zero past the group), straight from global
     * memory: a0 (g, 2t..), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..) of each
     * 16-column chunk kd */
    const bf16 *qrow[2];
    bool qok[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int half = PAIR ? r : 0, head = PAIR ? g : g + 8 * r;
        qok[r] = b.live[half] && head < group;
        const int n = half ? b.h[1].n : b.h[0].n;
        const size_t at = QKV ? (size_t)n * (Hq + 2 * Hkv) * D + ((size_t)hk * group + head) * D
                              : ((size_t)n * Hq + (size_t)hk * group + head) * D;
        qrow[r] = qok[r] ? (QKV ? qx.qkv : q) + at : q;
    }
    uint32_t qf[D / 16][4];
#pragma unroll
    for (int kd = 0; kd < D / 16; kd++) {
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const bf16 *src = qrow[r] + kd * 16 + 2 * t;
            qf[kd][r] = qok[r] ? *reinterpret_cast<const uint32_t *>(src) : 0u;
            qf[kd][r + 2] = qok[r] ? *reinterpret_cast<const uint32_t *>(src + 8) : 0u;
        }
    }
    if (QKV) /* zero rows stay zero: a rotation of 0 is 0 */
        mma_rotate_q<D>(qf, pos[b.h[0].n], PAIR && b.live[1] ? pos[b.h[1].n] : pos[b.h[0].n],
                        qx.inv_freq, t);

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    /* the warp's tiles warp + MMA_WARPS·i go to stage i % NST; one copy group per tile,
     * committed even when empty (past the split), so group i is always tile i */
#pragma unroll
    for (int i = 0; i < NST - 1; i++) {
        const int tl = warp + i * MMA_WARPS;
        if (tl < ntiles)
            mma_stage_load<D, PAIR>(wt + i * SH::STAGE, b, kb, vb, block_size, krow, tl, lane);
        tc_commit();
    }
    for (int tl = warp, st = 0; tl < ntiles; tl += MMA_WARPS, st = st + 1 == NST ? 0 : st + 1) {
        const int ahead = tl + (NST - 1) * MMA_WARPS; /* into the stage computed last */
        if (ahead < ntiles)
            mma_stage_load<D, PAIR>(wt + (st == 0 ? NST - 1 : st - 1) * SH::STAGE, b, kb, vb,
                                    block_size, krow, ahead, lane);
        tc_commit();
        const int kind = PAIR ? mma_pair_kind(b, block_size, tl) : MMA_T0;
        tc_wait<NST - 1>(); /* this tile's group has landed */
        __syncwarp(); /* every lane's copies are visible to the warp */
        const bf16 *K0 = wt + st * SH::STAGE, *V0 = K0 + SH::TILE;
        const bf16 *K1 = V0 + SH::TILE, *V1 = K1 + SH::TILE; /* paired only */
        /* both halves with their own tiles: two products, two P·V */
        const bool two = PAIR && kind == (MMA_T0 | MMA_T1);
        float s[MMA_KEYS / 8][4];
        mma_scores<D>(s, qf, (kind & MMA_T0) ? K0 : K1, p2);
        if (two) { /* half 1's rows (c2, c3) from its own keys */
            float s1[MMA_KEYS / 8][4];
            mma_scores<D>(s1, qf, K1, p2);
#pragma unroll
            for (int nt = 0; nt < MMA_KEYS / 8; nt++) {
                s[nt][2] = s1[nt][2];
                s[nt][3] = s1[nt][3];
            }
        }
        if (PAIR) { /* each half's keys past its split end masked (all of them: no keys) */
            const int e0 = (kind & MMA_T0) ? b.h[0].k1 - 1 - (b.h[0].k0 + tl * MMA_KEYS) : -1;
            const int e1 = (kind & MMA_T1) ? b.h[1].k1 - 1 - (b.h[1].k0 + tl * MMA_KEYS) : -1;
            flash_softmax_step<MMA_KEYS, D>(s, m, l, o, 0, e0, e1, t, scale_log2);
        } else { /* keys >= k1 masked: the causal mask of a query row at k1 − 1 */
            const int k1 = b.h[0].k1;
            flash_softmax_step<MMA_KEYS, D>(s, m, l, o, b.h[0].k0 + tl * MMA_KEYS, k1 - 1,
                                            k1 - 1, t, scale_log2);
        }
        uint32_t a[4];
        tc_acc_to_a(a, s, 0);
        if (two) { /* rows g (half 0) against V0, rows g + 8 (half 1) against V1 */
            const uint32_t a0[4] = {a[0], 0u, a[2], 0u}, a1[4] = {0u, a[1], 0u, a[3]};
            mma_pv<D>(o, a0, V0, p1);
            mma_pv<D>(o, a1, V1, p1);
        } else {
            mma_pv<D>(o, a, (kind & MMA_T0) ? V0 : V1, p1);
        }
        __syncwarp(); /* stage st is read before the next iteration refills it */
    }

    /* each warp's (m, l, O) into shared memory (the tiles are free after the barrier) */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
    __syncthreads();
    float *mo = reinterpret_cast<float *>(mma_smem);           /* [warp][16][D] */
    float *mm = mo + (size_t)MMA_WARPS * 16 * D, *ml = mm + MMA_WARPS * 16; /* [warp][16] */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = g + 8 * r;
        float *dst = mo + ((size_t)warp * 16 + row) * D + 2 * t;
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++)
            *reinterpret_cast<float2 *>(dst + nd * 8) = make_float2(o[nd][2 * r], o[nd][2 * r + 1]);
        if (t == 0) {
            mm[warp * 16 + row] = m[r];
            ml[warp * 16 + row] = l[r];
        }
    }
    __syncthreads();
    /* rows: the group's heads of h[0] (unpaired), or rows 0..7 of h[0] and 8..15 of h[1] */
    for (int e = tid; e < (PAIR ? 16 : group) * D; e += MMA_WARPS * 32) {
        const int row = e / D, d = e - row * D;
        const int half = PAIR ? row >> 3 : 0, head = PAIR ? row & 7 : row;
        if (PAIR && (head >= group || !(half ? b.live[1] : b.live[0]))) continue;
        /* the half's query and split count (selects, not an indexed load) */
        const int n = half ? b.h[1].n : b.h[0].n, ns = half ? b.h[1].ns : b.h[0].ns;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < MMA_WARPS; w++) M = fmaxf(M, mm[w * 16 + row]); /* warp 0: finite */
        float O = 0.0f, L = 0.0f;
#pragma unroll
        for (int w = 0; w < MMA_WARPS; w++) {
            const float mw = mm[w * 16 + row];
            const float f = mw == -INFINITY ? 0.0f : exp2f(mw - M); /* a warp with no keys */
            O += f * mo[((size_t)w * 16 + row) * D + d];
            L += f * ml[w * 16 + row];
        }
        const size_t nh_q = (size_t)n * Hq + (size_t)hk * group + head; /* row of out */
        if (ns == 1) {
            out[nh_q * D + d] = f2bf(O / L);
        } else { /* the combine kernel's units: natural-log max, unnormalised O */
            const size_t idx = nh_q * S + b.split;
            part_o[idx * D + d] = O;
            if (d == 0) {
                part_ml[2 * idx] = M * MMA_LN2;
                part_ml[2 * idx + 1] = L;
            }
        }
    }
    if (!counters) return;
#pragma unroll
    for (int i = 0; i < (PAIR ? 2 : 1); i++) /* the same for the whole block */
        if (b.live[i] && b.h[i].ns > 1)
            split_finish(counters + (size_t)b.h[i].n * Hkv + hk, out, part_o, part_ml,
                         b.h[i].n, hk, group, Hq, D, S, b.h[i].ns);
}

/* ---- launchers ------------------------------------------------------------------------- */

/* An integer setting read at every call (tests switch it inside one process): the
 * variable's value when it is one of the allowed values, else def. */
static int kv_env_pick(const char *name, int def, const int *allowed, int n) {
    const char *e = getenv(name);
    const int v = e ? atoi(e) : def;
    for (int i = 0; i < n; i++)
        if (v == allowed[i]) return v;
    return def;
}

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

/* The arguments of one attention_split_mma_kernel launch (grid: blocks). */
typedef struct {
    bf16 *out;
    float *part_o, *part_ml;
    unsigned *counters;
    const bf16 *q, *kc, *vc;
    const int *block_tables;
    int max_blocks, block_size;
    const int *seq, *pos;
    int N, Hq, Hkv, S, per_fixed;
    float scale_log2;
    unsigned grid;
    mma_qkv qx; /* qkv_attention_cached's part, or zero */
} mma_args;

template <int D, int NST, bool PAIR, bool QKV>
static void mma_launch_stages(cuda_ctx *c, const mma_args &a) {
    const size_t sm = mma_shape<D, NST, PAIR>::SMEM;
    if (sm > 48 * 1024)
        CU_CHECK(c, cudaFuncSetAttribute(attention_split_mma_kernel<D, NST, PAIR, QKV>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
    static const char *const names[2][2] = {
        {"attention_split_mma_kernel", "attention_split_mma_kernel (qkv)"},
        {"attention_split_mma_kernel (pair)", "attention_split_mma_kernel (pair, qkv)"}};
    cuda_launch_dep(c, names[PAIR][QKV],
                    attention_split_mma_kernel<D, NST, PAIR, QKV>, a.grid, MMA_WARPS * 32, sm,
                    a.out, a.part_o, a.part_ml, a.counters, a.q, a.kc, a.vc, a.block_tables,
                    a.max_blocks, a.block_size, a.seq, a.pos, a.N, a.Hq, a.Hkv, a.S,
                    a.per_fixed, a.scale_log2, a.qx);
}

/* The tensor-core kernel with nst stages per warp (2, 3 or 4), or 2 where the device cannot
 * give a block the shared memory of nst; paired rows or not; q given or from qkv. */
template <int D, bool PAIR, bool QKV>
static void mma_launch(cuda_ctx *c, int nst, const mma_args &a) {
    int optin = 0;
    CU_CHECK(c, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                       c->device));
    if ((nst == 4 && mma_shape<D, 4, PAIR>::SMEM > (size_t)optin) ||
        (nst == 3 && mma_shape<D, 3, PAIR>::SMEM > (size_t)optin))
        nst = 2;
    if (nst == 4) mma_launch_stages<D, 4, PAIR, QKV>(c, a);
    else if (nst == 3) mma_launch_stages<D, 3, PAIR, QKV>(c, a);
    else mma_launch_stages<D, 2, PAIR, QKV>(c, a);
}

template <int D> static void mma_launch_of(cuda_ctx *c, int nst, bool pair, const mma_args &a) {
    const bool qkv = a.qx.qkv != NULL;
    if (pair && qkv) mma_launch<D, true, true>(c, nst, a);
    else if (pair) mma_launch<D, true, false>(c, nst, a);
    else if (qkv) mma_launch<D, false, true>(c, nst, a);
    else mma_launch<D, false, false>(c, nst, a);
}

/* The split-K kernel for this call when the backend selects it and the shape fits (D a
 * multiple of 8 up to 256, group <= SPLIT_GMAX, 16-byte aligned caches) — its tensor-core
 * form when that is selected and fits (D 64 or 128, group <= MMA_GMAX, 16-byte aligned q),
 * else the scalar one; 0 when the caller should run the per-head kernel. qx (not NULL: the
 * fused qkv_attention_cached, q then NULL) takes only the tensor-core form; 0 when that does
 * not apply (the caller runs the ops apart). Host work only: no synchronisation, and the scratch
 * request is always SPLIT_SCRATCH_BYTES, so once it exists the call can be recorded in a
 * CUDA graph and replayed with other positions (the split count per query is decided on
 * the device from pos[n]; the grid depends on N, Hq, Hkv, D and the SM count only). */
static int attention_split(cuda_ctx *c, bf16 *out, const bf16 *q, const bf16 *kc,
                           const bf16 *vc, const int *block_tables, int max_blocks,
                           int block_size, const int *seq, const int *pos, int N, int Hq,
                           int Hkv, int D, float scale, const mma_qkv *qx) {
    if (c->decode_attn == 0) {
        const char *e = getenv("RLVR_DECODE_ATTN");
        c->decode_attn = !e ? 3 : strcmp(e, "head") == 0 ? 1 : strcmp(e, "split") == 0 ? 2 : 3;
    }
    const int group = Hq / Hkv;
    const int mma = c->decode_attn == 3 && (D == 64 || D == 128) && group <= MMA_GMAX &&
                    cuda_aligned16(kc) && cuda_aligned16(vc) &&
                    cuda_aligned16(qx ? (const void *)qx->qkv : (const void *)q);
    if (qx && !mma) return 0;
    if (!mma && (c->decode_attn < 2 || D % 8 != 0 || D > CACHED_MAX_D || group > SPLIT_GMAX ||
                 !cuda_aligned16(kc) || !cuda_aligned16(vc)))
        return 0;
    const int gmax = group <= 2 ? 2 : group <= 4 ? 4 : 8;
    const int tile = D <= 64 ? 64 : 32;
    int nbuf = 2;
    if (split_layout_of(D, tile, gmax, 2).total > SPLIT_SMEM) nbuf = 1;
    const size_t smem = (size_t)split_layout_of(D, tile, gmax, nbuf).total;
    if (smem > SPLIT_SMEM) return 0; /* not reached for D <= 256, gmax <= 8 */

    /* splits per (n, hk): enough blocks for SPLIT_BLOCKS_PER_SM per SM (RLVR_DECODE_SPLIT_BPS
     * for A/B runs and tests: 1, 2, 4, 8 or 16), within SPLIT_MAX and the fixed scratch */
    static const int bps_allowed[] = {1, 2, 4, 8, 16};
    const int bps = kv_env_pick("RLVR_DECODE_SPLIT_BPS", SPLIT_BLOCKS_PER_SM, bps_allowed, 5);
    int sms = 0;
    CU_CHECK(c, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c->device));
    if (sms <= 0) sms = 1;
    const long long units = (long long)N * Hkv;
    long long S = ((long long)bps * sms + units - 1) / units;
    if (S > SPLIT_MAX) S = SPLIT_MAX;
    const long long per_split = (long long)N * Hq * (D + 2) * (long long)sizeof(float);
    const long long part_bytes = (long long)(SPLIT_SCRATCH_BYTES - SPLIT_COUNTER_BYTES);
    if (S * per_split > part_bytes) S = part_bytes / per_split;
    if (S < 2) S = 1;
    /* RLVR_DECODE_SPLIT_KEYS=128|256|512|1024 (A/B runs, tests): splits of that many keys
     * whatever the context, so a long context gets more of them and every block about the
     * same work (the default gives every context the same number of splits, so the
     * longest one's splits are the longest blocks); the launch's S covers the cache's
     * longest possible context (max_blocks · block_size, fixed for the cache: a recorded
     * graph stays right), doubling the keys until S and the partials fit. */
    static const int keys_allowed[] = {128, 256, 512, 1024};
    int per_fixed = kv_env_pick("RLVR_DECODE_SPLIT_KEYS", 0, keys_allowed, 4);
    if (per_fixed > 0) {
        const long long cap = (long long)max_blocks * block_size;
        long long Sf = (cap + per_fixed - 1) / per_fixed;
        while (Sf > 1 && (Sf > SPLIT_MAX || Sf * per_split > part_bytes)) {
            per_fixed *= 2;
            Sf = (cap + per_fixed - 1) / per_fixed;
        }
        if (Sf > 1 && Sf * per_split <= part_bytes && units * Sf <= 0x7fffffffLL) S = Sf;
        else per_fixed = 0; /* one split covers every context: the default */
    }
    if (units * S > 0x7fffffffLL) return 0; /* grid.x; S > 1 only when units is small */

    /* scratch: the finished-split counters (zeroed once, reset by each merging block), then
     * the partials */
    float *part_o = NULL, *part_ml = NULL;
    unsigned *counters = NULL;
    if (S > 1) {
        unsigned char *base = (unsigned char *)cuda_scratch_zeroed(
            c, SCRATCH_KV_SPLIT, SPLIT_SCRATCH_BYTES, SPLIT_COUNTER_BYTES);
        if (!base) return 1; /* error recorded */
        if (cuda_decode_fuse(c) && units * sizeof(unsigned) <= SPLIT_COUNTER_BYTES)
            counters = (unsigned *)base;
        part_o = (float *)(base + SPLIT_COUNTER_BYTES);
        part_ml = part_o + (size_t)N * Hq * S * D;
    }
    const unsigned grid = (unsigned)(units * S);
    if (mma) {
        /* paired rows (RLVR_DECODE_ATTN_PAIR=1, opt-in until measured; group <= 8): half the
         * blocks, each on two neighbouring queries with the same split count S as unpaired */
        static const int pair_allowed[] = {0, 1};
        const int pair = group <= 8 && N >= 2 &&
                         kv_env_pick("RLVR_DECODE_ATTN_PAIR", 0, pair_allowed, 2) == 1;
        const unsigned mgrid =
            pair ? (unsigned)(((long long)N + 1) / 2 * Hkv * S) : grid;
        const mma_args ma = {out, part_o, part_ml, counters, q, kc, vc, block_tables,
                             max_blocks, block_size, seq, pos, N, Hq, Hkv, (int)S, per_fixed,
                             scale * 1.4426950408889634f /* log2 e */, mgrid,
                             qx ? *qx : mma_qkv{}};
        /* stages per warp: MMA_STAGES, or RLVR_DECODE_ATTN_STAGES (2, 3 or 4) for A/B runs */
        static const int st_allowed[] = {2, 3, 4};
        const int nst = kv_env_pick("RLVR_DECODE_ATTN_STAGES", MMA_STAGES, st_allowed, 3);
        if (D == 64) mma_launch_of<64>(c, nst, pair, ma);
        else mma_launch_of<128>(c, nst, pair, ma);
    } else {
#define SPLIT_LAUNCH(TV, GV)                                                               \
    cuda_launch_dep(c, "attention_split_kernel<TV, GV>", attention_split_kernel<TV, GV>, grid, \
                    SPLIT_THREADS, smem, out, part_o, part_ml, counters, q, kc, vc,             \
                    block_tables, max_blocks, block_size, seq, pos, Hq, Hkv, D, (int)S,         \
                    per_fixed, nbuf, scale)
        if (tile == 64) {
            if (gmax == 2) SPLIT_LAUNCH(64, 2);
            else if (gmax == 4) SPLIT_LAUNCH(64, 4);
            else SPLIT_LAUNCH(64, 8);
        } else {
            if (gmax == 2) SPLIT_LAUNCH(32, 2);
            else if (gmax == 4) SPLIT_LAUNCH(32, 4);
            else SPLIT_LAUNCH(32, 8);
        }
#undef SPLIT_LAUNCH
    }
    if (S > 1 && !counters) {
        const unsigned cgrid = (unsigned)(((long long)N * Hq + 3) / 4);
        cuda_launch_dep(c, "attention_split_combine_kernel", attention_split_combine_kernel,
                        cgrid, 128, 0, out, part_o, part_ml, pos, N, Hq, D, (int)S, per_fixed);
    }
    return 1;
}

/* Whether attention_cached takes this shape (N > 0). */
static bool cached_shape_ok(int N, int Hq, int Hkv, int D, int block_size, int max_blocks) {
    return Hq > 0 && Hkv > 0 && Hq % Hkv == 0 && D > 0 && D <= CACHED_MAX_D && block_size > 0 &&
           max_blocks > 0 && (long long)N * Hq <= 0x7fffffffLL;
}

static void cu_attention_cached(rlvr_backend *be, void *out, const void *q, const void *k_cache,
                                const void *v_cache, const int *block_tables, int max_blocks,
                                int block_size, const int *seq, const int *pos, int N, int Hq,
                                int Hkv, int D, int max_ctx) {
    cuda_ctx *c = cuda_get(be);
    (void)max_ctx; /* each block reads its own pos[n]; no scratch depends on it */
    if (N <= 0) return;
    if (!cached_shape_ok(N, Hq, Hkv, D, block_size, max_blocks)) {
        cuda_record_error(c, __FILE__, __LINE__,
                          "attention_cached: unsupported shape N=%d Hq=%d Hkv=%d D=%d "
                          "block_size=%d max_blocks=%d (expected Hq a multiple of Hkv, "
                          "0 < D <= %d, block_size > 0, max_blocks > 0)",
                          N, Hq, Hkv, D, block_size, max_blocks, CACHED_MAX_D);
        return;
    }
    if (attention_split(c, (bf16 *)out, (const bf16 *)q, (const bf16 *)k_cache,
                        (const bf16 *)v_cache, block_tables, max_blocks, block_size, seq, pos,
                        N, Hq, Hkv, D, 1.0f / sqrtf((float)D), NULL))
        return;
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

extern "C" int rlvr_cuda_set_decode_attention(rlvr_backend *be, int mode) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->decode_attn = mode >= 2 ? 3 : cuda_switch(mode);
    return 0;
}

/* qkv_attention_cached: the tensor-core cached attention reading q from qkv (rotating it)
 * and storing each query's new k and v from its last split's block, where that kernel
 * applies and the decode fusions are on (RLVR_DECODE_QKV_ATTN=0, read at every call, or
 * RLVR_DECODE_FUSE=0: apart); else qkv_split_store, then attention_cached. The same bits
 * either way (the rotation is qkv_move's arithmetic). */
static void cu_qkv_attention_cached(rlvr_backend *be, void *out, void *q, void *k, void *v,
                                    const void *qkv, void *k_cache, void *v_cache,
                                    const int *slots, const int *pos, const float *inv_freq,
                                    const int *block_tables, int max_blocks, int block_size,
                                    const int *seq, int N, int Hq, int Hkv, int D, int max_ctx) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0) return;
    static const int fuse_allowed[] = {0, 1};
    if (cuda_decode_fuse(c) && kv_env_pick("RLVR_DECODE_QKV_ATTN", 1, fuse_allowed, 2) == 1 &&
        cached_shape_ok(N, Hq, Hkv, D, block_size, max_blocks)) {
        const mma_qkv qx = {(const bf16 *)qkv, (bf16 *)k_cache, (bf16 *)v_cache, slots,
                            inv_freq};
        if (attention_split(c, (bf16 *)out, NULL, (const bf16 *)k_cache, (const bf16 *)v_cache,
                            block_tables, max_blocks, block_size, seq, pos, N, Hq, Hkv, D,
                            1.0f / sqrtf((float)D), &qx))
            return;
    }
    rlvr_qkv_attention_cached_apart(be, out, q, k, v, qkv, k_cache, v_cache, slots, pos,
                                    inv_freq, block_tables, max_blocks, block_size, seq, N, Hq,
                                    Hkv, D, max_ctx);
}

void cuda_kvcache_register(rlvr_backend *be) {
    be->kv_store = cu_kv_store;
    be->attention_cached = cu_attention_cached;
    be->qkv_attention_cached = cu_qkv_attention_cached;
}
