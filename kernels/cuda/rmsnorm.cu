/*
 * kernels/cuda/rmsnorm.cu — RMSNorm as Hugging Face computes it, fp32 math on bf16
 * storage: rstd = 1/sqrt(mean(x²) + eps), y = w ⊙ (x·rstd).
 * Backward with x̂ = x·rstd, g = dy ⊙ w: dx = rstd·(g − x̂·mean(g ⊙ x̂)) (= or +=),
 * dw += Σ_rows dy ⊙ x̂ through the deterministic column sum (matmul.cu).
 * One block per row; rows of any width C (strided loops), fixed-order block sums.
 * Fused backward (the default since the sixth H200 run; RLVR_RMSNORM_BWD=twopass or
 * rlvr_cuda_set_rmsnorm_backward(be, 0) selects the two-pass kernels): one
 * pass over dy and x per row group computes din and the group's dw partial, then a
 * fixed-order sum over groups: 2 launches instead of 3, dy and x read once instead of twice.
 * add_rmsnorm_forward: the residual add in the same pass (sum stored as bf16, the norm
 * taken of the rounded sum with the same thread layout: the bits of add + rmsnorm).
 * add_rmsnorm_swiglu / add_rmsnorm_matmul: that, and for decode-sized N the GEMV of the
 * norm (gate|up + SwiGLU, or a plain projection) in the same kernel (the decode fusions;
 * see add_rmsnorm_gemv_kernel).
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/composite.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_internal.cuh"

static __global__ void rmsnorm_forward_kernel(bf16 *out, float *rstd, const bf16 *in,
                                              const bf16 *w, int C, float eps) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    __shared__ float sh[32];
    const size_t row = (size_t)blockIdx.x * C;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        const float x = bf2f(in[row + i]);
        ss += x * x;
    }
    ss = block_sum(ss, sh);
    const float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (threadIdx.x == 0 && rstd) rstd[blockIdx.x] = r;
    for (int i = threadIdx.x; i < C; i += blockDim.x)
        out[row + i] = f2bf(bf2f(w[i]) * (bf2f(in[row + i]) * r));
}

static __global__ void add_rmsnorm_forward_kernel(bf16 *sum, bf16 *out, float *rstd,
                                                  const bf16 *a, const bf16 *b, const bf16 *w,
                                                  int C, float eps) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    __shared__ float sh[32];
    const size_t row = (size_t)blockIdx.x * C;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        const bf16 s = f2bf(bf2f(a[row + i]) + bf2f(b[row + i]));
        sum[row + i] = s; /* read back below by this same thread */
        const float x = bf2f(s);
        ss += x * x;
    }
    ss = block_sum(ss, sh);
    const float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (threadIdx.x == 0 && rstd) rstd[blockIdx.x] = r;
    for (int i = threadIdx.x; i < C; i += blockDim.x)
        out[row + i] = f2bf(bf2f(w[i]) * (bf2f(sum[row + i]) * r));
}

static __global__ void rmsnorm_backward_kernel(bf16 *din, const bf16 *dout, const bf16 *in,
                                               const bf16 *w, const float *rstd, int C,
                                               int accumulate) {
    __shared__ float sh[32];
    const size_t row = (size_t)blockIdx.x * C;
    const float r = rstd[blockIdx.x];
    float dot = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x)
        dot += bf2f(dout[row + i]) * bf2f(w[i]) * (bf2f(in[row + i]) * r);
    dot = block_sum(dot, sh);
    const float mean = dot / (float)C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        const float x = bf2f(in[row + i]), dy = bf2f(dout[row + i]);
        float v = r * (dy * bf2f(w[i]) - x * r * mean);
        if (accumulate) v += bf2f(din[row + i]);
        din[row + i] = f2bf(v);
    }
}

/* ---- fused backward ------------------------------------------------------------------
 * Layout (depends on N and C only, so the same shapes give the same bits):
 *   chunk = VEC consecutive columns (VEC = 8: one 16-byte access; 1: scalar), chunks =
 *   ceil(C / VEC); a row is owned by L lanes (L = the power of two >= chunks, at most 32),
 *   lane `sub` of a row taking chunks q = k·L + sub, k < K; a warp holds 32/L rows at a
 *   time; the block's S = RMSF_WARPS·32/L row slots take the group's rows i·S + slot,
 *   i < rps, so a group is R = S·rps consecutive rows, group g = blockIdx.x. rps =
 *   RMSF_RPS unless RLVR_RMSNORM_BWD_RPS=1..16 (the dw bits depend on it): at
 *   C 896 and 8192 rows, 4 makes 256 blocks of 8 warps, under two per SM. The sixth H200
 *   run measured ~48 µs per call where the traffic needs ~10 µs: each warp's 4 rows ran
 *   one after another, each with two dependent memory round trips (dy and x; then the din
 *   it accumulates into, loaded only after the row's mean); since session 21 the held-row
 *   form loads all three at once (one round trip per row; unmeasured). The next lease's
 *   `rmsrps1` row tries 1 row per slot (1,024 blocks).
 *   dw partial: each lane accumulates dy·(x·rstd) over its rows in fp32 registers (rows in
 *   ascending order); the 32/L segments of a warp are combined by an xor butterfly, the
 *   warps of the block in ascending order through shared memory [C]; part[g, C] holds the
 *   group's sum. The final kernel adds Σ_g part[g, c] (double) into dw[c]. */
enum { RMSF_WARPS = 8, RMSF_RPS = 4, RMSF_RPS_MAX = 16, RMSF_FIN_TY = 16 };

/* VEC bf16 columns as they came from memory: one 16-byte word (VEC 8) or one value. */
template <int VEC> struct rmsf_raw {
    uint4 u;
};
template <> struct rmsf_raw<1> {
    bf16 h;
};
template <int VEC>
static __device__ __forceinline__ void rmsf_load(rmsf_raw<VEC> &r, const bf16 *p) {
    if constexpr (VEC == 8) r.u = *reinterpret_cast<const uint4 *>(p);
    else r.h = *p;
}
template <int VEC>
static __device__ __forceinline__ void rmsf_zero(rmsf_raw<VEC> &r) {
    if constexpr (VEC == 8) r.u = make_uint4(0u, 0u, 0u, 0u);
    else r.h = f2bf(0.0f);
}
template <int VEC>
static __device__ __forceinline__ void rmsf_floats(const rmsf_raw<VEC> &r, float *f) {
    if constexpr (VEC == 8) unpack_bf8(r.u, f);
    else f[0] = bf2f(r.h);
}

/* A chunk of the row (columns c0..c0+VEC) as floats: from the bf16 words held in registers
 * (HOLD: hdy/hx are that chunk's) or loaded from memory. */
template <int VEC, bool HOLD>
static __device__ __forceinline__ void rmsf_chunk(float *dy, float *x, const rmsf_raw<VEC> &hdy,
                                                  const rmsf_raw<VEC> &hx, const bf16 *dyr,
                                                  const bf16 *xr, int c0) {
    if (HOLD) {
        rmsf_floats<VEC>(hdy, dy);
        rmsf_floats<VEC>(hx, x);
    } else {
        load_bf<VEC>(dyr + c0, dy);
        load_bf<VEC>(xr + c0, x);
    }
}

/* HOLD (K·VEC <= 32 columns a lane): a row's dy, x — and, accumulating, the din it adds to —
 * are loaded once, all at the start of the row, and kept as bf16 words (4 registers per 8
 * columns, not 8): one memory round trip per row instead of two (the din load used to wait
 * for the row's mean), within 128 registers (two blocks of 8 warps per SM). The values and
 * the order of every operation are as before: the same bits. */
template <int VEC, int K>
static __global__ void __launch_bounds__(RMSF_WARPS * 32)
    rmsnorm_backward_fused_kernel(bf16 *din, float *part, const bf16 *dout, const bf16 *in,
                                  const bf16 *w, const float *rstd, int N, int C, int L,
                                  int rps, int accumulate) {
    constexpr bool HOLD = K * VEC <= 32; /* the row stays in registers between the passes */
    constexpr int KH = HOLD ? K : 1;
    extern __shared__ float sacc[];      /* [C] when part != NULL */
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int segs = 32 / L, seg = lane / L, sub = lane & (L - 1);
    const int S = RMSF_WARPS * segs, slot = warp * segs + seg;
    const long long r0 = (long long)blockIdx.x * S * rps;
    const bool add_old = din && accumulate;
    float acc[K][VEC];
#pragma unroll
    for (int k = 0; k < K; k++)
#pragma unroll
        for (int j = 0; j < VEC; j++) acc[k][j] = 0.0f;
    for (int i = 0; i < rps; i++) {
        const long long row = r0 + (long long)i * S + slot;
        const bool live = row < N; /* uniform over the row's L lanes */
        const float r = live ? rstd[row] : 0.0f;
        const bf16 *dyr = dout + (live ? row : 0) * (long long)C;
        const bf16 *xr = in + (live ? row : 0) * (long long)C;
        bf16 *drow = din ? din + (live ? row : 0) * (long long)C : NULL;
        rmsf_raw<VEC> hdy[KH], hx[KH], hold[KH];
        if (HOLD) {
#pragma unroll
            for (int k = 0; k < K; k++) {
                const int c0 = (k * L + sub) * VEC;
                if (live && c0 < C) {
                    rmsf_load<VEC>(hdy[HOLD ? k : 0], dyr + c0);
                    rmsf_load<VEC>(hx[HOLD ? k : 0], xr + c0);
                } else {
                    rmsf_zero<VEC>(hdy[HOLD ? k : 0]);
                    rmsf_zero<VEC>(hx[HOLD ? k : 0]);
                }
                if (add_old && live && c0 < C) rmsf_load<VEC>(hold[HOLD ? k : 0], drow + c0);
                else rmsf_zero<VEC>(hold[HOLD ? k : 0]); /* read only when loaded */
            }
        }
        float mean = 0.0f;
        if (din) { /* uniform: every lane takes the shuffles below */
            float dot = 0.0f;
#pragma unroll
            for (int k = 0; k < K; k++) {
                const int c0 = (k * L + sub) * VEC;
                if (!live || c0 >= C) continue;
                float dy[VEC], x[VEC], wv[VEC];
                rmsf_chunk<VEC, HOLD>(dy, x, hdy[HOLD ? k : 0], hx[HOLD ? k : 0], dyr, xr, c0);
                load_bf<VEC>(w + c0, wv);
#pragma unroll
                for (int j = 0; j < VEC; j++) dot += dy[j] * wv[j] * (x[j] * r);
            }
            for (int o = L >> 1; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            mean = dot / (float)C;
        }
#pragma unroll
        for (int k = 0; k < K; k++) {
            const int c0 = (k * L + sub) * VEC;
            if (!live || c0 >= C) continue;
            float dy[VEC], x[VEC];
            rmsf_chunk<VEC, HOLD>(dy, x, hdy[HOLD ? k : 0], hx[HOLD ? k : 0], dyr, xr, c0);
            if (din) {
                bf16 *dr = drow + c0;
                float wv[VEC], v[VEC], old[VEC];
                load_bf<VEC>(w + c0, wv);
                if (add_old) {
                    if (HOLD) rmsf_floats<VEC>(hold[HOLD ? k : 0], old);
                    else load_bf<VEC>(dr, old);
                }
#pragma unroll
                for (int j = 0; j < VEC; j++) {
                    v[j] = r * (dy[j] * wv[j] - x[j] * r * mean);
                    if (add_old) v[j] += old[j];
                }
                store_bf<VEC>(dr, v);
            }
            if (part) {
#pragma unroll
                for (int j = 0; j < VEC; j++) acc[k][j] += dy[j] * (x[j] * r);
            }
        }
    }
    if (!part) return;
    /* The warp's segments hold the same columns: xor butterfly (fixed order). */
    for (int o = L; o < 32; o <<= 1)
#pragma unroll
        for (int k = 0; k < K; k++)
#pragma unroll
            for (int j = 0; j < VEC; j++)
                acc[k][j] += __shfl_xor_sync(0xffffffffu, acc[k][j], o);
    /* Then the warps in ascending order. */
    for (int wi = 0; wi < RMSF_WARPS; wi++) {
        if (warp == wi && seg == 0) {
#pragma unroll
            for (int k = 0; k < K; k++) {
                const int c0 = (k * L + sub) * VEC;
#pragma unroll
                for (int j = 0; j < VEC; j++)
                    if (c0 + j < C)
                        sacc[c0 + j] = wi == 0 ? acc[k][j] : sacc[c0 + j] + acc[k][j];
            }
        }
        __syncthreads();
    }
    float *pg = part + (size_t)blockIdx.x * C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) pg[c] = sacc[c];
}

/* grid ceil(C/32), block (32, RMSF_FIN_TY): dw[c] += Σ_g part[g, c], thread row ty summing
 * groups ty, ty + RMSF_FIN_TY, ... in double, the rows then in ascending order. */
static __global__ void rmsnorm_backward_final_kernel(float *dw, const float *part, int G,
                                                     int C) {
    __shared__ double sh[RMSF_FIN_TY][32];
    const int c = blockIdx.x * 32 + threadIdx.x;
    double s = 0.0;
    if (c < C)
        for (int g = threadIdx.y; g < G; g += RMSF_FIN_TY) s += part[(size_t)g * C + c];
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        double t = 0.0;
        for (int i = 0; i < RMSF_FIN_TY; i++) t += sh[i][threadIdx.x];
        dw[c] += (float)t;
    }
}

typedef void (*rmsf_kernel_fn)(bf16 *, float *, const bf16 *, const bf16 *, const bf16 *,
                               const float *, int, int, int, int, int);

/* Rows per lane slot of a group (the layout above): RLVR_RMSNORM_BWD_RPS, read at every
 * call (a test switches it inside one process), else RMSF_RPS. */
static int rmsf_rps(void) {
    const char *e = getenv("RLVR_RMSNORM_BWD_RPS");
    const int v = e ? atoi(e) : 0;
    return v >= 1 && v <= RMSF_RPS_MAX ? v : RMSF_RPS;
}

/* The instantiation for VEC and at least `need` chunks per lane (NULL: none that wide). */
static rmsf_kernel_fn rmsf_pick(int vec, int need, int *K) {
    static const int k8[] = {1, 2, 3, 4, 6, 8, 12, 16};
    static const rmsf_kernel_fn f8[] = {
        rmsnorm_backward_fused_kernel<8, 1>,  rmsnorm_backward_fused_kernel<8, 2>,
        rmsnorm_backward_fused_kernel<8, 3>,  rmsnorm_backward_fused_kernel<8, 4>,
        rmsnorm_backward_fused_kernel<8, 6>,  rmsnorm_backward_fused_kernel<8, 8>,
        rmsnorm_backward_fused_kernel<8, 12>, rmsnorm_backward_fused_kernel<8, 16>};
    static const int k1[] = {1, 2, 4, 8, 16, 32};
    static const rmsf_kernel_fn f1[] = {
        rmsnorm_backward_fused_kernel<1, 1>,  rmsnorm_backward_fused_kernel<1, 2>,
        rmsnorm_backward_fused_kernel<1, 4>,  rmsnorm_backward_fused_kernel<1, 8>,
        rmsnorm_backward_fused_kernel<1, 16>, rmsnorm_backward_fused_kernel<1, 32>};
    const int *ks = vec == 8 ? k8 : k1;
    const rmsf_kernel_fn *fs = vec == 8 ? f8 : f1;
    const int n = vec == 8 ? 8 : 6;
    for (int i = 0; i < n; i++)
        if (ks[i] >= need) {
            *K = ks[i];
            return fs[i];
        }
    return NULL;
}

/* The fused backward; 0 when it ran, -1 when the shape is wider than its instantiations
 * (C > 4096, or C > 1024 when C % 8 != 0 or a pointer is not 16-byte aligned). */
static int rmsnorm_backward_fused(cuda_ctx *c, bf16 *din, float *dw, const bf16 *dout,
                                  const bf16 *in, const bf16 *w, const float *rstd, int N,
                                  int C, int accumulate) {
    const int vec = C % 8 == 0 && cuda_aligned16(dout) && cuda_aligned16(in) &&
                            cuda_aligned16(w) && (!din || cuda_aligned16(din))
                        ? 8
                        : 1;
    const int chunks = (C + vec - 1) / vec;
    int L = 1;
    while (L < chunks && L < 32) L <<= 1;
    int K = 0;
    rmsf_kernel_fn fn = rmsf_pick(vec, (chunks + L - 1) / L, &K);
    if (!fn) return -1;
    const int rps = rmsf_rps();
    const int S = RMSF_WARPS * (32 / L), R = S * rps;
    const int G = (int)(((long long)N + R - 1) / R);
    float *part = NULL;
    if (dw) {
        part = (float *)cuda_scratch(c, SCRATCH_RMS_BWD, (size_t)G * C * sizeof(float));
        if (!part) return 0; /* error recorded */
    }
    fn<<<G, RMSF_WARPS * 32, dw ? (size_t)C * sizeof(float) : 0, c->stream>>>(
        din, part, dout, in, w, rstd, N, C, L, rps, accumulate);
    CU_LAUNCH_CHECK(c, "rmsnorm_backward_fused_kernel");
    if (dw) {
        rmsnorm_backward_final_kernel<<<cuda_blocks((size_t)C, 32), dim3(32, RMSF_FIN_TY), 0,
                                        c->stream>>>(dw, part, G, C);
        CU_LAUNCH_CHECK(c, "rmsnorm_backward_final_kernel");
    }
    return 0;
}

extern "C" int rlvr_cuda_set_rmsnorm_backward(rlvr_backend *be, int fused) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->rms_bwd = cuda_switch(fused);
    return 0;
}

static int row_threads(int C) {
    if (C >= 1024) return 512;
    if (C >= 256) return 256;
    return C <= 32 ? 32 : (C + 31) / 32 * 32 > 128 ? 128 : (C + 31) / 32 * 32;
}

static void rmsnorm_forward(rlvr_backend *be, void *out, float *rstd, const void *in,
                            const void *w, int N, int C, float eps) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0 || C <= 0) return;
    cuda_launch_dep(c, "rmsnorm_forward_kernel", rmsnorm_forward_kernel, N, row_threads(C), 0,
                    (bf16 *)out, rstd, (const bf16 *)in, (const bf16 *)w, C, eps);
}

/* The 16-byte row form of add_rmsnorm_forward (cuda_row_vec; C % 8 == 0, C <= 8·ARV_T·CPT,
 * 16-byte aligned tensors): one block of ARV_T threads per row, thread i owning the 8-wide
 * chunks i, i + ARV_T, ... (CPT at most), which it keeps in registers: a and b read once,
 * the bf16-rounded sum stored and squared, the norm written from the same registers.
 * The sum of squares is taken per thread then block-wide, so rstd may differ from the
 * element-wise kernel's in the last bits (not bit-equal to add + rmsnorm_forward).
 * fill (optional, add_rmsnorm_matmul): row n of fill [N, OC] gets the bias [OC] (OC % 8 ==
 * 0, 16-byte aligned) — the broadcast the next projection's cuBLAS GEMM accumulates onto,
 * written here instead of by matmul.cu's bias fill kernel: one launch fewer per layer. */
enum { ARV_T = 128, ARV_MAX_CPT = 4 };

/* The row arithmetic of thread t (< ARV_T) on one row (a, b: the row's start), shared with
 * the fused add + RMSNorm + GEMV: s[k] = its chunk k's bf16-rounded a + b (as floats), and
 * the return value its sum of their squares in chunk order; active false: nothing, 0. */
template <int CPT>
static __device__ __forceinline__ float arv_sum_chunks(float (&s)[CPT][8], const bf16 *a,
                                                       const bf16 *b, int C, int t,
                                                       bool active) {
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < CPT; k++) {
        const int c0 = (k * ARV_T + t) * 8;
        if (!active || c0 >= C) continue;
        float y[8];
        load_bf<8>(a + c0, s[k]);
        load_bf<8>(b + c0, y);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            s[k][j] = bf2f(f2bf(s[k][j] + y[j])); /* the stored (rounded) sum */
            ss += s[k][j] * s[k][j];
        }
    }
    return ss;
}

/* Then its chunks of the norm, w·(s·r) rounded to bf16, into out (and out2 unless NULL). */
template <int CPT>
static __device__ __forceinline__ void arv_norm_chunks(bf16 *out, bf16 *out2,
                                                       const float (&s)[CPT][8],
                                                       const bf16 *w, float r, int C, int t,
                                                       bool active) {
#pragma unroll
    for (int k = 0; k < CPT; k++) {
        const int c0 = (k * ARV_T + t) * 8;
        if (!active || c0 >= C) continue;
        float wv[8], o[8];
        load_bf<8>(w + c0, wv);
#pragma unroll
        for (int j = 0; j < 8; j++) o[j] = wv[j] * (s[k][j] * r);
        store_bf<8>(out + c0, o);
        if (out2) store_bf<8>(out2 + c0, o);
    }
}
template <int CPT>
static __global__ void __launch_bounds__(ARV_T)
    add_rmsnorm_vec_kernel(bf16 *sum, bf16 *out, float *rstd, const bf16 *a, const bf16 *b,
                           const bf16 *w, int C, float eps, bf16 *fill, const bf16 *bias,
                           int OC) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    __shared__ float sh[32];
    const size_t row = (size_t)blockIdx.x * C;
    const int t = (int)threadIdx.x;
    float s[CPT][8];
    float ss = arv_sum_chunks<CPT>(s, a + row, b + row, C, t, true);
#pragma unroll
    for (int k = 0; k < CPT; k++) /* each thread its own chunks: sum may alias a */
        if ((k * ARV_T + t) * 8 < C) store_bf<8>(sum + row + (k * ARV_T + t) * 8, s[k]);
    ss = block_sum(ss, sh);
    const float r = 1.0f / sqrtf(ss / (float)C + eps);
    if (threadIdx.x == 0 && rstd) rstd[blockIdx.x] = r;
    arv_norm_chunks<CPT>(out + row, NULL, s, w, r, C, t, true);
    if (fill) {
        uint4 *dst = reinterpret_cast<uint4 *>(fill + (size_t)blockIdx.x * OC);
        for (int q = threadIdx.x; q < OC / 8; q += ARV_T)
            dst[q] = reinterpret_cast<const uint4 *>(bias)[q];
    }
}

/* The 16-byte row kernel when it applies (0 when it ran, -1 otherwise), with the optional
 * bias fill of add_rmsnorm_vec_kernel (fill NULL: none). */
static int add_rmsnorm_vec(cuda_ctx *c, bf16 *sum, bf16 *out, float *rstd, const bf16 *a,
                           const bf16 *b, const bf16 *w, int N, int C, float eps, bf16 *fill,
                           const bf16 *bias, int OC) {
    const int cpt = (C / 8 + ARV_T - 1) / ARV_T;
    if (!cuda_row_vec(c) || C % 8 != 0 || cpt > ARV_MAX_CPT || !cuda_aligned16(sum) ||
        !cuda_aligned16(out) || !cuda_aligned16(a) || !cuda_aligned16(b) || !cuda_aligned16(w))
        return -1;
    typedef void (*kernel)(bf16 *, bf16 *, float *, const bf16 *, const bf16 *, const bf16 *,
                           int, float, bf16 *, const bf16 *, int);
    static const kernel by_cpt[ARV_MAX_CPT] = {
        add_rmsnorm_vec_kernel<1>, add_rmsnorm_vec_kernel<2>, add_rmsnorm_vec_kernel<3>,
        add_rmsnorm_vec_kernel<4>};
    cuda_launch_dep(c, "add_rmsnorm_vec_kernel", by_cpt[cpt - 1], N, ARV_T, 0, sum, out, rstd,
                    a, b, w, C, eps, fill, bias, OC);
    return 0;
}

static void add_rmsnorm_forward(rlvr_backend *be, void *sum, void *out, float *rstd,
                                const void *a, const void *b, const void *w, int N, int C,
                                float eps) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0 || C <= 0) return;
    if (add_rmsnorm_vec(c, (bf16 *)sum, (bf16 *)out, rstd, (const bf16 *)a, (const bf16 *)b,
                        (const bf16 *)w, N, C, eps, NULL, NULL, 0) == 0)
        return;
    cuda_launch_dep(c, "add_rmsnorm_forward_kernel", add_rmsnorm_forward_kernel, N,
                    row_threads(C), 0, (bf16 *)sum, (bf16 *)out, rstd, (const bf16 *)a,
                    (const bf16 *)b, (const bf16 *)w, C, eps);
}

/* The fused kernel's prologue (below) for NR rows into xs [NR][C] (bf16, the norm's
 * output), with the arithmetic of add_rmsnorm_forward_kernel launched with VB = 256·K
 * threads: virtual thread v = tid + 256·kk accumulates its strided squares, the warp
 * partials go to sh[] in the order block_sum puts them. Block 0 writes ln and rstd. */
template <int NR, int K>
static __device__ __forceinline__ void arn_norm_rows_ew(bf16 *xs, float *sh, bf16 *ln,
                                                        float *rstd, const bf16 *a,
                                                        const bf16 *b, const bf16 *nw, int C,
                                                        float eps) {
    constexpr int NT = GEMV_WARPS * 32, VB = NT * K;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (int n = 0; n < NR; n++) {
        const size_t row = (size_t)n * C;
        float ss[K];
#pragma unroll
        for (int kk = 0; kk < K; kk++) {
            ss[kk] = 0.0f;
            for (int i = tid + kk * NT; i < C; i += VB) {
                const bf16 s = f2bf(bf2f(a[row + i]) + bf2f(b[row + i]));
                xs[row + i] = s;
                const float x = bf2f(s);
                ss[kk] += x * x;
            }
            ss[kk] = warp_sum(ss[kk]);
        }
        __syncthreads(); /* sh may still be read for the row before */
        if (lane == 0)
#pragma unroll
            for (int kk = 0; kk < K; kk++) sh[warp + GEMV_WARPS * kk] = ss[kk];
        __syncthreads();
        const float tot = warp_sum(lane < GEMV_WARPS * K ? sh[lane] : 0.0f);
        const float r = 1.0f / sqrtf(tot / (float)C + eps);
        if (blockIdx.x == 0 && tid == 0 && rstd) rstd[n] = r;
#pragma unroll
        for (int kk = 0; kk < K; kk++)
            for (int i = tid + kk * NT; i < C; i += VB) {
                const bf16 o = f2bf(bf2f(nw[i]) * (bf2f(xs[row + i]) * r));
                xs[row + i] = o;
                if (blockIdx.x == 0) ln[row + i] = o;
            }
    }
}

/* The same with add_rmsnorm_vec_kernel's arithmetic (the 16-byte row kernel, the default
 * since the sixth H200 run), so that the fused kernel gives its bits: the block's first
 * ARV_T threads play that kernel's threads, thread i owning the 8-wide chunks i,
 * i + ARV_T, ... (CPT of them) in registers; its block_sum over ARV_T / 32 warps; the
 * other warps add zeros and are never read. C % 8 == 0; a, b, nw, ln 16-byte aligned. */
template <int NR, int CPT>
static __device__ __forceinline__ void arn_norm_rows_rv(bf16 *xs, float *sh, bf16 *ln,
                                                        float *rstd, const bf16 *a,
                                                        const bf16 *b, const bf16 *nw, int C,
                                                        float eps) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const bool plays = tid < ARV_T;
    for (int n = 0; n < NR; n++) {
        const size_t row = (size_t)n * C;
        float s[CPT][8];
        float ss = arv_sum_chunks<CPT>(s, a + row, b + row, C, tid, plays);
        ss = warp_sum(ss);
        __syncthreads(); /* sh may still be read for the row before */
        if (lane == 0) sh[warp] = ss;
        __syncthreads();
        const float tot = warp_sum(lane < ARV_T / 32 ? sh[lane] : 0.0f);
        const float r = 1.0f / sqrtf(tot / (float)C + eps);
        if (blockIdx.x == 0 && tid == 0 && rstd) rstd[n] = r;
        arv_norm_chunks<CPT>(xs + row, blockIdx.x == 0 ? ln + row : NULL, s, nw, r, C, tid,
                             plays);
    }
}

/* ---- add + RMSNorm + the GEMV of its output, one kernel for decode-sized N --------------
 * add_rmsnorm_swiglu / add_rmsnorm_matmul / add_rmsnorm_qkv_store for NR <= GEMV_MAX_N
 * rows: every block first
 * computes the rows' sum and norm into shared memory xs [NR][C] (bf16) with the
 * arithmetic of the add_rmsnorm_forward kernel the backend would run apart — K > 0: the
 * element-wise one with VB = row_threads(C) = 256·K threads (arn_norm_rows_ew); K < 0: the
 * 16-byte row kernel with CPT = −K chunks per thread (arn_norm_rows_rv, session 19: the
 * row kernels are the default, and until then the fusion declined with them on) — so
 * rstd and ln have the bits of the unfused op (RLVR_DECODE_NORM_FUSE=0: with the row
 * kernels, the two ops apart); then its warps run the GEMV on xs (gemv_warp_dots), the
 * epilogue by MODE:
 *   ARN_SWIGLU  warp j computes gate and up feature j with gemv_swiglu_kernel's epilogue
 *               (gu, out [NR, F]);
 *   ARN_PLAIN   output feature j with gemv_kernel's (out [NR, F] = ln·wᵀ + bias, F = OC);
 *   ARN_QKV     (session 20) the stacked q|k|v projection's rotation pair j: features
 *               h·D + i and h·D + i + D/2 of head h = j / (D/2), i = j % (D/2) (F = the
 *               pairs), each rounded as gemv_kernel rounds it (the qkv values), then
 *               rotated at pos[n] as the q|k|v split rotates them (q and k heads) and
 *               stored into q, k, v and, for k and v, their cache slot (qkv_split_store's
 *               bits; qkv itself is not written).
 * Block 0 writes ln and rstd. sum may alias a (the residual stream added in place), so it is
 * written by the last block to finish its prologue (a counter in SCRATCH_GEMV_NORM,
 * reset by that block): by then no block reads a or b any more. pf: the GEMV_* flags
 * (gemv_flags): each warp first loads the heads of its weight rows into registers and
 * sends the rest toward L2 (gemv_before_wait), overlapping the kernel before and the
 * prologue. */
enum { ARN_PLAIN = 0, ARN_SWIGLU, ARN_QKV };

/* Where ARN_QKV's epilogue puts the pairs (qkv_split_store's arguments). */
typedef struct {
    bf16 *q, *k, *v, *kc, *vc;
    const int *slots, *pos;
    const float *inv_freq;
    int Hq, Hkv, D;
} arn_qkv_dst;

/* ARN_QKV's epilogue for pair j of NR rows: acc[0] feature h·D + i, acc[1] h·D + i + D/2. */
template <int NR>
static __device__ __forceinline__ void arn_qkv_store(const arn_qkv_dst &d, const bf16 *bias,
                                                     const float (&acc)[2][NR], int j) {
    const int half = d.D / 2, h = j / half, i = j - h * half;
    const int f0 = h * d.D + i, f1 = f0 + half;
    const float b0 = bias ? bf2f(bias[f0]) : 0.0f, b1 = bias ? bf2f(bias[f1]) : 0.0f;
    const bool qk = h < d.Hq + d.Hkv, is_k = h >= d.Hq && qk, rotate = qk && d.pos;
    const int hk = h < d.Hq ? 0 : qk ? h - d.Hq : h - d.Hq - d.Hkv;
    float sn = 0.0f, co = 1.0f;
#pragma unroll
    for (int n = 0; n < NR; n++) {
        float x1 = bf2f(f2bf(acc[0][n] + b0)), x2 = bf2f(f2bf(acc[1][n] + b1));
        if (rotate) {
            rope_angle(d.pos[n], d.inv_freq[i], 1.0f, &sn, &co);
            rope_rotate(&x1, &x2, sn, co);
        }
        const bf16 o0 = f2bf(x1), o1 = f2bf(x2);
        bf16 *dst = h < d.Hq ? d.q + ((size_t)n * d.Hq + h) * d.D
                    : is_k   ? d.k + ((size_t)n * d.Hkv + hk) * d.D
                             : d.v + ((size_t)n * d.Hkv + hk) * d.D;
        dst[i] = o0;
        dst[i + half] = o1;
        const int slot = h >= d.Hq && d.kc ? d.slots[n] : -1;
        if (slot >= 0) {
            bf16 *row = (is_k ? d.kc : d.vc) + ((size_t)slot * d.Hkv + hk) * d.D;
            row[i] = o0;
            row[i + half] = o1;
        }
    }
}

template <int NR, int K, int MODE>
static __global__ void __launch_bounds__(GEMV_WARPS * 32)
    add_rmsnorm_gemv_kernel(bf16 *out, bf16 *gu, bf16 *sum, bf16 *ln, float *rstd,
                            const bf16 *a, const bf16 *b, const bf16 *nw, const bf16 *w,
                            const bf16 *bias, unsigned *counter, int C, int F, float eps,
                            int pf, arn_qkv_dst qd) {
    extern __shared__ __align__(16) unsigned char arn_smem[];
    bf16 *xs = reinterpret_cast<bf16 *>(arn_smem);
    __shared__ float sh[32];
    constexpr int NT = GEMV_WARPS * 32, NW = MODE == ARN_PLAIN ? 1 : 2;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    /* this warp's weight rows (gate and up, a rotation pair, or one): their heads into
     * registers and the rest toward L2 (pf: GEMV_* flags), before the kernel before ends
     * and before the prologue */
    const int j = blockIdx.x * GEMV_WARPS + warp;
    const int jw = j < F ? j : 0;
    const bf16 *rows[NW];
    if constexpr (MODE == ARN_QKV) {
        const int half = qd.D / 2, h = jw / half, f0 = h * qd.D + (jw - h * half);
        rows[0] = w + (size_t)f0 * C;
        rows[NW - 1] = w + (size_t)(f0 + half) * C;
    } else {
        rows[0] = w + (size_t)jw * C;
        if (MODE == ARN_SWIGLU) rows[NW - 1] = w + ((size_t)F + jw) * C;
    }
    gemv_pre<NW> pre;
    if (j < F) gemv_before_wait<NW>(pre, rows, C, lane, pf);
    pdl_begin(); /* programmatic dependent launch: before any other memory access */
    if constexpr (K > 0) arn_norm_rows_ew<NR, K>(xs, sh, ln, rstd, a, b, nw, C, eps);
    else arn_norm_rows_rv<NR, -K>(xs, sh, ln, rstd, a, b, nw, C, eps);
    /* xs complete; this block reads a and b no more */
    if (cuda_block_is_last(counter, gridDim.x))
        for (int i = tid; i < NR * C; i += NT) sum[i] = f2bf(bf2f(a[i]) + bf2f(b[i]));
    if (j >= F) return; /* whole warps leave, after the last barrier */
    gemv_after_wait<NW>(pre, rows, C, lane, pf);
    float acc[NW][NR];
    gemv_warp_dots<NR, NW>(acc, pre, rows, xs, C, lane);
    if (lane != 0) return;
    if constexpr (MODE == ARN_SWIGLU) {
        gemv_swiglu_store<NR>(out, gu, acc, j, F);
    } else if constexpr (MODE == ARN_QKV) {
        arn_qkv_store<NR>(qd, bias, acc, j);
    } else {
        const float bj = bias ? bf2f(bias[j]) : 0.0f;
#pragma unroll
        for (int n = 0; n < NR; n++) out[(size_t)n * F + j] = f2bf(acc[0][n] + bj);
    }
}

enum { ARN_GEMV_SMEM = 32 * 1024 }; /* xs bytes at most: NR·C·2 */

/* The arguments of one fused add + RMSNorm + GEMV launch (F: SwiGLU features or OC). */
typedef struct {
    bf16 *out, *gu, *sum, *ln;
    float *rstd;
    const bf16 *a, *b, *nw, *w, *bias;
    int N, C, F;
    float eps;
} arn_gemv_args;

template <int K, int MODE>
static void add_rmsnorm_gemv_launch(cuda_ctx *c, unsigned *counter, const arn_gemv_args &g,
                                    const arn_qkv_dst &qd) {
    const unsigned blocks = cuda_blocks((size_t)g.F, GEMV_WARPS);
    const size_t smem = (size_t)g.N * g.C * 2;
    static const char *const name[3] = {"add_rmsnorm_gemv_kernel (plain)",
                                        "add_rmsnorm_gemv_kernel (swiglu)",
                                        "add_rmsnorm_gemv_kernel (qkv)"};
    switch (g.N) {
#define ARN_CASE(n)                                                                         \
    case n:                                                                                 \
        cuda_launch_dep(c, name[MODE],                                                      \
                        add_rmsnorm_gemv_kernel<n, K, MODE>, blocks, GEMV_WARPS * 32, smem,  \
                        g.out, g.gu, g.sum, g.ln, g.rstd, g.a, g.b, g.nw, g.w, g.bias,      \
                        counter, g.C, g.F, g.eps, gemv_flags(c), qd);                         \
        break;
        ARN_CASE(1)
        ARN_CASE(2)
        ARN_CASE(3)
        ARN_CASE(4)
        ARN_CASE(5)
        ARN_CASE(6)
        ARN_CASE(7)
        ARN_CASE(8)
#undef ARN_CASE
    }
}

/* Chunks per thread of the 16-byte row arithmetic the fused kernel instantiates (C <= 2,048:
 * the hidden sizes up to Qwen2.5-3B's); wider rows run the two ops apart. */
enum { ARN_RV_MAX_CPT = 2 };

/* Runs the fused kernel when it gives the unfused ops' bits (decode fusions and the GEMV
 * on, C % 8 == 0, N·C·2 <= ARN_GEMV_SMEM, 16-byte aligned w, a, b; with the 16-byte row
 * kernels on, where add_rmsnorm_vec would run with at most ARN_RV_MAX_CPT chunks per
 * thread — its arithmetic — unless RLVR_DECODE_NORM_FUSE=0; with them off,
 * row_threads(C) = 256 or 512 — the element-wise kernel's); 0 when it ran, -1 when the
 * caller should run the two ops. qd: ARN_QKV's destinations. */
template <int MODE>
static int add_rmsnorm_gemv(cuda_ctx *c, const arn_gemv_args &g, const arn_qkv_dst &qd) {
    if (!cuda_decode_fuse(c) || !c->gemv || g.N > GEMV_MAX_N || g.C % 8 != 0 ||
        (size_t)g.N * g.C * 2 > ARN_GEMV_SMEM || !cuda_aligned16(g.w) || !cuda_aligned16(g.a) ||
        !cuda_aligned16(g.b))
        return -1;
    int K;
    if (cuda_row_vec(c)) { /* add_rmsnorm_vec's conditions, and an instantiated width */
        const int cpt = (g.C / 8 + ARV_T - 1) / ARV_T;
        if (!c->norm_fuse_rv || cpt > ARN_RV_MAX_CPT || !cuda_aligned16(g.sum) ||
            !cuda_aligned16(g.ln) || !cuda_aligned16(g.nw))
            return -1;
        K = -cpt;
    } else {
        const int vb = row_threads(g.C);
        if (vb != 256 && vb != 512) return -1;
        K = vb / 256;
    }
    unsigned *counter = (unsigned *)cuda_scratch_zeroed(c, SCRATCH_GEMV_NORM, 256, 256);
    if (!counter) return 0; /* error recorded */
    if (K == 1) add_rmsnorm_gemv_launch<1, MODE>(c, counter, g, qd);
    else if (K == 2) add_rmsnorm_gemv_launch<2, MODE>(c, counter, g, qd);
    else if (K == -1) add_rmsnorm_gemv_launch<-1, MODE>(c, counter, g, qd);
    else add_rmsnorm_gemv_launch<-2, MODE>(c, counter, g, qd);
    return 0;
}

static void add_rmsnorm_swiglu(rlvr_backend *be, void *sum, void *ln, float *rstd,
                               const void *a, const void *b, const void *norm_w, float eps,
                               void *out, void *gu, const void *w, int N, int C, int F) {
    if (N <= 0 || C <= 0 || F <= 0) return;
    const arn_gemv_args g = {(bf16 *)out, (bf16 *)gu, (bf16 *)sum, (bf16 *)ln, rstd,
                             (const bf16 *)a, (const bf16 *)b, (const bf16 *)norm_w,
                             (const bf16 *)w, NULL, N, C, F, eps};
    if (add_rmsnorm_gemv<ARN_SWIGLU>(cuda_get(be), g, arn_qkv_dst{}) != 0)
        rlvr_add_rmsnorm_swiglu_apart(be, sum, ln, rstd, a, b, norm_w, eps, out, gu, w, N, C, F);
}

static void add_rmsnorm_matmul(rlvr_backend *be, void *sum, void *ln, float *rstd,
                               const void *a, const void *b, const void *norm_w, float eps,
                               void *out, const void *w, const void *bias, int N, int C,
                               int OC) {
    if (N <= 0 || C <= 0 || OC <= 0) return;
    const arn_gemv_args g = {(bf16 *)out, NULL, (bf16 *)sum, (bf16 *)ln, rstd,
                             (const bf16 *)a, (const bf16 *)b, (const bf16 *)norm_w,
                             (const bf16 *)w, (const bf16 *)bias, N, C, OC, eps};
    cuda_ctx *c = cuda_get(be);
    if (add_rmsnorm_gemv<ARN_PLAIN>(c, g, arn_qkv_dst{}) == 0) return;
    /* with a bias on the cuBLAS path: the row kernel writes the bias rows into out as well
     * (decode fusions on; the same bits as the two ops apart) */
    if (bias && cuda_decode_fuse(c) &&
        cuda_matmul_takes_cublas(c, (const bf16 *)ln, (const bf16 *)w, (const bf16 *)bias, N, C,
                                 OC) &&
        OC % 8 == 0 && cuda_aligned16(out) && cuda_aligned16(bias) &&
        add_rmsnorm_vec(c, (bf16 *)sum, (bf16 *)ln, rstd, (const bf16 *)a, (const bf16 *)b,
                        (const bf16 *)norm_w, N, C, eps, (bf16 *)out, (const bf16 *)bias,
                        OC) == 0) {
        cuda_matmul_cublas_preset(c, (bf16 *)out, (const bf16 *)ln, (const bf16 *)w, N, C, OC);
        return;
    }
    rlvr_add_rmsnorm_matmul_apart(be, sum, ln, rstd, a, b, norm_w, eps, out, w, bias, N, C, OC);
}

/* add_rmsnorm_matmul of the stacked q|k|v projection and its qkv_split_store as one kernel
 * (ARN_QKV) where the fused kernel applies and D is even; else (or with
 * RLVR_DECODE_QKV_FUSE=0) the two ops. */
static void add_rmsnorm_qkv_store(rlvr_backend *be, void *sum, void *ln, float *rstd,
                                  const void *a, const void *b, const void *norm_w, float eps,
                                  void *qkv, const void *w, const void *bias, void *q, void *k,
                                  void *v, void *k_cache, void *v_cache, const int *slots,
                                  const int *pos, const float *inv_freq, int N, int C, int Hq,
                                  int Hkv, int D) {
    if (N <= 0 || C <= 0 || D <= 0 || Hq + 2 * Hkv <= 0) return;
    if (D % 2 == 0 && cuda_get(be)->qkv_fuse) {
        const arn_gemv_args g = {NULL, NULL, (bf16 *)sum, (bf16 *)ln, rstd, (const bf16 *)a,
                                 (const bf16 *)b, (const bf16 *)norm_w, (const bf16 *)w,
                                 (const bf16 *)bias, N, C, (Hq + 2 * Hkv) * (D / 2), eps};
        const arn_qkv_dst qd = {(bf16 *)q,  (bf16 *)k, (bf16 *)v, (bf16 *)k_cache,
                                (bf16 *)v_cache, slots, pos, inv_freq, Hq, Hkv, D};
        if (add_rmsnorm_gemv<ARN_QKV>(cuda_get(be), g, qd) == 0) return;
    }
    rlvr_add_rmsnorm_qkv_store_apart(be, sum, ln, rstd, a, b, norm_w, eps, qkv, w, bias, q, k,
                                     v, k_cache, v_cache, slots, pos, inv_freq, N, C, Hq, Hkv,
                                     D);
}

static void rmsnorm_backward(rlvr_backend *be, void *din, float *dw, const void *dout,
                             const void *in, const void *w, const float *rstd, int N, int C,
                             int accumulate) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0 || C <= 0) return;
    if (c->rms_bwd == 0) {
        const char *e = getenv("RLVR_RMSNORM_BWD");
        c->rms_bwd = e && strcmp(e, "twopass") == 0 ? 1 : 2;
    }
    if (c->rms_bwd == 2 &&
        rmsnorm_backward_fused(c, (bf16 *)din, dw, (const bf16 *)dout, (const bf16 *)in,
                               (const bf16 *)w, rstd, N, C, accumulate) == 0)
        return;
    if (din) {
        rmsnorm_backward_kernel<<<N, row_threads(C), 0, c->stream>>>(
            (bf16 *)din, (const bf16 *)dout, (const bf16 *)in, (const bf16 *)w, rstd, C,
            accumulate);
        CU_LAUNCH_CHECK(c, "rmsnorm_backward_kernel");
    }
    if (dw) cuda_colsum_accumulate(c, dw, (const bf16 *)dout, (const bf16 *)in, rstd, N, C);
}

void cuda_rmsnorm_register(rlvr_backend *be) {
    be->rmsnorm_forward = rmsnorm_forward;
    be->add_rmsnorm_forward = add_rmsnorm_forward;
    be->add_rmsnorm_swiglu = add_rmsnorm_swiglu;
    be->add_rmsnorm_matmul = add_rmsnorm_matmul;
    be->add_rmsnorm_qkv_store = add_rmsnorm_qkv_store;
    be->rmsnorm_backward = rmsnorm_backward;
}
