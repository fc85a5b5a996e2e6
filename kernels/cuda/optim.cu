/*
 * kernels/cuda/optim.cu — the per-token clipped policy loss with the KL anchor, the
 * deterministic sum of squares (global gradient norm) and AdamW with fp32 masters.
 * All fp32; formulas follow backend.h and kernels/cpu/{loss,optim}.c line by line.
 */
#include <math.h>

#include "kernels/cuda/cuda_internal.cuh"

/* sumsq: a fixed grid (depends on n only, never on the device) of double partials,
 * then one block sums them in order: the same bits on every run and every card. */
enum { SUMSQ_THREADS = 256 };
static const size_t SUMSQ_MAX_BLOCKS = 1024;

static __device__ __forceinline__ float clampf(float x, float lo, float hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

static __global__ void policy_loss_kernel(float *loss, float *kl, float *clipped, float *dlogp,
                                          const float *logp, const float *old_logp,
                                          const float *ref_logp, const float *adv,
                                          const float *weight, int T,
                                          rlvr_policy_loss_params p) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    const float A = adv[t];
    const float raw = logp[t] - old_logp[t];
    const float lr = clampf(raw, -20.0f, 20.0f);
    const float pass = (raw == lr) ? 1.0f : 0.0f;
    const float rho = expf(lr);
    const float rho_c = clampf(rho, 1.0f - p.clip_low, 1.0f + p.clip_high);
    const float surr1 = -A * rho, surr2 = -A * rho_c;
    float l, dl, was_clipped;
    if (surr1 >= surr2) {
        l = surr1;
        dl = -A * rho * pass;
        was_clipped = 0.0f;
    } else {
        l = surr2;
        dl = 0.0f;
        was_clipped = 1.0f;
    }
    if (p.dual_clip > 0.0f && A < 0.0f && l > -p.dual_clip * A) {
        l = -p.dual_clip * A;
        dl = 0.0f;
        was_clipped = 1.0f;
    }
    float k = 0.0f, dk = 0.0f;
    if (ref_logp) {
        const float draw = ref_logp[t] - logp[t];
        const float d = clampf(draw, -20.0f, 20.0f);
        const float dpass = (draw == d) ? 1.0f : 0.0f;
        if (p.kl_estimator == RLVR_KL_K1) {
            k = -d;
            dk = dpass;
        } else if (p.kl_estimator == RLVR_KL_K2) {
            k = 0.5f * d * d;
            dk = -d * dpass;
        } else { /* k3 */
            const float ed = expf(d);
            const float raw3 = ed - d - 1.0f;
            k = clampf(raw3, -10.0f, 10.0f);
            dk = (raw3 == k) ? (1.0f - ed) * dpass : 0.0f;
        }
    }
    loss[t] = l + p.kl_coef * k;
    if (kl) kl[t] = k;
    if (clipped) clipped[t] = was_clipped;
    dlogp[t] = weight[t] * (dl + p.kl_coef * dk);
}

static __global__ void sumsq_partial_kernel(double *part, const float *x, size_t n) {
    __shared__ double sh[32];
    double s = 0.0;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const double v = x[i];
        s += v * v;
    }
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

static __global__ void sumsq_final_kernel(double *part, int nblk) {
    __shared__ double sh[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < nblk; i += blockDim.x) s += part[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) part[0] = s; /* every read of part happened before block_sum */
}

static __global__ void adamw_kernel(void *param, float *master, const float *grad, float *m,
                                    float *v, size_t n, float beta1, float beta2, float eps,
                                    float grad_scale, float step_size, float decay,
                                    float bc2_sqrt) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float *theta = master ? master : (float *)param;
    const float g = grad[i] * grad_scale;
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    /* __fmul_rn: no FMA contraction here, so the decay rounds as in the CPU loop. */
    float th = __fmul_rn(theta[i], decay);
    th -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    theta[i] = th;
    if (master) ((bf16 *)param)[i] = f2bf(th);
}

static void policy_loss(rlvr_backend *be, float *loss, float *kl, float *clipped, float *dlogp,
                        const float *logp, const float *old_logp, const float *ref_logp,
                        const float *adv, const float *weight, int T,
                        const rlvr_policy_loss_params *p) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0) return;
    policy_loss_kernel<<<cuda_blocks((size_t)T, 256), 256, 0, c->stream>>>(
        loss, kl, clipped, dlogp, logp, old_logp, ref_logp, adv, weight, T, *p);
    CU_LAUNCH_CHECK(c, "policy_loss_kernel");
}

static double sumsq(rlvr_backend *be, const float *x, size_t n) {
    cuda_ctx *c = cuda_get(be);
    if (n == 0) return 0.0;
    size_t nb = (n + SUMSQ_THREADS * 4 - 1) / (SUMSQ_THREADS * 4);
    const int nblk = (int)(nb < SUMSQ_MAX_BLOCKS ? nb : SUMSQ_MAX_BLOCKS);
    double *part = (double *)cuda_scratch(c, SCRATCH_SUMSQ, (size_t)nblk * sizeof(double));
    if (!part) return NAN;
    sumsq_partial_kernel<<<nblk, SUMSQ_THREADS, 0, c->stream>>>(part, x, n);
    CU_LAUNCH_CHECK(c, "sumsq_partial_kernel");
    sumsq_final_kernel<<<1, SUMSQ_THREADS, 0, c->stream>>>(part, nblk);
    CU_LAUNCH_CHECK(c, "sumsq_final_kernel");
    double result = NAN;
    CU_CHECK(c, cudaMemcpyAsync(&result, part, sizeof(double), cudaMemcpyDeviceToHost,
                                c->stream));
    CU_CHECK(c, cudaStreamSynchronize(c->stream));
    return result;
}

static void adamw(rlvr_backend *be, void *param, float *master, const float *grad, float *m,
                  float *v, size_t n, float lr, float beta1, float beta2, float eps,
                  float weight_decay, float grad_scale, int step) {
    cuda_ctx *c = cuda_get(be);
    if (n == 0) return;
    /* Host-side constants exactly as the CPU reference computes them. */
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float bc2_sqrt = sqrtf(1.0f - powf(beta2, (float)step));
    const float step_size = lr / bc1;
    const float decay = 1.0f - lr * weight_decay;
    adamw_kernel<<<cuda_blocks(n, 256), 256, 0, c->stream>>>(param, master, grad, m, v, n,
                                                             beta1, beta2, eps, grad_scale,
                                                             step_size, decay, bc2_sqrt);
    CU_LAUNCH_CHECK(c, "adamw_kernel");
}

void cuda_optim_register(rlvr_backend *be) {
    be->policy_loss = policy_loss;
    be->sumsq = sumsq;
    be->adamw = adamw;
}
