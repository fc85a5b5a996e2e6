/*
 * kernels/cuda/elementwise.cu — SwiGLU (silu(gate)·up) forward/backward (separate or
 * stacked gate|up rows), the residual add, the rotary embedding (HF half-split
 * convention) forward/backward, and the stacked q/k/v projection's split (+ rope; in
 * generation also into the KV cache: qkv_split_store) and its gradient's merge (+ inverse
 * rope).
 *
 * Elementwise ops take the 16-byte path (8 bf16 per access) when every pointer is
 * 16-byte aligned; the n % 8 tail and unaligned inputs go element by element.
 * Outputs may alias inputs: each element is read before it is written, by one thread.
 */
#include <string.h>

#include "kernels/composite.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_internal.cuh"

/* silu(g) = g·σ(g); d silu/dg = σ(g)·(1 + g·(1 − σ(g))) (as kernels/cpu/elementwise.c) */
struct swiglu_fwd_op {
    bf16 *out;
    const bf16 *gate, *up;
    template <int W> __device__ void run(size_t i) const {
        float g[W], u[W], o[W];
        load_bf<W>(gate + i, g);
        load_bf<W>(up + i, u);
#pragma unroll
        for (int k = 0; k < W; k++) o[k] = g[k] / (1.0f + expf(-g[k])) * u[k];
        store_bf<W>(out + i, o);
    }
};

struct swiglu_bwd_op {
    bf16 *dgate, *dup;
    const bf16 *dout, *gate, *up;
    template <int W> __device__ void run(size_t i) const {
        float dy[W], g[W], u[W], dg[W], du[W];
        load_bf<W>(dout + i, dy);
        load_bf<W>(gate + i, g);
        load_bf<W>(up + i, u);
#pragma unroll
        for (int k = 0; k < W; k++) {
            const float sig = 1.0f / (1.0f + expf(-g[k]));
            dg[k] = dy[k] * u[k] * sig * (1.0f + g[k] * (1.0f - sig));
            du[k] = dy[k] * g[k] * sig;
        }
        store_bf<W>(dgate + i, dg);
        store_bf<W>(dup + i, du);
    }
};

struct add_op {
    bf16 *out;
    const bf16 *a, *b;
    template <int W> __device__ void run(size_t i) const {
        float x[W], y[W];
        load_bf<W>(a + i, x);
        load_bf<W>(b + i, y);
#pragma unroll
        for (int k = 0; k < W; k++) x[k] += y[k];
        store_bf<W>(out + i, x);
    }
};

/* vec: threads [0, n/8) take 8 elements each, threads [n/8, n/8 + n%8) one tail element
 * each; otherwise thread i takes element i. */
template <class Op> static __global__ void ew_kernel(Op op, size_t n, int vec) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (vec) {
        const size_t n8 = n / 8;
        if (k < n8) {
            op.template run<8>(k * 8);
            return;
        }
        k = n8 * 8 + (k - n8);
    }
    if (k < n) op.template run<1>(k);
}

template <class Op> static void ew_launch(cuda_ctx *c, const Op &op, size_t n, int vec,
                                          const char *name) {
    if (n == 0) return;
    const size_t work = vec ? n / 8 + n % 8 : n;
    cuda_launch_dep(c, name, ew_kernel<Op>, cuda_blocks(work, 256), 256, 0, op, n, vec);
}

/* The stacked layout: element e = t·I + i of out reads gate = gu[t·2I + i] and
 * up = gu[t·2I + I + i]; with I % 8 == 0 a group of 8 never crosses a row. */
struct swiglu_packed_fwd_op {
    bf16 *out;
    const bf16 *gu;
    size_t I;
    template <int W> __device__ void run(size_t e) const {
        const size_t t = e / I, i = e - t * I;
        swiglu_fwd_op op = {out + t * I, gu + t * 2 * I, gu + t * 2 * I + I};
        op.template run<W>(i);
    }
};

struct swiglu_packed_bwd_op {
    bf16 *dgu;
    const bf16 *dout, *gu;
    size_t I;
    template <int W> __device__ void run(size_t e) const {
        const size_t t = e / I, i = e - t * I;
        swiglu_bwd_op op = {dgu + t * 2 * I, dgu + t * 2 * I + I, dout + t * I, gu + t * 2 * I,
                            gu + t * 2 * I + I};
        op.template run<W>(i);
    }
};

static void swiglu_forward(rlvr_backend *be, void *out, const void *gate, const void *up,
                           size_t n) {
    swiglu_fwd_op op = {(bf16 *)out, (const bf16 *)gate, (const bf16 *)up};
    const int vec = cuda_aligned16(out) && cuda_aligned16(gate) && cuda_aligned16(up);
    ew_launch(cuda_get(be), op, n, vec, "swiglu_forward");
}

static void swiglu_backward(rlvr_backend *be, void *dgate, void *dup, const void *dout,
                            const void *gate, const void *up, size_t n) {
    swiglu_bwd_op op = {(bf16 *)dgate, (bf16 *)dup, (const bf16 *)dout, (const bf16 *)gate,
                        (const bf16 *)up};
    const int vec = cuda_aligned16(dgate) && cuda_aligned16(dup) && cuda_aligned16(dout) &&
                    cuda_aligned16(gate) && cuda_aligned16(up);
    ew_launch(cuda_get(be), op, n, vec, "swiglu_backward");
}

static void swiglu_packed_forward(rlvr_backend *be, void *out, const void *gu, int T, int I) {
    if (T <= 0 || I <= 0) return;
    swiglu_packed_fwd_op op = {(bf16 *)out, (const bf16 *)gu, (size_t)I};
    const int vec = I % 8 == 0 && cuda_aligned16(out) && cuda_aligned16(gu);
    ew_launch(cuda_get(be), op, (size_t)T * I, vec, "swiglu_packed_forward");
}

static void swiglu_packed_backward(rlvr_backend *be, void *dgu, const void *dout,
                                   const void *gu, int T, int I) {
    if (T <= 0 || I <= 0) return;
    swiglu_packed_bwd_op op = {(bf16 *)dgu, (const bf16 *)dout, (const bf16 *)gu, (size_t)I};
    const int vec = I % 8 == 0 && cuda_aligned16(dgu) && cuda_aligned16(dout) &&
                    cuda_aligned16(gu);
    ew_launch(cuda_get(be), op, (size_t)T * I, vec, "swiglu_packed_backward");
}

static void add(rlvr_backend *be, void *out, const void *a, const void *b, size_t n) {
    add_op op = {(bf16 *)out, (const bf16 *)a, (const bf16 *)b};
    const int vec = cuda_aligned16(out) && cuda_aligned16(a) && cuda_aligned16(b);
    ew_launch(cuda_get(be), op, n, vec, "add");
}

/* ---- rotary embedding --------------------------------------------------------------
 * One thread per (t, i < D/2, h): the angle and the pair's rotation of rope_angle and
 * rope_rotate (cuda_internal.cuh: (float)pos[t]·inv_freq[i] in fp32 with the accurate
 * sincosf); sign = −1 for the backward. An odd D leaves the last element of each head
 * untouched (as the CPU reference). */
static __global__ void rope_kernel(bf16 *x, const int *pos, const float *inv_freq, int T,
                                   int H, int D, float sign) {
    const int half = D / 2;
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t total = (size_t)T * H * half;
    if (k >= total) return;
    const int i = (int)(k % half);
    const size_t th = k / half; /* t·H + h */
    const int t = (int)(th / H);
    float s, co;
    rope_angle(pos[t], inv_freq[i], sign, &s, &co);
    bf16 *v = x + th * D;
    float x1 = bf2f(v[i]), x2 = bf2f(v[i + half]);
    rope_rotate(&x1, &x2, s, co);
    v[i] = f2bf(x1);
    v[i + half] = f2bf(x2);
}

static void rope_launch(rlvr_backend *be, void *x, const int *pos, const float *inv_freq,
                        int T, int H, int D, float sign) {
    cuda_ctx *c = cuda_get(be);
    const size_t total = (size_t)(T > 0 ? T : 0) * (H > 0 ? H : 0) * (D > 1 ? D / 2 : 0);
    if (total == 0) return;
    rope_kernel<<<cuda_blocks(total, 256), 256, 0, c->stream>>>((bf16 *)x, pos, inv_freq, T,
                                                                H, D, sign);
    CU_LAUNCH_CHECK(c, "rope_kernel");
}

static void rope_forward(rlvr_backend *be, void *x, const int *pos, const float *inv_freq,
                         int T, int H, int D) {
    rope_launch(be, x, pos, inv_freq, T, H, D, 1.0f);
}
static void rope_backward(rlvr_backend *be, void *dx, const int *pos, const float *inv_freq,
                          int T, int H, int D) {
    rope_launch(be, dx, pos, inv_freq, T, H, D, -1.0f);
}

/* ---- the stacked q/k/v rows ----------------------------------------------------------
 * One thread per (t, head h of the Hq+2·Hkv heads of a stacked row, i < ⌈D/2⌉): i < D/2
 * moves the pair (i, i + D/2), rotated as rope_kernel rotates it (rope_angle, rope_rotate)
 * when the head is a q or k head and pos != NULL; i = D/2 (odd D only) moves the last
 * element unrotated. to_stacked = 0: qkv → q, k, v (split); 1: q, k, v → qkv (merge).
 * cache (split only, may be NULL): k and v also go to their cache slot, as kv_store
 * copies them (qkv_split_store). */
struct qkv_cache {
    bf16 *kc, *vc;
    const int *slots;
};

/* Where head h (>= Hq: a k or v head) of token t also goes in the cache; NULL when
 * nowhere (no cache, a q head, a negative slot). */
static __device__ __forceinline__ bf16 *qkv_cache_row(const qkv_cache &cache, int t, int h,
                                                      int Hq, int Hkv, int D) {
    if (!cache.kc || h < Hq) return NULL;
    const int slot = cache.slots[t];
    if (slot < 0) return NULL;
    const int hk = h < Hq + Hkv ? h - Hq : h - Hq - Hkv;
    return (h < Hq + Hkv ? cache.kc : cache.vc) + ((size_t)slot * Hkv + hk) * D;
}

static __global__ void qkv_move_kernel(bf16 *qkv, bf16 *q, bf16 *k, bf16 *v, qkv_cache cache,
                                       const int *pos, const float *inv_freq, int T, int Hq,
                                       int Hkv, int D, float sign, int to_stacked) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    const int half = D / 2, slots = (D + 1) / 2, H = Hq + 2 * Hkv;
    const size_t n = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= (size_t)T * H * slots) return;
    const int i = (int)(n % slots);
    const size_t th = n / slots;
    const int h = (int)(th % H), t = (int)(th / H);
    bf16 *s = qkv + th * D; /* the head's D elements in the stacked row */
    bf16 *p = h < Hq         ? q + ((size_t)t * Hq + h) * D
              : h < Hq + Hkv ? k + ((size_t)t * Hkv + (h - Hq)) * D
                             : v + ((size_t)t * Hkv + (h - Hq - Hkv)) * D;
    bf16 *src = to_stacked ? p : s, *dst = to_stacked ? s : p;
    bf16 *row = qkv_cache_row(cache, t, h, Hq, Hkv, D); /* also here, or NULL */
    if (i == half) { /* odd D: the last element */
        dst[D - 1] = src[D - 1];
        if (row) row[D - 1] = src[D - 1];
        return;
    }
    bf16 a, b;
    if (!pos || h >= Hq + Hkv) {
        a = src[i];
        b = src[i + half];
    } else {
        float sn, co;
        rope_angle(pos[t], inv_freq[i], sign, &sn, &co);
        float x1 = bf2f(src[i]), x2 = bf2f(src[i + half]);
        rope_rotate(&x1, &x2, sn, co);
        a = f2bf(x1);
        b = f2bf(x2);
    }
    dst[i] = a;
    dst[i + half] = b;
    if (row) {
        row[i] = a;
        row[i + half] = b;
    }
}

/* The 16-byte form (cuda_row_vec; D % 16 == 0, every pointer 16-byte aligned): one
 * thread per (t, head, chunk of 8 pairs): the chunk at i0 = 8·c of the first half and its
 * partner at i0 + D/2, each one 16-byte access, rotated element by element with the
 * arithmetic above. */
static __global__ void qkv_move_vec_kernel(bf16 *qkv, bf16 *q, bf16 *k, bf16 *v,
                                           qkv_cache cache, const int *pos,
                                           const float *inv_freq, int T, int Hq, int Hkv,
                                           int D, float sign, int to_stacked) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    const int half = D / 2, cph = half / 8, H = Hq + 2 * Hkv;
    const size_t n = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= (size_t)T * H * cph) return;
    const int i0 = (int)(n % cph) * 8;
    const size_t th = n / cph;
    const int h = (int)(th % H), t = (int)(th / H);
    bf16 *s = qkv + th * D;
    bf16 *p = h < Hq         ? q + ((size_t)t * Hq + h) * D
              : h < Hq + Hkv ? k + ((size_t)t * Hkv + (h - Hq)) * D
                             : v + ((size_t)t * Hkv + (h - Hq - Hkv)) * D;
    bf16 *src = to_stacked ? p : s, *dst = to_stacked ? s : p;
    float x1[8], x2[8];
    load_bf<8>(src + i0, x1);
    load_bf<8>(src + i0 + half, x2);
    if (pos && h < Hq + Hkv) {
#pragma unroll
        for (int j = 0; j < 8; j++) {
            float sn, co;
            rope_angle(pos[t], inv_freq[i0 + j], sign, &sn, &co);
            rope_rotate(&x1[j], &x2[j], sn, co);
        }
    }
    store_bf<8>(dst + i0, x1);
    store_bf<8>(dst + i0 + half, x2);
    if (bf16 *row = qkv_cache_row(cache, t, h, Hq, Hkv, D)) {
        store_bf<8>(row + i0, x1);
        store_bf<8>(row + i0 + half, x2);
    }
}

static void qkv_move(rlvr_backend *be, bf16 *qkv, bf16 *q, bf16 *k, bf16 *v, qkv_cache cache,
                     const int *pos, const float *inv_freq, int T, int Hq, int Hkv, int D,
                     float sign, int to_stacked, const char *name) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0 || D <= 0 || Hq + 2 * Hkv <= 0) return;
    if (cuda_row_vec(c) && D % 16 == 0 && cuda_aligned16(qkv) && cuda_aligned16(q) &&
        cuda_aligned16(k) && cuda_aligned16(v) &&
        (!cache.kc || (cuda_aligned16(cache.kc) && cuda_aligned16(cache.vc)))) {
        const size_t total = (size_t)T * (Hq + 2 * Hkv) * (D / 16);
        cuda_launch_dep(c, name, qkv_move_vec_kernel, cuda_blocks(total, 256), 256, 0, qkv, q,
                        k, v, cache, pos, inv_freq, T, Hq, Hkv, D, sign, to_stacked);
        return;
    }
    const size_t total = (size_t)T * (Hq + 2 * Hkv) * ((D + 1) / 2);
    cuda_launch_dep(c, name, qkv_move_kernel, cuda_blocks(total, 256), 256, 0, qkv, q, k, v,
                    cache, pos, inv_freq, T, Hq, Hkv, D, sign, to_stacked);
}

static void qkv_split(rlvr_backend *be, void *q, void *k, void *v, const void *qkv,
                      const int *pos, const float *inv_freq, int T, int Hq, int Hkv, int D) {
    qkv_move(be, (bf16 *)qkv, (bf16 *)q, (bf16 *)k, (bf16 *)v, qkv_cache{}, pos, inv_freq, T,
             Hq, Hkv, D, 1.0f, 0, "qkv_split");
}

/* The split writing k and v into the cache too (one launch instead of qkv_split and
 * kv_store; the same bits); with the decode fusions off (RLVR_DECODE_FUSE=0), the two. */
static void qkv_split_store(rlvr_backend *be, void *q, void *k, void *v, void *k_cache,
                            void *v_cache, const int *slots, const void *qkv, const int *pos,
                            const float *inv_freq, int T, int Hq, int Hkv, int D) {
    if (!cuda_decode_fuse(cuda_get(be))) {
        rlvr_qkv_split_store_apart(be, q, k, v, k_cache, v_cache, slots, qkv, pos, inv_freq, T,
                                   Hq, Hkv, D);
        return;
    }
    const qkv_cache cache = {(bf16 *)k_cache, (bf16 *)v_cache, slots};
    qkv_move(be, (bf16 *)qkv, (bf16 *)q, (bf16 *)k, (bf16 *)v, cache, pos, inv_freq, T, Hq,
             Hkv, D, 1.0f, 0, "qkv_split_store");
}

static void qkv_merge(rlvr_backend *be, void *dqkv, const void *dq, const void *dk,
                      const void *dv, const int *pos, const float *inv_freq, int T, int Hq,
                      int Hkv, int D) {
    qkv_move(be, (bf16 *)dqkv, (bf16 *)dq, (bf16 *)dk, (bf16 *)dv, qkv_cache{}, pos, inv_freq,
             T, Hq, Hkv, D, -1.0f, 1, "qkv_merge");
}

extern "C" int rlvr_cuda_set_row_vec(rlvr_backend *be, int on) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->row_vec = cuda_switch(on);
    return 0;
}

void cuda_elementwise_register(rlvr_backend *be) {
    be->swiglu_forward = swiglu_forward;
    be->swiglu_backward = swiglu_backward;
    be->swiglu_packed_forward = swiglu_packed_forward;
    be->swiglu_packed_backward = swiglu_packed_backward;
    be->add = add;
    be->qkv_split = qkv_split;
    be->qkv_split_store = qkv_split_store;
    be->qkv_merge = qkv_merge;
    be->rope_forward = rope_forward;
    be->rope_backward = rope_backward;
}
