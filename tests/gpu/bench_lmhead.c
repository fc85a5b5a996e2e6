/*
 * tests/gpu/bench_lmhead.c — the fused LM head (lmhead_forward + lmhead_backward of the
 * CUDA backend: logits, log-softmax, gather of the target's log-probability, entropy,
 * and their gradients, chunked over tokens and vocabulary) at a training size:
 * T tokens × hidden C × vocabulary V (default 8192 × 896 × 151,936, Qwen2.5-0.5B).
 *
 * Reports, per pass (median of the timed runs, CUDA events):
 *   - forward and forward+backward milliseconds and TFLOP/s of useful work (2·T·C·V
 *     FLOPs forward, 3 × 2·T·C·V forward+backward, as for an unfused head; the
 *     backward's recomputation of the logits is not counted);
 *   - the op's own device memory: the growth of used device memory across the first
 *     forward+backward (its scratch buffers, kept afterwards), beside what the logits
 *     alone would take unfused (T·V·4 bytes fp32).
 * Writes a JSON report (argument) for tests/gpu/run.sh; torch_lmhead_bench.py measures
 * PyTorch eager's unfused version on the same card for the ratio.
 *
 * Usage: bench_lmhead [--tokens T] [--hidden C] [--vocab V] [--iters N] [report.json]
 * Exit 77 when no GPU is usable.
 */
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* Fills n act elements of device memory with scale·U[-1,1) through a host fp32 chunk. */
static void fill_act(rlvr_backend *be, void *dev, size_t n, float scale) {
    const size_t chunk = (size_t)1 << 22;
    float *h = malloc(chunk * sizeof(float));
    if (!h) return;
    for (size_t off = 0; off < n; off += chunk) {
        const size_t m = n - off < chunk ? n - off : chunk;
        for (size_t i = 0; i < m; i++) h[i] = scale * frand();
        be->act_from_f32(be, (char *)dev + off * be->act_size, h, m);
    }
    free(h);
}

static double used_bytes(void) {
    size_t fr = 0, tot = 0;
    cudaDeviceSynchronize();
    cudaMemGetInfo(&fr, &tot);
    return (double)(tot - fr);
}

int main(int argc, char **argv) {
    int T = 8192, C = 896, V = 151936, iters = 10;
    const char *json = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokens") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) C = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) V = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (argv[i][0] != '-') json = argv[i];
        else {
            fprintf(stderr, "usage: bench_lmhead [--tokens T] [--hidden C] [--vocab V] "
                            "[--iters N] [report.json]\n");
            return 2;
        }
    }
    if (T < 1 || C < 1 || V < 2 || iters < 1 || iters > 1000) {
        fprintf(stderr, "bench_lmhead: need T, C >= 1, V >= 2, 1 <= iters <= 1000\n");
        return 2;
    }
    char err[512];
    rlvr_backend *be = rlvr_cuda_backend_create(0, err, sizeof err);
    if (!be) {
        fprintf(stderr, "bench_lmhead: no CUDA backend: %s\n", err);
        return 77;
    }
    void *x = be->alloc(be, (size_t)T * C * be->act_size);
    void *w = be->alloc(be, (size_t)V * C * be->act_size);
    void *dx = be->alloc(be, (size_t)T * C * be->act_size);
    float *dw = be->alloc(be, (size_t)V * C * sizeof(float));
    float *f32 = be->alloc(be, (size_t)5 * T * sizeof(float)); /* logp ent lse dlogp dent */
    int *targets = be->alloc(be, (size_t)T * sizeof(int));
    if (!x || !w || !dx || !dw || !f32 || !targets) {
        fprintf(stderr, "bench_lmhead: out of GPU memory: %s\n", be->error(be));
        return 1;
    }
    float *logp = f32, *ent = f32 + T, *lse = f32 + 2 * (size_t)T, *dlogp = f32 + 3 * (size_t)T,
          *dent = f32 + 4 * (size_t)T;
    fill_act(be, x, (size_t)T * C, 1.0f);
    fill_act(be, w, (size_t)V * C, 0.05f);
    be->zero(be, dw, (size_t)V * C * sizeof(float));
    float *h = malloc((size_t)2 * T * sizeof(float));
    int *ht = malloc((size_t)T * sizeof(int));
    if (!h || !ht) return 1;
    for (int t = 0; t < T; t++) {
        ht[t] = (int)((uint32_t)(frand() * 1e9f + 1e9f) % (uint32_t)V);
        h[t] = -1.0f / T;        /* dlogp: the mean negative log-likelihood */
        h[T + t] = -0.01f / T;   /* dentropy: an entropy bonus */
    }
    be->to_device(be, targets, ht, (size_t)T * sizeof(int));
    be->to_device(be, dlogp, h, (size_t)2 * T * sizeof(float));

    const double used0 = used_bytes();
    cudaEvent_t e0, e1, e2;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventCreate(&e2);
    double *fwd = malloc(sizeof(double) * (size_t)iters), *tot = malloc(sizeof(double) * (size_t)iters);
    double op_bytes = 0;
    for (int it = -2; it < iters; it++) { /* two warm-up passes */
        cudaEventRecord(e0, 0);
        be->lmhead_forward(be, logp, ent, lse, x, w, targets, T, C, V, 1.0f);
        cudaEventRecord(e1, 0);
        be->lmhead_backward(be, dx, dw, dlogp, dent, x, w, targets, lse, ent, T, C, V, 1.0f);
        cudaEventRecord(e2, 0);
        cudaEventSynchronize(e2);
        if (it == -2) op_bytes = used_bytes() - used0;
        if (it >= 0) {
            float a = 0, b = 0;
            cudaEventElapsedTime(&a, e0, e1);
            cudaEventElapsedTime(&b, e0, e2);
            fwd[it] = a;
            tot[it] = b;
        }
    }
    const char *e = be->error(be);
    if (e) {
        fprintf(stderr, "bench_lmhead: backend error: %s\n", e);
        return 1;
    }
    be->to_host(be, h, logp, (size_t)T * sizeof(float));
    double mean_logp = 0;
    for (int t = 0; t < T; t++) mean_logp += h[t] / T;
    qsort(fwd, (size_t)iters, sizeof(double), cmp_double);
    qsort(tot, (size_t)iters, sizeof(double), cmp_double);
    const double ms_f = fwd[iters / 2], ms_t = tot[iters / 2];
    const double flop = 2.0 * T * (double)C * V;
    const double tf_f = flop / (ms_f * 1e-3) / 1e12, tf_t = 3 * flop / (ms_t * 1e-3) / 1e12;
    const double logits_bytes = (double)T * V * 4;
    printf("LM head T=%d C=%d V=%d: forward %.2f ms (%.0f TFLOP/s), forward+backward %.2f ms "
           "(%.0f TFLOP/s)\n",
           T, C, V, ms_f, tf_f, ms_t, tf_t);
    printf("op device memory (scratch) %.1f MiB; unfused fp32 logits alone would be %.1f MiB; "
           "mean logp %.4f (ln V = %.4f)\n",
           op_bytes / 1048576, logits_bytes / 1048576, mean_logp, -__builtin_log((double)V));
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "bench_lmhead: cannot write %s\n", json);
            return 1;
        }
        fprintf(f,
                "{\"tokens\": %d, \"hidden\": %d, \"vocab\": %d, \"iters\": %d,\n"
                " \"forward_ms\": %.4f, \"forward_tflops\": %.2f,\n"
                " \"fwd_bwd_ms\": %.4f, \"fwd_bwd_tflops\": %.2f,\n"
                " \"op_scratch_mib\": %.2f, \"unfused_fp32_logits_mib\": %.2f}\n",
                T, C, V, iters, ms_f, tf_f, ms_t, tf_t, op_bytes / 1048576,
                logits_bytes / 1048576);
        fclose(f);
    }
    be->destroy(be);
    return 0;
}
