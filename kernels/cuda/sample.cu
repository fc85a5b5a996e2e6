/*
 * kernels/cuda/sample.cu — the fused LM head + sampling op (backend.h: lmhead_sample):
 * a cuBLAS GEMM writes fp32 logits for a chunk of rows into scratch (≤ 256 MiB), then
 * one block per row draws the token; only the ids and their log-probabilities are
 * written, never the logits. Same decision arithmetic as kernels/cpu/sample.c:
 *
 *   1. penalty mask: a V-bit set of the row's seen ids in shared memory (atomicOr, so
 *      a duplicate id counts once; V = 151,936 takes 19 KB), only when rp != 1;
 *   2. one strided pass: max of the raw logits (for the reported log-prob) and argmax
 *      of the penalised ones (greedy; lowest id on ties);
 *   3. top-k: radix select of the k-th largest order-preserving uint32 key, 4 passes
 *      of a 256-bin shared histogram (integer counts);
 *   4. top-p: total fixed-point mass ⌊e·2^40⌋ of the top-k survivors, then the same
 *      radix select weighted by mass (uint64 shared atomics: integer sums are exact,
 *      so the result does not depend on the order the atomics land in);
 *   5. one pass over contiguous per-thread chunks: kept mass (key ≥ threshold and
 *      e ≥ min_p) and Σ exp((l − max)/T) for the log-prob; a block-wide exclusive
 *      scan of the chunk masses; the thread whose chunk holds ⌊u·S⌋ walks it again
 *      and finds the token (first running mass > target, vocabulary order).
 * Without filters (top-k off, top-p 1, min-p 0: the usual RL setting) only passes 2
 * and 5 run. Nothing uses float atomics: the result is the same bits every run.
 * Every __syncthreads sits in code that all threads of the block reach (the branches
 * around them depend only on kernel arguments).
 *
 * The split path (top-k off and top-p >= 1, min-p and the penalty allowed, and greedy):
 * one block per row leaves ≤ 441 blocks streaming 600 KB each, so instead each row is
 * cut into SPLIT_CHUNK-entry chunks (a function of V only) handled by separate blocks,
 * with coalesced float4 loads where V % 4 == 0:
 *   K1 (row, chunk): the chunk's seen-id bits (scanned from the row's list, kept in
 *      scratch for K2/K3), raw max, penalised max and its lowest index;
 *   K2 (row, chunk): the row's maxima from K1's partials, then the chunk's integer kept
 *      mass Σ ⌊e·2^40⌋ (e >= min_p) and Σ exp((l − lmax)/T) (fixed order);
 *   K3 (row): prefix of the chunk masses in chunk order, the chunk holding ⌊u·S⌋, then
 *      a block-wide scan of that chunk in vocabulary order finds the token.
 * The masses are the same integers as in the single-block kernel and the CPU twin, so
 * the token is identical; the normaliser's float sum runs in another (fixed) order, so
 * the log-prob may differ from the single-block kernel's in the last bits.
 * K1 and K2 run in a warp-per-chunk form by default (see split_max_warp_kernel: the
 * same partials but the normaliser's float sum); RLVR_SAMPLE_SPLIT=blocks (read at every
 * call) runs the block-per-chunk form, RLVR_SAMPLE_SPLIT=0 the single-block kernel
 * everywhere.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.cuh"

enum { SAMPLE_THREADS = 1024 };
static const size_t SAMPLE_MAX_SCRATCH = (size_t)256 << 20; /* fp32 logits per chunk */
static constexpr double SAMPLE_MASS_SCALE = 1099511627776.0; /* 2^40 */

/* The decision controls, normalised on the host. */
typedef struct {
    float inv_t; /* 1/T; 1 when greedy */
    float top_p; /* >= 1: off */
    float min_p; /* 0: off, else min(min_p, 1) */
    float rp;    /* repetition penalty */
    int greedy;
    int top_k;   /* 0: off, else 0 < k < V */
    int pen;     /* penalty on (rp != 1 and seen lists given) */
} sample_args;

/* ---- device helpers ------------------------------------------------------------- */

static __device__ __forceinline__ uint32_t sample_key(float f) {
    const uint32_t b = __float_as_uint(f);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

static __device__ __forceinline__ float sample_pen(float l, int i, const uint32_t *mask,
                                                   const sample_args &a) {
    if (a.pen && ((mask[i >> 5] >> (i & 31)) & 1u)) return l > 0.0f ? l / a.rp : l * a.rp;
    return l;
}

static __device__ __forceinline__ unsigned long long sample_mass(float e) {
    return __double2ull_rz((double)e * SAMPLE_MASS_SCALE); /* C's truncation, as on CPU */
}

/* Block-wide (max value, lowest index) in a fixed order; all threads get the result. */
static __device__ void sample_block_argmax(float &v, int &idx, float *shv /* [32] */,
                                           int *shi /* [32] */) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
    }
    __syncthreads();
    if (lane == 0) shv[wid] = v, shi[wid] = idx;
    __syncthreads();
    v = lane < nw ? shv[lane] : -INFINITY;
    idx = lane < nw ? shi[lane] : INT_MAX;
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
    }
}

/* Exclusive prefix sum of one uint64 per thread (thread order); *total gets the sum. */
static __device__ unsigned long long sample_block_scan(unsigned long long v,
                                                       unsigned long long *sh /* [32] */,
                                                       unsigned long long *total) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    unsigned long long x = v;
    for (int o = 1; o < 32; o <<= 1) {
        const unsigned long long y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= o) x += y;
    }
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 31) sh[wid] = x;
    __syncthreads();
    if (wid == 0) {
        unsigned long long s = lane < nw ? sh[lane] : 0ull;
        for (int o = 1; o < 32; o <<= 1) {
            const unsigned long long y = __shfl_up_sync(0xffffffffu, s, o);
            if (lane >= o) s += y;
        }
        sh[lane] = s; /* inclusive over warps */
    }
    __syncthreads();
    *total = sh[nw - 1];
    return (wid > 0 ? sh[wid - 1] : 0ull) + x - v;
}

/* The largest key v such that Σ weight over {i : key_i >= floor, key_i >= v} reaches
 * target (weight 1, or the fixed-point mass when MASS). target >= 1 and reachable. */
template <bool MASS>
static __device__ uint32_t sample_radix_select(const float *z, int V, const uint32_t *mask,
                                               const sample_args &a, float zmax,
                                               uint32_t floor, unsigned long long target,
                                               unsigned long long *hist /* [256] */,
                                               unsigned long long *state /* [2] */) {
    uint32_t prefix = 0, pmask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < V; i += blockDim.x) {
            const float zp = sample_pen(z[i], i, mask, a);
            const uint32_t key = sample_key(zp);
            if (key >= floor && (key & pmask) == prefix)
                atomicAdd(&hist[(key >> shift) & 255u],
                          MASS ? sample_mass(expf((zp - zmax) * a.inv_t)) : 1ull);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            unsigned long long cum = 0;
            int digit = 0;
            for (int b = 255; b >= 0; b--) {
                if (cum + hist[b] >= target) {
                    digit = b;
                    break;
                }
                cum += hist[b];
            }
            state[0] = (unsigned long long)digit;
            state[1] = target - cum;
        }
        __syncthreads();
        target = state[1];
        prefix |= (uint32_t)state[0] << shift;
        pmask |= 255u << shift;
        __syncthreads(); /* everyone has read state before thread 0 writes it again */
    }
    return prefix;
}

/* ---- the kernel: one block per row ------------------------------------------------ */

static __global__ void __launch_bounds__(SAMPLE_THREADS)
    sample_kernel(int *tokens, float *logprobs, const float *logits /* [rows, V] */, int V,
                  int row0, sample_args a, const float *u, const int *seen,
                  const int *seen_off) {
    extern __shared__ uint32_t mask[]; /* [(V + 31) / 32] when a.pen, else empty */
    __shared__ unsigned long long hist[256];
    __shared__ unsigned long long state[2];
    __shared__ unsigned long long sh64[32];
    __shared__ float shf[32];
    __shared__ int shi[32];
    __shared__ int pick_sh;
    const int tid = threadIdx.x, nt = blockDim.x;
    const int r = row0 + blockIdx.x;
    const float *z = logits + (size_t)blockIdx.x * V;

    if (a.pen) {
        const int words = (V + 31) >> 5;
        for (int j = tid; j < words; j += nt) mask[j] = 0u;
        __syncthreads();
        const int s1 = seen_off[r + 1];
        for (int j = seen_off[r] + tid; j < s1; j += nt) {
            const int id = seen[j];
            if (id >= 0 && id < V) atomicOr(&mask[id >> 5], 1u << (id & 31));
        }
        __syncthreads();
    }

    /* maxima: raw (log-prob) and penalised with its lowest index (greedy, and e = 1) */
    float lmax = -INFINITY, zmax = -INFINITY;
    int best = INT_MAX;
    for (int i = tid; i < V; i += nt) {
        const float l = z[i], zp = sample_pen(l, i, mask, a);
        lmax = fmaxf(lmax, l);
        if (zp > zmax) zmax = zp, best = i; /* ascending i: the lowest index per thread */
    }
    lmax = block_max(lmax, shf);
    sample_block_argmax(zmax, best, shf, shi);
    if (best >= V) best = 0; /* a row of −inf or NaN */

    uint32_t thr = 0;
    if (!a.greedy && a.top_k > 0)
        thr = sample_radix_select<false>(z, V, mask, a, zmax, 0u, (unsigned long long)a.top_k,
                                         hist, state);
    if (!a.greedy && a.top_p < 1.0f) {
        unsigned long long part = 0;
        for (int i = tid; i < V; i += nt) {
            const float zp = sample_pen(z[i], i, mask, a);
            if (sample_key(zp) >= thr) part += sample_mass(expf((zp - zmax) * a.inv_t));
        }
        unsigned long long tot;
        (void)sample_block_scan(part, sh64, &tot);
        unsigned long long target = (unsigned long long)((double)a.top_p * (double)tot);
        if (target < 1ull) target = 1ull;
        thr = sample_radix_select<true>(z, V, mask, a, zmax, thr, target, hist, state);
    }

    /* kept mass and the log-prob normaliser over contiguous chunks (vocabulary order) */
    const int chunk = (V + nt - 1) / nt;
    const int i0 = min(V, tid * chunk), i1 = min(V, i0 + chunk);
    unsigned long long mine = 0;
    float sl = 0.0f;
    for (int i = i0; i < i1; i++) {
        const float l = z[i];
        sl += expf((l - lmax) * a.inv_t);
        if (!a.greedy) {
            const float zp = sample_pen(l, i, mask, a);
            const float e = expf((zp - zmax) * a.inv_t);
            if (sample_key(zp) >= thr && e >= a.min_p) mine += sample_mass(e);
        }
    }
    sl = block_sum(sl, shf);
    if (tid == 0) pick_sh = best;
    unsigned long long total;
    const unsigned long long before = sample_block_scan(mine, sh64, &total);
    if (!a.greedy && total > 0ull) {
        unsigned long long target = (unsigned long long)((double)u[r] * (double)total);
        if (target >= total) target = total - 1ull;
        if (before <= target && target < before + mine) { /* exactly one thread */
            unsigned long long acc = before;
            for (int i = i0; i < i1; i++) {
                const float zp = sample_pen(z[i], i, mask, a);
                const float e = expf((zp - zmax) * a.inv_t);
                if (sample_key(zp) >= thr && e >= a.min_p) acc += sample_mass(e);
                if (acc > target) {
                    pick_sh = i;
                    break;
                }
            }
        }
    }
    __syncthreads();
    if (tid == 0) {
        const int pick = pick_sh;
        tokens[r] = pick;
        logprobs[r] = (z[pick] - lmax) * a.inv_t - logf(sl);
    }
}

/* ---- the split path: (row, chunk) blocks, no filters ------------------------------ */

enum {
    SPLIT_THREADS = 256,
    SPLIT_CHUNK = 2048,              /* entries per chunk: 2 tiles of 4 per thread */
    SPLIT_WORDS = SPLIT_CHUNK / 32,  /* seen-mask words per chunk */
    SPLIT_TILE = 4 * SPLIT_THREADS   /* entries per block-wide step (4 per thread) */
};

/* Per-chunk partials of one group of rows, in scratch (SCRATCH_SAMPLE_SPLIT); every
 * array is [rows, nch] except mask [rows, nch, SPLIT_WORDS]. */
typedef struct {
    unsigned long long *mass; /* kept fixed-point mass (K2) */
    float *lmax;              /* raw max (K1) */
    float *zmax;              /* penalised max (K1) */
    int *zidx;                /* its lowest index; INT_MAX when none (K1) */
    float *sl;                /* Σ exp((l − lmax)·inv_t) (K2) */
    uint32_t *mask;           /* the chunk's seen-id bits (K1; only when a.pen) */
} split_parts;

static size_t split_bytes_per_row(int nch) {
    return (size_t)nch * (sizeof(unsigned long long) + 4 * sizeof(float) +
                          SPLIT_WORDS * sizeof(uint32_t));
}

static split_parts split_layout(void *base, int rows, int nch) {
    split_parts p;
    const size_t n = (size_t)rows * nch;
    p.mass = (unsigned long long *)base;
    p.lmax = (float *)(p.mass + n);
    p.zmax = p.lmax + n;
    p.zidx = (int *)(p.zmax + n);
    p.sl = (float *)(p.zidx + n);
    p.mask = (uint32_t *)(p.sl + n);
    return p;
}

/* Four consecutive entries i..i+3 of a row (those at or past end read as −inf); one
 * 16-byte load when vec (the row is 16-byte aligned and V % 4 == 0). */
static __device__ __forceinline__ void split_load4(const float *z, int i, int end, bool vec,
                                                   float v[4]) {
    if (vec && i + 3 < end) {
        const float4 q = *reinterpret_cast<const float4 *>(z + i);
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
#pragma unroll
        for (int j = 0; j < 4; j++) v[j] = i + j < end ? z[i + j] : -INFINITY;
    }
}

/* The penalised logit of entry c0 + k of a chunk whose seen bits are mk. */
static __device__ __forceinline__ float split_pen(float l, int k, const uint32_t *mk,
                                                  const sample_args &a) {
    if (a.pen && ((mk[k >> 5] >> (k & 31)) & 1u)) return l > 0.0f ? l / a.rp : l * a.rp;
    return l;
}

/* The row's raw and penalised maxima from its nch chunk partials (same in every block). */
static __device__ void split_row_max(const split_parts &P, int rl, int nch, float *lmax,
                                     float *zmax, float *shf) {
    float lm = -INFINITY, zm = -INFINITY;
    for (int k = threadIdx.x; k < nch; k += blockDim.x) {
        lm = fmaxf(lm, P.lmax[(size_t)rl * nch + k]);
        zm = fmaxf(zm, P.zmax[(size_t)rl * nch + k]);
    }
    *lmax = block_max(lm, shf);
    *zmax = block_max(zm, shf);
}

/* Block-wide: the bits mk[words] of the vocabulary entries [v0, v1) that appear among the
 * seen ids seen[s0 .. s1) (a duplicate sets its bit once); every thread of the block must
 * call it, and all see the bits on return. */
static __device__ void split_mark_seen(uint32_t *mk, int words, const int *seen, int s0, int s1,
                                       int v0, int v1) {
    for (int j = threadIdx.x; j < words; j += blockDim.x) mk[j] = 0u;
    __syncthreads();
    for (int j = s0 + threadIdx.x; j < s1; j += blockDim.x) {
        const int id = seen[j];
        if (id >= v0 && id < v1) atomicOr(&mk[(id - v0) >> 5], 1u << ((id - v0) & 31));
    }
    __syncthreads();
}

/* K1's partials of chunk o = row·nch + chunk. */
static __device__ __forceinline__ void split_store_max(const split_parts &P, size_t o,
                                                       float lmax, float zmax, int best) {
    P.lmax[o] = lmax;
    P.zmax[o] = zmax;
    P.zidx[o] = best;
}

/* K1: the chunk's seen bits, raw max, penalised max and its lowest index. */
static __global__ void __launch_bounds__(SPLIT_THREADS)
    split_max_kernel(split_parts P, const float *logits /* [rows, V] */, int V, int nch,
                     int row0, sample_args a, const int *seen, const int *seen_off, int vec) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    __shared__ uint32_t mk[SPLIT_WORDS];
    __shared__ float shf[32];
    __shared__ int shi[32];
    const int tid = threadIdx.x, ch = blockIdx.x, rl = blockIdx.y, r = row0 + rl;
    const int c0 = ch * SPLIT_CHUNK, c1 = min(V, c0 + SPLIT_CHUNK);
    const float *z = logits + (size_t)rl * V;
    if (a.pen) {
        split_mark_seen(mk, SPLIT_WORDS, seen, seen_off[r], seen_off[r + 1], c0, c1);
        for (int j = tid; j < SPLIT_WORDS; j += blockDim.x)
            P.mask[((size_t)rl * nch + ch) * SPLIT_WORDS + j] = mk[j];
    }
    float lmax = -INFINITY, zmax = -INFINITY;
    int best = INT_MAX;
    for (int t0 = 0; t0 < SPLIT_CHUNK; t0 += SPLIT_TILE) { /* ascending per thread */
        const int k = t0 + 4 * tid;
        float v[4];
        split_load4(z, c0 + k, c1, vec, v);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            if (c0 + k + j >= c1) break;
            const float zp = split_pen(v[j], k + j, mk, a);
            lmax = fmaxf(lmax, v[j]);
            if (zp > zmax) zmax = zp, best = c0 + k + j;
        }
    }
    lmax = block_max(lmax, shf);
    sample_block_argmax(zmax, best, shf, shi);
    if (tid == 0) split_store_max(P, (size_t)rl * nch + ch, lmax, zmax, best);
}

/* K2: the chunk's kept mass (not when greedy) and its log-prob normaliser partial. */
static __global__ void __launch_bounds__(SPLIT_THREADS)
    split_mass_kernel(split_parts P, const float *logits, int V, int nch, sample_args a,
                      int vec) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    __shared__ uint32_t mk[SPLIT_WORDS];
    __shared__ float shf[32];
    __shared__ unsigned long long sh64[32];
    const int tid = threadIdx.x, ch = blockIdx.x, rl = blockIdx.y;
    const int c0 = ch * SPLIT_CHUNK, c1 = min(V, c0 + SPLIT_CHUNK);
    const float *z = logits + (size_t)rl * V;
    float lmax, zmax;
    split_row_max(P, rl, nch, &lmax, &zmax, shf);
    if (a.pen) {
        for (int j = tid; j < SPLIT_WORDS; j += blockDim.x)
            mk[j] = P.mask[((size_t)rl * nch + ch) * SPLIT_WORDS + j];
        __syncthreads();
    }
    float sl = 0.0f;
    unsigned long long mass = 0;
    for (int t0 = 0; t0 < SPLIT_CHUNK; t0 += SPLIT_TILE) {
        const int k = t0 + 4 * tid;
        float v[4];
        split_load4(z, c0 + k, c1, vec, v);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            if (c0 + k + j >= c1) break;
            sl += expf((v[j] - lmax) * a.inv_t);
            if (!a.greedy) {
                const float e = expf((split_pen(v[j], k + j, mk, a) - zmax) * a.inv_t);
                if (e >= a.min_p) mass += sample_mass(e);
            }
        }
    }
    sl = block_sum(sl, shf);
    unsigned long long tot;
    (void)sample_block_scan(mass, sh64, &tot);
    if (tid == 0) {
        const size_t o = (size_t)rl * nch + ch;
        P.sl[o] = sl;
        P.mass[o] = tot;
    }
}

/* K3: the row's token: the chunk holding ⌊u·S⌋ (chunk order), then the entry inside it
 * (vocabulary order), as the single-block kernel's walk; greedy: the argmax. */
static __global__ void __launch_bounds__(SPLIT_THREADS)
    split_pick_kernel(int *tokens, float *logprobs, split_parts P, const float *logits, int V,
                      int nch, int row0, sample_args a, const float *u, int vec) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    __shared__ uint32_t mk[SPLIT_WORDS];
    __shared__ float shf[32];
    __shared__ int shi[32];
    __shared__ unsigned long long sh64[32];
    __shared__ int ch_sh, pick_sh;
    __shared__ unsigned long long tin_sh;
    const int tid = threadIdx.x, nt = blockDim.x, rl = blockIdx.x, r = row0 + rl;
    const float *z = logits + (size_t)rl * V;
    const size_t o = (size_t)rl * nch;
    float lmax = -INFINITY, zmax = -INFINITY, sl = 0.0f;
    int best = INT_MAX;
    for (int k = tid; k < nch; k += nt) { /* ascending k: the lowest index on ties */
        lmax = fmaxf(lmax, P.lmax[o + k]);
        sl += P.sl[o + k];
        if (P.zmax[o + k] > zmax) zmax = P.zmax[o + k], best = P.zidx[o + k];
    }
    lmax = block_max(lmax, shf);
    sl = block_sum(sl, shf);
    sample_block_argmax(zmax, best, shf, shi);
    if (best >= V) best = 0; /* a row of −inf or NaN */
    if (tid == 0) pick_sh = best, ch_sh = -1;
    if (!a.greedy) {
        unsigned long long total = 0, t;
        for (int k0 = 0; k0 < nch; k0 += nt) {
            (void)sample_block_scan(tid + k0 < nch ? P.mass[o + k0 + tid] : 0ull, sh64, &t);
            total += t;
        }
        if (total > 0ull) {
            unsigned long long target = (unsigned long long)((double)u[r] * (double)total);
            if (target >= total) target = total - 1ull;
            unsigned long long carry = 0;
            for (int k0 = 0; k0 < nch; k0 += nt) {
                const unsigned long long m = tid + k0 < nch ? P.mass[o + k0 + tid] : 0ull;
                const unsigned long long before = carry + sample_block_scan(m, sh64, &t);
                if (before <= target && target < before + m) /* exactly one thread */
                    ch_sh = k0 + tid, tin_sh = target - before;
                carry += t;
            }
        }
        __syncthreads();
        const int ch = ch_sh;
        if (ch >= 0) { /* uniform: every thread read the same ch_sh */
            const unsigned long long tin = tin_sh;
            const int c0 = ch * SPLIT_CHUNK, c1 = min(V, c0 + SPLIT_CHUNK);
            if (a.pen) {
                for (int j = tid; j < SPLIT_WORDS; j += nt)
                    mk[j] = P.mask[(o + ch) * SPLIT_WORDS + j];
                __syncthreads();
            }
            unsigned long long carry = 0;
            for (int t0 = 0; t0 < SPLIT_CHUNK; t0 += SPLIT_TILE) {
                const int k = t0 + 4 * tid;
                float v[4];
                unsigned long long m[4], s = 0;
                split_load4(z, c0 + k, c1, vec, v);
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    m[j] = 0ull;
                    if (c0 + k + j < c1) {
                        const float e = expf((split_pen(v[j], k + j, mk, a) - zmax) * a.inv_t);
                        if (e >= a.min_p) m[j] = sample_mass(e);
                    }
                    s += m[j];
                }
                unsigned long long tt;
                const unsigned long long before = carry + sample_block_scan(s, sh64, &tt);
                if (before <= tin && tin < before + s) { /* exactly one thread, once */
                    unsigned long long acc = before;
                    for (int j = 0; j < 4; j++) {
                        acc += m[j];
                        if (acc > tin) {
                            pick_sh = c0 + k + j;
                            break;
                        }
                    }
                }
                carry += tt;
            }
        }
    }
    __syncthreads();
    if (tid == 0) {
        const int pick = pick_sh;
        tokens[r] = pick;
        logprobs[r] = (z[pick] - lmax) * a.inv_t - logf(sl);
    }
}

/* ---- the split path, one warp per chunk (the default) ------------------------------
 * K1 and K2 above give each 2,048-entry chunk a block of 256 threads: two 16-byte loads
 * per thread, then block-wide reductions behind __syncthreads, so at 256 rows × 75
 * chunks their 19,200 blocks spend more time starting and reducing than loading (sixth
 * H200 run, 256 rows: K1 52.8 µs, K2 87.7 µs for 155 MB of logits, 2.9 and 1.8 TB/s).
 * Here one warp owns a chunk (SPLIT_WARPS chunks of one row per block): each lane issues
 * WARP_BATCH 16-byte loads at once, and the chunk's reductions are warp shuffles. K2
 * also computes one exp per entry instead of two when the penalty is off (then the
 * penalised row is the raw row and zmax = lmax), and its fixed-point mass converts from
 * float (e·2^40 is exact in float: e <= 1, a power-of-two scale, so the truncation is the
 * same integer as through double). The partials are the same: maxima and argmax (lowest
 * index) and the integer masses are order-independent, so K3 draws the same tokens; the
 * normaliser's float sum runs in another fixed order (log-probs may differ in the last
 * bits). RLVR_SAMPLE_SPLIT=blocks runs K1 and K2 above instead. */
enum {
    SPLIT_WARPS = SPLIT_THREADS / 32,  /* chunks per block */
    WARP_VEC = SPLIT_CHUNK / (4 * 32), /* 16-byte loads per lane and chunk */
    WARP_BATCH = 8                     /* of those, in flight at once */
};

/* Float4 j of a lane's share of a chunk: entries 4·(32j + lane) .. +3 of the chunk. */
static __device__ __forceinline__ int warp_entry(int j, int lane) {
    return 4 * (32 * j + lane);
}

/* A lane's 16-byte loads j0 .. j0 + WARP_BATCH − 1 of the chunk [c0, c1) of row z, all
 * issued before any is used (entries past c1 read as −inf). */
static __device__ __forceinline__ void warp_load_batch(const float *z, int c0, int c1, bool vec,
                                                       int j0, int lane,
                                                       float v[WARP_BATCH][4]) {
#pragma unroll
    for (int b = 0; b < WARP_BATCH; b++)
        split_load4(z, c0 + warp_entry(j0 + b, lane), c1, vec, v[b]);
}

/* f(x, k) for every entry x = z[c0 + k] of the chunk [c0, c1) of row z that lane owns:
 * its 16-byte loads WARP_BATCH at a time (warp_load_batch), its entries in ascending k.
 * The walk of both warp kernels, K1 and K2. */
template <class F>
static __device__ __forceinline__ void warp_chunk_each(const float *z, int c0, int c1,
                                                       bool vec, int lane, F &&f) {
    for (int j0 = 0; j0 < WARP_VEC; j0 += WARP_BATCH) {
        float v[WARP_BATCH][4];
        warp_load_batch(z, c0, c1, vec, j0, lane, v);
#pragma unroll
        for (int b = 0; b < WARP_BATCH; b++)
#pragma unroll
            for (int q = 0; q < 4; q++) {
                const int k = warp_entry(j0 + b, lane) + q;
                if (c0 + k < c1) f(v[b][q], k);
            }
    }
}

static __device__ __forceinline__ unsigned long long sample_mass_f(float e) {
    return __float2ull_rz(e * 1099511627776.0f); /* ⌊e·2^40⌋, as sample_mass */
}

/* Warp-wide (max value, lowest index), every lane gets it. */
static __device__ __forceinline__ void warp_argmax(float &v, int &idx) {
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
    }
}

static __device__ __forceinline__ unsigned long long warp_sum_u64(unsigned long long v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* K1, warp form: chunk blockIdx.x·SPLIT_WARPS + warp of row blockIdx.y. With the penalty
 * the block first marks the seen ids of its SPLIT_WARPS chunks in shared memory. */
static __global__ void __launch_bounds__(SPLIT_THREADS)
    split_max_warp_kernel(split_parts P, const float *logits /* [rows, V] */, int V, int nch,
                          int row0, sample_args a, const int *seen, const int *seen_off,
                          int vec) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    __shared__ uint32_t mk[SPLIT_WARPS * SPLIT_WORDS];
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, rl = blockIdx.y, r = row0 + rl;
    const int ch = blockIdx.x * SPLIT_WARPS + w;
    if (a.pen) { /* (uniform branch: every thread reaches both barriers) */
        const int b0 = blockIdx.x * SPLIT_WARPS * SPLIT_CHUNK;
        split_mark_seen(mk, SPLIT_WARPS * SPLIT_WORDS, seen, seen_off[r], seen_off[r + 1], b0,
                        min(V, b0 + SPLIT_WARPS * SPLIT_CHUNK));
    }
    if (ch >= nch) return;
    const uint32_t *mw = mk + w * SPLIT_WORDS; /* the chunk's bits */
    const size_t o = (size_t)rl * nch + ch;
    if (a.pen)
        for (int j = lane; j < SPLIT_WORDS; j += 32) P.mask[o * SPLIT_WORDS + j] = mw[j];
    const int c0 = ch * SPLIT_CHUNK, c1 = min(V, c0 + SPLIT_CHUNK);
    const float *z = logits + (size_t)rl * V;
    float lmax = -INFINITY, zmax = -INFINITY;
    int best = INT_MAX;
    warp_chunk_each(z, c0, c1, vec, lane, [&](float x, int k) {
        const float zp = split_pen(x, k, mw, a);
        lmax = fmaxf(lmax, x);
        if (zp > zmax) zmax = zp, best = c0 + k;
    });
    lmax = warp_max(lmax);
    warp_argmax(zmax, best);
    if (lane == 0) split_store_max(P, o, lmax, zmax, best);
}

/* K2, warp form: the chunk's kept mass (not when greedy) and its normaliser partial. */
static __global__ void __launch_bounds__(SPLIT_THREADS)
    split_mass_warp_kernel(split_parts P, const float *logits, int V, int nch, sample_args a,
                           int vec) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    __shared__ uint32_t mk[SPLIT_WARPS * SPLIT_WORDS];
    __shared__ float shf[32];
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, rl = blockIdx.y;
    const int ch = blockIdx.x * SPLIT_WARPS + w;
    float lmax, zmax;
    split_row_max(P, rl, nch, &lmax, &zmax, shf); /* every thread, before any return */
    if (ch >= nch) return;
    const size_t o = (size_t)rl * nch + ch;
    uint32_t *mw = mk + w * SPLIT_WORDS;
    if (a.pen) {
        for (int j = lane; j < SPLIT_WORDS; j += 32) mw[j] = P.mask[o * SPLIT_WORDS + j];
        __syncwarp();
    }
    const int c0 = ch * SPLIT_CHUNK, c1 = min(V, c0 + SPLIT_CHUNK);
    const float *z = logits + (size_t)rl * V;
    float sl = 0.0f;
    unsigned long long mass = 0;
    warp_chunk_each(z, c0, c1, vec, lane, [&](float x, int k) {
        const float el = expf((x - lmax) * a.inv_t);
        sl += el;
        if (!a.greedy) { /* without the penalty, zmax = lmax: the same e */
            const float e = a.pen ? expf((split_pen(x, k, mw, a) - zmax) * a.inv_t) : el;
            if (e >= a.min_p) mass += sample_mass_f(e);
        }
    });
    sl = warp_sum(sl);
    mass = warp_sum_u64(mass);
    if (lane == 0) {
        P.sl[o] = sl;
        P.mass[o] = mass;
    }
}

/* RLVR_SAMPLE_SPLIT (read at every call, for A/B runs): 0 forces the single-block kernel,
 * "blocks" the split path with a block per chunk; otherwise the split path with a warp per
 * chunk. Returns 0, 1 (warps) or 2 (blocks). */
static int sample_split_mode(void) {
    const char *e = getenv("RLVR_SAMPLE_SPLIT");
    if (e && strcmp(e, "0") == 0) return 0;
    return e && strcmp(e, "blocks") == 0 ? 2 : 1;
}

/* ---- launcher --------------------------------------------------------------------- */

static void cu_lmhead_sample(rlvr_backend *be, int *tokens, float *logprobs, const void *x,
                             const void *w, int R, int C, int V, const rlvr_sample_params *p,
                             const float *u, const int *seen, const int *seen_offsets) {
    cuda_ctx *c = cuda_get(be);
    if (R <= 0 || V <= 0) return;
    sample_args a;
    a.greedy = !(p->temperature > 0.0f);
    a.inv_t = a.greedy ? 1.0f : 1.0f / p->temperature;
    a.top_k = (!a.greedy && p->top_k > 0 && p->top_k < V) ? p->top_k : 0;
    a.top_p = a.greedy ? 1.0f : p->top_p;
    a.min_p = (!a.greedy && p->min_p > 0.0f) ? fminf(p->min_p, 1.0f) : 0.0f;
    a.rp = p->repetition_penalty;
    a.pen = p->repetition_penalty != 1.0f && seen != NULL && seen_offsets != NULL;
    if (!a.greedy && !u) {
        cuda_record_error(c, __FILE__, __LINE__,
                          "lmhead_sample: u is NULL with temperature %g (needed unless greedy)",
                          (double)p->temperature);
        return;
    }
    size_t rows = SAMPLE_MAX_SCRATCH / ((size_t)V * sizeof(float));
    if (rows < 1) rows = 1;
    if (rows > (size_t)R) rows = (size_t)R;
    const bf16 *xb = (const bf16 *)x;
    const int split = sample_split_mode();
    if (split && (a.greedy || (a.top_k == 0 && !(a.top_p < 1.0f)))) {
        /* the split path; scratch sizes depend only on R and V (graph-safe) */
        const int nch = (V + SPLIT_CHUNK - 1) / SPLIT_CHUNK;
        float *logits = (float *)cuda_scratch(c, SCRATCH_LM_LOGITS, rows * V * sizeof(float));
        void *pb = cuda_scratch(c, SCRATCH_SAMPLE_SPLIT, rows * split_bytes_per_row(nch));
        if (!logits || !pb) return;
        const split_parts P = split_layout(pb, (int)rows, nch);
        const int vec = V % 4 == 0 && cuda_aligned16(logits);
        for (int r0 = 0; r0 < R; r0 += (int)rows) {
            const int rc = R - r0 < (int)rows ? R - r0 : (int)rows;
            cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, V, rc, C, 1.0f, w, C, xb + (size_t)r0 * C,
                      C, 0.0f, logits, CUDA_R_32F, V, "lmhead_sample logits");
            if (split == 1) {
                const dim3 grid((nch + SPLIT_WARPS - 1) / SPLIT_WARPS, rc);
                cuda_launch_dep(c, "split_max_warp_kernel", split_max_warp_kernel, grid,
                                SPLIT_THREADS, 0, P, (const float *)logits, V, nch, r0, a,
                                seen, seen_offsets, vec);
                cuda_launch_dep(c, "split_mass_warp_kernel", split_mass_warp_kernel, grid,
                                SPLIT_THREADS, 0, P, (const float *)logits, V, nch, a, vec);
            } else {
                cuda_launch_dep(c, "split_max_kernel", split_max_kernel, dim3(nch, rc),
                                SPLIT_THREADS, 0, P, (const float *)logits, V, nch, r0, a,
                                seen, seen_offsets, vec);
                cuda_launch_dep(c, "split_mass_kernel", split_mass_kernel, dim3(nch, rc),
                                SPLIT_THREADS, 0, P, (const float *)logits, V, nch, a, vec);
            }
            cuda_launch_dep(c, "split_pick_kernel", split_pick_kernel, rc, SPLIT_THREADS, 0,
                            tokens, logprobs, P, (const float *)logits, V, nch, r0, a, u, vec);
        }
        return;
    }
    const size_t shmem = a.pen ? (size_t)((V + 31) / 32) * sizeof(uint32_t) : 0;
    if (shmem > 48 * 1024) { /* beyond the default: opt in, up to the device's limit */
        int optin = 0;
        CU_CHECK(c, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                           c->device));
        if (shmem + 4096 > (size_t)optin) {
            cuda_record_error(c, __FILE__, __LINE__,
                              "lmhead_sample: the repetition-penalty mask of a %d-token "
                              "vocabulary needs %zu bytes of shared memory; the device "
                              "allows %d",
                              V, shmem, optin);
            return;
        }
        CU_CHECK(c, cudaFuncSetAttribute(sample_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)shmem));
    }
    float *logits = (float *)cuda_scratch(c, SCRATCH_LM_LOGITS, rows * V * sizeof(float));
    if (!logits) return;
    for (int r0 = 0; r0 < R; r0 += (int)rows) {
        const int rc = R - r0 < (int)rows ? R - r0 : (int)rows;
        cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, V, rc, C, 1.0f, w, C, xb + (size_t)r0 * C, C,
                  0.0f, logits, CUDA_R_32F, V, "lmhead_sample logits");
        sample_kernel<<<rc, SAMPLE_THREADS, shmem, c->stream>>>(tokens, logprobs, logits, V, r0,
                                                                a, u, seen, seen_offsets);
        CU_LAUNCH_CHECK(c, "sample_kernel");
    }
}

void cuda_sample_register(rlvr_backend *be) { be->lmhead_sample = cu_lmhead_sample; }
