/*
 * kernels/cuda/matmul.cu — the linear layer y = x·wᵀ + b (HF layout w[OC, IC]) and its
 * backward through cuBLAS (bf16 inputs, fp32 compute), plus the deterministic column
 * sums used for dbias here and for the RMSNorm weight gradient.
 *
 * Row-major ↔ cuBLAS column-major: a row-major [R, K] matrix is a column-major
 * [K, R] one with leading dimension K, so
 *   out[N,OC]  = in·wᵀ    → out_cm[OC,N]  = op_T(w_cm[IC,OC]) · in_cm[IC,N]
 *   din[N,IC]  = dout·w   → din_cm[IC,N]  = w_cm[IC,OC] · dout_cm[OC,N]
 *   dw[OC,IC] += doutᵀ·in → dw_cm[IC,OC] += in_cm[IC,N] · op_T(dout_cm[OC,N])
 * The bias is fused by filling out with the broadcast bias and running the GEMM with
 * beta = 1, so out is rounded to bf16 once. dw is fp32 (beta = 1 accumulates).
 * Forward with at most 8 rows (decode) can instead run a GEMV kernel (RLVR_GEMV=1, or
 * rlvr_cuda_set_gemv): the default (RLVR_GEMV=0 turns it off); the fourth H200 run
 * measured batch-1 decode 1.80 -> 1.62 ms/token with it. Forward with at most 256 rows can
 * run the tensor-core skinny GEMM of skinny_gemm.cu (opt-in: RLVR_SKINNY=1 or
 * rlvr_cuda_set_skinny), tried after the GEMV. matmul_swiglu_forward (the stacked
 * gate|up projection + SwiGLU) fuses the two into one GEMV kernel for <= 8 rows
 * (RLVR_DECODE_FUSE=0 runs them apart).
 */
#include "kernels/composite.h"
#include "kernels/cuda/cuda_internal.cuh"

enum { COLSUM_TX = 32, COLSUM_TY = 8, COLSUM_MAX_RB = 512, COLSUM_ROWS = 32 };

void cuda_gemm(cuda_ctx *c, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
               float alpha, const void *A, int lda, const void *B, int ldb, float beta,
               void *Cm, cudaDataType_t ctype, int ldc, const char *what) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        /* Nothing to multiply: C = beta·C, which cuBLAS does not promise for k = 0. */
        if (beta == 0.0f)
            CU_CHECK(c, cudaMemset2DAsync(Cm, (size_t)ldc * (ctype == CUDA_R_32F ? 4 : 2), 0,
                                          (size_t)m * (ctype == CUDA_R_32F ? 4 : 2),
                                          (size_t)n, c->stream));
        return;
    }
    if (cuda_gemm_tuned(c, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, Cm, ctype, ldc,
                        what) == 0)
        return;
    cublasStatus_t s =
        cublasGemmEx(c->cublas, ta, tb, m, n, k, &alpha, A, CUDA_R_16BF, lda, B, CUDA_R_16BF,
                     ldb, &beta, Cm, ctype, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS)
        cuda_record_error(c, __FILE__, __LINE__, "cublasGemmEx (%s, m=%d n=%d k=%d): %s", what,
                          m, n, k, cublasGetStatusString(s));
}

/* ---- deterministic column sums ---------------------------------------------------- */

/* grid (ceil(C/32), RB), block (32, 8): part[rb, c] = Σ over rows [rb·rows, +rows) of
 * dy[n,c]·(x ? x[n,c]·rstd[n] : 1), in a fixed order. */
static __global__ void colsum_partial_kernel(float *part, const bf16 *dy, const bf16 *x,
                                             const float *rstd, int N, int C, int rows) {
    __shared__ float sh[COLSUM_TY][COLSUM_TX];
    const int c = blockIdx.x * COLSUM_TX + threadIdx.x;
    const int r0 = blockIdx.y * rows;
    const int r1 = r0 + rows < N ? r0 + rows : N;
    float acc = 0.0f;
    if (c < C) {
        for (int n = r0 + threadIdx.y; n < r1; n += COLSUM_TY) {
            const size_t off = (size_t)n * C + c;
            float v = bf2f(dy[off]);
            if (x) v *= bf2f(x[off]) * rstd[n];
            acc += v;
        }
    }
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float s = 0.0f;
        for (int i = 0; i < COLSUM_TY; i++) s += sh[i][threadIdx.x];
        part[(size_t)blockIdx.y * C + c] = s;
    }
}

/* out[c] += Σ_rb part[rb, c], in double, rb ascending. One thread per column: the sum is a
 * chain of RB (up to 512) dependent adds, so its loads are issued COLSUM_BATCH at a time
 * ahead of the adds (the same adds in the same order: the same bits), and the columns are
 * spread over COLSUM_FIN_T-thread blocks, so C = 896 keeps 14 SMs loading instead of 4. */
enum { COLSUM_BATCH = 16, COLSUM_FIN_T = 64 };
static __global__ void colsum_final_kernel(float *out, const float *part, int RB, int C) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s = 0.0;
    int rb = 0;
    for (; rb + COLSUM_BATCH <= RB; rb += COLSUM_BATCH) {
        float v[COLSUM_BATCH];
#pragma unroll
        for (int i = 0; i < COLSUM_BATCH; i++) v[i] = part[(size_t)(rb + i) * C + c];
#pragma unroll
        for (int i = 0; i < COLSUM_BATCH; i++) s += v[i];
    }
    for (; rb < RB; rb++) s += part[(size_t)rb * C + c];
    out[c] += (float)s;
}

void cuda_colsum_accumulate(cuda_ctx *c, float *out, const bf16 *dy, const bf16 *x,
                            const float *rstd, int N, int C) {
    if (N <= 0 || C <= 0) return;
    /* The split depends on N only: the same shapes give the same bits. */
    int RB = (N + COLSUM_ROWS - 1) / COLSUM_ROWS;
    if (RB > COLSUM_MAX_RB) RB = COLSUM_MAX_RB;
    const int rows = (N + RB - 1) / RB;
    RB = (N + rows - 1) / rows;
    float *part = (float *)cuda_scratch(c, SCRATCH_COLSUM, (size_t)RB * C * sizeof(float));
    if (!part) return;
    dim3 grid(cuda_blocks((size_t)C, COLSUM_TX), (unsigned)RB), block(COLSUM_TX, COLSUM_TY);
    colsum_partial_kernel<<<grid, block, 0, c->stream>>>(part, dy, x, rstd, N, C, rows);
    CU_LAUNCH_CHECK(c, "colsum_partial_kernel");
    colsum_final_kernel<<<cuda_blocks((size_t)C, COLSUM_FIN_T), COLSUM_FIN_T, 0, c->stream>>>(
        out, part, RB, C);
    CU_LAUNCH_CHECK(c, "colsum_final_kernel");
}

/* ---- linear layer ------------------------------------------------------------------ */

/* out[n, o] = Σ_i in[n, i]·w[o, i] (+ bias[o]) for NR <= 8 rows (decode steps): one warp
 * per output feature o (gemv_warp_dots), rounded to bf16 once with the bias added in fp32
 * (as the cuBLAS path rounds once). IC % 8 == 0; in and w 16-byte aligned. pf: the
 * GEMV_* flags (gemv_flags): before pdl_begin each warp loads the head of its weight row
 * into registers and sends the rest toward L2 (gemv_before_wait). */
template <int NR>
static __global__ void __launch_bounds__(GEMV_WARPS * 32)
    gemv_kernel(bf16 *out, const bf16 *in, const bf16 *w, const bf16 *bias, int IC, int OC,
                int pf) {
    const int lane = threadIdx.x & 31;
    const int o = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    const bf16 *const rows[1] = {w + (size_t)(o < OC ? o : 0) * IC};
    gemv_pre<1> pre;
    if (o < OC) gemv_before_wait<1>(pre, rows, IC, lane, pf); /* the weights only */
    pdl_begin(); /* programmatic dependent launch: before any other memory access */
    if (o >= OC) return; /* whole warps leave: no shuffle below loses a lane */
    gemv_after_wait<1>(pre, rows, IC, lane, pf);
    float acc[1][NR];
    gemv_warp_dots<NR, 1>(acc, pre, rows, in, IC, lane);
    if (lane == 0) {
        const float b = bias ? bf2f(bias[o]) : 0.0f;
#pragma unroll
        for (int n = 0; n < NR; n++) out[(size_t)n * OC + o] = f2bf(acc[0][n] + b);
    }
}

/* The GEMV path when it applies (see cuda_ctx.gemv); 0 when it ran. */
static int gemv_forward(cuda_ctx *c, bf16 *out, const bf16 *in, const bf16 *w,
                        const bf16 *bias, int N, int IC, int OC) {
    if (!c->gemv || N > GEMV_MAX_N || IC <= 0 || IC % 8 != 0 || !cuda_aligned16(in) ||
        !cuda_aligned16(w))
        return -1;
    const unsigned blocks = cuda_blocks((size_t)OC, GEMV_WARPS);
    const unsigned threads = GEMV_WARPS * 32;
    switch (N) {
#define GEMV_CASE(n)                                                                      \
    case n:                                                                               \
        cuda_launch_dep(c, "gemv_kernel<n>", gemv_kernel<n>, blocks, threads, 0, out, in, w, \
                        bias, IC, OC, gemv_flags(c));                                     \
        break;
        GEMV_CASE(1)
        GEMV_CASE(2)
        GEMV_CASE(3)
        GEMV_CASE(4)
        GEMV_CASE(5)
        GEMV_CASE(6)
        GEMV_CASE(7)
        GEMV_CASE(8)
#undef GEMV_CASE
    default:
        return -1;
    }
    CU_LAUNCH_CHECK(c, "gemv_kernel");
    return 0;
}

/* The stacked gate|up projection and its SwiGLU for NR <= 8 rows (matmul_swiglu_forward
 * in decode): warp j computes gate feature j and up feature j (rows j and F + j of w) as
 * gemv_kernel computes each (gemv_warp_dots), rounds both to bf16 into gu, and writes
 * out[n, j] = silu(gate)·up from those rounded values with swiglu_packed_forward's
 * expression — the bits of the two ops, in one launch. IC % 8 == 0; x, w 16-byte aligned.
 * pf: the GEMV_* flags, as gemv_kernel's (launched as a programmatic dependent since
 * session 19: with the row kernels on, the sixth run's defaults, this is the decode
 * step's gate|up kernel, and it was the one plain launch of a batch-1 layer). */
template <int NR>
static __global__ void __launch_bounds__(GEMV_WARPS * 32)
    gemv_swiglu_kernel(bf16 *out, bf16 *gu, const bf16 *in, const bf16 *w, int IC, int F,
                       int pf) {
    const int lane = threadIdx.x & 31;
    const int j = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
    const int jw = j < F ? j : 0;
    const bf16 *const rows[2] = {w + (size_t)jw * IC, w + ((size_t)F + jw) * IC};
    gemv_pre<2> pre;
    if (j < F) gemv_before_wait<2>(pre, rows, IC, lane, pf); /* the weights only */
    pdl_begin(); /* programmatic dependent launch: before any other memory access */
    if (j >= F) return; /* whole warps leave */
    gemv_after_wait<2>(pre, rows, IC, lane, pf);
    float acc[2][NR]; /* gate, up */
    gemv_warp_dots<NR, 2>(acc, pre, rows, in, IC, lane);
    if (lane == 0) gemv_swiglu_store<NR>(out, gu, acc, j, F);
}

static void matmul_swiglu_forward(rlvr_backend *be, void *out, void *gu, const void *x,
                                  const void *w, int T, int C, int F) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0 || F <= 0) return;
    if (cuda_decode_fuse(c) && c->gemv && T <= GEMV_MAX_N && C > 0 && C % 8 == 0 &&
        cuda_aligned16(x) && cuda_aligned16(w)) {
        const unsigned blocks = cuda_blocks((size_t)F, GEMV_WARPS);
        bf16 *o = (bf16 *)out, *g = (bf16 *)gu;
        const bf16 *xi = (const bf16 *)x, *wi = (const bf16 *)w;
        switch (T) {
#define GEMV_SWIGLU_CASE(n)                                                               \
    case n:                                                                               \
        cuda_launch_dep(c, "gemv_swiglu_kernel<n>", gemv_swiglu_kernel<n>, blocks,         \
                        GEMV_WARPS * 32, 0, o, g, xi, wi, C, F, gemv_flags(c));         \
        break;
            GEMV_SWIGLU_CASE(1)
            GEMV_SWIGLU_CASE(2)
            GEMV_SWIGLU_CASE(3)
            GEMV_SWIGLU_CASE(4)
            GEMV_SWIGLU_CASE(5)
            GEMV_SWIGLU_CASE(6)
            GEMV_SWIGLU_CASE(7)
            GEMV_SWIGLU_CASE(8)
#undef GEMV_SWIGLU_CASE
        }
        return;
    }
    rlvr_matmul_swiglu_apart(be, out, gu, x, w, T, C, F);
}

/* out[n, :] = bias for every row n. */
static __global__ void bias_fill_kernel(bf16 *out, const bf16 *bias, int N, int OC) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k < (size_t)N * OC) out[k] = bias[k % OC];
}

/* The same in 16-byte chunks (OC % 8 == 0, out and bias 16-byte aligned): thread x of
 * block (bx, by) holds chunk bx·128 + x of the bias and stores it into rows by, by +
 * gridDim.y, ... — no division per element, the bias read once per thread. The training
 * step's q|k|v fill (8192 × 1152) took 23.6 µs per call with one element per thread
 * (sixth H200 run, kp_step.json) for 18.9 MB of stores. Same bits: a copy. */
enum { BIAS_VEC_T = 128, BIAS_VEC_MAX_GY = 1024 };
static __global__ void bias_fill_vec_kernel(bf16 *out, const bf16 *bias, int N, int OC) {
    const int q = blockIdx.x * BIAS_VEC_T + threadIdx.x, chunks = OC / 8;
    if (q >= chunks) return;
    const uint4 b = reinterpret_cast<const uint4 *>(bias)[q];
    for (long long n = blockIdx.y; n < N; n += gridDim.y)
        reinterpret_cast<uint4 *>(out + n * OC)[q] = b;
}

/* out[n, :] = bias for n < N, by the 16-byte kernel where it applies. */
static void bias_fill(cuda_ctx *c, bf16 *out, const bf16 *bias, int N, int OC) {
    if (OC % 8 == 0 && cuda_aligned16(out) && cuda_aligned16(bias)) {
        const int chunks = OC / 8;
        const dim3 grid((unsigned)((chunks + BIAS_VEC_T - 1) / BIAS_VEC_T),
                        (unsigned)(N < BIAS_VEC_MAX_GY ? N : BIAS_VEC_MAX_GY));
        bias_fill_vec_kernel<<<grid, BIAS_VEC_T, 0, c->stream>>>(out, bias, N, OC);
        CU_LAUNCH_CHECK(c, "bias_fill_vec_kernel");
        return;
    }
    bias_fill_kernel<<<cuda_blocks((size_t)N * OC, 256), 256, 0, c->stream>>>(out, bias, N, OC);
    CU_LAUNCH_CHECK(c, "bias_fill_kernel");
}

/* Whether the skinny GEMM is asked to try this shape (it may still decline it): skinny 2
 * only where the output is not much wider than the input (q|k|v, o, down; cuBLAS won the
 * wide gate|up on the fifth H200 run); skinny 3 where a timing of the two chose it
 * (gemm_tune.cu: cuda_skinny_tuned). */
static int skinny_wanted(cuda_ctx *c, const bf16 *in, const bf16 *w, const bf16 *bias, int N,
                         int IC, int OC) {
    if (N > c->skinny_rows) return 0;
    if (c->skinny == 3) return cuda_skinny_tuned(c, in, w, bias, N, IC, OC);
    return c->skinny == 1 || (c->skinny == 2 && 2 * (long long)OC <= 3 * (long long)IC);
}

int cuda_matmul_takes_cublas(cuda_ctx *c, const bf16 *in, const bf16 *w, const bf16 *bias,
                             int N, int IC, int OC) {
    return N > 0 && OC > 0 && IC > 0 && (!c->gemv || N > GEMV_MAX_N) &&
           !skinny_wanted(c, in, w, bias, N, IC, OC);
}

void cuda_matmul_cublas_preset(cuda_ctx *c, bf16 *out, const bf16 *in, const bf16 *w, int N,
                               int IC, int OC) {
    cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, 1.0f, w, IC, in, IC, 1.0f, out,
              CUDA_R_16BF, OC, "matmul_forward");
}

static void matmul_forward(rlvr_backend *be, void *out, const void *in, const void *w,
                           const void *bias, int N, int IC, int OC) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0 || OC <= 0) return;
    if (gemv_forward(c, (bf16 *)out, (const bf16 *)in, (const bf16 *)w, (const bf16 *)bias, N,
                     IC, OC) == 0)
        return;
    if (skinny_wanted(c, (const bf16 *)in, (const bf16 *)w, (const bf16 *)bias, N, IC, OC) &&
        cuda_skinny_forward(c, (bf16 *)out, (const bf16 *)in, (const bf16 *)w,
                            (const bf16 *)bias, N, IC, OC) == 0)
        return;
    if (bias) { /* the bias broadcast into out, then out += in·wᵀ: rounded once */
        bias_fill(c, (bf16 *)out, (const bf16 *)bias, N, OC);
        cuda_matmul_cublas_preset(c, (bf16 *)out, (const bf16 *)in, (const bf16 *)w, N, IC, OC);
        return;
    }
    cuda_gemm(c, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, 1.0f, w, IC, in, IC, 0.0f, out,
              CUDA_R_16BF, OC, "matmul_forward");
}

static void matmul_backward(rlvr_backend *be, void *din, float *dw, float *dbias,
                            const void *dout, const void *in, const void *w, int N, int IC,
                            int OC, int accumulate) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0) return;
    if (din)
        cuda_gemm(c, CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, 1.0f, w, IC, dout, OC,
                  accumulate ? 1.0f : 0.0f, din, CUDA_R_16BF, IC, "matmul_backward din");
    if (dw)
        cuda_gemm(c, CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, 1.0f, in, IC, dout, OC, 1.0f, dw,
                  CUDA_R_32F, IC, "matmul_backward dw");
    if (dbias) cuda_colsum_accumulate(c, dbias, (const bf16 *)dout, NULL, NULL, N, OC);
}

void cuda_matmul_register(rlvr_backend *be) {
    be->matmul_forward = matmul_forward;
    be->matmul_backward = matmul_backward;
    be->matmul_swiglu_forward = matmul_swiglu_forward;
}
