/*
 * kernels/cuda/cuda_internal.cuh — state and helpers shared by the CUDA backend's files
 * (one file per op family, each with its kernels first and its launchers at the end).
 *
 * Storage: act memory is bf16 (__nv_bfloat16); every kernel computes in fp32.
 * Errors: every CUDA / cuBLAS call and every kernel launch goes through CU_CHECK /
 * CUBLAS_CHECK / CU_LAUNCH_CHECK, which record the first failure with file and line
 * into cuda_ctx.err (backend.h: error()).
 */
#ifndef RLVR_KERNELS_CUDA_INTERNAL_CUH
#define RLVR_KERNELS_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utility>

#include "kernels/backend.h"

typedef __nv_bfloat16 bf16;

/* Scratch slots: device buffers owned by the backend, grown on demand (never shrunk).
 * One op uses each slot for one purpose at a time; ops run in stream order. */
enum {
    SCRATCH_COLSUM = 0, /* column-sum partials [RB, C] f32 (dbias, rmsnorm dw) */
    SCRATCH_ATTN,       /* attention backward Δ[T, Hq] f32 */
    SCRATCH_ATTN_DKV,   /* attention backward per-query-head dK, dV partials 2·[T, Hq, D] f32 */
    SCRATCH_LM_LOGITS,  /* LM head logits chunk [TC, VC] f32 */
    SCRATCH_LM_DZ,      /* LM head dz chunk [TC, VC] bf16 */
    SCRATCH_LM_DX,      /* LM head dx accumulator [TC, C] f32 */
    SCRATCH_LM_STATS,   /* LM head per-row running stats 4·[TC] f32 */
    SCRATCH_SUMSQ,      /* sumsq block partials [nblk] f64 */
    SCRATCH_EMB_SORT,   /* embedding backward: sorted (id, token) pairs + CUB temp */
    SCRATCH_KV_SPLIT,   /* split-K cached attention partials (fixed size, kvcache.cu) */
    SCRATCH_SKINNY,     /* skinny GEMM split-K partials (fixed size, skinny_gemm.cu) */
    SCRATCH_SAMPLE_SPLIT, /* lmhead_sample split path: per-(row, chunk) partials (sample.cu) */
    SCRATCH_RMS_BWD,    /* fused rmsnorm backward dw partials [groups, C] f32 (rmsnorm.cu) */
    SCRATCH_ATTN_DQP,   /* flash2 dQ partials: per-sequence bases + [row-slots, Hq, D] f32 */
    SCRATCH_LM_KEEP,    /* LM head logits [T, V] f32 kept from forward to backward (opt-in) */
    SCRATCH_GEMV_NORM,  /* add_rmsnorm_swiglu's finished-block counter (rmsnorm.cu) */
    SCRATCH_ATTN_GQA,   /* flash2 dK/dV finished-head counters [T, Hkv] (flash_attention2.cu) */
    SCRATCH_COUNT
};

typedef struct {
    int device;
    cudaStream_t stream;
    cublasHandle_t cublas;
    void *cublas_ws; /* cuBLAS workspace set with cublasSetWorkspace (NULL: the library's) */
    char err[512];
    int has_err;
    void *scratch[SCRATCH_COUNT];
    size_t scratch_bytes[SCRATCH_COUNT];
    int lm_tchunk; /* LM head chunk: tokens per chunk (0: automatic, lmhead.cu) */
    int lm_vchunk; /* LM head chunk: vocabulary entries per chunk (multiple of 8; 0: auto) */
    int gemv;      /* matmul_forward of <= 8 rows by the GEMV kernel (off: RLVR_GEMV=0) */
    int skinny;    /* matmul_forward of <= 256 rows by skinny_gemm.cu: 0 off, 1 every shape
                    * (RLVR_SKINNY=1), 2 where OC <= 1.5·IC (RLVR_SKINNY=2), 3 where a
                    * timing against cuBLAS chose it (RLVR_SKINNY=tune, gemm_tune.cu) */
    int skinny_rows; /* ... and only for at most this many rows (RLVR_SKINNY_ROWS, 1..256;
                      * default 256) */
    int weights_early; /* the GEMV and skinny kernels load weights before pdl_begin (off:
                        * RLVR_GEMV_EARLY=0, the A/B row of session 19) */
    int norm_fuse_rv;  /* the fused add + RMSNorm + GEMV also with the 16-byte row kernels
                        * on, in their arithmetic (RLVR_DECODE_NORM_FUSE=1); off, the default
                        * since the seventh H200 run, they run as two ops */
    int qkv_fuse; /* add_rmsnorm_qkv_store's one kernel for <= 8 rows (off:
                   * RLVR_DECODE_QKV_FUSE=0, the A/B row of session 20: the two ops) */
    int decode_attn; /* attention_cached: 0 = not chosen yet (RLVR_DECODE_ATTN is read at
                      * the first call), 1 = one block per query head (=head), 2 = split-K
                      * (=split), 3 = split-K on tensor cores (the default) */
    int decode_fuse; /* decode-step fusions (matmul_swiglu_forward's GEMV + SwiGLU): 0 unset
                      * (RLVR_DECODE_FUSE=0 turns them off, read at the first call), 1 off,
                      * 2 on (the default) */
    int rms_bwd; /* rmsnorm_backward: 0 unset (RLVR_RMSNORM_BWD read), 1 two-pass
                  * (=twopass), 2 fused (the default) */
    int row_vec; /* qkv_split/merge, add_rmsnorm_forward: 0 unset (RLVR_ROW_VEC read),
                  * 1 the element-wise kernels (=0), 2 the 16-byte row kernels (default) */
    /* LM head logits kept from the forward for the backward (lmhead.cu): the cap in bytes
     * (0 off; < 0 not read yet: RLVR_LM_KEEP_GB) and what the kept ones were computed from */
    long long lm_keep_cap;
    int lm_keep_valid;
    const void *lm_keep_x, *lm_keep_w;
    int lm_keep_T, lm_keep_C, lm_keep_V;
    float lm_keep_it;
    struct cuda_timer_pool *timer; /* timer_mark/timer_read events (backend_cuda.cu), lazy */
    struct cuda_upload_ring *upload; /* pinned staging of small uploads (backend_cuda.cu) */
    int upload_state; /* 0 not made yet, 1 off or unavailable, 2 in use */
    int gemm_tune; /* cuda_gemm's measured kernel choice (gemm_tune.cu): 0 unset
                    * (RLVR_GEMM_TUNE read at the next GEMM), 1 off (the default), 2 the
                    * decode shapes, 3 the first Lt algorithm everywhere (tests), 4 all */
    struct cuda_gemm_tuner *tuner; /* its table and cublasLt state, made at first use */
    int pdl; /* the decode kernels launched as programmatic dependents (cuda_launch_dep):
              * 0 unset (on where the device has it unless RLVR_DECODE_PDL=0, read at
              * the first launch), 1 off, 2 on */
} cuda_ctx;

static inline cuda_ctx *cuda_get(rlvr_backend *be) { return (cuda_ctx *)be->ctx; }

/* be's context, or NULL when be is not a CUDA backend (the guard of cuda_backend.h's
 * setters, which return -1 then). */
static inline cuda_ctx *cuda_ctx_of(rlvr_backend *be) {
    return be && be->name && strcmp(be->name, "cuda") == 0 ? cuda_get(be) : NULL;
}

/* A setter's tri-state argument (> 0 on, 0 off, < 0 the environment's choice) as the
 * cuda_ctx switches store it: 2 on, 1 off, 0 not chosen yet (read at the next call). */
static inline int cuda_switch(int v) { return v > 0 ? 2 : v == 0 ? 1 : 0; }

/* Whether the decode-step fusions are on (cuda_ctx.decode_fuse; the environment is read
 * at the first call). */
static inline int cuda_decode_fuse(cuda_ctx *c) {
    if (c->decode_fuse == 0) {
        const char *e = getenv("RLVR_DECODE_FUSE");
        c->decode_fuse = e && !strcmp(e, "0") ? 1 : 2;
    }
    return c->decode_fuse == 2;
}

/* Records the first error (printf-style message, prefixed with file:line). */
void cuda_record_error(cuda_ctx *c, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CU_CHECK(ctx, call)                                                                \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess)                                                             \
            cuda_record_error((ctx), __FILE__, __LINE__, "%s: %s", #call,                  \
                              cudaGetErrorString(e_));                                     \
    } while (0)

#define CUBLAS_CHECK(ctx, call)                                                            \
    do {                                                                                   \
        cublasStatus_t s_ = (call);                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                   \
            cuda_record_error((ctx), __FILE__, __LINE__, "%s: %s", #call,                  \
                              cublasGetStatusString(s_));                                  \
    } while (0)

/* After every <<<...>>>: a bad launch configuration or an earlier asynchronous fault. */
#define CU_LAUNCH_CHECK(ctx, name)                                                         \
    do {                                                                                   \
        cudaError_t e_ = cudaGetLastError();                                               \
        if (e_ != cudaSuccess)                                                             \
            cuda_record_error((ctx), __FILE__, __LINE__, "launch of %s: %s", (name),       \
                              cudaGetErrorString(e_));                                     \
    } while (0)

/* ---- programmatic dependent launch (sm_90; the default there, RLVR_DECODE_PDL=0 off) ----
 * A kernel launched by cuda_launch_dep with c->pdl on may start (its blocks become
 * resident) before the kernel before it on the stream has finished, once every block of
 * that one has called pdl_begin; each such kernel therefore calls pdl_begin() first, before
 * it reads or writes any memory another kernel touches, in every thread, on every path —
 * so the kernel ends only after its predecessor ended, and the order of the stream holds
 * transitively. The one exception: a projection's weight matrix (the w of matmul_forward
 * and the fused add + RMSNorm + GEMV ops) may be read before pdl_begin (gemv_preload, the
 * skinny GEMM's weight tiles). Only the kernel just before can still be running then —
 * every earlier one has ended — and the kernel just before a projection is a forward-pass
 * one (embedding, norm, attention, activation, another projection), never a writer of
 * weights: they change only in the optimizer and weight-sync ops, which a forward never
 * directly precedes a projection with. Without
 * PDL both instructions are no-ops. The emulation stops a PDL-launched kernel whose
 * thread ends without pdl_begin (tests/emu/cuda_emu.h). */
static __device__ __forceinline__ void pdl_begin(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");            /* the predecessor ended */
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); /* the next may start */
#elif defined(RLVR_CUDA_EMU)
    emu::self().pdl_begun = 1;
#endif
}

/* Before pdl_begin in a GEMV launched as a programmatic dependent: brings the warp's
 * weight row (`bytes` from row) toward L2, one 128-byte line per lane and step, while the
 * kernel before still runs. A hint, so always safe: L2 is where global memory is coherent,
 * and the weights do not change within a decode step anyway. */
static __device__ __forceinline__ void prefetch_row_l2(const void *row, int bytes, int lane) {
#if defined(__CUDA_ARCH__)
    for (int off = lane * 128; off < bytes; off += 32 * 128)
        asm volatile("prefetch.global.L2 [%0];\n" ::"l"((const char *)row + off));
#else
    (void)row;
    (void)bytes;
    (void)lane;
#endif
}

/* Whether cuda_launch_dep launches as programmatic dependents: on by default where the
 * device has it (compute capability 9.0 and later), off with RLVR_DECODE_PDL=0 (read
 * once). */
static inline int cuda_pdl(cuda_ctx *c) {
    if (c->pdl == 0) {
        const char *e = getenv("RLVR_DECODE_PDL");
        int major = 0;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, c->device) !=
            cudaSuccess) {
            major = 0;
            (void)cudaGetLastError(); /* not the next launch check's error */
        }
        c->pdl = (e && !strcmp(e, "0")) || major < 9 ? 1 : 2;
    }
    return c->pdl == 2;
}

/* kernel<<<grid, block, smem, c->stream>>>(args...) and its launch check, as a
 * programmatic dependent launch when cuda_pdl(c) (the kernel must begin with pdl_begin);
 * name: the kernel as written, for errors and the emulation's launch record. */
template <class... P, class... A>
static inline void cuda_launch_dep(cuda_ctx *c, const char *name, void (*kernel)(P...), dim3 grid,
                                   dim3 block, size_t smem, A &&...args) {
#ifdef RLVR_CUDA_EMU
    emu::launch_pdl = cuda_pdl(c);
    emu::launch_k(emu::cfg(grid, block, smem), name, kernel, std::forward<A>(args)...);
    emu::launch_pdl = false;
#else
    if (!cuda_pdl(c)) {
        kernel<<<grid, block, smem, c->stream>>>(std::forward<A>(args)...);
    } else {
        cudaLaunchConfig_t cfg = {};
        cfg.gridDim = grid;
        cfg.blockDim = block;
        cfg.dynamicSmemBytes = smem;
        cfg.stream = c->stream;
        cudaLaunchAttribute attr[1] = {};
        attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
        const cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...);
        if (e != cudaSuccess)
            cuda_record_error(c, __FILE__, __LINE__, "launch of %s (programmatic dependent): %s",
                              name, cudaGetErrorString(e));
    }
#endif
    CU_LAUNCH_CHECK(c, name);
}

/* A device buffer of at least `bytes` in slot `slot`; NULL (error recorded) on failure. */
void *cuda_scratch(cuda_ctx *c, int slot, size_t bytes);
/* cuda_scratch whose first zero_bytes are zeroed (on the stream) whenever the buffer is
 * newly allocated: the finished-block counters of the "last block" kernels, which each
 * launch leaves at zero again (cuda_block_is_last). */
void *cuda_scratch_zeroed(cuda_ctx *c, int slot, size_t bytes, size_t zero_bytes);

/* Blocks for a 1-D launch over n work items with `threads` per block. */
static inline unsigned cuda_blocks(size_t n, unsigned threads) {
    return (unsigned)((n + threads - 1) / threads);
}

static inline int cuda_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* ---- device helpers ------------------------------------------------------------- */

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Block-wide sum / max in a fixed order (deterministic); blockDim.x a multiple of 32,
 * at most 1024; every thread of the block must call it; all threads get the result. */
static __device__ __forceinline__ float block_sum(float v, float *sh /* [32] */) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return warp_sum(v);
}
static __device__ __forceinline__ double block_sum_d(double v, double *sh /* [32] */) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0;
    return warp_sum_d(v);
}
static __device__ __forceinline__ float block_max(float v, float *sh /* [32] */) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : -INFINITY;
    return warp_max(v);
}

static __device__ __forceinline__ float bf2f(bf16 x) { return __bfloat162float(x); }
static __device__ __forceinline__ bf16 f2bf(float x) { return __float2bfloat16_rn(x); }

/* W consecutive bf16 ↔ fp32: W = 8 is one 16-byte access (pointer 16-byte aligned),
 * W = 1 a scalar one. */
static __device__ __forceinline__ void unpack_bf8(const uint4 &u, float *f) {
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 t = __bfloat1622float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}
template <int W> static __device__ __forceinline__ void load_bf(const bf16 *p, float *f) {
    if (W == 8) {
        unpack_bf8(*reinterpret_cast<const uint4 *>(p), f);
    } else {
#pragma unroll
        for (int i = 0; i < W; i++) f[i] = bf2f(p[i]);
    }
}
template <int W> static __device__ __forceinline__ void store_bf(bf16 *p, const float *f) {
    if (W == 8) {
        uint4 u;
        __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
        for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
        *reinterpret_cast<uint4 *>(p) = u;
    } else {
#pragma unroll
        for (int i = 0; i < W; i++) p[i] = f2bf(f[i]);
    }
}

/* Called by every thread of a block when the block is done with its part (its stores
 * issued, its reads of inputs others may overwrite finished): counts the block in
 * *counter and returns true, in every thread, in the last of `blocks` blocks to get
 * there, which also resets the counter to 0 for the next launch (or graph replay). The
 * fences make every block's earlier stores visible to the last one; it should read them
 * through L2 (__ldcg). The counter lives in cuda_scratch_zeroed memory. */
static __device__ __forceinline__ bool cuda_block_is_last(unsigned *counter, unsigned blocks) {
    __shared__ int last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        last = atomicAdd(counter, 1u) == blocks - 1u;
        if (last) *counter = 0u;
    }
    __syncthreads();
    if (last) __threadfence();
    return last != 0;
}

/* ---- decode GEMV pieces (matmul.cu, rmsnorm.cu) ---------------------------------------- */

/* The GEMV kernels (<= GEMV_MAX_N rows) run GEMV_WARPS warps per block, a warp per output
 * feature (or gate|up pair). */
enum { GEMV_MAX_N = 8, GEMV_WARPS = 8 };

/* A lane's first GEMV_PRE / NW 16-byte chunks of NW weight rows (chunk i at k = lane·8 +
 * 256·i; zero past IC: IC <= 1024 fits whole for NW = 2, 2048 for NW = 1), loaded into
 * registers before the kernel's pdl_begin. No kernel of a decode step writes the weights,
 * so under programmatic dependent launch these loads overlap the kernel before (and in the
 * fused add + RMSNorm kernel its prologue too) instead of following them; gemv_warp_dots
 * then starts from them. The rest of a longer row is streamed as before. */
enum { GEMV_PRE = 8 };
template <int NW> struct gemv_pre {
    static constexpr int N = GEMV_PRE / NW; /* chunks per row */
    uint4 w[NW][N];
};

/* Fills p from rows w[0..NW−1] (16-byte aligned, IC each). */
template <int NW>
static __device__ __forceinline__ void gemv_preload(gemv_pre<NW> &p, const bf16 *const (&w)[NW],
                                                    int IC, int lane) {
#pragma unroll
    for (int i = 0; i < gemv_pre<NW>::N; i++) {
        const int k = lane * 8 + 256 * i;
#pragma unroll
        for (int r = 0; r < NW; r++)
            p.w[r][i] = k < IC ? *reinterpret_cast<const uint4 *>(w[r] + k)
                               : make_uint4(0, 0, 0, 0);
    }
}

/* Before pdl_begin, beside gemv_preload: the rest of the NW rows (past the preloaded
 * chunks) toward L2 (prefetch_row_l2) while the kernel before still runs. */
template <int NW>
static __device__ __forceinline__ void gemv_prefetch_rest(const bf16 *const (&w)[NW], int IC,
                                                          int lane) {
    constexpr int K0 = 256 * gemv_pre<NW>::N;
    if (IC <= K0) return;
#pragma unroll
    for (int r = 0; r < NW; r++) prefetch_row_l2(w[r] + K0, (IC - K0) * 2, lane);
}

/* The weight-loading flags of the GEMV kernels (their `pf` argument, gemv_flags): GEMV_PF_L2
 * (launched as a programmatic dependent) sends weight rows toward L2 before pdl_begin;
 * GEMV_EARLY loads the rows' heads into registers before pdl_begin too (else after it, with
 * GEMV_PF_L2 prefetching the whole rows as before session 19: RLVR_GEMV_EARLY=0). */
enum { GEMV_PF_L2 = 1, GEMV_EARLY = 2 };
static inline int gemv_flags(cuda_ctx *c) {
    return (cuda_pdl(c) ? GEMV_PF_L2 : 0) | (c->weights_early ? GEMV_EARLY : 0);
}

/* A GEMV warp's weight traffic before pdl_begin (rows valid: the warp has an output). */
template <int NW>
static __device__ __forceinline__ void gemv_before_wait(gemv_pre<NW> &pre,
                                                        const bf16 *const (&w)[NW], int IC,
                                                        int lane, int flags) {
    if (flags & GEMV_EARLY) {
        gemv_preload<NW>(pre, w, IC, lane);
        if (flags & GEMV_PF_L2) gemv_prefetch_rest<NW>(w, IC, lane);
    } else if (flags & GEMV_PF_L2) {
#pragma unroll
        for (int r = 0; r < NW; r++) prefetch_row_l2(w[r], IC * 2, lane);
    }
}

/* After pdl_begin, in a warp that has an output: the rows' heads into pre unless
 * gemv_before_wait loaded them already (GEMV_EARLY). */
template <int NW>
static __device__ __forceinline__ void gemv_after_wait(gemv_pre<NW> &pre,
                                                       const bf16 *const (&w)[NW], int IC,
                                                       int lane, int flags) {
    if (!(flags & GEMV_EARLY)) gemv_preload<NW>(pre, w, IC, lane);
}

/* acc[r][n] += the chunk at k of weight rows wf[r] (8 values each) times in[n, k..k+7]. */
template <int NR, int NW>
static __device__ __forceinline__ void gemv_chunk_fma(float (&acc)[NW][NR],
                                                      const float (&wf)[NW][8], const bf16 *in,
                                                      int IC, int k) {
#pragma unroll
    for (int n = 0; n < NR; n++) {
        float xf[8];
        load_bf<8>(in + (size_t)n * IC + k, xf);
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int r = 0; r < NW; r++) acc[r][n] += wf[r][j] * xf[j];
    }
}

/* The warp's dot products of NW weight rows w[0..NW−1] (IC each) with NR input rows:
 * acc[r][n] = Σ_i w[r][i]·in[n, i], lanes striding the rows in 16-byte chunks (8 bf16), the
 * first gemv_pre<NW>::N of them from pre (gemv_preload of the same rows), fp32 accumulators
 * in a fixed order (k ascending), then a fixed shuffle tree (every lane gets the sums; the
 * same bits every run, preloaded or not). IC % 8 == 0; in and the rows 16-byte aligned. */
template <int NR, int NW>
static __device__ __forceinline__ void gemv_warp_dots(float (&acc)[NW][NR],
                                                      const gemv_pre<NW> &pre,
                                                      const bf16 *const (&w)[NW],
                                                      const bf16 *in, int IC, int lane) {
#pragma unroll
    for (int r = 0; r < NW; r++)
#pragma unroll
        for (int n = 0; n < NR; n++) acc[r][n] = 0.0f;
#pragma unroll
    for (int i = 0; i < gemv_pre<NW>::N; i++) {
        const int k = lane * 8 + 256 * i;
        if (k >= IC) break;
        float wf[NW][8];
#pragma unroll
        for (int r = 0; r < NW; r++) unpack_bf8(pre.w[r][i], wf[r]);
        gemv_chunk_fma<NR, NW>(acc, wf, in, IC, k);
    }
    for (int k = lane * 8 + 256 * gemv_pre<NW>::N; k < IC; k += 32 * 8) {
        float wf[NW][8];
#pragma unroll
        for (int r = 0; r < NW; r++) load_bf<8>(w[r] + k, wf[r]);
        gemv_chunk_fma<NR, NW>(acc, wf, in, IC, k);
    }
#pragma unroll
    for (int r = 0; r < NW; r++)
#pragma unroll
        for (int n = 0; n < NR; n++) acc[r][n] = warp_sum(acc[r][n]);
}

/* The SwiGLU epilogue of a GEMV warp that computed gate feature j (acc[0]) and up
 * feature j (acc[1]) of NR rows: both rounded to bf16 into gu[n, j] and gu[n, F + j], and
 * out[n, j] = silu(gate)·up from the rounded values with swiglu_packed_forward's
 * expression (the bits of matmul_forward then swiglu_packed_forward). */
template <int NR>
static __device__ __forceinline__ void gemv_swiglu_store(bf16 *out, bf16 *gu,
                                                         const float (&acc)[2][NR], int j,
                                                         int F) {
#pragma unroll
    for (int n = 0; n < NR; n++) {
        const bf16 gb = f2bf(acc[0][n]), ub = f2bf(acc[1][n]);
        gu[(size_t)n * 2 * F + j] = gb;
        gu[(size_t)n * 2 * F + F + j] = ub;
        const float g = bf2f(gb), u = bf2f(ub);
        out[(size_t)n * F + j] = f2bf(g / (1.0f + expf(-g)) * u);
    }
}

/* The rotary embedding's arithmetic, shared by every kernel that rotates (rope_kernel, the
 * q|k|v moves, the fused q|k|v projection) so that they give the same bits: the angle
 * (float)pos·inv_freq in fp32 with the accurate sincosf (angles reach thousands of
 * radians), sin times sign (−1: the backward), and the pair (x1, x2) → (x1·cos − x2·sin,
 * x2·cos + x1·sin), each product and sum rounded on its own (no contraction into an FMA,
 * which nvcc could otherwise choose differently in each kernel). */
static __device__ __forceinline__ void rope_angle(int pos, float inv_freq, float sign,
                                                  float *sn, float *co) {
    sincosf(__fmul_rn((float)pos, inv_freq), sn, co);
    *sn *= sign;
}
static __device__ __forceinline__ void rope_rotate(float *x1, float *x2, float sn,
                                                   float co) {
    const float a = *x1, b = *x2;
    *x1 = __fsub_rn(__fmul_rn(a, co), __fmul_rn(b, sn));
    *x2 = __fadd_rn(__fmul_rn(b, co), __fmul_rn(a, sn));
}

/* Whether the 16-byte row kernels of qkv_split/merge and add_rmsnorm_forward are on
 * (cuda_ctx.row_vec: on unless RLVR_ROW_VEC=0 at the first call, or rlvr_cuda_set_row_vec). */
static inline int cuda_row_vec(cuda_ctx *c) {
    if (c->row_vec == 0) {
        const char *e = getenv("RLVR_ROW_VEC");
        c->row_vec = e && strcmp(e, "0") == 0 ? 1 : 2;
    }
    return c->row_vec == 2;
}

/* Registration of each family's entries into the op table. */
void cuda_embedding_register(rlvr_backend *be);
void cuda_elementwise_register(rlvr_backend *be);
void cuda_rmsnorm_register(rlvr_backend *be);
void cuda_matmul_register(rlvr_backend *be);
void cuda_attention_register(rlvr_backend *be);
void cuda_lmhead_register(rlvr_backend *be);
void cuda_optim_register(rlvr_backend *be);

/* Deterministic column sums shared by matmul (dbias) and rmsnorm (dw):
 * out[c] += Σ_n dy[n,c] · (x ? x[n,c]·rstd[n] : 1), rows summed in a fixed order. */
void cuda_colsum_accumulate(cuda_ctx *c, float *out, const bf16 *dy, const bf16 *x,
                            const float *rstd, int N, int C);

/* y = alpha·op(A)·op(B) + beta·y through cublasGemmEx with bf16 A/B, fp32 compute.
 * Column-major arguments as in cuBLAS; ctype is CUDA_R_16BF or CUDA_R_32F. */
void cuda_gemm(cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
               float alpha, const void *A, int lda, const void *B, int ldb, float beta,
               void *Cm, cudaDataType_t ctype, int ldc, const char *what);

/* cuda_gemm's measured choice (gemm_tune.cu): 0 when the tuner ran the GEMM (a cublasLt
 * algorithm it measured faster for the shape), -1 when cuda_gemm runs its cublasGemmEx
 * (tuning off, the default won, or the shape is untuned: first met inside a capture). */
typedef struct cuda_gemm_tuner cuda_gemm_tuner;
int cuda_gemm_tuned(cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, float alpha, const void *A, int lda, const void *B, int ldb,
                    float beta, void *Cm, cudaDataType_t ctype, int ldc, const char *what);
void cuda_gemm_tuner_destroy(cuda_gemm_tuner *t);

/* RLVR_SKINNY=tune: whether matmul_forward of this shape takes the skinny GEMM (1) or
 * cuBLAS (0), timed at the shape's first call outside a capture (gemm_tune.cu). */
int cuda_skinny_tuned(cuda_ctx *c, const bf16 *in, const bf16 *w, const bf16 *bias, int N,
                      int IC, int OC);

/* Whether matmul_forward takes its cuBLAS form for N rows of IC → OC (matmul.cu): the GEMV
 * off or N above its rows, the skinny GEMM not asked to try the shape. Then, with a bias,
 * that form is the bias broadcast into out followed by cuda_matmul_cublas_preset (out =
 * in·wᵀ + out, rounded once); a caller that already wrote the bias rows into out may run
 * just the latter, with the same bits. */
int cuda_matmul_takes_cublas(cuda_ctx *c, const bf16 *in, const bf16 *w, const bf16 *bias,
                             int N, int IC, int OC);
void cuda_matmul_cublas_preset(cuda_ctx *c, bf16 *out, const bf16 *in, const bf16 *w, int N,
                               int IC, int OC);

/* matmul_forward on the tensor cores for 1..256 rows (skinny_gemm.cu): 0 when it ran,
 * -1 when the shape or alignment is not covered (the caller falls back to cuBLAS). */
int cuda_skinny_forward(cuda_ctx *c, bf16 *out, const bf16 *in, const bf16 *w,
                        const bf16 *bias, int N, int IC, int OC);

#endif /* RLVR_KERNELS_CUDA_INTERNAL_CUH */
