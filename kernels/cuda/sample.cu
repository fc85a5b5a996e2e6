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
 */
#include <limits.h>

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
    size_t rows = SAMPLE_MAX_SCRATCH / ((size_t)V * sizeof(float));
    if (rows < 1) rows = 1;
    if (rows > (size_t)R) rows = (size_t)R;
    float *logits = (float *)cuda_scratch(c, SCRATCH_LM_LOGITS, rows * V * sizeof(float));
    if (!logits) return;
    const bf16 *xb = (const bf16 *)x;
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
