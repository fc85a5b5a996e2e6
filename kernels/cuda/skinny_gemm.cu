/*
 * kernels/cuda/skinny_gemm.cu — the linear layer's forward out[N, OC] = in[N, IC]·w[OC, IC]ᵀ
 * (+ bias) for few rows (decode steps: N = the decode batch, 1..256) on the tensor cores,
 * deterministic. Opt-in: cuda_ctx.skinny (RLVR_SKINNY=1, or rlvr_cuda_set_skinny); called
 * by matmul.cu's matmul_forward after the GEMV attempt, cuBLAS otherwise.
 *
 * Why: with few rows cuBLAS's tiles leave most SMs idle (OC = 896 gives ~7-14 output
 * tiles), so the weights — the only large operand — stream far below the memory
 * bandwidth. Here the work is cut so that every SM streams weights:
 *   - a block (4 warps) owns a slab of SK_BO = 64 output features, warp w features
 *     16w..16w+15, and all N rows padded to NP = 16, 32, 64, 128 or 256 (rows >= N are
 *     zero-filled and never stored; 128 and 256 added in session 15, for the decode
 *     batches of 65..256 sequences where cuBLAS's choice at OC = 896 is unmeasured);
 *   - when the slabs are too few to fill the SMs the IC range is split S ways (split-K):
 *     grid (slabs, S); S depends only on (N, IC, OC, SM count), so a launch recorded in
 *     a CUDA graph stays right when replayed;
 *   - each block streams its k-tiles (SK_BK = 64 of IC) of w [64][64] and in [NP][64]
 *     global → shared by 16-byte cp.async.cg, SK_STAGES = 4 deep (three tiles in flight
 *     while one is computed; zero-fill past OC, N and IC);
 *   - launched as a programmatic dependent (session 19; the reduce kernel too): with
 *     RLVR_GEMV_EARLY on (the default) the first SK_STAGES − 1 weight tiles are issued
 *     before pdl_begin, so they stream while the kernel before still runs;
 *   - the product is computed transposed, outᵀ = w·inᵀ, with mma.sync m16n8k16 (bf16 in,
 *     fp32 accumulate): the weight tile is the A operand (16 features × 16 k, row-major
 *     in shared memory, ldmatrix.x4) and the input tile the B operand ([n][k] row-major
 *     is B col-major, ldmatrix.x4 without .trans), so a warp's 8-row n-tiles cost only
 *     N padded to 16, not to the 16 rows of an A tile;
 *   - the epilogue goes through shared memory (fp32 [NP][64 + 4]) so the stores are
 *     row-contiguous: with S = 1 bf16 out = round(acc + bias) (bias added in fp32 before
 *     the one rounding, as the GEMV and cuBLAS paths do); with S > 1 fp32 partials
 *     part[s][n][o], then skinny_reduce_kernel sums s = 0..S−1 in that fixed order, adds
 *     the bias and rounds. No atomics: the same bits every run.
 * Partials live in SCRATCH_SKINNY, a fixed SK_SCRATCH_BYTES (the split is capped so they
 * fit), so the scratch never grows after its first use and graph capture stays valid.
 *
 * Fragments of mma.sync m16n8k16 (g = lane/4, t = lane%4; PTX ISA "Matrix Fragments for
 * mma.m16n8k16 with floating point type"), each register two bf16, low half first:
 *   A (16×16, row m, col k): r0 (g, 2t..2t+1), r1 (g+8, 2t..), r2 (g, 2t+8..), r3 (g+8, 2t+8..)
 *   B (16×8, row k, col n):  r0 (k 2t..2t+1, n g), r1 (k 2t+8.., n g)
 *   C (16×8 fp32):           c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1)
 * ldmatrix.x4: lanes 8i..8i+7 give the row addresses of 8×8 matrix i; register i returns
 * matrix i with lane (g, t) holding its row g, columns 2t..2t+1. Address patterns (r =
 * lane%8), as in flash_attention2.cu:
 *   P1: row (lane/8 & 1)·8 + r, column (lane/16)·8 → the A fragment of a 16×16 block;
 *   P2: row (lane/16)·8 + r, column (lane/8 & 1)·8 → on an [n][k] tile: {r0, r1} of
 *       n-tile j and {r0, r1} of n-tile j+1 (16 n, 16 k).
 * Shared rows are SK_BK + 8 bf16 (144 bytes): the eight rows one ldmatrix phase reads
 * fall in eight different bank quads and every row start stays 16-byte aligned.
 * A CPU emulation of this index math (fragments, ldmatrix, pipeline, split, reduction)
 * matched a plain triple loop on every tested shape (see docs/cuda.md).
 */
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_internal.cuh"
#include "kernels/cuda/tensor_core.cuh"

enum {
    SK_BO = 64,           /* output features per block (4 warps × 16) */
    SK_BK = 64,           /* IC per k-tile */
    SK_LD = SK_BK + 8,    /* shared row stride (bf16) */
    SK_CLD = SK_BO + 4,   /* epilogue row stride (fp32): conflict-free fragment stores */
    SK_STAGES = 4,        /* cp.async pipeline depth */
    SK_WARPS = 4,
    SK_THREADS = SK_WARPS * 32,
    SK_MAX_N = 256,       /* rows covered (padded to 16, 32, 64, 128, 256) */
    SK_MAX_SPLIT = 32,    /* split-K ways at most */
    SK_MIN_TILES = 2,     /* k-tiles per split at least (when IC allows) */
    SK_BLOCKS_PER_SM = 2, /* the split aims at this many blocks per SM */
};
#define SK_SCRATCH_BYTES ((size_t)8 << 20) /* fp32 partials [S][N][OC] at most */

/* Shared memory of the NP-row kernel: SK_STAGES × (w [SK_BO][SK_LD] + in [NP][SK_LD]) bf16,
 * reused by the epilogue as fp32 [NP][SK_CLD]. */
template <int NP> struct sk_shape {
    static constexpr int STAGE = (SK_BO + NP) * SK_LD; /* bf16 elements per stage */
    static constexpr size_t SMEM = (size_t)SK_STAGES * STAGE * 2;
    /* blocks per SM asked of ptxas (what the shared memory allows: 4 at NP <= 32, 3, 2,
     * 1 at NP = 256) */
    static constexpr int MINB = NP <= 32 ? 4 : NP == 64 ? 3 : NP == 128 ? 2 : 1;
    static_assert((size_t)NP * SK_CLD * 4 <= SMEM, "the epilogue tile must fit the stages");
};

/* ---- device helpers (tensor_core.cuh has the PTX wrappers) ------------------------------ */

/* The k-tile at k0 of the block's weight slab (rows o0..o0+63 of w) into one stage, by
 * cp.async (the caller commits). 16-byte chunks row-major across the threads: 8 threads
 * read one 128-byte row piece. Rows past OC and chunks past IC (IC % 8 == 0, so a chunk is
 * all in or all out) are zero-filled. */
static __device__ __forceinline__ void sk_load_w(bf16 *st, const bf16 *w, int IC, int OC,
                                                 int o0, int k0) {
    constexpr int CH = SK_BK / 8;
    static_assert((SK_BO * CH) % SK_THREADS == 0, "tile chunks must divide among the threads");
#pragma unroll
    for (int i = 0; i < SK_BO * CH / SK_THREADS; i++) {
        const int idx = (int)threadIdx.x + i * SK_THREADS;
        const int r = idx / CH, k = k0 + (idx % CH) * 8;
        const bool ok = o0 + r < OC && k < IC;
        tc_cp16(st + r * SK_LD + (idx % CH) * 8, ok ? w + (size_t)(o0 + r) * IC + k : w,
                ok ? 16 : 0);
    }
}

/* The k-tile at k0 of the NP input rows into the same stage, after its weight slab (rows
 * past N zero-filled). */
template <int NP>
static __device__ __forceinline__ void sk_load_x(bf16 *st, const bf16 *in, int N, int IC,
                                                 int k0) {
    constexpr int CH = SK_BK / 8;
    static_assert((NP * CH) % SK_THREADS == 0, "tile chunks must divide among the threads");
    bf16 *Xs = st + SK_BO * SK_LD;
#pragma unroll
    for (int i = 0; i < NP * CH / SK_THREADS; i++) {
        const int idx = (int)threadIdx.x + i * SK_THREADS;
        const int r = idx / CH, k = k0 + (idx % CH) * 8;
        const bool ok = r < N && k < IC;
        tc_cp16(Xs + r * SK_LD + (idx % CH) * 8, ok ? in + (size_t)r * IC + k : in,
                ok ? 16 : 0);
    }
}

/* ---- kernels ---------------------------------------------------------------------------- */

/* grid (ceil(OC/64), S), SK_THREADS threads, sk_shape<NP>::SMEM dynamic shared memory.
 * Block (slab, s) computes features o0 = 64·slab .. o0+63 over the k-tiles
 * [s·KT/S, (s+1)·KT/S) of the KT = ceil(IC/64); S = 1 writes out (bf16, with the bias),
 * S > 1 writes part[s][n][o] (fp32). N <= NP, S <= KT. Launched as a programmatic
 * dependent (cuda_launch_dep); early (cuda_ctx.weights_early): the prologue's weight
 * slabs are issued before pdl_begin. */
template <int NP>
static __global__ void __launch_bounds__(SK_THREADS, sk_shape<NP>::MINB)
    skinny_kernel(bf16 *out, float *part, const bf16 *in, const bf16 *w, const bf16 *bias,
                  int N, int IC, int OC, int KT, int S, int early) {
    typedef sk_shape<NP> S_;
    extern __shared__ __align__(128) unsigned char sk_smem[];
    bf16 *sm = reinterpret_cast<bf16 *>(sk_smem);
    const int o0 = (int)blockIdx.x * SK_BO, s = (int)blockIdx.y;
    const int kt0 = (int)((long long)s * KT / S), kt1 = (int)((long long)(s + 1) * KT / S);
    const int nk = kt1 - kt0;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int p1 = tc_p1<SK_LD>(lane), p2 = tc_p2<SK_LD>(lane);

    float acc[NP / 8][4];
#pragma unroll
    for (int j = 0; j < NP / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;

    /* prologue: k-tiles 0..SK_STAGES−2 in flight, one commit group each (empty past nk,
     * so that group i always holds k-tile i). With early their weight slabs are issued
     * first, before pdl_begin (the weights are not written by the kernel before: see
     * pdl_begin), into no group yet, so group 0 holds them all: the first wait covers
     * copies that were issued together anyway. */
    if (early)
#pragma unroll
        for (int i = 0; i < SK_STAGES - 1; i++)
            if (i < nk) sk_load_w(sm + i * S_::STAGE, w, IC, OC, o0, (kt0 + i) * SK_BK);
    pdl_begin(); /* before the input rows and every store */
#pragma unroll
    for (int i = 0; i < SK_STAGES - 1; i++) {
        if (i < nk) {
            if (!early) sk_load_w(sm + i * S_::STAGE, w, IC, OC, o0, (kt0 + i) * SK_BK);
            sk_load_x<NP>(sm + i * S_::STAGE, in, N, IC, (kt0 + i) * SK_BK);
        }
        tc_commit();
    }
    for (int it = 0; it < nk; it++) {
        tc_wait<SK_STAGES - 2>(); /* groups 0..it have landed (this thread's) */
        __syncthreads();          /* everyone's have; stage (it−1) % SK_STAGES is read */
        {
            const int nx = it + SK_STAGES - 1; /* refill the stage read last iteration */
            if (nx < nk) {
                bf16 *st = sm + (nx % SK_STAGES) * S_::STAGE;
                sk_load_w(st, w, IC, OC, o0, (kt0 + nx) * SK_BK);
                sk_load_x<NP>(st, in, N, IC, (kt0 + nx) * SK_BK);
            }
            tc_commit();
        }
        const bf16 *Ws = sm + (it % SK_STAGES) * S_::STAGE, *Xs = Ws + SK_BO * SK_LD;
#pragma unroll
        for (int kk = 0; kk < SK_BK / 16; kk++) {
            uint32_t a[4];
            tc_ldsm(a, Ws + warp * 16 * SK_LD + kk * 16 + p1);
#pragma unroll
            for (int np = 0; np < NP / 16; np++) {
                uint32_t b[4];
                tc_ldsm(b, Xs + np * 16 * SK_LD + kk * 16 + p2);
                tc_mma(acc[2 * np], a, b[0], b[1]);
                tc_mma(acc[2 * np + 1], a, b[2], b[3]);
            }
        }
    }
    tc_wait<0>();
    __syncthreads(); /* every warp is done with the stages: reuse them for the epilogue */

    /* acc[j]: features f = 16·warp + g (+8 for c2, c3), rows n = 8j + 2t (+1 for c1, c3) */
    float *Cs = reinterpret_cast<float *>(sk_smem);
    {
        const int g = lane >> 2, t = lane & 3, f = warp * 16 + g;
#pragma unroll
        for (int j = 0; j < NP / 8; j++) {
            const int n = j * 8 + 2 * t;
            Cs[n * SK_CLD + f] = acc[j][0];
            Cs[(n + 1) * SK_CLD + f] = acc[j][1];
            Cs[n * SK_CLD + f + 8] = acc[j][2];
            Cs[(n + 1) * SK_CLD + f + 8] = acc[j][3];
        }
    }
    __syncthreads();
    const int ncols = OC - o0 < SK_BO ? OC - o0 : SK_BO;
    for (int e = threadIdx.x; e < N * SK_BO; e += SK_THREADS) {
        const int n = e / SK_BO, col = e % SK_BO;
        if (col >= ncols) continue;
        const int o = o0 + col;
        const float v = Cs[n * SK_CLD + col];
        if (S == 1) out[(size_t)n * OC + o] = f2bf(v + (bias ? bf2f(bias[o]) : 0.0f));
        else part[((size_t)s * N + n) * OC + o] = v;
    }
}

/* out[n, o] = round(Σ_{s = 0..S−1} part[s][n][o] + bias[o]), s in order: one thread per
 * output element. */
static __global__ void skinny_reduce_kernel(bf16 *out, const float *part, const bf16 *bias,
                                            int N, int OC, int S) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    const size_t total = (size_t)N * OC;
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    float v = 0.0f;
    for (int s = 0; s < S; s++) v += part[(size_t)s * total + i];
    if (bias) v += bf2f(bias[i % (size_t)OC]);
    out[i] = f2bf(v);
}

/* ---- launcher --------------------------------------------------------------------------- */

/* The split-K ways for a shape: enough blocks for SK_BLOCKS_PER_SM per SM, at least
 * SK_MIN_TILES k-tiles per split (where IC has them), at most SK_MAX_SPLIT, and the
 * partials within SK_SCRATCH_BYTES. A function of (N, IC, OC, sms) only. */
static int skinny_splits(int N, int IC, int OC, int sms) {
    const long long slabs = (OC + SK_BO - 1) / SK_BO, KT = (IC + SK_BK - 1) / SK_BK;
    long long S = ((long long)SK_BLOCKS_PER_SM * sms + slabs - 1) / slabs;
    long long smax = KT / SK_MIN_TILES;
    if (smax < 1) smax = 1;
    if (S > smax) S = smax;
    if (S > SK_MAX_SPLIT) S = SK_MAX_SPLIT;
    const long long per_split = (long long)N * OC * (long long)sizeof(float);
    if (S > 1 && S * per_split > (long long)SK_SCRATCH_BYTES)
        S = (long long)SK_SCRATCH_BYTES / per_split;
    return S < 1 ? 1 : (int)S;
}

template <int NP>
static void skinny_launch(cuda_ctx *c, bf16 *out, float *part, const bf16 *in, const bf16 *w,
                          const bf16 *bias, int N, int IC, int OC, int KT, int S) {
    typedef sk_shape<NP> S_;
    const dim3 grid((unsigned)((OC + SK_BO - 1) / SK_BO), (unsigned)S);
    CU_CHECK(c, cudaFuncSetAttribute(skinny_kernel<NP>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)S_::SMEM));
    cuda_launch_dep(c, "skinny_kernel<NP>", skinny_kernel<NP>, grid, SK_THREADS, S_::SMEM, out,
                    part, in, w, bias, N, IC, OC, KT, S, c->weights_early);
}

int cuda_skinny_forward(cuda_ctx *c, bf16 *out, const bf16 *in, const bf16 *w,
                        const bf16 *bias, int N, int IC, int OC) {
    if (N < 1 || N > SK_MAX_N || IC <= 0 || IC % 8 != 0 || OC <= 0 ||
        (long long)N * OC > 0x7fffffffLL || !cuda_aligned16(in) || !cuda_aligned16(w))
        return -1;
    int sms = 0;
    CU_CHECK(c, cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c->device));
    if (sms <= 0) sms = 1;
    const int KT = (IC + SK_BK - 1) / SK_BK;
    const int S = skinny_splits(N, IC, OC, sms);
    float *part = NULL;
    if (S > 1) {
        part = (float *)cuda_scratch(c, SCRATCH_SKINNY, SK_SCRATCH_BYTES);
        if (!part) return 0; /* error recorded */
    }
    if (N <= 16) skinny_launch<16>(c, out, part, in, w, bias, N, IC, OC, KT, S);
    else if (N <= 32) skinny_launch<32>(c, out, part, in, w, bias, N, IC, OC, KT, S);
    else if (N <= 64) skinny_launch<64>(c, out, part, in, w, bias, N, IC, OC, KT, S);
    else if (N <= 128) skinny_launch<128>(c, out, part, in, w, bias, N, IC, OC, KT, S);
    else skinny_launch<256>(c, out, part, in, w, bias, N, IC, OC, KT, S);
    if (S > 1) {
        const size_t total = (size_t)N * OC;
        cuda_launch_dep(c, "skinny_reduce_kernel", skinny_reduce_kernel,
                        cuda_blocks(total, 256), 256, 0, out, part, bias, N, OC, S);
    }
    return 0;
}

extern "C" int rlvr_cuda_set_skinny(rlvr_backend *be, int on) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->skinny = on == 2 || on == 3 ? on : on != 0;
    return 0;
}
