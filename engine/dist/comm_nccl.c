/*
 * engine/dist/comm_nccl.c — the NCCL implementation of the communicator's collectives on
 * device memory (comm.h: the gradient all-reduce, ZeRO-1's reduce-scatter and all-gather),
 * for GPU ranks: one rank per GPU, device = local rank modulo the visible GPUs. Bootstrapped over MPI: rank 0 makes the NCCL unique id and broadcasts it
 * with the MPI implementation, whose host collectives the NCCL kind keeps using.
 *
 * Never hang: the NCCL communicator is non-blocking (ncclConfig_t.blocking = 0); its
 * initialisation and every collective are completed by polling ncclCommGetAsyncError and
 * cudaStreamQuery against the communicator's deadline; on a timeout or an asynchronous
 * NCCL error the NCCL communicator is aborted (ncclCommAbort) and the call fails with a
 * message naming the rank(s) that did not arrive (the MPI side channel, comm_mpi.c).
 */
#define _GNU_SOURCE
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/dist/comm_internal.h"

struct dist_nccl {
    ncclComm_t comm;
    cudaStream_t stream;
    int device;
    int aborted;
};

static void nap(void) {
    struct timespec ts = {0, 20000}; /* 20 µs */
    nanosleep(&ts, NULL);
}

/* Waits until the communicator has no operation in progress (non-blocking NCCL). */
static int settle(dist_comm *c, double deadline, unsigned long long seq, const char *what,
                  char *err, size_t errlen) {
    struct dist_nccl *n = c->nccl;
    for (;;) {
        ncclResult_t st = ncclSuccess;
        ncclResult_t rc = ncclCommGetAsyncError(n->comm, &st);
        if (rc != ncclSuccess) st = rc;
        if (st == ncclSuccess) return 0;
        if (st != ncclInProgress) {
            snprintf(err, errlen, "rank %d: NCCL %s (collective #%llu): %s%s%s", c->rank, what,
                     seq, ncclGetErrorString(st), ncclGetLastError(n->comm) ? ": " : "",
                     ncclGetLastError(n->comm) ? ncclGetLastError(n->comm) : "");
            ncclCommAbort(n->comm);
            n->aborted = 1;
            return -1;
        }
        if (dist_now() > deadline) {
            char who[1024];
            dist_mpi_missing(c, seq, who, sizeof who);
            snprintf(err, errlen,
                     "rank %d: NCCL %s (collective #%llu) timed out after %g s "
                     "(RLVR_DIST_TIMEOUT_S): %s",
                     c->rank, what, seq, c->timeout_s, who);
            ncclCommAbort(n->comm);
            n->aborted = 1;
            return -1;
        }
        nap();
    }
}

int dist_nccl_init(dist_comm *c, char *err, size_t errlen) {
    struct dist_nccl *n = calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errlen, "dist: out of host memory");
        return -1;
    }
    int count = 0;
    cudaError_t ce = cudaGetDeviceCount(&count);
    if (ce != cudaSuccess || count < 1) {
        snprintf(err, errlen, "rank %d: NCCL needs a GPU: %s", c->rank,
                 ce != cudaSuccess ? cudaGetErrorString(ce) : "no CUDA device visible");
        free(n);
        return -1;
    }
    n->device = c->local_rank % count;
    c->gpu = n->device;
    if ((ce = cudaSetDevice(n->device)) != cudaSuccess ||
        (ce = cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(err, errlen, "rank %d: GPU %d: %s", c->rank, n->device, cudaGetErrorString(ce));
        free(n);
        return -1;
    }
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (c->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) {
            snprintf(err, errlen, "rank 0: ncclGetUniqueId: %s", ncclGetErrorString(r));
            cudaStreamDestroy(n->stream);
            free(n);
            return -1;
        }
    }
    if (dist_mpi_bcast(c, &id, sizeof id, 0, err, errlen)) {
        cudaStreamDestroy(n->stream);
        free(n);
        return -1;
    }
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    c->nccl = n;
    unsigned long long seq = dist_mpi_announce(c, err, errlen);
    if (!seq) return -1;
    ncclResult_t r = ncclCommInitRankConfig(&n->comm, c->size, id, c->rank, &cfg);
    if (r != ncclSuccess && r != ncclInProgress) {
        snprintf(err, errlen, "rank %d: ncclCommInitRankConfig: %s", c->rank,
                 ncclGetErrorString(r));
        return -1;
    }
    return settle(c, dist_now() + c->timeout_s, seq, "initialisation", err, errlen);
}

void dist_nccl_free(dist_comm *c) {
    struct dist_nccl *n = c->nccl;
    if (!n) return;
    if (!n->aborted) {
        cudaStreamSynchronize(n->stream);
        ncclCommFinalize(n->comm);
        char err[256];
        if (settle(c, dist_now() + c->timeout_s, 0, "finalize", err, sizeof err) == 0)
            ncclCommDestroy(n->comm);
    }
    cudaStreamDestroy(n->stream);
    free(n);
    c->nccl = NULL;
}

void dist_nccl_abort(dist_comm *c) {
    struct dist_nccl *n = c->nccl;
    if (n && !n->aborted) {
        ncclCommAbort(n->comm);
        n->aborted = 1;
    }
}

/* Waits for the collective(s) just enqueued on the NCCL stream: enqueue settled, then the
 * kernels run; asynchronous NCCL errors and the deadline are polled. */
static int finish(dist_comm *c, unsigned long long seq, double deadline, const char *what,
                  char *err, size_t errlen) {
    struct dist_nccl *n = c->nccl;
    char enq[96];
    snprintf(enq, sizeof enq, "%s (enqueue)", what);
    if (settle(c, deadline, seq, enq, err, errlen)) return -1;
    for (;;) { /* the kernels run; NCCL errors surface asynchronously */
        cudaError_t ce = cudaStreamQuery(n->stream);
        if (ce == cudaSuccess) return 0;
        if (ce != cudaErrorNotReady) {
            snprintf(err, errlen, "rank %d: NCCL %s on GPU %d: %s", c->rank, what, n->device,
                     cudaGetErrorString(ce));
            return -1;
        }
        ncclResult_t st = ncclSuccess;
        ncclCommGetAsyncError(n->comm, &st);
        if (st != ncclSuccess && st != ncclInProgress) {
            settle(c, deadline, seq, what, err, errlen); /* reports it, aborts */
            return -1;
        }
        if (dist_now() > deadline) {
            char who[1024];
            dist_mpi_missing(c, seq, who, sizeof who);
            snprintf(err, errlen,
                     "rank %d: NCCL %s (collective #%llu) timed out after %g s "
                     "(RLVR_DIST_TIMEOUT_S): %s",
                     c->rank, what, seq, c->timeout_s, who);
            ncclCommAbort(n->comm);
            n->aborted = 1;
            return -1;
        }
        nap();
    }
}

/* Checks the communicator and the backend before a collective; announces it. */
static unsigned long long begin(dist_comm *c, rlvr_backend *be, const char *what, char *err,
                                size_t errlen) {
    if (c->nccl->aborted) {
        snprintf(err, errlen, "rank %d: the NCCL communicator was aborted", c->rank);
        return 0;
    }
    be->sync(be); /* the data is complete on the backend's stream */
    const char *be_err = be->error(be);
    if (be_err) {
        snprintf(err, errlen, "rank %d: before the %s: %s", c->rank, what, be_err);
        return 0;
    }
    return dist_mpi_announce(c, err, errlen);
}

int dist_nccl_allreduce_f32(dist_comm *c, rlvr_backend *be, float *x, size_t n_el, char *err,
                            size_t errlen) {
    unsigned long long seq = begin(c, be, "gradient all-reduce", err, errlen);
    if (!seq) return -1;
    const double deadline = dist_now() + c->timeout_s;
    ncclResult_t r = ncclAllReduce(x, x, n_el, ncclFloat32, ncclSum, c->nccl->comm,
                                   c->nccl->stream);
    if (r != ncclSuccess && r != ncclInProgress) {
        snprintf(err, errlen, "rank %d: ncclAllReduce of %zu floats: %s", c->rank, n_el,
                 ncclGetErrorString(r));
        return -1;
    }
    return finish(c, seq, deadline, "all-reduce", err, errlen);
}

/* Shards (comm.h, dist_shard_range): the first size·q elements are split evenly, so
 * ncclReduceScatter / ncclAllGather do them in place; the remainder belongs to the last
 * rank and goes with ncclReduce / ncclBroadcast rooted there, in the same group. */
int dist_nccl_reduce_scatter_f32(dist_comm *c, rlvr_backend *be, float *x, size_t n_el,
                                 char *err, size_t errlen) {
    struct dist_nccl *n = c->nccl;
    unsigned long long seq = begin(c, be, "reduce-scatter", err, errlen);
    if (!seq) return -1;
    const double deadline = dist_now() + c->timeout_s;
    const size_t q = n_el / (size_t)c->size, rem = n_el - q * (size_t)c->size;
    ncclResult_t r = ncclGroupStart(), r2 = ncclSuccess, r3 = ncclSuccess;
    if (r == ncclSuccess && q)
        r2 = ncclReduceScatter(x, x + (size_t)c->rank * q, q, ncclFloat32, ncclSum, n->comm,
                               n->stream);
    if (r == ncclSuccess && rem && (r2 == ncclSuccess || r2 == ncclInProgress))
        r3 = ncclReduce(x + q * (size_t)c->size, x + q * (size_t)c->size, rem, ncclFloat32,
                        ncclSum, c->size - 1, n->comm, n->stream);
    ncclResult_t r4 = r == ncclSuccess ? ncclGroupEnd() : r;
    ncclResult_t bad = r2 != ncclSuccess && r2 != ncclInProgress   ? r2
                       : r3 != ncclSuccess && r3 != ncclInProgress ? r3
                       : r4 != ncclSuccess && r4 != ncclInProgress ? r4
                                                                   : ncclSuccess;
    if (bad != ncclSuccess) {
        snprintf(err, errlen, "rank %d: NCCL reduce-scatter of %zu floats: %s", c->rank, n_el,
                 ncclGetErrorString(bad));
        return -1;
    }
    return finish(c, seq, deadline, "reduce-scatter", err, errlen);
}

int dist_nccl_allgather_shards(dist_comm *c, rlvr_backend *be, void *x, size_t n_el,
                               size_t elem, char *err, size_t errlen) {
    struct dist_nccl *n = c->nccl;
    unsigned long long seq = begin(c, be, "all-gather", err, errlen);
    if (!seq) return -1;
    const double deadline = dist_now() + c->timeout_s;
    const size_t q = n_el / (size_t)c->size, rem = n_el - q * (size_t)c->size;
    char *b = x; /* bytes: the all-gather only copies */
    ncclResult_t r = ncclGroupStart(), r2 = ncclSuccess, r3 = ncclSuccess;
    if (r == ncclSuccess && q)
        r2 = ncclAllGather(b + (size_t)c->rank * q * elem, b, q * elem, ncclUint8, n->comm,
                           n->stream);
    if (r == ncclSuccess && rem && (r2 == ncclSuccess || r2 == ncclInProgress))
        r3 = ncclBroadcast(b + q * (size_t)c->size * elem, b + q * (size_t)c->size * elem,
                           rem * elem, ncclUint8, c->size - 1, n->comm, n->stream);
    ncclResult_t r4 = r == ncclSuccess ? ncclGroupEnd() : r;
    ncclResult_t bad = r2 != ncclSuccess && r2 != ncclInProgress   ? r2
                       : r3 != ncclSuccess && r3 != ncclInProgress ? r3
                       : r4 != ncclSuccess && r4 != ncclInProgress ? r4
                                                                   : ncclSuccess;
    if (bad != ncclSuccess) {
        snprintf(err, errlen, "rank %d: NCCL all-gather of %zu values: %s", c->rank, n_el,
                 ncclGetErrorString(bad));
        return -1;
    }
    return finish(c, seq, deadline, "all-gather", err, errlen);
}
