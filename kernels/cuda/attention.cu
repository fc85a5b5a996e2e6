/*
 * kernels/cuda/attention.cu — causal attention over packed variable-length sequences
 * with grouped-query attention: the op-table entries, and the straightforward
 * CUDA-core kernels. No T×T tensor is ever stored.
 *
 * Dispatch: head dims 64 and 128 (16-byte aligned tensors) go to the fused
 * tensor-core kernels of flash_attention2.cu (cp.async double buffering, ldmatrix; the
 * default since the fourth H200 run measured them 1.3-1.8x faster than the first fused
 * set); RLVR_ATTENTION=flash1 selects the first fused set, flash_attention.cu, instead.
 * Every other shape, and every call while the environment has RLVR_ATTENTION=simple,
 * runs the simple kernels below. The variable is read at every call. All save the same lse (natural log), so
 * a forward of one and a backward of another combine freely.
 *
 * Shapes: q[T,Hq,D], k/v[T,Hkv,D], out[T,Hq,D], lse[T,Hq] (f32); offsets[B+1] on the
 * device. Query head h reads KV head h / (Hq/Hkv); scale = 1/sqrt(D); token t of
 * sequence b attends to offsets[b]..t.
 *
 * Layout of the work: one warp per row. Lane l holds elements d = l + 32·i (i < NPL,
 * NPL = ceil(D/32), so D ≤ 256, any D). Keys are taken ATT_KB at a time so their
 * warp reductions overlap.
 *   forward : warp per (t, h); online softmax over keys j ≤ t; lse = m + log l.
 *   backward: Δ[t,h] = dout·out; dq by a warp per (t, h) over its keys; dk and dv by a
 *             warp per (j, kv head) over the queries i ≥ j of every query head of its
 *             group. Each output row has exactly one owner and a fixed summation
 *             order: no atomics, the same bits every run.
 * Formulas (as kernels/cpu/attention.c): P_ij = exp(s_ij − lse_i), dP_ij = dout_i·v_j,
 * dS_ij = P_ij (dP_ij − Δ_i), dq_i = scale Σ_j dS_ij k_j, dk_j = scale Σ_i dS_ij q_i,
 * dv_j = Σ_i P_ij dout_i.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.cuh"

/* kernels/cuda/flash_attention.cu: 0 when they took the call, -1 when the shape or the
 * alignment is not theirs (the caller then runs the simple kernels). */
int cuda_flash_attention_forward(cuda_ctx *c, bf16 *out, float *lse, const bf16 *q,
                                 const bf16 *k, const bf16 *v, const int *offsets, int B,
                                 int Hq, int Hkv, int D, int max_len);
int cuda_flash_attention_backward(cuda_ctx *c, bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout,
                                  const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *out,
                                  const float *lse, const int *offsets, int B, int T, int Hq,
                                  int Hkv, int D, int max_len);

/* kernels/cuda/flash_attention2.cu: the same contract (0 taken, -1 not theirs). */
int cuda_flash2_attention_forward(cuda_ctx *c, bf16 *out, float *lse, const bf16 *q,
                                  const bf16 *k, const bf16 *v, const int *offsets, int B,
                                  int Hq, int Hkv, int D, int max_len);
int cuda_flash2_attention_backward(cuda_ctx *c, bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout,
                                   const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *out,
                                   const float *lse, const int *offsets, int B, int T, int Hq,
                                   int Hkv, int D, int max_len);

/* The path RLVR_ATTENTION asks for, read at every call (so a test or benchmark can switch
 * paths inside one process): "simple" forces the simple kernels, "flash1" selects
 * flash_attention.cu for the shapes it takes; unset, "flash2" or anything else,
 * flash_attention2.cu (the default). */
enum { ATTN_FLASH1 = 0, ATTN_SIMPLE, ATTN_FLASH2 };
static int attn_path(void) {
    const char *e = getenv("RLVR_ATTENTION");
    if (e && strcmp(e, "simple") == 0) return ATTN_SIMPLE;
    if (e && strcmp(e, "flash1") == 0) return ATTN_FLASH1;
    return ATTN_FLASH2;
}

enum { ATT_WARPS = 4, ATT_KB = 4, ATT_MAX_D = 256 };

/* The sequence b with offsets[b] <= t < offsets[b+1] (empty sequences skipped). */
static __device__ __forceinline__ int seq_index(const int *offsets, int B, int t) {
    int lo = 0, hi = B - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (offsets[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

template <int NPL>
static __device__ __forceinline__ void load_row(const bf16 *p, int D, int lane, float *r) {
#pragma unroll
    for (int i = 0; i < NPL; i++) {
        const int d = lane + 32 * i;
        r[i] = d < D ? bf2f(p[d]) : 0.0f;
    }
}

template <int NPL>
static __device__ __forceinline__ float dot_part(const float *a, const float *b) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < NPL; i++) s += a[i] * b[i];
    return s;
}

template <int NPL>
static __global__ void attn_forward_kernel(bf16 *out, float *lse, const bf16 *q, const bf16 *k,
                                           const bf16 *v, const int *offsets, int B, int T,
                                           int Hq, int Hkv, int D, float scale) {
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);
    if (row >= (long long)T * Hq) return; /* whole warps only */
    const int t = (int)(row / Hq), h = (int)(row % Hq), hk = h / (Hq / Hkv);
    const int start = offsets[seq_index(offsets, B, t)];
    float qr[NPL], acc[NPL];
    load_row<NPL>(q + (size_t)row * D, D, lane, qr);
#pragma unroll
    for (int i = 0; i < NPL; i++) acc[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int j0 = start; j0 <= t; j0 += ATT_KB) {
        float s[ATT_KB], vr[ATT_KB][NPL];
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            const int j = j0 + b;
            float kr[NPL];
            if (j <= t) {
                const size_t off = ((size_t)j * Hkv + hk) * D;
                load_row<NPL>(k + off, D, lane, kr);
                load_row<NPL>(v + off, D, lane, vr[b]);
                s[b] = dot_part<NPL>(qr, kr);
            } else {
                s[b] = 0.0f;
            }
        }
        float mn = m;
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            s[b] = warp_sum(s[b]) * scale;
            if (j0 + b <= t) mn = fmaxf(mn, s[b]);
        }
        const float corr = expf(m - mn); /* 0 on the first batch (m = −inf) */
        l *= corr;
#pragma unroll
        for (int i = 0; i < NPL; i++) acc[i] *= corr;
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            if (j0 + b <= t) {
                const float p = expf(s[b] - mn);
                l += p;
#pragma unroll
                for (int i = 0; i < NPL; i++) acc[i] += p * vr[b][i];
            }
        }
        m = mn;
    }
    const float inv = 1.0f / l;
    bf16 *o = out + (size_t)row * D;
#pragma unroll
    for (int i = 0; i < NPL; i++) {
        const int d = lane + 32 * i;
        if (d < D) o[d] = f2bf(acc[i] * inv);
    }
    if (lane == 0) lse[row] = m + logf(l);
}

/* Δ[row] = Σ_d dout[row,d]·out[row,d] for every (t, h) row. */
template <int NPL>
static __global__ void attn_delta_kernel(float *delta, const bf16 *dout, const bf16 *out,
                                         long long rows, int D) {
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;
    float a[NPL], b[NPL];
    load_row<NPL>(dout + (size_t)row * D, D, lane, a);
    load_row<NPL>(out + (size_t)row * D, D, lane, b);
    const float s = warp_sum(dot_part<NPL>(a, b));
    if (lane == 0) delta[row] = s;
}

/* dq for the warp's (t, h) row over keys offsets[b]..t. */
template <int NPL>
static __global__ void attn_dq_kernel(bf16 *dq, const bf16 *dout, const bf16 *q, const bf16 *k,
                                      const bf16 *v, const float *lse, const float *delta,
                                      const int *offsets, int B, int T, int Hq, int Hkv, int D,
                                      float scale) {
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);
    if (row >= (long long)T * Hq) return;
    const int t = (int)(row / Hq), h = (int)(row % Hq), hk = h / (Hq / Hkv);
    const int start = offsets[seq_index(offsets, B, t)];
    float qr[NPL], dor[NPL], acc[NPL];
    load_row<NPL>(q + (size_t)row * D, D, lane, qr);
    load_row<NPL>(dout + (size_t)row * D, D, lane, dor);
#pragma unroll
    for (int i = 0; i < NPL; i++) acc[i] = 0.0f;
    const float lrow = lse[row], drow = delta[row];
    for (int j0 = start; j0 <= t; j0 += ATT_KB) {
        float s[ATT_KB], dp[ATT_KB], kr[ATT_KB][NPL];
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            const int j = j0 + b;
            if (j <= t) {
                const size_t off = ((size_t)j * Hkv + hk) * D;
                float vr[NPL];
                load_row<NPL>(k + off, D, lane, kr[b]);
                load_row<NPL>(v + off, D, lane, vr);
                s[b] = dot_part<NPL>(qr, kr[b]);
                dp[b] = dot_part<NPL>(dor, vr);
            } else {
                s[b] = dp[b] = 0.0f;
            }
        }
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            s[b] = warp_sum(s[b]);
            dp[b] = warp_sum(dp[b]);
        }
#pragma unroll
        for (int b = 0; b < ATT_KB; b++) {
            if (j0 + b <= t) {
                const float p = expf(s[b] * scale - lrow);
                const float ds = p * (dp[b] - drow) * scale;
#pragma unroll
                for (int i = 0; i < NPL; i++) acc[i] += ds * kr[b][i];
            }
        }
    }
    bf16 *o = dq + (size_t)row * D;
#pragma unroll
    for (int i = 0; i < NPL; i++) {
        const int d = lane + 32 * i;
        if (d < D) o[d] = f2bf(acc[i]);
    }
}

/* dk, dv for the warp's (j, kv head) row over the queries i in j..end−1 of each query
 * head of the group. */
template <int NPL>
static __global__ void attn_dkdv_kernel(bf16 *dk, bf16 *dv, const bf16 *dout, const bf16 *q,
                                        const bf16 *k, const bf16 *v, const float *lse,
                                        const float *delta, const int *offsets, int B, int T,
                                        int Hq, int Hkv, int D, float scale) {
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);
    if (row >= (long long)T * Hkv) return;
    const int j = (int)(row / Hkv), hk = (int)(row % Hkv), group = Hq / Hkv;
    const int end = offsets[seq_index(offsets, B, j) + 1];
    float kr[NPL], vr[NPL], dka[NPL], dva[NPL];
    load_row<NPL>(k + (size_t)row * D, D, lane, kr);
    load_row<NPL>(v + (size_t)row * D, D, lane, vr);
#pragma unroll
    for (int i = 0; i < NPL; i++) dka[i] = dva[i] = 0.0f;
    for (int h = hk * group; h < (hk + 1) * group; h++) {
        for (int i0 = j; i0 < end; i0 += ATT_KB) {
            float s[ATT_KB], dp[ATT_KB], qi[ATT_KB][NPL], di[ATT_KB][NPL];
#pragma unroll
            for (int b = 0; b < ATT_KB; b++) {
                const int i = i0 + b;
                if (i < end) {
                    const size_t off = ((size_t)i * Hq + h) * D;
                    load_row<NPL>(q + off, D, lane, qi[b]);
                    load_row<NPL>(dout + off, D, lane, di[b]);
                    s[b] = dot_part<NPL>(qi[b], kr);
                    dp[b] = dot_part<NPL>(di[b], vr);
                } else {
                    s[b] = dp[b] = 0.0f;
                }
            }
#pragma unroll
            for (int b = 0; b < ATT_KB; b++) {
                s[b] = warp_sum(s[b]);
                dp[b] = warp_sum(dp[b]);
            }
#pragma unroll
            for (int b = 0; b < ATT_KB; b++) {
                const int i = i0 + b;
                if (i < end) {
                    const size_t qrow = (size_t)i * Hq + h;
                    const float p = expf(s[b] * scale - lse[qrow]);
                    const float ds = p * (dp[b] - delta[qrow]) * scale;
#pragma unroll
                    for (int e = 0; e < NPL; e++) {
                        dva[e] += p * di[b][e];
                        dka[e] += ds * qi[b][e];
                    }
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < NPL; i++) {
        const int d = lane + 32 * i;
        if (d < D) {
            dk[(size_t)row * D + d] = f2bf(dka[i]);
            dv[(size_t)row * D + d] = f2bf(dva[i]);
        }
    }
}

/* ---- launchers ---------------------------------------------------------------------- */

static int attn_check(cuda_ctx *c, int B, int T, int Hq, int Hkv, int D, const char *op) {
    if (B <= 0 || Hq <= 0 || Hkv <= 0 || Hq % Hkv != 0 || D <= 0 || D > ATT_MAX_D) {
        cuda_record_error(c, __FILE__, __LINE__,
                          "%s: unsupported shape B=%d T=%d Hq=%d Hkv=%d D=%d (expected B > 0, "
                          "Hq a multiple of Hkv, 0 < D <= %d)",
                          op, B, T, Hq, Hkv, D, ATT_MAX_D);
        return -1;
    }
    return 0;
}

#define ATT_DISPATCH(NPLV, CALL)                                                           \
    switch (NPLV) {                                                                        \
    case 1: CALL(1); break;                                                                \
    case 2: CALL(2); break;                                                                \
    case 3: CALL(3); break;                                                                \
    case 4: CALL(4); break;                                                                \
    case 5: CALL(5); break;                                                                \
    case 6: CALL(6); break;                                                                \
    case 7: CALL(7); break;                                                                \
    default: CALL(8); break;                                                               \
    }

static void attention_forward(rlvr_backend *be, void *out, float *lse, const void *q,
                              const void *k, const void *v, const int *offsets, int B, int T,
                              int Hq, int Hkv, int D, int max_len) {
    cuda_ctx *c = cuda_get(be);
    (void)max_len; /* used only by the fused kernels */
    if (T <= 0) return;
    if (attn_check(c, B, T, Hq, Hkv, D, "attention_forward")) return;
    const int path = attn_path();
    if (path == ATTN_FLASH2 &&
        cuda_flash2_attention_forward(c, (bf16 *)out, lse, (const bf16 *)q, (const bf16 *)k,
                                      (const bf16 *)v, offsets, B, Hq, Hkv, D, max_len) == 0)
        return;
    if (path != ATTN_SIMPLE &&
        cuda_flash_attention_forward(c, (bf16 *)out, lse, (const bf16 *)q, (const bf16 *)k,
                                     (const bf16 *)v, offsets, B, Hq, Hkv, D, max_len) == 0)
        return;
    const float scale = 1.0f / sqrtf((float)D);
    const unsigned grid = cuda_blocks((size_t)T * Hq, ATT_WARPS);
#define ATT_FWD(N)                                                                         \
    attn_forward_kernel<N><<<grid, ATT_WARPS * 32, 0, c->stream>>>(                        \
        (bf16 *)out, lse, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, offsets, B, T, \
        Hq, Hkv, D, scale)
    ATT_DISPATCH((D + 31) / 32, ATT_FWD)
#undef ATT_FWD
    CU_LAUNCH_CHECK(c, "attn_forward_kernel");
}

static void attention_backward(rlvr_backend *be, void *dq, void *dk, void *dv, const void *dout,
                               const void *q, const void *k, const void *v, const void *out,
                               const float *lse, const int *offsets, int B, int T, int Hq,
                               int Hkv, int D, int max_len) {
    cuda_ctx *c = cuda_get(be);
    (void)max_len; /* used only by the fused kernels */
    if (T <= 0) return;
    if (attn_check(c, B, T, Hq, Hkv, D, "attention_backward")) return;
    const int path = attn_path();
    if (path == ATTN_FLASH2 &&
        cuda_flash2_attention_backward(c, (bf16 *)dq, (bf16 *)dk, (bf16 *)dv,
                                       (const bf16 *)dout, (const bf16 *)q, (const bf16 *)k,
                                       (const bf16 *)v, (const bf16 *)out, lse, offsets, B, T,
                                       Hq, Hkv, D, max_len) == 0)
        return;
    if (path != ATTN_SIMPLE &&
        cuda_flash_attention_backward(c, (bf16 *)dq, (bf16 *)dk, (bf16 *)dv,
                                      (const bf16 *)dout, (const bf16 *)q, (const bf16 *)k,
                                      (const bf16 *)v, (const bf16 *)out, lse, offsets, B, T,
                                      Hq, Hkv, D, max_len) == 0)
        return;
    const float scale = 1.0f / sqrtf((float)D);
    const long long qrows = (long long)T * Hq, krows = (long long)T * Hkv;
    float *delta = (float *)cuda_scratch(c, SCRATCH_ATTN, (size_t)qrows * sizeof(float));
    if (!delta) return;
    const unsigned gq = cuda_blocks((size_t)qrows, ATT_WARPS);
    const unsigned gk = cuda_blocks((size_t)krows, ATT_WARPS);
#define ATT_DELTA(N)                                                                       \
    attn_delta_kernel<N><<<gq, ATT_WARPS * 32, 0, c->stream>>>(delta, (const bf16 *)dout,  \
                                                               (const bf16 *)out, qrows, D)
    ATT_DISPATCH((D + 31) / 32, ATT_DELTA)
#undef ATT_DELTA
    CU_LAUNCH_CHECK(c, "attn_delta_kernel");
#define ATT_DQ(N)                                                                          \
    attn_dq_kernel<N><<<gq, ATT_WARPS * 32, 0, c->stream>>>(                               \
        (bf16 *)dq, (const bf16 *)dout, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, \
        lse, delta, offsets, B, T, Hq, Hkv, D, scale)
    ATT_DISPATCH((D + 31) / 32, ATT_DQ)
#undef ATT_DQ
    CU_LAUNCH_CHECK(c, "attn_dq_kernel");
#define ATT_DKDV(N)                                                                        \
    attn_dkdv_kernel<N><<<gk, ATT_WARPS * 32, 0, c->stream>>>(                             \
        (bf16 *)dk, (bf16 *)dv, (const bf16 *)dout, (const bf16 *)q, (const bf16 *)k,      \
        (const bf16 *)v, lse, delta, offsets, B, T, Hq, Hkv, D, scale)
    ATT_DISPATCH((D + 31) / 32, ATT_DKDV)
#undef ATT_DKDV
    CU_LAUNCH_CHECK(c, "attn_dkdv_kernel");
}

void cuda_attention_register(rlvr_backend *be) {
    be->attention_forward = attention_forward;
    be->attention_backward = attention_backward;
}
