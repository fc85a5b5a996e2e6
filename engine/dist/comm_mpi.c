/*
 * engine/dist/comm_mpi.c — the MPI implementation of the communicator (comm.h) for CPU
 * ranks, and the MPI bootstrap of the NCCL one.
 *
 * Never hang: every collective is non-blocking (MPI_Ibarrier, MPI_Iallreduce, ...) and
 * completed by polling MPI_Test against the communicator's deadline, with errors returned
 * (MPI_ERRORS_RETURN), not fatal. Naming the rank that is late: before every collective
 * a rank announces the collective's sequence number on a side channel (a duplicate of
 * MPI_COMM_WORLD): ranks ≠ 0 to rank 0, rank 0 to every rank. After a timeout rank 0
 * knows every rank that never announced it; another rank knows whether rank 0 did.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/dist/comm_internal.h"

enum { TAG_ANNOUNCE = 4242 };
#define CHUNK_ELEMS ((size_t)1 << 28) /* elements per MPI call (int counts) */

struct dist_mpi {
    MPI_Comm coll, side;
    int we_initialized;
    unsigned long long seq;      /* collectives entered */
    unsigned long long *seen;    /* [size] latest sequence announced by each rank */
    unsigned long long send_val; /* buffer of the announcements in flight */
    MPI_Request *sreq;           /* [size] announcements in flight */
    int n_sreq;
};

static void mpi_msg(int code, char *buf, size_t len) {
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(code, s, &n) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", code);
    snprintf(buf, len, "%s", s);
}

/* Receives every announcement that has arrived. */
static void drain(dist_comm *c) {
    struct dist_mpi *m = c->mpi;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(c->rank == 0 ? MPI_ANY_SOURCE : 0, TAG_ANNOUNCE, m->side, &flag, &st) !=
                MPI_SUCCESS ||
            !flag)
            return;
        unsigned long long v = 0;
        if (MPI_Recv(&v, 1, MPI_UNSIGNED_LONG_LONG, st.MPI_SOURCE, TAG_ANNOUNCE, m->side,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return;
        if (st.MPI_SOURCE >= 0 && st.MPI_SOURCE < c->size && v > m->seen[st.MPI_SOURCE])
            m->seen[st.MPI_SOURCE] = v;
    }
}

static void nap(double *pause_s) {
    struct timespec ts = {0, (long)(*pause_s * 1e9)};
    nanosleep(&ts, NULL);
    if (*pause_s < 1e-3) *pause_s *= 2;
}

void dist_mpi_missing(dist_comm *c, unsigned long long seq, char *buf, size_t len) {
    struct dist_mpi *m = c->mpi;
    drain(c);
    size_t off = 0;
    buf[0] = 0;
    if (c->rank == 0) {
        int k = 0;
        for (int r = 1; r < c->size && off + 16 < len; r++) {
            if (m->seen[r] >= seq) continue;
            off += (size_t)snprintf(buf + off, len - off, "%s%d", k ? ", " : "", r);
            k++;
        }
        if (k == 0)
            snprintf(buf, len, "every rank arrived; the collective itself did not complete");
        else if (off + 40 < len)
            snprintf(buf + off, len - off, " did not arrive (dead or hung)");
        if (k) { /* "rank 1 did not..." / "ranks 1, 3 did not..." */
            char tmp[1024];
            snprintf(tmp, sizeof tmp, "%s %s", k == 1 ? "rank" : "ranks", buf);
            snprintf(buf, len, "%s", tmp);
        }
    } else if (m->seen[0] < seq) {
        snprintf(buf, len, "rank 0 did not arrive (dead or hung)");
    } else {
        snprintf(buf, len, "rank 0 arrived; another rank did not (rank 0 names it)");
    }
}

unsigned long long dist_mpi_announce(dist_comm *c, char *err, size_t errlen) {
    struct dist_mpi *m = c->mpi;
    const unsigned long long seq = ++m->seq;
    /* the previous announcements left long ago (a few bytes: sent eagerly) */
    const double deadline = dist_now() + c->timeout_s;
    double pause_s = 1e-5;
    for (;;) {
        int done = 1;
        if (m->n_sreq && MPI_Testall(m->n_sreq, m->sreq, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS)
            done = 1; /* a failed announcement only loses the diagnosis */
        if (done) break;
        if (dist_now() > deadline) {
            snprintf(err, errlen, "rank %d: announcing collective #%llu timed out after %.0f s",
                     c->rank, seq, c->timeout_s);
            return 0;
        }
        nap(&pause_s);
    }
    m->n_sreq = 0;
    m->send_val = seq;
    if (c->rank == 0) {
        for (int r = 1; r < c->size; r++)
            if (MPI_Isend(&m->send_val, 1, MPI_UNSIGNED_LONG_LONG, r, TAG_ANNOUNCE, m->side,
                          &m->sreq[m->n_sreq]) == MPI_SUCCESS)
                m->n_sreq++;
    } else if (MPI_Isend(&m->send_val, 1, MPI_UNSIGNED_LONG_LONG, 0, TAG_ANNOUNCE, m->side,
                         &m->sreq[0]) == MPI_SUCCESS) {
        m->n_sreq = 1;
    }
    drain(c);
    return seq;
}

/* Completes a non-blocking collective by its deadline. */
static int wait_req(dist_comm *c, MPI_Request *req, int rc, unsigned long long seq,
                    const char *what, char *err, size_t errlen) {
    char msg[MPI_MAX_ERROR_STRING + 64];
    if (rc != MPI_SUCCESS) {
        mpi_msg(rc, msg, sizeof msg);
        snprintf(err, errlen, "rank %d: %s (collective #%llu) failed: %s", c->rank, what, seq, msg);
        return -1;
    }
    const double deadline = dist_now() + c->timeout_s;
    double pause_s = 1e-6;
    for (;;) {
        int flag = 0;
        rc = MPI_Test(req, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
            mpi_msg(rc, msg, sizeof msg);
            snprintf(err, errlen, "rank %d: %s (collective #%llu) failed: %s", c->rank, what, seq,
                     msg);
            return -1;
        }
        if (flag) return 0;
        if (dist_now() > deadline) {
            char who[1024];
            dist_mpi_missing(c, seq, who, sizeof who);
            snprintf(err, errlen,
                     "rank %d: %s (collective #%llu) timed out after %g s (RLVR_DIST_TIMEOUT_S): "
                     "%s",
                     c->rank, what, seq, c->timeout_s, who);
            return -1;
        }
        nap(&pause_s);
    }
}

int dist_mpi_init(dist_comm *c, char *err, size_t errlen) {
    struct dist_mpi *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "dist: out of host memory");
        return -1;
    }
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            snprintf(err, errlen, "dist: MPI_Init_thread failed");
            free(m);
            return -1;
        }
        m->we_initialized = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (MPI_Comm_dup(MPI_COMM_WORLD, &m->coll) != MPI_SUCCESS ||
        MPI_Comm_dup(MPI_COMM_WORLD, &m->side) != MPI_SUCCESS) {
        snprintf(err, errlen, "dist: MPI_Comm_dup failed on rank %d", rank);
        free(m);
        return -1;
    }
    MPI_Comm_set_errhandler(m->coll, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(m->side, MPI_ERRORS_RETURN);
    c->rank = rank;
    c->size = size;
    /* local rank: the launcher's (already in c) unless it gave none; then the rank within
     * the processes sharing this node's memory */
    if (!getenv("OMPI_COMM_WORLD_LOCAL_RANK") && !getenv("MPI_LOCALRANKID") &&
        !getenv("PMI_LOCAL_RANK")) {
        MPI_Comm node;
        if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL,
                                &node) == MPI_SUCCESS) {
            MPI_Comm_rank(node, &c->local_rank);
            c->gpu = c->local_rank;
            MPI_Comm_free(&node);
        }
    }
    m->seen = calloc((size_t)size, sizeof *m->seen);
    m->sreq = calloc((size_t)size, sizeof *m->sreq);
    if (!m->seen || !m->sreq) {
        snprintf(err, errlen, "dist: out of host memory");
        free(m->seen);
        free(m->sreq);
        free(m);
        return -1;
    }
    c->mpi = m;
    return 0;
}

void dist_mpi_free(dist_comm *c) {
    struct dist_mpi *m = c->mpi;
    if (!m) return;
    if (m->n_sreq) MPI_Waitall(m->n_sreq, m->sreq, MPI_STATUSES_IGNORE);
    /* every announcement was received by its last collective's drain or is dropped here */
    MPI_Comm_free(&m->coll);
    MPI_Comm_free(&m->side);
    if (m->we_initialized) MPI_Finalize();
    free(m->seen);
    free(m->sreq);
    free(m);
    c->mpi = NULL;
}

void dist_mpi_abort(dist_comm *c, int code) {
    (void)c;
    MPI_Abort(MPI_COMM_WORLD, code);
}

int dist_mpi_barrier(dist_comm *c, char *err, size_t errlen) {
    unsigned long long seq = dist_mpi_announce(c, err, errlen);
    if (!seq) return -1;
    MPI_Request req;
    int rc = MPI_Ibarrier(c->mpi->coll, &req);
    return wait_req(c, &req, rc, seq, "barrier", err, errlen);
}

static MPI_Op op_of(dist_op op) {
    return op == DIST_MIN ? MPI_MIN : op == DIST_MAX ? MPI_MAX : MPI_SUM;
}

int dist_mpi_allreduce(dist_comm *c, void *x, size_t n, int f64, dist_op op, char *err,
                       size_t errlen) {
    const size_t es = f64 ? sizeof(double) : sizeof(float);
    for (size_t o = 0; o < n || (n == 0 && o == 0); o += CHUNK_ELEMS) {
        const size_t k = n - o < CHUNK_ELEMS ? n - o : CHUNK_ELEMS;
        unsigned long long seq = dist_mpi_announce(c, err, errlen);
        if (!seq) return -1;
        MPI_Request req;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)x + o * es, (int)k,
                                f64 ? MPI_DOUBLE : MPI_FLOAT, op_of(op), c->mpi->coll, &req);
        if (wait_req(c, &req, rc, seq, "all-reduce", err, errlen)) return -1;
        if (n == 0) break;
    }
    return 0;
}

int dist_mpi_bcast(dist_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
    for (size_t o = 0; o < bytes || (bytes == 0 && o == 0); o += CHUNK_ELEMS) {
        const size_t k = bytes - o < CHUNK_ELEMS ? bytes - o : CHUNK_ELEMS;
        unsigned long long seq = dist_mpi_announce(c, err, errlen);
        if (!seq) return -1;
        MPI_Request req;
        int rc = MPI_Ibcast((char *)buf + o, (int)k, MPI_BYTE, root, c->mpi->coll, &req);
        if (wait_req(c, &req, rc, seq, "broadcast", err, errlen)) return -1;
        if (bytes == 0) break;
    }
    return 0;
}

int dist_mpi_allgatherv(dist_comm *c, const void *mine, size_t len, void **all, size_t *lens,
                        size_t *offs, char *err, size_t errlen) {
    *all = NULL;
    const int W = c->size;
    unsigned long long *l = calloc((size_t)W, sizeof *l);
    int *cnt = calloc((size_t)W, sizeof *cnt), *dsp = calloc((size_t)W, sizeof *dsp);
    int rc = -1;
    if (!l || !cnt || !dsp) {
        snprintf(err, errlen, "dist: out of host memory");
        goto done;
    }
    unsigned long long me = len;
    unsigned long long seq = dist_mpi_announce(c, err, errlen);
    if (!seq) goto done;
    MPI_Request req;
    int e = MPI_Iallgather(&me, 1, MPI_UNSIGNED_LONG_LONG, l, 1, MPI_UNSIGNED_LONG_LONG,
                           c->mpi->coll, &req);
    if (wait_req(c, &req, e, seq, "all-gather (sizes)", err, errlen)) goto done;
    size_t total = 0;
    for (int r = 0; r < W; r++) {
        lens[r] = (size_t)l[r];
        offs[r] = total;
        total += lens[r];
    }
    if (total > INT_MAX) {
        snprintf(err, errlen, "rank %d: all-gather of %zu bytes: at most %d bytes per call",
                 c->rank, total, INT_MAX);
        goto done;
    }
    for (int r = 0; r < W; r++) {
        cnt[r] = (int)lens[r];
        dsp[r] = (int)offs[r];
    }
    *all = malloc(total + 1);
    if (!*all) {
        snprintf(err, errlen, "dist: out of host memory for %zu gathered bytes", total);
        goto done;
    }
    if (!(seq = dist_mpi_announce(c, err, errlen))) goto done;
    e = MPI_Iallgatherv(mine, (int)len, MPI_BYTE, *all, cnt, dsp, MPI_BYTE, c->mpi->coll, &req);
    if (wait_req(c, &req, e, seq, "all-gather", err, errlen)) goto done;
    rc = 0;
done:
    if (rc) {
        free(*all);
        *all = NULL;
    }
    free(l);
    free(cnt);
    free(dsp);
    return rc;
}

/* ---- ZeRO-1: reduce-scatter and all-gather of contiguous shards ------------------------ */

/* Per-rank counts and displacements of the shards of n elements (MPI int counts). */
static int shard_counts(dist_comm *c, size_t n, int *cnt, int *dsp, const char *what, char *err,
                        size_t errlen) {
    if (n > INT_MAX) {
        snprintf(err, errlen,
                 "rank %d: %s of %zu elements: the MPI implementation takes at most %d (use "
                 "NCCL on GPUs)",
                 c->rank, what, n, INT_MAX);
        return -1;
    }
    for (int r = 0; r < c->size; r++) {
        size_t lo, hi;
        dist_shard_range(n, c->size, r, &lo, &hi);
        cnt[r] = (int)(hi - lo);
        dsp[r] = (int)lo;
    }
    return 0;
}

int dist_mpi_reduce_scatter_f32(dist_comm *c, float *x, size_t n, char *err, size_t errlen) {
    const int W = c->size;
    int *cnt = calloc((size_t)W, sizeof *cnt), *dsp = calloc((size_t)W, sizeof *dsp);
    float *mine = NULL;
    int rc = -1;
    if (!cnt || !dsp) {
        snprintf(err, errlen, "dist: out of host memory");
        goto done;
    }
    if (shard_counts(c, n, cnt, dsp, "reduce-scatter", err, errlen)) goto done;
    mine = malloc((size_t)cnt[c->rank] * sizeof(float) + 1);
    if (!mine) {
        snprintf(err, errlen, "dist: out of host memory for a shard of %d values", cnt[c->rank]);
        goto done;
    }
    unsigned long long seq = dist_mpi_announce(c, err, errlen);
    if (!seq) goto done;
    MPI_Request req;
    int e = MPI_Ireduce_scatter(x, mine, cnt, MPI_FLOAT, MPI_SUM, c->mpi->coll, &req);
    if (wait_req(c, &req, e, seq, "reduce-scatter", err, errlen)) goto done;
    memcpy(x + dsp[c->rank], mine, (size_t)cnt[c->rank] * sizeof(float));
    rc = 0;
done:
    free(mine);
    free(cnt);
    free(dsp);
    return rc;
}

int dist_mpi_allgather_shards(dist_comm *c, void *x, size_t n, size_t elem, char *err,
                              size_t errlen) {
    const int W = c->size;
    int *cnt = calloc((size_t)W, sizeof *cnt), *dsp = calloc((size_t)W, sizeof *dsp);
    int rc = -1;
    if (!cnt || !dsp) {
        snprintf(err, errlen, "dist: out of host memory");
        goto done;
    }
    if (shard_counts(c, n, cnt, dsp, "all-gather", err, errlen)) goto done;
    unsigned long long seq = dist_mpi_announce(c, err, errlen);
    if (!seq) goto done;
    /* unsigned integers: the bytes travel unchanged whatever they encode (f32, bf16) */
    MPI_Datatype type = elem == 4 ? MPI_UINT32_T : MPI_UINT16_T;
    MPI_Request req;
    int e = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, cnt, dsp, type, c->mpi->coll,
                            &req);
    if (wait_req(c, &req, e, seq, "all-gather (shards)", err, errlen)) goto done;
    rc = 0;
done:
    free(cnt);
    free(dsp);
    return rc;
}
