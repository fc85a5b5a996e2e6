/*
 * kernels/cuda/rmsnorm.cu — RMSNorm as Hugging Face computes it, fp32 math on bf16
 * storage: rstd = 1/sqrt(mean(x²) + eps), y = w ⊙ (x·rstd).
 * Backward with x̂ = x·rstd, g = dy ⊙ w: dx = rstd·(g − x̂·mean(g ⊙ x̂)) (= or +=),
 * dw += Σ_rows dy ⊙ x̂ through the deterministic column sum (matmul.cu).
 * One block per row; rows of any width C (strided loops), fixed-order block sums.
 * add_rmsnorm_forward: the residual add in the same pass (sum stored as bf16, the norm
 * taken of the rounded sum with the same thread layout: the bits of add + rmsnorm).
 */
#include "kernels/cuda/cuda_internal.cuh"

static __global__ void rmsnorm_forward_kernel(bf16 *out, float *rstd, const bf16 *in,
                                              const bf16 *w, int C, float eps) {
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

static int row_threads(int C) {
    if (C >= 1024) return 512;
    if (C >= 256) return 256;
    return C <= 32 ? 32 : (C + 31) / 32 * 32 > 128 ? 128 : (C + 31) / 32 * 32;
}

static void rmsnorm_forward(rlvr_backend *be, void *out, float *rstd, const void *in,
                            const void *w, int N, int C, float eps) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0 || C <= 0) return;
    rmsnorm_forward_kernel<<<N, row_threads(C), 0, c->stream>>>(
        (bf16 *)out, rstd, (const bf16 *)in, (const bf16 *)w, C, eps);
    CU_LAUNCH_CHECK(c, "rmsnorm_forward_kernel");
}

static void add_rmsnorm_forward(rlvr_backend *be, void *sum, void *out, float *rstd,
                                const void *a, const void *b, const void *w, int N, int C,
                                float eps) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0 || C <= 0) return;
    add_rmsnorm_forward_kernel<<<N, row_threads(C), 0, c->stream>>>(
        (bf16 *)sum, (bf16 *)out, rstd, (const bf16 *)a, (const bf16 *)b, (const bf16 *)w, C,
        eps);
    CU_LAUNCH_CHECK(c, "add_rmsnorm_forward_kernel");
}

static void rmsnorm_backward(rlvr_backend *be, void *din, float *dw, const void *dout,
                             const void *in, const void *w, const float *rstd, int N, int C,
                             int accumulate) {
    cuda_ctx *c = cuda_get(be);
    if (N <= 0 || C <= 0) return;
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
    be->rmsnorm_backward = rmsnorm_backward;
}
