/*
 * kernels/cuda/lmhead.cu — the fused LM head: z = inv_temp·x·wᵀ, log-softmax, gather
 * of the target's log-probability and entropy, forward and backward, chunked over
 * tokens (TC rows) and vocabulary (VC entries) so the only logits in memory are one
 * [TC, VC] fp32 tile (cuBLAS GEMM into backend scratch; at most 128 MiB with the
 * automatic shape of lm_chunks, whatever T and V are).
 *
 * Forward, per row, one read of each logit: running max m, s = Σ e^{z−m} and
 * w = Σ e^{z−m}·(z−m) (better conditioned than Σ e^{z−m}·z), kept online per thread,
 * merged across threads and across vocabulary tiles the same way; merging (m,s,w) with
 * (cm, cs, cw) under M = max(m, cm):
 *   s ← e^{m−M}·s + e^{cm−M}·cs,   w ← e^{m−M}·(w + (m−M)·s) + e^{cm−M}·(cw + (cm−M)·cs).
 * Then lse = m + log s, entropy = log s − w/s, logp = z_target − lse (0 if target < 0).
 * Backward, tile by tile with p = e^{z−lse} recomputed:
 *   dz = dlogp·(δ_target − p) − dent·p·(z − lse + H)       (stored bf16 for the GEMMs)
 *   dx = inv_temp·dz·w (fp32 accumulator across vocabulary tiles, then bf16),
 *   dw += inv_temp·dzᵀ·x (fp32, beta = 1).
 * All reductions are fixed-order block reductions: deterministic.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_internal.cuh"

enum { LM_THREADS = 256 };

/* Online softmax statistics of a set of values: max m, s = Σ e^{z−m}, w = Σ e^{z−m}(z−m).
 * s == 0 marks the empty set. */
static __device__ __forceinline__ void lm_acc_add(float &m, float &s, float &w, float z) {
    if (z > m) { /* a new maximum (always true for the first value, m = −inf) */
        if (s != 0.0f) {
            const float a = expf(m - z);
            w = a * (w + (m - z) * s);
            s = a * s;
        }
        m = z;
        s += 1.0f; /* e^0; w gains 0·1 */
    } else {
        const float d = z - m, e = expf(d);
        s += e;
        w += e * d;
    }
}

/* (m, s, w) ← merge with (m2, s2, w2) under M = max(m, m2) (the formula of the header). */
static __device__ __forceinline__ void lm_acc_merge(float &m, float &s, float &w, float m2,
                                                    float s2, float w2) {
    if (s2 == 0.0f) return;
    if (s == 0.0f) {
        m = m2;
        s = s2;
        w = w2;
        return;
    }
    const float M = fmaxf(m, m2);
    const float a = expf(m - M), b = expf(m2 - M);
    w = a * (w + (m - M) * s) + b * (w2 + (m2 - M) * s2);
    s = a * s + b * s2;
    m = M;
}

/* One pass over each row of a logits tile (each value read once, float4 when the row
 * allows): per-thread online statistics, merged in a fixed tree (deterministic).
 * stats[0..TC) m, [TC..2TC) s, [2TC..3TC) w, [3TC..4TC) z_target. One block per row. */
static __global__ void lm_stats_kernel(const float *logits, int W, size_t ld, int v0,
                                       const int *targets, float *stats, int TC, int first) {
    __shared__ float sh_m[32], sh_s[32], sh_w[32];
    const int r = blockIdx.x;
    const float *z = logits + (size_t)r * ld;
    float cm = -INFINITY, cs = 0.0f, cw = 0.0f;
    if (((W | ld) & 3) == 0) { /* rows 16-byte aligned (cudaMalloc base, W, ld, v0 % 4 == 0) */
        const float4 *z4 = reinterpret_cast<const float4 *>(z);
        for (int j = threadIdx.x; j < W / 4; j += blockDim.x) {
            const float4 q = z4[j];
            lm_acc_add(cm, cs, cw, q.x);
            lm_acc_add(cm, cs, cw, q.y);
            lm_acc_add(cm, cs, cw, q.z);
            lm_acc_add(cm, cs, cw, q.w);
        }
    } else {
        for (int j = threadIdx.x; j < W; j += blockDim.x) lm_acc_add(cm, cs, cw, z[j]);
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, cm, o);
        const float s2 = __shfl_xor_sync(0xffffffffu, cs, o);
        const float w2 = __shfl_xor_sync(0xffffffffu, cw, o);
        lm_acc_merge(cm, cs, cw, m2, s2, w2);
    }
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) {
        sh_m[wid] = cm;
        sh_s[wid] = cs;
        sh_w[wid] = cw;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int i = 1; i < nw; i++) lm_acc_merge(cm, cs, cw, sh_m[i], sh_s[i], sh_w[i]);
        float *m = stats, *s = stats + TC, *w = stats + 2 * TC, *zt = stats + 3 * TC;
        if (first) {
            m[r] = cm;
            s[r] = cs;
            w[r] = cw;
            zt[r] = __int_as_float(0x7fc00000); /* NaN until the target's tile is seen */
        } else {
            float pm = m[r], ps = s[r], pw = w[r];
            lm_acc_merge(pm, ps, pw, cm, cs, cw);
            m[r] = pm;
            s[r] = ps;
            w[r] = pw;
        }
        const int tg = targets[r];
        if (tg >= v0 && tg < v0 + W) zt[r] = z[tg - v0];
    }
}

static __global__ void lm_finish_kernel(float *logp, float *entropy, float *lse,
                                        const int *targets, const float *stats, int TC, int R) {
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= R) return;
    const float m = stats[r], s = stats[TC + r], w = stats[2 * TC + r], zt = stats[3 * TC + r];
    const float ls = logf(s);
    const float l = m + ls;
    lse[r] = l;
    if (entropy) entropy[r] = ls - w / s;
    logp[r] = targets[r] >= 0 ? zt - l : 0.0f;
}

/* logits tile (rows ld apart) → dz tile [R, W] (bf16), one block per row. */
static __global__ void lm_dz_kernel(bf16 *dz, const float *logits, int W, size_t ld, int v0,
                                    const int *targets, const float *lse, const float *entropy,
                                    const float *dlogp, const float *dentropy) {
    const int r = blockIdx.x;
    const int tg = targets[r];
    const float gl = (tg >= 0 && dlogp) ? dlogp[r] : 0.0f;
    const float ge = dentropy ? dentropy[r] : 0.0f;
    const float H = dentropy ? entropy[r] : 0.0f;
    const float l = lse[r];
    const float *z = logits + (size_t)r * ld;
    bf16 *o = dz + (size_t)r * W;
    if (((W | ld) & 3) == 0) { /* float4 in, 4 bf16 (8 bytes) out: rows are aligned */
        const float4 *z4 = reinterpret_cast<const float4 *>(z);
        for (int j = threadIdx.x; j < W / 4; j += blockDim.x) {
            const float4 q = z4[j];
            const float zz[4] = {q.x, q.y, q.z, q.w};
            __align__(8) bf16 ob[4];
            for (int k = 0; k < 4; k++) {
                const float lp = zz[k] - l, p = expf(lp);
                float d = -gl * p;
                if (ge != 0.0f) d -= ge * p * (lp + H);
                if (v0 + 4 * j + k == tg) d += gl;
                ob[k] = f2bf(d);
            }
            *reinterpret_cast<uint2 *>(o + 4 * (size_t)j) = *reinterpret_cast<const uint2 *>(ob);
        }
        return;
    }
    for (int j = threadIdx.x; j < W; j += blockDim.x) {
        const float lp = z[j] - l, p = expf(lp);
        float d = -gl * p;
        if (ge != 0.0f) d -= ge * p * (lp + H);
        if (v0 + j == tg) d += gl;
        o[j] = f2bf(d);
    }
}

static __global__ void lm_cast_kernel(bf16 *dst, const float *src, size_t n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = f2bf(src[i]);
}

/* The tile shape. Automatic (unless set): up to LM_AUTO_T_FWD / LM_AUTO_T_BWD tokens,
 * and as many vocabulary entries as keep the tile within LM_TILE_ELEMS (128 MiB of fp32
 * logits, 64 MiB of bf16 dz). The backward takes more tokens and fewer entries: its
 * dw[V,C] (fp32) is read and written once per token chunk and dx's fp32 accumulator
 * [T,C] once per vocabulary chunk, so at T = 8192, V = 151,936, C = 896 the traffic is
 * 8.7 + 0.3 GB with 1024 × 32768 tiles and 2.2 + 1.1 GB with 4096 × 8192, and the dw
 * GEMMs get a longer K (the token chunk). Fifth H200 run, 8192 × 896 × 151,936:
 * backward 14.6 -> 11.5 ms with 4096 × 8192, but forward 6.6 -> 7.3 ms, so the forward
 * keeps 1024 × 32768. */
enum { LM_AUTO_T_FWD = 1024, LM_AUTO_T_BWD = 4096, LM_TILE_ELEMS = 1 << 25 };
static void lm_chunks(const cuda_ctx *c, int T, int V, int backward, int *TC, int *VC) {
    int tc = c->lm_tchunk, vc = c->lm_vchunk;
    if (tc <= 0) tc = backward ? LM_AUTO_T_BWD : LM_AUTO_T_FWD;
    if (tc > T) tc = T;
    if (vc <= 0) vc = LM_TILE_ELEMS / tc / 8 * 8;
    if (vc < 8) vc = 8;
    *TC = tc;
    *VC = V < vc ? V : vc;
}

/* Kept logits (cuda_ctx.lm_keep_*): the forward writes its logits into one [T, V] fp32
 * buffer instead of a reused tile when T·V·4 fits the cap, and the backward that follows
 * with the same x, w, T, C, V and inv_temp reads them instead of redoing the logits GEMM
 * (one of its three; 2·T·V·C FLOPs). The traffic is the same as the tiles': every logit
 * is written once and read once by each pass either way. The cap: RLVR_LM_KEEP_GB (0
 * off), else LM_KEEP_DEFAULT_GB but at most an eighth of the device's memory (a 24 GB
 * card keeps at most 3 GB: 8k tokens × 151,936 take 4.98 GB, so the tiles there). On by
 * default since the sixth H200 run (session 17): the 0.5B-shaped step at 8 × 1024 tokens
 * 117.3k -> 125.4k tok/s alone; the buffer, once grown, stays allocated. */
static const double LM_KEEP_DEFAULT_GB = 8.0;
static long long lm_keep_cap(cuda_ctx *c) {
    if (c->lm_keep_cap < 0) {
        const char *e = getenv("RLVR_LM_KEEP_GB");
        double gb = e ? atof(e) : LM_KEEP_DEFAULT_GB;
        if (!e) { /* the default: at most an eighth of the device's memory */
            size_t free_b = 0, total_b = 0;
            if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
                total_b = 0; /* keep nothing */
                (void)cudaGetLastError();
            }
            const double eighth = (double)total_b / 8.0 / 1073741824.0;
            if (gb > eighth) gb = eighth;
        }
        c->lm_keep_cap = gb > 0 ? (long long)(gb * 1073741824.0) : 0;
    }
    return c->lm_keep_cap;
}

static int lm_keep_match(const cuda_ctx *c, const void *x, const void *w, int T, int C, int V,
                         float it) {
    return c->lm_keep_valid && c->lm_keep_x == x && c->lm_keep_w == w && c->lm_keep_T == T &&
           c->lm_keep_C == C && c->lm_keep_V == V && c->lm_keep_it == it;
}

extern "C" int rlvr_cuda_set_lmhead_keep(rlvr_backend *be, long long bytes) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->lm_keep_cap = bytes < 0 ? -1 : bytes;
    c->lm_keep_valid = 0;
    return 0;
}

static void lmhead_forward(rlvr_backend *be, float *logp, float *entropy, float *lse,
                           const void *x, const void *w, const int *targets, int T, int C,
                           int V, float inv_temp) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0) return;
    if (V <= 0 || C <= 0) {
        cuda_record_error(c, __FILE__, __LINE__, "lmhead_forward: C=%d V=%d (expected > 0)",
                          C, V);
        return;
    }
    int TC, VC;
    lm_chunks(c, T, V, 0, &TC, &VC);
    const size_t keep_bytes = (size_t)T * V * sizeof(float);
    c->lm_keep_valid = 0;
    float *kept = NULL;
    if (lm_keep_cap(c) > 0 && keep_bytes <= (size_t)lm_keep_cap(c)) {
        /* only where it fits with 1 GiB to spare: otherwise the tiles, and no error */
        size_t free_b = 0, total_b = 0;
        if (c->scratch_bytes[SCRATCH_LM_KEEP] >= keep_bytes ||
            (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess &&
             free_b >= keep_bytes + ((size_t)1 << 30)))
            kept = (float *)cuda_scratch(c, SCRATCH_LM_KEEP, keep_bytes);
    }
    float *logits =
        kept ? NULL
             : (float *)cuda_scratch(c, SCRATCH_LM_LOGITS, (size_t)TC * VC * sizeof(float));
    float *stats = (float *)cuda_scratch(c, SCRATCH_LM_STATS, (size_t)4 * TC * sizeof(float));
    if ((!kept && !logits) || !stats) return;
    const bf16 *xb = (const bf16 *)x, *wb = (const bf16 *)w;
    for (int t0 = 0; t0 < T; t0 += TC) {
        const int R = T - t0 < TC ? T - t0 : TC;
        for (int v0 = 0; v0 < V; v0 += VC) {
            const int W = V - v0 < VC ? V - v0 : VC;
            /* the tile: the scratch [R, W], or its place in the kept [T, V] */
            float *tile = kept ? kept + (size_t)t0 * V + v0 : logits;
            const size_t ld = kept ? (size_t)V : (size_t)W;
            cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, W, R, C, inv_temp, wb + (size_t)v0 * C, C,
                      xb + (size_t)t0 * C, C, 0.0f, tile, CUDA_R_32F, (int)ld, "lmhead logits");
            lm_stats_kernel<<<R, LM_THREADS, 0, c->stream>>>(tile, W, ld, v0, targets + t0,
                                                             stats, TC, v0 == 0);
            CU_LAUNCH_CHECK(c, "lm_stats_kernel");
        }
        lm_finish_kernel<<<cuda_blocks((size_t)R, 256), 256, 0, c->stream>>>(
            logp + t0, entropy ? entropy + t0 : NULL, lse + t0, targets + t0, stats, TC, R);
        CU_LAUNCH_CHECK(c, "lm_finish_kernel");
    }
    if (kept) {
        c->lm_keep_valid = 1;
        c->lm_keep_x = x;
        c->lm_keep_w = w;
        c->lm_keep_T = T;
        c->lm_keep_C = C;
        c->lm_keep_V = V;
        c->lm_keep_it = inv_temp;
    }
}

static void lmhead_backward(rlvr_backend *be, void *dx, float *dw, const float *dlogp,
                            const float *dentropy, const void *x, const void *w,
                            const int *targets, const float *lse, const float *entropy, int T,
                            int C, int V, float inv_temp) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0 || (!dx && !dw)) return;
    if (V <= 0 || C <= 0) {
        cuda_record_error(c, __FILE__, __LINE__, "lmhead_backward: C=%d V=%d (expected > 0)",
                          C, V);
        return;
    }
    int TC, VC;
    lm_chunks(c, T, V, 1, &TC, &VC);
    const float *kept = lm_keep_match(c, x, w, T, C, V, inv_temp)
                            ? (const float *)c->scratch[SCRATCH_LM_KEEP]
                            : NULL;
    float *logits =
        kept ? NULL
             : (float *)cuda_scratch(c, SCRATCH_LM_LOGITS, (size_t)TC * VC * sizeof(float));
    bf16 *dz = (bf16 *)cuda_scratch(c, SCRATCH_LM_DZ, (size_t)TC * VC * sizeof(bf16));
    float *dxacc =
        dx ? (float *)cuda_scratch(c, SCRATCH_LM_DX, (size_t)TC * C * sizeof(float)) : NULL;
    if ((!kept && !logits) || !dz || (dx && !dxacc)) return;
    const bf16 *xb = (const bf16 *)x, *wb = (const bf16 *)w;
    for (int t0 = 0; t0 < T; t0 += TC) {
        const int R = T - t0 < TC ? T - t0 : TC;
        for (int v0 = 0; v0 < V; v0 += VC) {
            const int W = V - v0 < VC ? V - v0 : VC;
            const float *tile = kept ? kept + (size_t)t0 * V + v0 : logits;
            const size_t ld = kept ? (size_t)V : (size_t)W;
            if (!kept)
                cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, W, R, C, inv_temp, wb + (size_t)v0 * C,
                          C, xb + (size_t)t0 * C, C, 0.0f, logits, CUDA_R_32F, W,
                          "lmhead logits");
            lm_dz_kernel<<<R, LM_THREADS, 0, c->stream>>>(
                dz, tile, W, ld, v0, targets + t0, lse + t0, entropy ? entropy + t0 : NULL,
                dlogp ? dlogp + t0 : NULL, dentropy ? dentropy + t0 : NULL);
            CU_LAUNCH_CHECK(c, "lm_dz_kernel");
            if (dx)
                cuda_gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, C, R, W, inv_temp, wb + (size_t)v0 * C,
                          C, dz, W, v0 == 0 ? 0.0f : 1.0f, dxacc, CUDA_R_32F, C, "lmhead dx");
            if (dw)
                cuda_gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, C, W, R, inv_temp, xb + (size_t)t0 * C,
                          C, dz, W, 1.0f, dw + (size_t)v0 * C, CUDA_R_32F, C, "lmhead dw");
        }
        if (dx) {
            const size_t n = (size_t)R * C;
            lm_cast_kernel<<<cuda_blocks(n, 256), 256, 0, c->stream>>>(
                (bf16 *)dx + (size_t)t0 * C, dxacc, n);
            CU_LAUNCH_CHECK(c, "lm_cast_kernel");
        }
    }
}

void cuda_lmhead_register(rlvr_backend *be) {
    be->lmhead_forward = lmhead_forward;
    be->lmhead_backward = lmhead_backward;
}
