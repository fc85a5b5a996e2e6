/*
 * engine/dist/comm.c — the communicator's front end (see comm.h): the launcher
 * environment, choosing and creating an implementation, the single-process collectives,
 * host staging of backend buffers, and the test-only fault hook.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/dist/comm_internal.h"

double dist_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

dist_opts dist_opts_default(void) {
    dist_opts o = {.kind = "auto", .want_gpu = 0, .timeout_s = 600};
    return o;
}

/* A non-negative integer environment variable: 1 when set (value in *v), 0 when unset,
 * -1 with a message when malformed. */
static int env_int(const char *name, int *v, char *err, size_t errlen) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *end || x < 0 || x > 1 << 24) {
        snprintf(err, errlen, "environment variable %s = '%s': expected a non-negative integer",
                 name, s);
        return -1;
    }
    *v = (int)x;
    return 1;
}

int dist_env(int *size, int *rank, int *local_rank, char *err, size_t errlen) {
    *size = 1;
    *rank = 0;
    *local_rank = 0;
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    static const char *const locals[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID",
                                         "PMI_LOCAL_RANK"};
    for (int i = 0; i < 3; i++) {
        int r = env_int(sizes[i], size, err, errlen);
        if (r < 0) return -1;
        if (r == 0) continue;
        if (env_int(ranks[i], rank, err, errlen) < 0) return -1;
        break;
    }
    for (int i = 0; i < 3; i++) {
        int r = env_int(locals[i], local_rank, err, errlen);
        if (r < 0) return -1;
        if (r) break;
    }
    if (*size < 1 || *rank >= *size) {
        snprintf(err, errlen, "launcher environment: rank %d is not below world size %d", *rank,
                 *size);
        return -1;
    }
    return 0;
}

int dist_init(const dist_opts *o, dist_comm **out, char *err, size_t errlen) {
    *out = NULL;
    dist_opts d = o ? *o : dist_opts_default();
    const char *kind = getenv("RLVR_DIST");
    if (!kind || !*kind) kind = d.kind ? d.kind : "auto";
    const char *ts = getenv("RLVR_DIST_TIMEOUT_S");
    if (ts && *ts) {
        char *end;
        double v = strtod(ts, &end);
        if (*end || !(v > 0) || v > 1e7) {
            snprintf(err, errlen,
                     "environment variable RLVR_DIST_TIMEOUT_S = '%s': expected seconds > 0", ts);
            return -1;
        }
        d.timeout_s = v;
    }
    if (!(d.timeout_s > 0)) d.timeout_s = 600;
    dist_comm *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "dist: out of host memory");
        return -1;
    }
    c->timeout_s = d.timeout_s;
    if (dist_env(&c->size, &c->rank, &c->local_rank, err, errlen)) {
        free(c);
        return -1;
    }
    c->gpu = c->local_rank;
    if (!strcmp(kind, "auto")) {
#ifdef RLVR_DIST_HAVE_NCCL
        kind = c->size > 1 ? (d.want_gpu ? "nccl" : "mpi") : "single";
#else
        kind = c->size > 1 ? "mpi" : "single";
#endif
    }
    if (!strcmp(kind, "single")) {
        if (c->size > 1) {
            snprintf(err, errlen,
                     "dist: launched as rank %d of %d but RLVR_DIST/dist kind is 'single'",
                     c->rank, c->size);
            free(c);
            return -1;
        }
        c->kind = DIST_SINGLE;
        *out = c;
        return 0;
    }
    if (strcmp(kind, "mpi") && strcmp(kind, "nccl")) {
        snprintf(err, errlen, "dist: kind '%s': expected auto, single, mpi or nccl", kind);
        free(c);
        return -1;
    }
#ifdef RLVR_DIST_HAVE_MPI
    c->kind = DIST_MPI;
    if (dist_mpi_init(c, err, errlen)) {
        free(c);
        return -1;
    }
    if (!strcmp(kind, "nccl")) {
#ifdef RLVR_DIST_HAVE_NCCL
        c->kind = DIST_NCCL;
        if (dist_nccl_init(c, err, errlen)) {
            /* MPI stays initialised and unfinalised: the caller exits non-zero and the
             * launcher takes the job down (MPI_Finalize could wait for the other ranks) */
            return -1;
        }
#else
        snprintf(err, errlen, "dist: kind 'nccl': this rlvr was built without NCCL");
        return -1;
#endif
    }
    *out = c;
    return 0;
#else
    snprintf(err, errlen,
             "dist: kind '%s' (world size %d from the launcher): this rlvr was built without "
             "MPI (install libopenmpi-dev and rebuild)",
             kind, c->size);
    free(c);
    return -1;
#endif
}

void dist_free(dist_comm *c) {
    if (!c) return;
#ifdef RLVR_DIST_HAVE_NCCL
    if (c->nccl) dist_nccl_free(c);
#endif
#ifdef RLVR_DIST_HAVE_MPI
    if (c->mpi) dist_mpi_free(c);
#endif
    free(c);
}

void dist_abort(dist_comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
#ifdef RLVR_DIST_HAVE_NCCL
    if (c && c->nccl) dist_nccl_abort(c);
#endif
#ifdef RLVR_DIST_HAVE_MPI
    if (c && c->mpi) dist_mpi_abort(c, code);
#endif
    exit(code);
}

dist_kind dist_kind_of(const dist_comm *c) { return c ? c->kind : DIST_SINGLE; }
const char *dist_kind_name(const dist_comm *c) {
    static const char *const names[] = {"single", "mpi", "nccl"};
    return names[dist_kind_of(c)];
}
int dist_rank(const dist_comm *c) { return c ? c->rank : 0; }
int dist_size(const dist_comm *c) { return c ? c->size : 1; }
int dist_local_rank(const dist_comm *c) { return c ? c->local_rank : 0; }
int dist_device_index(const dist_comm *c) { return c ? c->gpu : 0; }
double dist_timeout_s(const dist_comm *c) { return c ? c->timeout_s : 600; }
double dist_comm_seconds(const dist_comm *c) { return c ? c->t_comm : 0; }
void dist_set_timeout(dist_comm *c, double timeout_s) {
    if (c && timeout_s > 0) c->timeout_s = timeout_s;
}
int dist_device_nccl(const dist_comm *c) { return c && c->nccl && !c->nccl_off; }
void dist_set_device_nccl(dist_comm *c, int on) {
    if (c) c->nccl_off = !on;
}

/* ---- collectives: single process, or forward to MPI --------------------------------- */

#ifdef RLVR_DIST_HAVE_MPI
#define IF_MPI(call)                                                                           \
    do {                                                                                       \
        if (c && c->mpi) {                                                                     \
            const double t0_ = dist_now();                                                     \
            int rc_ = (call);                                                                  \
            c->t_comm += dist_now() - t0_;                                                     \
            return rc_;                                                                        \
        }                                                                                      \
    } while (0)
#else
#define IF_MPI(call) ((void)c)
#endif

int dist_barrier(dist_comm *c, char *err, size_t errlen) {
    IF_MPI(dist_mpi_barrier(c, err, errlen));
    (void)err;
    (void)errlen;
    return 0;
}

int dist_allreduce_f64(dist_comm *c, double *x, size_t n, dist_op op, char *err,
                       size_t errlen) {
    IF_MPI(dist_mpi_allreduce(c, x, n, 1, op, err, errlen));
    (void)x, (void)n, (void)op, (void)err, (void)errlen;
    return 0;
}

int dist_allreduce_f32(dist_comm *c, float *x, size_t n, dist_op op, char *err, size_t errlen) {
    IF_MPI(dist_mpi_allreduce(c, x, n, 0, op, err, errlen));
    (void)x, (void)n, (void)op, (void)err, (void)errlen;
    return 0;
}

int dist_allreduce_backend_f32(dist_comm *c, rlvr_backend *be, float *x, size_t n, char *err,
                               size_t errlen) {
#ifdef RLVR_DIST_HAVE_NCCL
    /* NCCL runs even for one rank, so a one-GPU job exercises it */
    if (dist_device_nccl(c) && strcmp(be->name, "cuda") == 0) {
        const double t0 = dist_now();
        int rc = dist_nccl_allreduce_f32(c, be, x, n, err, errlen);
        c->t_comm += dist_now() - t0;
        return rc;
    }
#endif
    if (dist_size(c) == 1) return 0;
    if (strcmp(be->name, "cpu") == 0) return dist_allreduce_f32(c, x, n, DIST_SUM, err, errlen);
    /* a device backend without NCCL: through host memory */
    float *h = malloc(n * sizeof(float) + 1);
    if (!h) {
        snprintf(err, errlen, "dist: out of host memory staging %zu gradients", n);
        return -1;
    }
    be->to_host(be, h, x, n * sizeof(float));
    int rc = dist_allreduce_f32(c, h, n, DIST_SUM, err, errlen);
    if (!rc) be->to_device(be, x, h, n * sizeof(float));
    free(h);
    const char *e = be->error(be);
    if (!rc && e) {
        snprintf(err, errlen, "dist: staging gradients on %s: %s", be->name, e);
        rc = -1;
    }
    return rc;
}

int dist_bcast(dist_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
    if (root < 0 || root >= dist_size(c)) {
        snprintf(err, errlen, "dist: broadcast root %d is not a rank of %d", root, dist_size(c));
        return -1;
    }
    IF_MPI(dist_mpi_bcast(c, buf, bytes, root, err, errlen));
    (void)buf, (void)bytes;
    return 0;
}

int dist_allgatherv(dist_comm *c, const void *mine, size_t len, void **all, size_t *lens,
                    size_t *offs, char *err, size_t errlen) {
    IF_MPI(dist_mpi_allgatherv(c, mine, len, all, lens, offs, err, errlen));
    *all = malloc(len + 1);
    if (!*all) {
        snprintf(err, errlen, "dist: out of host memory");
        return -1;
    }
    if (len) memcpy(*all, mine, len);
    lens[0] = len;
    offs[0] = 0;
    return 0;
}

/* ---- ZeRO-1: sharded vectors -------------------------------------------------------- */

void dist_shard_range(size_t n, int size, int rank, size_t *lo, size_t *hi) {
    if (size < 1) size = 1;
    const size_t q = n / (size_t)size;
    *lo = (size_t)rank * q;
    *hi = rank == size - 1 ? n : *lo + q;
}

int dist_reduce_scatter_backend_f32(dist_comm *c, rlvr_backend *be, float *x, size_t n,
                                    char *err, size_t errlen) {
#ifdef RLVR_DIST_HAVE_NCCL
    if (dist_device_nccl(c) && strcmp(be->name, "cuda") == 0) {
        const double t0 = dist_now();
        int rc = dist_nccl_reduce_scatter_f32(c, be, x, n, err, errlen);
        c->t_comm += dist_now() - t0;
        return rc;
    }
#endif
    if (dist_size(c) == 1) return 0;
#ifdef RLVR_DIST_HAVE_MPI
    int rc = -1;
    const double t0 = dist_now();
    if (strcmp(be->name, "cpu") == 0) {
        rc = dist_mpi_reduce_scatter_f32(c, x, n, err, errlen);
    } else { /* a device backend without NCCL: through host memory */
        size_t lo, hi;
        dist_shard_range(n, c->size, c->rank, &lo, &hi);
        float *h = malloc(n * sizeof(float) + 1);
        if (!h) {
            snprintf(err, errlen, "dist: out of host memory staging %zu gradients", n);
        } else {
            be->to_host(be, h, x, n * sizeof(float));
            rc = dist_mpi_reduce_scatter_f32(c, h, n, err, errlen);
            if (!rc) be->to_device(be, x + lo, h + lo, (hi - lo) * sizeof(float));
            free(h);
            const char *e = be->error(be);
            if (!rc && e) {
                snprintf(err, errlen, "dist: staging gradients on %s: %s", be->name, e);
                rc = -1;
            }
        }
    }
    c->t_comm += dist_now() - t0;
    return rc;
#else
    (void)be, (void)x, (void)n;
    snprintf(err, errlen, "dist: reduce-scatter over %d ranks: built without MPI", dist_size(c));
    return -1;
#endif
}

int dist_allgather_backend(dist_comm *c, rlvr_backend *be, void *x, size_t n, size_t elem,
                           char *err, size_t errlen) {
    if (elem != 2 && elem != 4) {
        snprintf(err, errlen, "dist: all-gather of %zu-byte elements (expected 2 or 4)", elem);
        return -1;
    }
#ifdef RLVR_DIST_HAVE_NCCL
    if (dist_device_nccl(c) && strcmp(be->name, "cuda") == 0) {
        const double t0 = dist_now();
        int rc = dist_nccl_allgather_shards(c, be, x, n, elem, err, errlen);
        c->t_comm += dist_now() - t0;
        return rc;
    }
#endif
    if (dist_size(c) == 1) return 0;
#ifdef RLVR_DIST_HAVE_MPI
    int rc = -1;
    const double t0 = dist_now();
    if (strcmp(be->name, "cpu") == 0) {
        rc = dist_mpi_allgather_shards(c, x, n, elem, err, errlen);
    } else { /* a device backend without NCCL: through host memory */
        size_t lo, hi;
        dist_shard_range(n, c->size, c->rank, &lo, &hi);
        char *h = malloc(n * elem + 1);
        if (!h) {
            snprintf(err, errlen, "dist: out of host memory staging %zu values", n);
        } else {
            be->to_host(be, h + lo * elem, (char *)x + lo * elem, (hi - lo) * elem);
            rc = dist_mpi_allgather_shards(c, h, n, elem, err, errlen);
            if (!rc) be->to_device(be, x, h, n * elem);
            free(h);
            const char *e = be->error(be);
            if (!rc && e) {
                snprintf(err, errlen, "dist: staging the all-gather on %s: %s", be->name, e);
                rc = -1;
            }
        }
    }
    c->t_comm += dist_now() - t0;
    return rc;
#else
    (void)be, (void)x, (void)n;
    snprintf(err, errlen, "dist: all-gather over %d ranks: built without MPI", dist_size(c));
    return -1;
#endif
}

/* ---- test hook ------------------------------------------------------------------------ */

void dist_test_fault_point(const dist_comm *c, long step) {
    const char *s = getenv("RLVR_DIST_TEST_FAULT");
    if (!s || !*s) return;
    int rank = -1;
    long at = -1;
    char what[16] = "";
    if (sscanf(s, "%d:%ld:%15s", &rank, &at, what) != 3) return;
    if (rank != dist_rank(c) || at != step) return;
    if (!strcmp(what, "exit")) {
        fprintf(stderr, "rlvr dist: TEST FAULT: rank %d exits at step %ld\n", rank, step);
        fflush(stderr);
        _exit(3);
    }
    if (!strcmp(what, "hang")) {
        fprintf(stderr, "rlvr dist: TEST FAULT: rank %d hangs at step %ld\n", rank, step);
        fflush(stderr);
        for (;;) pause();
    }
}
