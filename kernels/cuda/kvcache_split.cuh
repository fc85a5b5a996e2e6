/*
 * kernels/cuda/kvcache_split.cuh — what the split-K cached attention kernels share
 * (kvcache.cu: the scalar kernel, the combine kernel and the launcher; kvcache_mma.cu: the
 * tensor-core kernel): the block shape and scratch, the split of a context among a launch's
 * blocks (derived from pos on the device, so a recorded graph follows growing contexts),
 * the merge of a query's split partials, and the tensor-core kernel's launch arguments.
 */
#ifndef RLVR_KERNELS_CUDA_KVCACHE_SPLIT_CUH
#define RLVR_KERNELS_CUDA_KVCACHE_SPLIT_CUH

#include "kernels/cuda/cuda_internal.cuh"

/* Block shape and limits of the split-K kernels (kvcache.cu's file comment). */
enum {
    SPLIT_THREADS = 128,        /* 4 warps */
    SPLIT_UNIT = 64,            /* a split's keys are a multiple of this (the last one apart) */
    SPLIT_MAX = 64,             /* splits per (query, KV head) */
    SPLIT_GMAX = 8,             /* query heads per KV head */
    SPLIT_SMEM = 48 * 1024 - 64, /* dynamic shared memory per block, at most (no opt-in;
                                  * 64 bytes left for split_finish's static flag) */
    SPLIT_BLOCKS_PER_SM = 4,    /* blocks wanted per SM when choosing the split count */
    SPLIT_KEYS_MAX_N = 32,      /* up to this many queries: 256-key splits (kvcache.cu) */
    SHARE_EXTRA = 4,            /* count-based: prefix splits of a shared-prefix unit, at most */
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

/* The splits of a context of len keys whose first P keys (0 < P < len) belong to its
 * shared-prefix unit (backend.h, attention_cached's share; P 0: none). A launch with units
 * has `extra` partials more per query than the budget B it would have without (S = B +
 * extra; kvcache.cu's attention_split): the unit's blocks take [0, P) in np splits of
 * per_p keys — np and per_p depend on P, extra and per_fixed only, the same for every
 * member —, the query's own blocks [P, len) in ns splits of per_s keys within B; partial
 * j < ns is own split j, ns + i prefix split i. Count-based: np <= extra, ns <= B; fixed
 * splits (extra 1): np + ns <= ceil(len / per_fixed) + 1 <= S. A query without a prefix:
 * the ns count-based or fixed splits of the whole context within B, the splits it has in a
 * launch without units. extra 0: no units. */
typedef struct {
    int P, per_p, np, per_s, ns;
} split_plan;

static __device__ __forceinline__ split_plan split_plan_of(int len, int P, int S, int per_fixed,
                                                           int extra) {
    split_plan p;
    const int B = S - extra;
    p.P = extra > 0 && P > 0 && P < len ? P : 0;
    if (p.P) {
        p.per_p = per_fixed > 0 ? per_fixed : split_keys(p.P, extra, 0);
        p.np = (p.P + p.per_p - 1) / p.per_p;
        p.per_s = per_fixed > 0 ? per_fixed : split_keys(len - p.P, B, 0);
    } else {
        p.per_p = p.np = 0;
        p.per_s = split_keys(len, B, per_fixed);
    }
    p.ns = (len - p.P + p.per_s - 1) / p.per_s;
    return p;
}

/* What one block of a split-K launch (block index = (n·Hkv + hk)·S + split) works on:
 * query n, KV head hk, keys [k0, k1) of the ns own splits its context uses (after the P
 * keys of its shared prefix, if any), ntot = ns + np partials to merge. False when the
 * block has nothing to do (a context that needs fewer splits, or pos[n] < 0, outside the
 * contract). */
typedef struct {
    int n, hk, split, ns, ntot, k0, k1;
} split_block;

/* Own split `split` of query n's context for KV head hk (the fields above; share: the
 * shared-prefix units with `extra` partials for them, or NULL and 0); false when that split
 * has no keys. */
static __device__ __forceinline__ bool split_range(split_block *b, int n, int hk, int split,
                                                   const int *pos, int S, int per_fixed,
                                                   const int *share, int extra) {
    b->n = n;
    b->hk = hk;
    b->split = split;
    const int len = pos[n] + 1;
    if (len <= 0) return false;
    const split_plan p = split_plan_of(len, share ? share[n] : 0, S, per_fixed, extra);
    b->ns = p.ns;
    b->ntot = p.ns + p.np;
    if (split >= p.ns) return false;
    b->k0 = p.P + split * p.per_s;
    b->k1 = min(len, b->k0 + p.per_s);
    return true;
}

static __device__ __forceinline__ bool split_block_of(split_block *b, const int *pos, int Hkv,
                                                      int S, int per_fixed) {
    const int nh = (int)(blockIdx.x / (unsigned)S);
    return split_range(b, nh / Hkv, nh % Hkv, (int)(blockIdx.x % (unsigned)S), pos, S,
                       per_fixed, NULL, 0);
}

/* One (n, h)'s merged output row o[D] (bf16) from its 1 < ns <= SPLIT_MAX split partials
 * po [S][D], ml [S][2] (unnormalised o, natural-log max m, sum l), by one warp (every lane
 * calls it): M = max m_i, w_i = exp(m_i − M), o = Σ w_i o_i / Σ w_i l_i, both sums in split
 * order. Lane j loads (m, l) of splits j and j + 32 at once and computes their w; l is
 * summed in split order from shuffles; each lane's elements d = lane + 32k load their
 * partials eight splits at a time before summing them in order — until session 22 each
 * thread walked the splits one L2 round trip after another, twice per element (the same
 * arithmetic: the same bits). L2 loads (__ldcg): inside the split kernels the partials
 * come from other blocks of the same launch. */
static __device__ __forceinline__ void split_merge_warp(bf16 *o, const float *po,
                                                        const float *ml, int ns, int D,
                                                        int lane) {
    const bool has0 = lane < ns, has1 = lane + 32 < ns;
    const float m0 = has0 ? __ldcg(ml + 2 * lane) : -INFINITY;
    const float m1 = has1 ? __ldcg(ml + 2 * (lane + 32)) : -INFINITY;
    const float l0 = has0 ? __ldcg(ml + 2 * lane + 1) : 0.0f;
    const float l1 = has1 ? __ldcg(ml + 2 * (lane + 32) + 1) : 0.0f;
    const float M = warp_max(fmaxf(m0, m1));
    const float w0 = has0 ? expf(m0 - M) : 0.0f, w1 = has1 ? expf(m1 - M) : 0.0f;
    float l = 0.0f;
    for (int i = 0; i < ns; i++) { /* (i uniform: every lane takes the same branch) */
        const float wi = __shfl_sync(0xffffffffu, i < 32 ? w0 : w1, i & 31);
        const float li = __shfl_sync(0xffffffffu, i < 32 ? l0 : l1, i & 31);
        l += wi * li;
    }
    const float inv = 1.0f / l;
    enum { BATCH = 8 };
    for (int d0 = 0; d0 < D; d0 += 32) { /* (uniform bound: lanes past D load nothing) */
        const int d = d0 + lane;
        float acc = 0.0f;
        for (int i0 = 0; i0 < ns; i0 += BATCH) {
            float p[BATCH];
#pragma unroll
            for (int j = 0; j < BATCH; j++)
                p[j] = d < D && i0 + j < ns ? __ldcg(po + (size_t)(i0 + j) * D + d) : 0.0f;
#pragma unroll
            for (int j = 0; j < BATCH; j++) {
                const int i = i0 + j;
                if (i >= ns) break; /* (uniform) */
                const float wi = __shfl_sync(0xffffffffu, i < 32 ? w0 : w1, i & 31);
                acc += wi * p[j];
            }
        }
        if (d < D) o[d] = f2bf(acc * inv);
    }
}

/* Called by every thread of a split block (query n, KV head hk, ns > 1 partials) after its
 * partial stores: counts the block as finished in *counter, and the last of the ns blocks
 * to finish merges the group's rows (split_merge_warp, a warp per row, as the combine
 * kernel does) and resets the counter to 0 for the next launch (a graph replay starts
 * from zero). Saves the combine kernel's launch; the same bits. */
static __device__ void split_finish(unsigned *counter, bf16 *out, const float *part_o,
                                    const float *part_ml, int n, int hk, int group, int Hq,
                                    int D, int S, int ns) {
    if (!cuda_block_is_last(counter, (unsigned)ns)) return;
    const int lane = (int)(threadIdx.x & 31), nw = (int)(blockDim.x >> 5);
    for (int g = (int)(threadIdx.x >> 5); g < group; g += nw) {
        const size_t item = (size_t)n * Hq + (size_t)hk * group + g;
        split_merge_warp(out + item * D, part_o + item * S * D, part_ml + item * S * 2, ns, D,
                         lane);
    }
}

/* ---- the tensor-core kernel's launch (kvcache_mma.cu) ------------------------------------ */

/* query heads per KV head it takes; shared K|V tile stages per warp by default (the sixth
 * H200 run; RLVR_DECODE_ATTN_STAGES=3|4 for A/B runs) */
enum { MMA_GMAX = 16, MMA_STAGES = 2 };

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

/* The shared-prefix units of a launch (backend.h, attention_cached's share; kvcache_mma.cu):
 * the first `blocks` blocks of the grid are the units' prefix blocks, (unit·Hkv + hk)·sp +
 * prefix split; `extra` partials per query for them (split_plan_of); share NULL and
 * blocks, extra 0 without units. */
typedef struct {
    const int *share; /* [3·N] */
    int blocks, sp, extra;
} mma_share;

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
    mma_share sh; /* the shared-prefix units, or zero */
} mma_args;

/* Launches attention_split_mma_kernel (D 64 or 128) with nst stages per warp (2 where the
 * device cannot give a block the shared memory of nst), on paired rows or not, with q given
 * (a.q) or from the stacked q|k|v (a.qx.qkv). */
void cuda_attention_mma_launch(cuda_ctx *c, int D, int nst, bool pair, const mma_args &a);

#endif
