/*
 * tests/gpu/bench_attention.c — causal attention speed of the CUDA backend, forward and
 * backward, for the first fused tensor-core kernels (RLVR_ATTENTION=flash1), the second
 * fused implementation (flash2: cp.async + ldmatrix, the default for head dims 64/128),
 * flash2 with dQ computed inside its dK/dV kernel (RLVR_ATTN_DQ=partials, "dqpart": its
 * forward is flash2's, its backward the one to compare), flash2 with two tiles per warp
 * in its forward, dK/dV and dQ kernels (RLVR_ATTN_FWD/BWD/DQ=wide, "wide": D 64 only,
 * the same bits) and the
 * simple kernels (RLVR_ATTENTION=simple), through the op table exactly as the model calls
 * it.
 *
 * Shapes (FlashAttention-2's benchmark convention): hidden 2048 = Hq·D (32 heads of 64,
 * 16 of 128), Hkv = Hq, sequences of 1k/2k/4k packed end to end, batch = 16384 / seq,
 * plus the Qwen2.5-0.5B training shape (14 query / 2 KV heads of 64, 8 × 1024).
 * FLOPs, causal: forward 4·Σ_b len_b²·D·Hq / 2 (two matmuls of 2·len²·D, half the
 * square), backward 2.5 × forward, forward+backward 3.5 × forward.
 *
 * Method: random bf16 inputs (uniform in [-1, 1)); the flash1 and flash2 forwards are
 * compared with the simple one once on the first shape, and dqpart's backward (dq, dk,
 * dv) with flash2's on the first and the last shape (relative L2 error, a sanity
 * check: test_cuda_ops is the real check); dqpart needs Σ_b tri(len_b)·Hq·D·4 bytes of
 * partials (tri(L) = Σ_{i<L} (i/64 + 1)) and takes flash2's two-kernel backward where
 * that exceeds its 2 GiB cap (marked "two-kernel" in the table); then per shape and path WARMUP untimed runs and RUNS timed runs of
 * forward and of backward, each bracketed by be->sync() and timed with the host
 * monotonic clock (the backend's stream is private, so no CUDA events; at
 * millisecond-long kernels the sync costs microseconds); the median is reported.
 * The simple path gets fewer runs and skips the 4k shapes (it takes seconds there).
 *
 * Usage: bench_attention [report.json]. Prints a table; writes JSON (atomically) when a
 * path is given. Exit 0; 1 on a backend error, when the flash1 or flash2 forward differs
 * from the simple one or dqpart's backward from flash2's by more than 2e-2 (relative
 * L2); 77 when no GPU is usable.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/backend.h"

enum { TOKENS = 16384, WARMUP = 3, RUNS = 10, SIMPLE_RUNS = 3, MAX_SHAPES = 8 };

/* The timed paths, in table order, and their RLVR_ATTENTION values (dqpart: flash2 with
 * RLVR_ATTN_DQ=partials; wide: flash2 with RLVR_ATTN_FWD/BWD/DQ=wide, two tiles per warp
 * in the forward, dK/dV and dQ at D 64 — the default kernels at 128). */
enum { P_FLASH1 = 0, P_FLASH2, P_DQPART, P_WIDE, P_SIMPLE, NPATH };
static const char *const path_names[NPATH] = {"flash1", "flash2", "flash2+dQpartials",
                                              "flash2+wide", "simple"};
static const char *const path_env[NPATH] = {"flash1", NULL, NULL, NULL, "simple"};

/* flash_attention2.cu's cap on the dQ partials scratch (FA2_DQP_CAP). */
static const double DQP_CAP_BYTES = 2147483648.0;

/* Row-slots of dQ partials for one sequence of L tokens: Σ_{i<L} (i/64 + 1). */
static double dqp_tri(long long L) {
    const long long R = L / 64, r = L % 64;
    return (double)(32 * R * (R + 1) + r * (R + 1));
}

typedef struct {
    int seq, Hq, Hkv, D;
    const char *what;
} shape;

typedef struct {
    shape s;
    int batch;
    double fwd_ms[NPATH], bwd_ms[NPATH]; /* indexed by P_*; < 0 when not run */
    double fwd_tf[NPATH], bwd_tf[NPATH], all_tf[NPATH];
    int dqp_fits; /* whether dqpart's partials fit its cap (else it ran flash2's backward) */
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

static void set_path(int p) {
    unsetenv("RLVR_ATTN_DQ");
    unsetenv("RLVR_ATTN_BWD");
    unsetenv("RLVR_ATTN_FWD");
    if (path_env[p]) setenv("RLVR_ATTENTION", path_env[p], 1);
    else unsetenv("RLVR_ATTENTION");
    if (p == P_DQPART) setenv("RLVR_ATTN_DQ", "partials", 1);
    if (p == P_WIDE) {
        setenv("RLVR_ATTN_BWD", "wide", 1);
        setenv("RLVR_ATTN_FWD", "wide", 1);
        setenv("RLVR_ATTN_DQ", "wide", 1);
    }
}

/* Times forward and backward on one path; medians into *fwd, *bwd (ms). */
static void time_path(rlvr_backend *be, const buffers *b, const shape *s, int batch, int p,
                      double *fwd, double *bwd) {
    const int simple = p == P_SIMPLE;
    const int T = s->seq * batch, runs = simple ? SIMPLE_RUNS : RUNS;
    const int warm = simple ? 1 : WARMUP;
    double tf[RUNS], tb[RUNS];
    set_path(p);
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
    set_path(P_FLASH1);
    *fwd = median(tf, runs);
    *bwd = median(tb, runs);
}

/* Relative L2 difference of path p's forward output from the simple path's on shape s. */
static double check_path(rlvr_backend *be, const buffers *b, const shape *s, int batch, int p) {
    const int T = s->seq * batch;
    const size_t n = (size_t)T * s->Hq * s->D;
    const int which[2] = {p, P_SIMPLE};
    float *o[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    double rel = INFINITY, num = 0, den = 0;
    if (o[0] && o[1]) {
        for (int i = 0; i < 2; i++) {
            set_path(which[i]);
            be->attention_forward(be, b->out, b->lse, b->q, b->k, b->v, b->offsets, batch, T,
                                  s->Hq, s->Hkv, s->D, s->seq);
            be->act_to_f32(be, o[i], b->out, n);
        }
        set_path(P_FLASH1);
        for (size_t i = 0; i < n; i++) {
            const double d = (double)o[0][i] - o[1][i];
            num += d * d;
            den += (double)o[1][i] * o[1][i];
        }
        rel = den > 0 ? sqrt(num / den) : sqrt(num);
    }
    free(o[0]);
    free(o[1]);
    return rel;
}

/* Largest relative L2 difference of dqpart's backward (dq, dk, dv) from flash2's on shape
 * s, from one flash2 forward's out and lse. */
static double check_dqpart(rlvr_backend *be, const buffers *b, const shape *s, int batch) {
    const int T = s->seq * batch;
    const size_t nq = (size_t)T * s->Hq * s->D, nk = (size_t)T * s->Hkv * s->D;
    float *g[2][3];
    double worst = 0;
    int ok = 1;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            g[i][j] = malloc((j ? nk : nq) * sizeof(float));
            ok = ok && g[i][j];
        }
    if (ok) {
        set_path(P_FLASH2);
        be->attention_forward(be, b->out, b->lse, b->q, b->k, b->v, b->offsets, batch, T, s->Hq,
                              s->Hkv, s->D, s->seq);
        const int which[2] = {P_FLASH2, P_DQPART};
        for (int i = 0; i < 2; i++) {
            set_path(which[i]);
            be->attention_backward(be, b->dq, b->dk, b->dv, b->dout, b->q, b->k, b->v, b->out,
                                   b->lse, b->offsets, batch, T, s->Hq, s->Hkv, s->D, s->seq);
            be->act_to_f32(be, g[i][0], b->dq, nq);
            be->act_to_f32(be, g[i][1], b->dk, nk);
            be->act_to_f32(be, g[i][2], b->dv, nk);
        }
        set_path(P_FLASH1);
        for (int j = 0; j < 3; j++) {
            const size_t n = j ? nk : nq;
            double num = 0, den = 0;
            for (size_t i = 0; i < n; i++) {
                const double d = (double)g[1][j][i] - g[0][j][i];
                num += d * d;
                den += (double)g[0][j][i] * g[0][j][i];
            }
            const double rel = den > 0 ? sqrt(num / den) : sqrt(num);
            if (!(rel <= worst)) worst = rel; /* NaN sticks */
        }
    } else {
        worst = INFINITY;
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) free(g[i][j]);
    return worst;
}

static int write_json(const char *path, const char *device, const bench_row *r, int n,
                      const double *check_rel, const double *dqp_rel) {
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
            "  \"flash1_vs_simple_fwd_rel_l2\": %.3e,\n"
            "  \"flash2_vs_simple_fwd_rel_l2\": %.3e,\n"
            "  \"dqpart_vs_flash2_bwd_rel_l2\": [%.3e, %.3e],\n  \"results\": [\n",
            device, RUNS, SIMPLE_RUNS, check_rel[P_FLASH1], check_rel[P_FLASH2], dqp_rel[0],
            dqp_rel[1]);
    for (int i = 0; i < n; i++) {
        const bench_row *x = &r[i];
        fprintf(f,
                "    {\"what\": \"%s\", \"seq\": %d, \"batch\": %d, \"Hq\": %d, \"Hkv\": %d, "
                "\"D\": %d, \"dqpart_partials_fit\": %s",
                x->s.what, x->s.seq, x->batch, x->s.Hq, x->s.Hkv, x->s.D,
                x->dqp_fits ? "true" : "false");
        for (int p = 0; p < NPATH; p++) {
            if (x->fwd_ms[p] < 0) {
                fprintf(f, ", \"%s\": null", path_names[p]);
                continue;
            }
            fprintf(f,
                    ", \"%s\": {\"fwd_ms\": %.4f, \"bwd_ms\": %.4f, \"fwd_tflops\": %.2f, "
                    "\"bwd_tflops\": %.2f, \"fwd_bwd_tflops\": %.2f}",
                    path_names[p], x->fwd_ms[p], x->bwd_ms[p], x->fwd_tf[p], x->bwd_tf[p],
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
    double check_rel[NPATH] = {-1, -1, -1, -1, -1}; /* only [P_FLASH1], [P_FLASH2] used */
    double dqp_rel[2] = {-1, -1};               /* first and last shape */
    printf("bench_attention: causal, packed, bf16 in / fp32 accumulate; TFLOP/s with fwd = "
           "4*sum(len^2)*D*Hq/2, bwd = 2.5*fwd\n");
    printf("%-14s %5s %5s %4s %4s %4s | %9s %9s %9s | %9s %9s %9s | %9s %9s %9s | %9s %9s "
           "%9s | %9s %9s %9s\n",
           "shape", "seq", "batch", "Hq", "Hkv", "D", "flash1:fwd", "bwd", "fwd+bwd",
           "flash2:fwd", "bwd", "fwd+bwd", "dqpart:fwd", "bwd", "fwd+bwd", "wide:fwd", "bwd",
           "fwd+bwd", "simple:fwd", "bwd", "fwd+bwd");
    for (int i = 0; i < nshapes; i++) {
        const shape *s = &shapes[i];
        const int batch = s->what[0] == 'q' ? 8 : TOKENS / s->seq;
        int off[TOKENS + 1];
        for (int j = 0; j <= batch; j++) off[j] = j * s->seq;
        be->to_device(be, b.offsets, off, (size_t)(batch + 1) * sizeof(int));
        if (i == 0) {
            check_rel[P_FLASH1] = check_path(be, &b, s, batch, P_FLASH1);
            check_rel[P_FLASH2] = check_path(be, &b, s, batch, P_FLASH2);
        }
        if (i == 0 || i == nshapes - 1) dqp_rel[i != 0] = check_dqpart(be, &b, s, batch);
        bench_row *r = &rows[i];
        r->s = *s;
        r->batch = batch;
        r->dqp_fits = batch * dqp_tri(s->seq) * s->Hq * s->D * 4.0 + batch * 8.0 + 256.0 <=
                      DQP_CAP_BYTES;
        const double fwd_flop = 4.0 * batch * (double)s->seq * s->seq * s->D * s->Hq / 2.0;
        for (int p = 0; p < NPATH; p++) {
            r->fwd_ms[p] = r->bwd_ms[p] = -1;
            if (p == P_SIMPLE && s->seq > 2048) continue;
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
        printf("%-14s %5d %5d %4d %4d %4d", s->what, s->seq, batch, s->Hq, s->Hkv, s->D);
        for (int p = 0; p < NPATH; p++) {
            if (r->fwd_ms[p] >= 0)
                printf(" | %9.1f %9.1f %9.1f", r->fwd_tf[p], r->bwd_tf[p], r->all_tf[p]);
            else
                printf(" | %9s %9s %9s", "-", "-", "-");
        }
        printf("%s\n", r->dqp_fits ? "" : "  (dqpart: partials > 2 GiB, two-kernel)");
        fflush(stdout);
    }
    for (int p = 0; p < P_DQPART; p++)
        printf("%s vs simple forward (%s, seq %d): relative L2 difference %.3e\n", path_names[p],
               shapes[0].what, shapes[0].seq, check_rel[p]);
    printf("dqpart vs flash2 backward, worst of dq/dk/dv (%s seq %d; %s seq %d): relative L2 "
           "difference %.3e, %.3e\n",
           shapes[0].what, shapes[0].seq, shapes[nshapes - 1].what, shapes[nshapes - 1].seq,
           dqp_rel[0], dqp_rel[1]);
    printf("(for scale: issue 8 quotes FlashAttention-2's H100 hd64 fwd+bwd figures, "
           "141/192/232 TFLOP/s at 0.5k/1k/2k)\n");
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        if (!(dqp_rel[i] <= 2e-2)) {
            fprintf(stderr, "bench_attention: FAIL: dqpart and flash2 backwards differ (rel %.3e)\n",
                    dqp_rel[i]);
            rc = 1;
        }
    }
    for (int p = 0; p < P_DQPART; p++) {
        if (!(check_rel[p] <= 2e-2)) {
            fprintf(stderr, "bench_attention: FAIL: %s and simple forwards differ (rel %.3e)\n",
                    path_names[p], check_rel[p]);
            rc = 1;
        }
    }
    if (argc > 1 && write_json(argv[1], "cuda", rows, nshapes, check_rel, dqp_rel) != 0) rc = 1;
    be->destroy(be);
    return rc;
}
