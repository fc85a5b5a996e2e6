/*
 * tests/dist/test_dist_comm.c — the communicator (engine/dist/comm.h) on real ranks.
 *   test_dist_comm            every collective on every rank, checked against the values
 *                             every rank can compute alone (any world size, 1 included)
 *   test_dist_comm timeout    rank 1 never enters the all-reduce; every other rank must
 *                             fail within RLVR_DIST_TIMEOUT_S with a message naming rank 1,
 *                             then takes the job down with dist_abort(5)
 * Run under mpirun by test_dist_comm.sh; alone it checks the single-process implementation.
 * On a GPU machine, RLVR_DIST=nccl mpirun -np 1 test_dist_comm also all-reduces,
 * reduce-scatters and all-gathers a CUDA buffer through NCCL (one GPU hosts one NCCL rank).
 * The ZeRO-1 collectives (dist_shard_range, reduce-scatter, all-gather of 4- and 2-byte
 * elements) are checked on the CPU backend on every world size.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/dist/comm.h"
#include "tests/common/check.h"

static int collectives(dist_comm *c) {
    char err[2048];
    const int R = dist_rank(c), W = dist_size(c);
    int env_size, env_rank, env_local;
    CHECK(!dist_env(&env_size, &env_rank, &env_local, err, sizeof err), "%s", err);
    CHECK(env_size == W && env_rank == R, "env says %d/%d, communicator %d/%d", env_rank,
          env_size, R, W);
    CHECK(dist_local_rank(c) >= 0 && dist_local_rank(c) < W, "local rank %d",
          dist_local_rank(c));
    CHECK(!dist_barrier(c, err, sizeof err), "barrier: %s", err);
    /* f64 sum / min / max */
    enum { N = 1000 };
    double *x = malloc(N * sizeof *x), *mn = malloc(N * sizeof *mn), *mx = malloc(N * sizeof *mx);
    for (int i = 0; i < N; i++) x[i] = mn[i] = mx[i] = R * 1000.0 + i + 0.25;
    CHECK(!dist_allreduce_f64(c, x, N, DIST_SUM, err, sizeof err), "%s", err);
    CHECK(!dist_allreduce_f64(c, mn, N, DIST_MIN, err, sizeof err), "%s", err);
    CHECK(!dist_allreduce_f64(c, mx, N, DIST_MAX, err, sizeof err), "%s", err);
    for (int i = 0; i < N; i++) {
        const double want = 1000.0 * W * (W - 1) / 2 + W * (i + 0.25);
        CHECK(x[i] == want, "sum[%d] = %.17g, want %.17g", i, x[i], want);
        CHECK(mn[i] == i + 0.25, "min[%d] = %g", i, mn[i]);
        CHECK(mx[i] == (W - 1) * 1000.0 + i + 0.25, "max[%d] = %g", i, mx[i]);
        if (check_failures) break;
    }
    free(x);
    free(mn);
    free(mx);
    /* f32 sum of a larger array; small integers are exact in any order */
    const size_t M = 300000;
    float *f = malloc(M * sizeof *f);
    for (size_t i = 0; i < M; i++) f[i] = (float)((i % 97) + R);
    CHECK(!dist_allreduce_f32(c, f, M, DIST_SUM, err, sizeof err), "%s", err);
    for (size_t i = 0; i < M; i++)
        if (f[i] != (float)(W * (i % 97) + W * (W - 1) / 2)) {
            CHECK(0, "f32 sum[%zu] = %g", i, f[i]);
            break;
        }
    free(f);
    /* gradients in CPU backend memory */
    char berr[512];
    rlvr_backend *be = rlvr_backend_create("cpu", 1, berr, sizeof berr);
    CHECK(be != NULL, "cpu backend: %s", berr);
    if (be) {
        const size_t G = 4097;
        float *g = be->alloc(be, G * sizeof(float)), *h = malloc(G * sizeof(float));
        for (size_t i = 0; i < G; i++) h[i] = 0.5f * (float)R - (float)i;
        be->to_device(be, g, h, G * sizeof(float));
        CHECK(!dist_allreduce_backend_f32(c, be, g, G, err, sizeof err), "%s", err);
        be->to_host(be, h, g, G * sizeof(float));
        for (size_t i = 0; i < G; i++)
            if (h[i] != 0.5f * (float)(W * (W - 1) / 2) - (float)W * (float)i) {
                CHECK(0, "backend sum[%zu] = %g", i, h[i]);
                break;
            }
        be->free(be, g);
        free(h);
    }
    /* ZeRO-1: reduce-scatter then all-gather of shards (n not a multiple of W, so the
     * last rank's shard takes the remainder) on the CPU backend */
    if (be) {
        const size_t n = 1003 + (size_t)W;
        size_t lo, hi, prev_hi = 0;
        for (int r = 0; r < W; r++) { /* the shards tile [0, n) in rank order */
            dist_shard_range(n, W, r, &lo, &hi);
            CHECK(lo == prev_hi && hi >= lo && (r < W - 1 || hi == n), "shard %d [%zu, %zu)", r,
                  lo, hi);
            prev_hi = hi;
        }
        dist_shard_range(n, W, R, &lo, &hi);
        float *g = be->alloc(be, n * sizeof(float)), *h = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) h[i] = (float)(R + 1) * (float)(i % 101);
        be->to_device(be, g, h, n * sizeof(float));
        CHECK(!dist_reduce_scatter_backend_f32(c, be, g, n, err, sizeof err), "%s", err);
        be->to_host(be, h, g, n * sizeof(float));
        for (size_t i = lo; i < hi; i++)
            if (h[i] != (float)(W * (W + 1) / 2) * (float)(i % 101)) {
                CHECK(0, "reduce-scatter [%zu] = %g on rank %d", i, h[i], R);
                break;
            }
        /* all-gather f32: every rank writes its own rank number into its shard */
        for (size_t i = lo; i < hi; i++) h[i] = (float)R + 0.5f;
        be->to_device(be, g, h, n * sizeof(float));
        CHECK(!dist_allgather_backend(c, be, g, n, sizeof(float), err, sizeof err), "%s", err);
        be->to_host(be, h, g, n * sizeof(float));
        for (int r = 0; r < W; r++) {
            size_t a, b;
            dist_shard_range(n, W, r, &a, &b);
            for (size_t i = a; i < b; i++)
                if (h[i] != (float)r + 0.5f) {
                    CHECK(0, "all-gather [%zu] = %g, want rank %d's", i, h[i], r);
                    break;
                }
        }
        /* all-gather of 2-byte elements (bf16 weights travel as bits) */
        uint16_t *u = calloc(n, sizeof *u);
        for (size_t i = lo; i < hi; i++) u[i] = (uint16_t)(0x3f80 + R);
        CHECK(!dist_allgather_backend(c, be, u, n, 2, err, sizeof err), "%s", err);
        for (int r = 0; r < W; r++) {
            size_t a, b;
            dist_shard_range(n, W, r, &a, &b);
            for (size_t i = a; i < b; i++)
                if (u[i] != (uint16_t)(0x3f80 + r)) {
                    CHECK(0, "2-byte all-gather [%zu] = %#x", i, u[i]);
                    break;
                }
        }
        CHECK(dist_allgather_backend(c, be, u, n, 3, err, sizeof err) == -1,
              "3-byte elements accepted");
        free(u);
        be->free(be, g);
        free(h);
        be->destroy(be);
    }
    /* gradients in CUDA memory through NCCL (RLVR_DIST=nccl on a GPU machine) */
    if (dist_kind_of(c) == DIST_NCCL) {
        rlvr_backend *gb = rlvr_backend_create("cuda", 0, berr, sizeof berr);
        CHECK(gb != NULL, "cuda backend: %s", berr);
        if (gb) {
            const size_t G = 1 << 20;
            float *g = gb->alloc(gb, G * sizeof(float)), *h = malloc(G * sizeof(float));
            for (size_t i = 0; i < G; i++) h[i] = (float)(R + 1) * (float)(i % 1000);
            gb->to_device(gb, g, h, G * sizeof(float));
            CHECK(!dist_allreduce_backend_f32(c, gb, g, G, err, sizeof err), "%s", err);
            gb->to_host(gb, h, g, G * sizeof(float));
            for (size_t i = 0; i < G; i++)
                if (h[i] != (float)(W * (W + 1) / 2) * (float)(i % 1000)) {
                    CHECK(0, "NCCL sum[%zu] = %g", i, h[i]);
                    break;
                }
            /* ZeRO-1 on device memory: reduce-scatter, then all-gather of the shards */
            const size_t n = G - 3; /* not a multiple of W > 1: a remainder */
            size_t lo, hi;
            dist_shard_range(n, W, R, &lo, &hi);
            for (size_t i = 0; i < n; i++) h[i] = (float)(R + 1) * (float)(i % 1000);
            gb->to_device(gb, g, h, n * sizeof(float));
            CHECK(!dist_reduce_scatter_backend_f32(c, gb, g, n, err, sizeof err), "%s", err);
            gb->to_host(gb, h, g, n * sizeof(float));
            for (size_t i = lo; i < hi; i++)
                if (h[i] != (float)(W * (W + 1) / 2) * (float)(i % 1000)) {
                    CHECK(0, "NCCL reduce-scatter [%zu] = %g", i, h[i]);
                    break;
                }
            for (size_t i = lo; i < hi; i++) h[i] = (float)R + 0.25f;
            gb->to_device(gb, g, h, n * sizeof(float));
            CHECK(!dist_allgather_backend(c, gb, g, n, sizeof(float), err, sizeof err), "%s",
                  err);
            gb->to_host(gb, h, g, n * sizeof(float));
            for (int r = 0; r < W; r++) {
                size_t a, b;
                dist_shard_range(n, W, r, &a, &b);
                for (size_t i = a; i < b; i++)
                    if (h[i] != (float)r + 0.25f) {
                        CHECK(0, "NCCL all-gather [%zu] = %g, want rank %d's", i, h[i], r);
                        break;
                    }
            }
            gb->free(gb, g);
            free(h);
            gb->destroy(gb);
        }
    }
    /* broadcast from the last rank */
    char msg[64];
    memset(msg, 0, sizeof msg);
    if (R == W - 1) snprintf(msg, sizeof msg, "hello from rank %d", R);
    CHECK(!dist_bcast(c, msg, sizeof msg, W - 1, err, sizeof err), "%s", err);
    char want[64];
    snprintf(want, sizeof want, "hello from rank %d", W - 1);
    CHECK(!strcmp(msg, want), "broadcast gave '%s'", msg);
    CHECK(dist_bcast(c, msg, sizeof msg, W, err, sizeof err) == -1, "root out of range accepted");
    /* all-gather of variable sizes: rank r gives 3r bytes of 'a' + r (rank 0 gives none) */
    char mine[256];
    memset(mine, 'a' + R % 26, sizeof mine);
    void *all = NULL;
    size_t *lens = calloc((size_t)W, sizeof *lens), *offs = calloc((size_t)W, sizeof *offs);
    CHECK(!dist_allgatherv(c, mine, (size_t)(3 * R) % 256, &all, lens, offs, err, sizeof err),
          "%s", err);
    for (int r = 0; all && r < W; r++) {
        CHECK(lens[r] == (size_t)(3 * r) % 256, "lens[%d] = %zu", r, lens[r]);
        for (size_t k = 0; k < lens[r]; k++)
            if (((char *)all)[offs[r] + k] != 'a' + r % 26) {
                CHECK(0, "gathered byte %zu of rank %d", k, r);
                break;
            }
    }
    free(all);
    free(lens);
    free(offs);
    CHECK(dist_comm_seconds(c) >= 0, "comm seconds");
    CHECK(!dist_barrier(c, err, sizeof err), "final barrier: %s", err);
    return check_failures;
}

int main(int argc, char **argv) {
    char err[2048];
    dist_comm *c = NULL;
    if (dist_init(NULL, &c, err, sizeof err)) {
        fprintf(stderr, "dist_init: %s\n", err);
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "timeout")) {
        if (dist_size(c) < 2) {
            fprintf(stderr, "timeout test needs 2 ranks\n");
            dist_free(c);
            return 77;
        }
        double x = 1;
        if (dist_rank(c) == 1) { /* a hung rank: never arrives */
            sleep(120);
            dist_free(c);
            return 0;
        }
        if (dist_allreduce_f64(c, &x, 1, DIST_SUM, err, sizeof err) == 0) {
            fprintf(stderr, "FAIL: all-reduce without rank 1 succeeded\n");
            dist_abort(c, 1);
        }
        fprintf(stderr, "rlvr dist: %s\n", err);
        dist_abort(c, 5);
    }
    int f = collectives(c);
    if (f) {
        fprintf(stderr, "rank %d: %d failure(s)\n", dist_rank(c), f);
        dist_abort(c, 1);
    }
    printf("rank %d/%d (%s): collectives ok\n", dist_rank(c), dist_size(c), dist_kind_name(c));
    dist_free(c);
    return 0;
}
