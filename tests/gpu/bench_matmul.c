/*
 * tests/gpu/bench_matmul.c — the measured bf16 GEMM rate of this card through cuBLAS
 * (bf16 inputs, fp32 compute, as kernels/cuda uses it): the denominator of the model
 * FLOPs utilisation reported later. For each shape: random bf16 inputs (larger than
 * L2), 5 warm-up runs, then 30 runs timed one by one with CUDA events; the median is
 * reported as TFLOP/s = 2·M·N·K / time.
 *
 * Usage: bench_matmul [report.json]. Exit 77 when no GPU is usable.
 */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
