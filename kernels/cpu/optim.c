/*
 * kernels/cpu/optim.c — the deterministic sum of squares (global gradient norm) and
 * AdamW with decoupled weight decay, matching torch.optim.AdamW.
 */
#include <math.h>
#include <stdlib.h>

#include "kernels/cpu/cpu_ops.h"

enum { SUMSQ_BLOCK = 4096 };

/* Fixed blocks summed in double, then the block sums in order: the same bits for any
 * thread count. */
static double sumsq(rlvr_backend *be, const float *x, size_t n) {
    const size_t nb = (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
    double stack[64], *part = nb <= 64 ? stack : malloc(nb * sizeof(double));
    if (!part) {
        ((cpu_ctx *)be->ctx)->err = "cpu sumsq: out of memory";
        return NAN;
    }
#pragma omp parallel for num_threads(cpu_threads_for(be, n)) schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * SUMSQ_BLOCK, i1 = i0 + SUMSQ_BLOCK < n ? i0 + SUMSQ_BLOCK : n;
        double s = 0.0;
        for (size_t i = i0; i < i1; i++) s += (double)x[i] * x[i];
        part[b] = s;
    }
    double total = 0.0;
    for (size_t b = 0; b < nb; b++) total += part[b];
    if (part != stack) free(part);
    return total;
}

static void adamw(rlvr_backend *be, void *param_, float *master, const float *grad, float *m,
                  float *v, size_t n, float lr, float beta1, float beta2, float eps,
                  float weight_decay, float grad_scale, int step) {
    float *param = param_;
    float *theta = master ? master : param;
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float bc2_sqrt = sqrtf(1.0f - powf(beta2, (float)step));
    const float step_size = lr / bc1;
    const float decay = 1.0f - lr * weight_decay;
#pragma omp parallel for num_threads(cpu_threads_for(be, n)) schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float g = grad[i] * grad_scale;
        const float mi = beta1 * m[i] + (1.0f - beta1) * g;
        const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float th = theta[i] * decay;
        th -= step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
        theta[i] = th;
        if (master) param[i] = th;
    }
}

void cpu_optim_register(rlvr_backend *be) {
    be->sumsq = sumsq;
    be->adamw = adamw;
}
