/*
 * kernels/cpu/elementwise.c — SwiGLU (silu(gate)·up) and the residual add.
 * silu(g) = g·σ(g); d silu/dg = σ(g)·(1 + g·(1 − σ(g))). e^x is cpu_expf (vectorised).
 */
#include "kernels/composite.h"
#include "kernels/cpu/cpu_expf.h"
#include "kernels/cpu/cpu_ops.h"

static void swiglu_forward(rlvr_backend *be, void *out_, const void *gate_, const void *up_,
                           size_t n) {
    float *out = out_;
    const float *gate = gate_, *up = up_;
#pragma omp parallel for simd num_threads(cpu_threads_for(be, n)) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + cpu_expf(-g)) * up[i];
    }
}

static void swiglu_backward(rlvr_backend *be, void *dgate_, void *dup_, const void *dout_,
                            const void *gate_, const void *up_, size_t n) {
    float *dgate = dgate_, *dup = dup_;
    const float *dout = dout_, *gate = gate_, *up = up_;
#pragma omp parallel for simd num_threads(cpu_threads_for(be, n)) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], sig = 1.0f / (1.0f + cpu_expf(-g));
        float silu = g * sig;
        float dy = dout[i], u = up[i]; /* read before writing: outputs may alias inputs */
        dgate[i] = dy * u * sig * (1.0f + g * (1.0f - sig));
        dup[i] = dy * silu;
    }
}

/* The stacked layout: row t of gu[T, 2I] is [gate_t | up_t]. */
static void swiglu_packed_forward(rlvr_backend *be, void *out_, const void *gu_, int T,
                                  int I) {
    float *out = out_;
    const float *gu = gu_;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * I)) schedule(static)
    for (int t = 0; t < T; t++) {
        const float *gate = gu + (size_t)t * 2 * I, *up = gate + I;
        float *o = out + (size_t)t * I;
#pragma omp simd
        for (int i = 0; i < I; i++) {
            float g = gate[i];
            o[i] = g / (1.0f + cpu_expf(-g)) * up[i];
        }
    }
}

static void swiglu_packed_backward(rlvr_backend *be, void *dgu_, const void *dout_,
                                   const void *gu_, int T, int I) {
    float *dgu = dgu_;
    const float *dout = dout_, *gu = gu_;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * I)) schedule(static)
    for (int t = 0; t < T; t++) {
        const float *gate = gu + (size_t)t * 2 * I, *up = gate + I, *dy = dout + (size_t)t * I;
        float *dgate = dgu + (size_t)t * 2 * I, *dup = dgate + I;
#pragma omp simd
        for (int i = 0; i < I; i++) {
            float g = gate[i], sig = 1.0f / (1.0f + cpu_expf(-g));
            float d = dy[i], u = up[i]; /* read before writing: dgu may alias gu */
            dgate[i] = d * u * sig * (1.0f + g * (1.0f - sig));
            dup[i] = d * (g * sig);
        }
    }
}

static void add(rlvr_backend *be, void *out_, const void *a_, const void *b_, size_t n) {
    float *out = out_;
    const float *a = a_, *b = b_;
#pragma omp parallel for simd num_threads(cpu_threads_for(be, n)) schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void cpu_elementwise_register(rlvr_backend *be) {
    be->swiglu_forward = swiglu_forward;
    be->swiglu_backward = swiglu_backward;
    be->swiglu_packed_forward = swiglu_packed_forward;
    be->matmul_swiglu_forward = rlvr_matmul_swiglu_apart;
    be->swiglu_packed_backward = swiglu_packed_backward;
    be->add = add;
}
