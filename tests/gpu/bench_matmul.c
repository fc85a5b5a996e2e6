/*
 * tests/gpu/bench_matmul.c — the measured bf16 GEMM rate of this card through cuBLAS
 * (bf16 inputs, fp32 compute, as kernels/cuda uses it): the denominator of the model
 * FLOPs utilisation reported later. For each shape: random bf16 inputs (larger than
 * L2), 5 warm-up runs, then 30 runs timed one by one with CUDA events; the median is
 * reported as TFLOP/s = 2·M·N·K / time.
 *
 * Decode section: the four projections of a Qwen2.5-0.5B decode step (stacked q|k|v
 * with bias, o, stacked gate|up, down) at N = 16 … 256 rows through the CUDA backend's
 * matmul_forward, cuBLAS against the tensor-core skinny GEMM (kernels/cuda/skinny_gemm.cu,
 * rlvr_cuda_set_skinny). Per call: the median over DEC_REPS of (sync, host clock, 100
 * back-to-back calls, sync, host clock) / 100 — which at these sizes is mostly the host's
 * launch cost — and the same 100 calls recorded once as a CUDA graph and replayed (the
 * GPU's own time, as in a decode step, which runs as a graph); the weights rotate through
 * copies filling 256 MiB so they come from memory, not L2, as in a real step. Printed as
 * µs per call and GB/s of weight traffic (OC·IC·2 bytes per call).
 *
 * Usage: bench_matmul [report.json]. Exit 77 when no GPU is usable.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"

enum { WARMUP = 5, RUNS = 30 };

typedef struct {
    int m, n, k;
    int f32_out; /* 1: fp32 output with beta = 1 (the weight-gradient GEMM) */
    const char *what;
} shape;

typedef struct {
    shape s;
    double ms, tflops;
    int ok;
} bench_result;

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 0x12345678abcdefull;
static uint16_t rand_bf16_bits(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    /* a bf16 in ±[0.5, 2): sign, exponent 126 or 127, random mantissa */
    uint16_t sign = (uint16_t)((rng >> 40) & 1u) << 15;
    uint16_t expo = (uint16_t)(126u + ((rng >> 41) & 1u)) << 7;
    return (uint16_t)(sign | expo | (uint16_t)((rng >> 50) & 0x7fu));
}

static int fill(void *dev, size_t elems) {
    const size_t chunk = (size_t)1 << 22;
    uint16_t *h = malloc(chunk * sizeof(uint16_t));
    if (!h) return -1;
    for (size_t i = 0; i < chunk; i++) h[i] = rand_bf16_bits();
    for (size_t off = 0; off < elems; off += chunk) {
        size_t m = elems - off < chunk ? elems - off : chunk;
        if (cudaMemcpy((uint16_t *)dev + off, h, m * 2, cudaMemcpyHostToDevice) != cudaSuccess) {
            free(h);
            return -1;
        }
    }
    free(h);
    return 0;
}

static int run_shape(cublasHandle_t h, cudaStream_t st, bench_result *r) {
    const shape *s = &r->s;
    void *A = NULL, *B = NULL, *C = NULL;
    const size_t csize = s->f32_out ? 4 : 2;
    if (cudaMalloc(&A, (size_t)s->m * s->k * 2) != cudaSuccess ||
        cudaMalloc(&B, (size_t)s->k * s->n * 2) != cudaSuccess ||
        cudaMalloc(&C, (size_t)s->m * s->n * csize) != cudaSuccess) {
        fprintf(stderr, "bench_matmul: out of GPU memory for %dx%dx%d\n", s->m, s->n, s->k);
        cudaFree(A);
        cudaFree(B);
        cudaFree(C);
        return -1;
    }
    int rc = fill(A, (size_t)s->m * s->k) || fill(B, (size_t)s->k * s->n) ? -1 : 0;
    cudaMemset(C, 0, (size_t)s->m * s->n * csize);
    const float alpha = 1.0f, beta = s->f32_out ? 1.0f : 0.0f;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    float times[RUNS];
    for (int it = 0; rc == 0 && it < WARMUP + RUNS; it++) {
        cudaEventRecord(e0, st);
        /* Row-major C[m,n] = A[m,k]·B[n,k]ᵀ, the layout of matmul_forward. */
        cublasStatus_t cs = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, s->n, s->m, s->k, &alpha,
                                         B, CUDA_R_16BF, s->k, A, CUDA_R_16BF, s->k, &beta, C,
                                         s->f32_out ? CUDA_R_32F : CUDA_R_16BF, s->n,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        cudaEventRecord(e1, st);
        if (cs != CUBLAS_STATUS_SUCCESS) {
            fprintf(stderr, "bench_matmul: cublasGemmEx: %s\n", cublasGetStatusString(cs));
            rc = -1;
            break;
        }
        if (cudaEventSynchronize(e1) != cudaSuccess) {
            rc = -1;
            break;
        }
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (it >= WARMUP) times[it - WARMUP] = ms;
    }
    if (rc == 0) {
        qsort(times, RUNS, sizeof(float), cmp_float);
        r->ms = 0.5 * (times[RUNS / 2 - 1] + times[RUNS / 2]);
        r->tflops = 2.0 * s->m * s->n * (double)s->k / (r->ms * 1e-3) / 1e12;
        r->ok = 1;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFree(A);
    cudaFree(B);
    cudaFree(C);
    return rc;
}

/* ---- decode shapes: cuBLAS vs the skinny GEMM ------------------------------------------ */

enum { DEC_BATCH = 100, DEC_REPS = 21, DEC_MAX_COPIES = 1024 };
#define DEC_ROTATE_BYTES ((size_t)256 << 20)

typedef struct {
    int n, ic, oc, bias;
    const char *what;
    double us[2], gbs[2]; /* [0] cuBLAS, [1] skinny: host-timed back-to-back calls */
    double gus[2];        /* the same calls replayed from a CUDA graph (< 0: not run) */
    int ok;
} dec_result;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Times r's shape both ways on be (a CUDA backend); 0 on success. */
static int run_decode(rlvr_backend *be, dec_result *r) {
    const size_t welems = (size_t)r->oc * r->ic, wbytes = welems * 2;
    size_t copies = DEC_ROTATE_BYTES / wbytes;
    if (copies < 1) copies = 1;
    if (copies > DEC_MAX_COPIES) copies = DEC_MAX_COPIES;
    uint16_t *w = be->alloc(be, copies * wbytes);
    uint16_t *in = be->alloc(be, (size_t)r->n * r->ic * 2);
    uint16_t *out = be->alloc(be, (size_t)r->n * r->oc * 2);
    uint16_t *bias = be->alloc(be, (size_t)r->oc * 2);
    int rc = -1;
    if (w && in && out && bias && fill(w, copies * welems) == 0 &&
        fill(in, (size_t)r->n * r->ic) == 0 && fill(bias, (size_t)r->oc) == 0) {
        rc = 0;
        size_t k = 0; /* the rotation runs on across batches */
        for (int mode = 0; mode < 2 && rc == 0; mode++) {
            rlvr_cuda_set_skinny(be, mode);
            double t[DEC_REPS];
            for (int rep = -1; rep < DEC_REPS; rep++) { /* rep −1: warm-up */
                be->sync(be);
                const double t0 = now_s();
                for (int i = 0; i < DEC_BATCH; i++, k++)
                    be->matmul_forward(be, out, in, w + (k % copies) * welems,
                                       r->bias ? bias : NULL, r->n, r->ic, r->oc);
                be->sync(be);
                if (rep >= 0) t[rep] = (now_s() - t0) / DEC_BATCH;
            }
            if (be->error(be)) {
                fprintf(stderr, "bench_matmul: %s\n", be->error(be));
                rc = -1;
                break;
            }
            qsort(t, DEC_REPS, sizeof(double), cmp_double);
            r->us[mode] = 1e6 * t[DEC_REPS / 2];
            r->gbs[mode] = (double)wbytes / t[DEC_REPS / 2] / 1e9;
            /* the same DEC_BATCH calls (weights k = 0..DEC_BATCH-1 of the rotation) as one
             * recorded graph, replayed: no host launch cost per call */
            r->gus[mode] = -1.0;
            if (be->graph_begin && be->graph_begin(be) == 0) {
                for (int i = 0; i < DEC_BATCH; i++)
                    be->matmul_forward(be, out, in, w + ((size_t)i % copies) * welems,
                                       r->bias ? bias : NULL, r->n, r->ic, r->oc);
                void *g = be->graph_end(be);
                if (g) {
                    for (int rep = -1; rep < DEC_REPS; rep++) {
                        be->sync(be);
                        const double t0 = now_s();
                        be->graph_launch(be, g);
                        be->sync(be);
                        if (rep >= 0) t[rep] = (now_s() - t0) / DEC_BATCH;
                    }
                    be->graph_free(be, g);
                    qsort(t, DEC_REPS, sizeof(double), cmp_double);
                    r->gus[mode] = 1e6 * t[DEC_REPS / 2];
                }
            }
            if (be->error(be)) {
                fprintf(stderr, "bench_matmul: graph replay: %s\n", be->error(be));
                rc = -1;
                break;
            }
        }
        rlvr_cuda_set_skinny(be, 0);
    }
    if (w) be->free(be, w);
    if (in) be->free(be, in);
    if (out) be->free(be, out);
    if (bias) be->free(be, bias);
    r->ok = rc == 0;
    return rc;
}

int main(int argc, char **argv) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("bench_matmul: SKIP: no usable GPU\n");
        return 77;
    }
    struct cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    cublasHandle_t h;
    cudaStream_t st;
    if (cudaStreamCreate(&st) != cudaSuccess || cublasCreate(&h) != CUBLAS_STATUS_SUCCESS ||
        cublasSetStream(h, st) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "bench_matmul: cannot create a stream / cuBLAS handle\n");
        return 1;
    }
    bench_result res[] = {
        {{4096, 4096, 4096, 0, "square"}, 0, 0, 0},
        {{8192, 8192, 8192, 0, "square, large"}, 0, 0, 0},
        {{8192, 8192, 1024, 0, "wide, short K"}, 0, 0, 0},
        {{8192, 4864, 896, 0, "0.5B MLP up: tokens x 4864 x 896"}, 0, 0, 0},
        {{8192, 896, 4864, 0, "0.5B MLP down: tokens x 896 x 4864"}, 0, 0, 0},
        {{4864, 896, 8192, 1, "0.5B dW (fp32 out, beta=1)"}, 0, 0, 0},
    };
    const int n = (int)(sizeof res / sizeof res[0]);
    int fails = 0;
    double best = 0;
    printf("bench_matmul on %s: cuBLAS bf16 GEMM, fp32 compute, median of %d\n", prop.name,
           RUNS);
    printf("%-38s %6s %6s %6s %10s %10s\n", "shape", "M", "N", "K", "ms", "TFLOP/s");
    for (int i = 0; i < n; i++) {
        if (run_shape(h, st, &res[i]) != 0) fails++;
        printf("%-38s %6d %6d %6d %10.4f %10.1f%s\n", res[i].s.what, res[i].s.m, res[i].s.n,
               res[i].s.k, res[i].ms, res[i].tflops, res[i].ok ? "" : "  FAILED");
        if (res[i].ok && res[i].tflops > best) best = res[i].tflops;
    }
    printf("bench_matmul: best %.1f TFLOP/s\n", best);

    enum { NDN = 5 };
    dec_result dec[4 * NDN];
    const int dn[NDN] = {16, 32, 64, 128, 256};
    const struct {
        int ic, oc, bias;
        const char *what;
    } dsh[] = {{896, 1152, 1, "q|k|v + bias"},
               {896, 896, 0, "o-proj"},
               {896, 9728, 0, "gate|up"},
               {4864, 896, 0, "down"}};
    int ndec = 0;
    char berr[512];
    rlvr_backend *be = rlvr_cuda_backend_create(0, berr, sizeof berr);
    if (!be) {
        fprintf(stderr, "bench_matmul: %s\n", berr);
        fails++;
    } else {
        rlvr_cuda_set_gemv(be, 0);
        printf("decode shapes (Qwen2.5-0.5B), matmul_forward: cuBLAS vs skinny GEMM, median of "
               "%d batches of %d calls, weights rotating over %zu MiB\n",
               DEC_REPS, DEC_BATCH, DEC_ROTATE_BYTES >> 20);
        printf("%-14s %4s %5s %5s %12s %12s %12s %12s %14s %14s\n", "shape", "N", "IC", "OC",
               "cuBLAS us", "GB/s", "skinny us", "GB/s", "graph cuBLAS", "graph skinny");
        for (int si = 0; si < 4; si++)
            for (int ni = 0; ni < NDN; ni++) {
                dec_result *d = &dec[ndec++];
                memset(d, 0, sizeof *d);
                d->n = dn[ni];
                d->ic = dsh[si].ic;
                d->oc = dsh[si].oc;
                d->bias = dsh[si].bias;
                d->what = dsh[si].what;
                if (run_decode(be, d) != 0) fails++;
                printf("%-14s %4d %5d %5d %12.2f %12.1f %12.2f %12.1f %14.2f %14.2f%s\n",
                       d->what, d->n, d->ic, d->oc, d->us[0], d->gbs[0], d->us[1], d->gbs[1],
                       d->gus[0], d->gus[1], d->ok ? "" : "  FAILED");
            }
        be->destroy(be);
    }
    if (argc > 1) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
        FILE *f = fopen(tmp, "w");
        if (!f) {
            fprintf(stderr, "bench_matmul: cannot write %s\n", tmp);
            return 1;
        }
        fprintf(f, "{\n  \"device\": \"%s\",\n  \"runs\": %d,\n  \"best_tflops\": %.2f,\n"
                   "  \"shapes\": [\n", prop.name, RUNS, best);
        for (int i = 0; i < n; i++)
            fprintf(f,
                    "    {\"what\": \"%s\", \"m\": %d, \"n\": %d, \"k\": %d, \"fp32_out\": %s, "
                    "\"median_ms\": %.5f, \"tflops\": %.2f, \"ok\": %s}%s\n",
                    res[i].s.what, res[i].s.m, res[i].s.n, res[i].s.k,
                    res[i].s.f32_out ? "true" : "false", res[i].ms, res[i].tflops,
                    res[i].ok ? "true" : "false", i + 1 < n ? "," : "");
        fprintf(f, "  ],\n  \"decode\": [\n");
        for (int i = 0; i < ndec; i++)
            fprintf(f,
                    "    {\"what\": \"%s\", \"n\": %d, \"ic\": %d, \"oc\": %d, \"bias\": %s, "
                    "\"cublas_us\": %.3f, \"cublas_gbs\": %.1f, \"skinny_us\": %.3f, "
                    "\"skinny_gbs\": %.1f, \"graph_cublas_us\": %.3f, \"graph_skinny_us\": %.3f, "
                    "\"ok\": %s}%s\n",
                    dec[i].what, dec[i].n, dec[i].ic, dec[i].oc, dec[i].bias ? "true" : "false",
                    dec[i].us[0], dec[i].gbs[0], dec[i].us[1], dec[i].gbs[1], dec[i].gus[0],
                    dec[i].gus[1],
                    dec[i].ok ? "true" : "false", i + 1 < ndec ? "," : "");
        fprintf(f, "  ]\n}\n");
        if (fclose(f) != 0 || rename(tmp, argv[1]) != 0) {
            fprintf(stderr, "bench_matmul: cannot write %s\n", argv[1]);
            return 1;
        }
    }
    cublasDestroy(h);
    cudaStreamDestroy(st);
    return fails ? 1 : 0;
}
