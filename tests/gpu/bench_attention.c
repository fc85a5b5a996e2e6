/*
 * tests/gpu/bench_attention.c — causal attention speed of the CUDA backend, forward and
 * backward, for the fused tensor-core kernels (the default for head dims 64/128) and the
 * simple kernels (RLVR_ATTENTION=simple), through the op table exactly as the model
 * calls it.
 *
 * Shapes (FlashAttention-2's benchmark convention): hidden 2048 = Hq·D (32 heads of 64,
 * 16 of 128), Hkv = Hq, sequences of 1k/2k/4k packed end to end, batch = 16384 / seq,
 * plus the Qwen2.5-0.5B training shape (14 query / 2 KV heads of 64, 8 × 1024).
 * FLOPs, causal: forward 4·Σ_b len_b²·D·Hq / 2 (two matmuls of 2·len²·D, half the
 * square), backward 2.5 × forward, forward+backward 3.5 × forward.
 *
 * Method: random bf16 inputs (uniform in [-1, 1)); the fused and simple forwards are
 * compared once on the first shape (relative L2 error, a sanity check: test_cuda_ops is
 * the real check); then per shape and path WARMUP untimed runs and RUNS timed runs of
 * forward and of backward, each bracketed by be->sync() and timed with the host
 * monotonic clock (the backend's stream is private, so no CUDA events; at
 * millisecond-long kernels the sync costs microseconds); the median is reported.
 * The simple path gets fewer runs and skips the 4k shapes (it takes seconds there).
 *
 * Usage: bench_attention [report.json]. Prints a table; writes JSON (atomically) when a
 * path is given. Exit 0; 1 on a backend error or when the fused and simple forwards
 * differ by more than 2e-2 (relative L2); 77 when no GPU is usable.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/backend.h"

enum { TOKENS = 16384, WARMUP = 3, RUNS = 10, SIMPLE_RUNS = 3, MAX_SHAPES = 8 };

typedef struct {
    int seq, Hq, Hkv, D;
    const char *what;
} shape;

typedef struct {
    shape s;
    int batch;
    double fwd_ms[2], bwd_ms[2]; /* [0] fused, [1] simple; < 0 when not run */
    double fwd_tf[2], bwd_tf[2], all_tf[2];
} bench_row;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* n act elements of uniform [-1, 1) values (a 4M-value random chunk, repeated). */
static int fill_random(rlvr_backend *be, void *dst, size_t n, uint64_t seed) {
    const size_t chunk = (size_t)1 << 22;
    float *h = malloc(chunk * sizeof(float));
    if (!h) return -1;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < chunk; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h[i] = (float)((x >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
    }
    for (size_t off = 0; off < n; off += chunk) {
        const size_t m = n - off < chunk ? n - off : chunk;
        be->act_from_f32(be, (char *)dst + off * be->act_size, h, m);
    }
    free(h);
    return 0;
}

typedef struct {
    void *q, *k, *v, *out, *dout, *dq, *dk, *dv;
    float *lse;
    int *offsets;
} buffers;

static void set_path(int simple) {
    if (simple) setenv("RLVR_ATTENTION", "simple", 1);
    else unsetenv("RLVR_ATTENTION");
}

/* Times forward and backward on one path; medians into *fwd, *bwd (ms). */
static void time_path(rlvr_backend *be, const buffers *b, const shape *s, int batch, int simple,
                      double *fwd, double *bwd) {
    const int T = s->seq * batch, runs = simple ? SIMPLE_RUNS : RUNS;
    const int warm = simple ? 1 : WARMUP;
    double tf[RUNS], tb[RUNS];
    set_path(simple);
    for (int i = 0; i < warm + runs; i++) {
        be->sync(be);
        double t0 = now_ms();
        be->attention_forward(be, b->out, b->lse, b->q, b->k, b->v, b->offsets, batch, T, s->Hq,
                              s->Hkv, s->D, s->seq);
        be->sync(be);
        double t1 = now_ms();
        be->attention_backward(be, b->dq, b->dk, b->dv, b->dout, b->q, b->k, b->v, b->out,
                               b->lse, b->offsets, batch, T, s->Hq, s->Hkv, s->D, s->seq);
        be->sync(be);
        double t2 = now_ms();
        if (i >= warm) {
            tf[i - warm] = t1 - t0;
            tb[i - warm] = t2 - t1;
        }
    }
    set_path(0);
    *fwd = median(tf, runs);
    *bwd = median(tb, runs);
}

/* Relative L2 difference of the fused and simple forward outputs on shape s. */
static double check_paths(rlvr_backend *be, const buffers *b, const shape *s, int batch) {
    const int T = s->seq * batch;
    const size_t n = (size_t)T * s->Hq * s->D;
    float *o[2];
    for (int p = 0; p < 2; p++) {
        set_path(p);
        be->attention_forward(be, b->out, b->lse, b->q, b->k, b->v, b->offsets, batch, T, s->Hq,
                              s->Hkv, s->D, s->seq);
        o[p] = malloc(n * sizeof(float));
        if (!o[p]) return INFINITY;
        be->act_to_f32(be, o[p], b->out, n);
    }
    set_path(0);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)o[0][i] - o[1][i];
        num += d * d;
        den += (double)o[1][i] * o[1][i];
    }
    free(o[0]);
    free(o[1]);
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int write_json(const char *path, const char *device, const bench_row *r, int n,
                      double check_rel) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "bench_attention: cannot write %s\n", tmp);
        return -1;
    }
    fprintf(f,
            "{\n  \"bench\": \"bench_attention\",\n  \"backend\": \"%s\",\n"
            "  \"flops\": \"causal: fwd 4*sum(len^2)*D*Hq/2, bwd 2.5*fwd\",\n"
            "  \"timing\": \"median of %d (simple: %d) host-timed runs, synchronised\",\n"
            "  \"fused_vs_simple_fwd_rel_l2\": %.3e,\n  \"results\": [\n",
            device, RUNS, SIMPLE_RUNS, check_rel);
    for (int i = 0; i < n; i++) {
        const bench_row *x = &r[i];
        fprintf(f,
                "    {\"what\": \"%s\", \"seq\": %d, \"batch\": %d, \"Hq\": %d, \"Hkv\": %d, "
                "\"D\": %d",
                x->s.what, x->s.seq, x->batch, x->s.Hq, x->s.Hkv, x->s.D);
        const char *names[2] = {"fused", "simple"};
        for (int p = 0; p < 2; p++) {
            if (x->fwd_ms[p] < 0) {
                fprintf(f, ", \"%s\": null", names[p]);
                continue;
            }
            fprintf(f,
                    ", \"%s\": {\"fwd_ms\": %.4f, \"bwd_ms\": %.4f, \"fwd_tflops\": %.2f, "
                    "\"bwd_tflops\": %.2f, \"fwd_bwd_tflops\": %.2f}",
                    names[p], x->fwd_ms[p], x->bwd_ms[p], x->fwd_tf[p], x->bwd_tf[p],
                    x->all_tf[p]);
        }
        fprintf(f, "}%s\n", i + 1 < n ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "bench_attention: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    char err[512];
    rlvr_backend *be = rlvr_cuda_backend_create(0, err, sizeof err);
    if (!be) {
        printf("bench_attention: SKIP: %s\n", err);
        return 77;
    }
    const shape shapes[] = {
        {1024, 32, 32, 64, "fa2-hd64"},  {2048, 32, 32, 64, "fa2-hd64"},
        {4096, 32, 32, 64, "fa2-hd64"},  {1024, 16, 16, 128, "fa2-hd128"},
        {2048, 16, 16, 128, "fa2-hd128"}, {4096, 16, 16, 128, "fa2-hd128"},
        {1024, 14, 2, 64, "qwen2.5-0.5b"},
    };
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    /* Buffers for the largest case: TOKENS × 2048 act elements per q/out tensor. */
    const size_t nmax = (size_t)TOKENS * 2048, lmax = (size_t)TOKENS * 32;
    buffers b;
    b.q = be->alloc(be, nmax * be->act_size);
    b.k = be->alloc(be, nmax * be->act_size);
    b.v = be->alloc(be, nmax * be->act_size);
    b.out = be->alloc(be, nmax * be->act_size);
    b.dout = be->alloc(be, nmax * be->act_size);
    b.dq = be->alloc(be, nmax * be->act_size);
    b.dk = be->alloc(be, nmax * be->act_size);
    b.dv = be->alloc(be, nmax * be->act_size);
    b.lse = be->alloc(be, lmax * sizeof(float));
    b.offsets = be->alloc(be, (TOKENS + 1) * sizeof(int));
    if (be->error(be) || fill_random(be, b.q, nmax, 1) || fill_random(be, b.k, nmax, 2) ||
        fill_random(be, b.v, nmax, 3) || fill_random(be, b.dout, nmax, 4)) {
        fprintf(stderr, "bench_attention: setup failed: %s\n",
                be->error(be) ? be->error(be) : "out of host memory");
        be->destroy(be);
        return 1;
    }
    bench_row rows[MAX_SHAPES];
    double check_rel = -1;
    printf("bench_attention: causal, packed, bf16 in / fp32 accumulate; TFLOP/s with fwd = "
           "4*sum(len^2)*D*Hq/2, bwd = 2.5*fwd\n");
    printf("%-14s %5s %5s %4s %4s %4s | %9s %9s %9s | %9s %9s %9s\n", "shape", "seq", "batch",
           "Hq", "Hkv", "D", "fused:fwd", "bwd", "fwd+bwd", "simple:fwd", "bwd", "fwd+bwd");
    for (int i = 0; i < nshapes; i++) {
        const shape *s = &shapes[i];
        const int batch = s->what[0] == 'q' ? 8 : TOKENS / s->seq;
        int off[TOKENS + 1];
        for (int j = 0; j <= batch; j++) off[j] = j * s->seq;
        be->to_device(be, b.offsets, off, (size_t)(batch + 1) * sizeof(int));
        if (i == 0) check_rel = check_paths(be, &b, s, batch);
        bench_row *r = &rows[i];
        r->s = *s;
        r->batch = batch;
        const double fwd_flop = 4.0 * batch * (double)s->seq * s->seq * s->D * s->Hq / 2.0;
        for (int p = 0; p < 2; p++) {
            r->fwd_ms[p] = r->bwd_ms[p] = -1;
            if (p == 1 && s->seq > 2048) continue;
            time_path(be, &b, s, batch, p, &r->fwd_ms[p], &r->bwd_ms[p]);
            r->fwd_tf[p] = fwd_flop / (r->fwd_ms[p] * 1e9);
            r->bwd_tf[p] = 2.5 * fwd_flop / (r->bwd_ms[p] * 1e9);
            r->all_tf[p] = 3.5 * fwd_flop / ((r->fwd_ms[p] + r->bwd_ms[p]) * 1e9);
        }
        if (be->error(be)) {
            fprintf(stderr, "bench_attention: backend error: %s\n", be->error(be));
            be->destroy(be);
            return 1;
        }
        printf("%-14s %5d %5d %4d %4d %4d | %9.1f %9.1f %9.1f |", s->what, s->seq, batch, s->Hq,
               s->Hkv, s->D, r->fwd_tf[0], r->bwd_tf[0], r->all_tf[0]);
        if (r->fwd_ms[1] >= 0)
            printf(" %9.1f %9.1f %9.1f\n", r->fwd_tf[1], r->bwd_tf[1], r->all_tf[1]);
        else
            printf(" %9s %9s %9s\n", "-", "-", "-");
        fflush(stdout);
    }
    printf("fused vs simple forward (%s, seq %d): relative L2 difference %.3e\n", shapes[0].what,
           shapes[0].seq, check_rel);
    printf("(for scale: issue 8 quotes FlashAttention-2's H100 hd64 fwd+bwd figures, "
           "141/192/232 TFLOP/s at 0.5k/1k/2k)\n");
    int rc = 0;
    if (!(check_rel <= 2e-2)) {
        fprintf(stderr, "bench_attention: FAIL: fused and simple forwards differ (rel %.3e)\n",
                check_rel);
        rc = 1;
    }
    if (argc > 1 && write_json(argv[1], "cuda", rows, nshapes, check_rel) != 0) rc = 1;
    be->destroy(be);
    return rc;
}
