/*
 * kernels/cuda/kvcache.cu — the paged KV cache ops for generation (backend.h:
 * kv_store, attention_cached, qkv_attention_cached): bf16 cache, fp32 math, the CPU twin is
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
 * attention_cached, split-K on tensor cores (the default since the sixth H200 run): the
 *   same splits, grid and combine kernel, the group's query heads the rows of an mma.sync
 *   tile — kvcache_mma.cu; D 64 or 128, Hq/Hkv <= 16; other shapes take the scalar split-K
 *   or per-head kernel. What the split-K kernels share: kvcache_split.cuh.
 * qkv_attention_cached: the q|k|v split, rotation and cache store of a decode step inside
 *   the tensor-core kernel where it applies, else qkv_split_store then attention_cached.
 * Shared-prefix units (share, both ops; session 22): the tensor-core kernel, unpaired, runs
 *   each unit's prompt keys once for all its queries in blocks of its own at the start of
 *   the grid, with partials of their own per query beside the own splits' (split_plan_of);
 *   queries in no unit keep the splits and bits they have without units. Other kernels
 *   ignore share (the result is the same).
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/composite.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_internal.cuh"
#include "kernels/cuda/flash_common.cuh"
#include "kernels/cuda/kvcache_split.cuh"

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

/* Merges the splits of each (n, h) (split_merge_warp; with share, the query's own splits and
 * then its shared prefix's: split_plan_of). One warp per (n, h). Rows whose context used one
 * split were written by the split kernel and are skipped. (With the decode fusions on, the
 * split kernels merge in their last block instead: split_finish.) */
static __global__ void __launch_bounds__(128)
    attention_split_combine_kernel(bf16 *out, const float *part_o, const float *part_ml,
                                   const int *pos, const int *share, int extra, int N,
                                   int Hq, int D, int S, int per_fixed) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    const long long item = (long long)blockIdx.x * 4 + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (item >= (long long)N * Hq) return;
    const int n = (int)(item / Hq);
    const int len = pos[n] + 1;
    if (len <= 0) return;
    const split_plan p = split_plan_of(len, share ? share[n] : 0, S, per_fixed, extra);
    const int ns = p.ns + p.np; /* own splits, then the shared prefix's */
    if (ns <= 1) return;
    const float *ml = part_ml + (size_t)item * S * 2;
    const float *po = part_o + (size_t)item * S * D;
    split_merge_warp(out + (size_t)item * D, po, ml, ns, D, lane);
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
                           int block_size, const int *seq, const int *pos, const int *share,
                           int N, int Hq, int Hkv, int D, float scale, const mma_qkv *qx) {
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
    /* paired rows (RLVR_DECODE_ATTN_PAIR=1, opt-in until measured; group <= 8): half the
     * blocks, each on two neighbouring queries with the same split count S as unpaired */
    static const int pair_allowed[] = {0, 1};
    const int pair = mma && group <= 8 && N >= 2 &&
                     kv_env_pick("RLVR_DECODE_ATTN_PAIR", 0, pair_allowed, 2) == 1;
    /* shared-prefix units (backend.h): the tensor-core kernel, unpaired, with room for at
     * least two partials per query (below) */
    int share_on = share && mma && !pair && N >= 2;
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
    /* The default since the seventh H200 run (session 21): 256-key splits for at most
     * SPLIT_KEYS_MAX_N queries — bench_decode_attn measured the attention op at 12.0 → 9.1
     * µs per call at batch 1 and 14.7 → 12.0 at 32 sequences (the count-based splits cut
     * those contexts into 64-key splits), and 55.4 → 59.7 µs (slower) at 256;
     * RLVR_DECODE_SPLIT_KEYS=0 gives the count-based splits everywhere. */
    static const int keys_allowed[] = {0, 128, 256, 512, 1024};
    int per_fixed = kv_env_pick("RLVR_DECODE_SPLIT_KEYS", N <= SPLIT_KEYS_MAX_N ? 256 : 0,
                                keys_allowed, 5);
    if (per_fixed > 0) {
        /* with shared prefixes one more partial: a prefix cut at a split boundary of its own
         * (kvcache_split.cuh, split_plan_of) */
        const long long cap = (long long)max_blocks * block_size, extra = share_on ? 1 : 0;
        long long Sf = (cap + per_fixed - 1) / per_fixed;
        while (Sf > 1 && (Sf + extra > SPLIT_MAX || (Sf + extra) * per_split > part_bytes)) {
            per_fixed *= 2;
            Sf = (cap + per_fixed - 1) / per_fixed;
        }
        if (Sf > 1 && (Sf + extra) * per_split <= part_bytes &&
            units * (Sf + extra) <= 0x7fffffffLL)
            S = Sf + extra;
        else per_fixed = 0; /* one split covers every context: the default */
    }
    /* partials for the units' prefix splits: one with fixed splits (a prefix cut at a split
     * boundary of its own), else up to SHARE_EXTRA splits of their own (a unit's prompt is
     * read by that many blocks at once: early in generation, when it is nearly the whole
     * context, its blocks carry the op), what the scratch allows */
    long long extra = share_on && per_fixed > 0 ? 1 : 0;
    if (share_on && per_fixed == 0) {
        extra = part_bytes / per_split - S;
        if (extra > SPLIT_MAX - S) extra = SPLIT_MAX - S;
        if (extra > SHARE_EXTRA) extra = SHARE_EXTRA;
        if (extra >= 1) S += extra;
        else share_on = 0;
    }
    if (units * S > 0x7fffffffLL) return 0; /* grid.x; S > 1 only when units is small */
    /* the units' prefix blocks, first in the grid: at most N/2 units (two or more queries
     * each), sp prefix splits each (split_plan_of: np <= S − 1 for fixed splits, <= extra
     * count-based) */
    mma_share sh = {NULL, 0, 0, 0};
    if (share_on) {
        const long long sp = per_fixed > 0 ? S - 1 : extra;
        const long long blocks = (long long)(N / 2) * Hkv * sp;
        if (blocks + units * S <= 0x7fffffffLL)
            sh = mma_share{share, (int)blocks, (int)sp, (int)extra};
    }

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
        const unsigned mgrid =
            pair ? (unsigned)(((long long)N + 1) / 2 * Hkv * S) : grid + (unsigned)sh.blocks;
        const mma_args ma = {out, part_o, part_ml, counters, q, kc, vc, block_tables,
                             max_blocks, block_size, seq, pos, N, Hq, Hkv, (int)S, per_fixed,
                             scale * 1.4426950408889634f /* log2 e */, mgrid,
                             qx ? *qx : mma_qkv{}, sh};
        /* stages per warp: MMA_STAGES, or RLVR_DECODE_ATTN_STAGES (2, 3 or 4) for A/B runs */
        static const int st_allowed[] = {2, 3, 4};
        const int nst = kv_env_pick("RLVR_DECODE_ATTN_STAGES", MMA_STAGES, st_allowed, 3);
        cuda_attention_mma_launch(c, D, nst, pair, ma);
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
                        cgrid, 128, 0, out, part_o, part_ml, pos, sh.share, sh.extra, N, Hq, D,
                        (int)S, per_fixed);
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
                                int block_size, const int *seq, const int *pos,
                                const int *share, int N, int Hq, int Hkv, int D, int max_ctx) {
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
                        share, N, Hq, Hkv, D, 1.0f / sqrtf((float)D), NULL))
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
                                    const int *seq, const int *share, int N, int Hq, int Hkv,
                                    int D, int max_ctx) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0) return;
    static const int fuse_allowed[] = {0, 1};
    if (cuda_decode_fuse(c) && kv_env_pick("RLVR_DECODE_QKV_ATTN", 1, fuse_allowed, 2) == 1 &&
        cached_shape_ok(N, Hq, Hkv, D, block_size, max_blocks)) {
        const mma_qkv qx = {(const bf16 *)qkv, (bf16 *)k_cache, (bf16 *)v_cache, slots,
                            inv_freq};
        if (attention_split(c, (bf16 *)out, NULL, (const bf16 *)k_cache, (const bf16 *)v_cache,
                            block_tables, max_blocks, block_size, seq, pos, share, N, Hq, Hkv,
                            D, 1.0f / sqrtf((float)D), &qx))
            return;
    }
    rlvr_qkv_attention_cached_apart(be, out, q, k, v, qkv, k_cache, v_cache, slots, pos,
                                    inv_freq, block_tables, max_blocks, block_size, seq, share,
                                    N, Hq, Hkv, D, max_ctx);
}

void cuda_kvcache_register(rlvr_backend *be) {
    be->kv_store = cu_kv_store;
    be->attention_cached = cu_attention_cached;
    be->qkv_attention_cached = cu_qkv_attention_cached;
}
