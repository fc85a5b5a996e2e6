/*
 * engine/dist/comm_internal.h — the communicator's state and the entry points of its MPI
 * (comm_mpi.c) and NCCL (comm_nccl.c) implementations, shared with comm.c (dispatch,
 * environment, the single-process implementation).
 */
#ifndef RLVR_DIST_COMM_INTERNAL_H
#define RLVR_DIST_COMM_INTERNAL_H

#include <stddef.h>

#include "engine/dist/comm.h"

struct dist_comm {
    dist_kind kind;
    int rank, size, local_rank;
    int gpu; /* the CUDA device of this rank: local rank (modulo visible GPUs with NCCL) */
    double timeout_s;
    double t_comm; /* seconds inside collectives */
    int nccl_off;  /* dist_set_device_nccl(c, 0): backend memory through host + MPI */
    struct dist_mpi *mpi;   /* mpi and nccl kinds */
    struct dist_nccl *nccl; /* nccl kind */
};

double dist_now(void); /* monotonic seconds */

/* ---- MPI (comm_mpi.c; RLVR_DIST_HAVE_MPI) ---------------------------------------------- */
int dist_mpi_init(dist_comm *c, char *err, size_t errlen);
void dist_mpi_free(dist_comm *c);
void dist_mpi_abort(dist_comm *c, int code);
int dist_mpi_barrier(dist_comm *c, char *err, size_t errlen);
/* in place; f64 != 0: double, else float */
int dist_mpi_allreduce(dist_comm *c, void *x, size_t n, int f64, dist_op op, char *err,
                       size_t errlen);
int dist_mpi_bcast(dist_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen);
/* ZeRO-1 on host memory (comm.h): x[lo, hi) of this rank receives the sum of its shard;
 * the all-gather copies every rank's shard of n elements of elem bytes in place. */
int dist_mpi_reduce_scatter_f32(dist_comm *c, float *x, size_t n, char *err, size_t errlen);
int dist_mpi_allgather_shards(dist_comm *c, void *x, size_t n, size_t elem, char *err,
                              size_t errlen);
int dist_mpi_allgatherv(dist_comm *c, const void *mine, size_t len, void **all, size_t *lens,
                        size_t *offs, char *err, size_t errlen);
/* The side channel: announce entering collective `what` (returns its sequence number),
 * and describe, after a timeout, which ranks have not announced it. */
unsigned long long dist_mpi_announce(dist_comm *c, char *err, size_t errlen);
void dist_mpi_missing(dist_comm *c, unsigned long long seq, char *buf, size_t len);

/* ---- NCCL (comm_nccl.c; RLVR_DIST_HAVE_NCCL) ------------------------------------------- */
int dist_nccl_init(dist_comm *c, char *err, size_t errlen);
void dist_nccl_free(dist_comm *c);
void dist_nccl_abort(dist_comm *c);
/* In-place sum of n floats in device memory of the CUDA backend be. */
int dist_nccl_allreduce_f32(dist_comm *c, rlvr_backend *be, float *x, size_t n, char *err,
                            size_t errlen);
/* ZeRO-1 on device memory (comm.h semantics of the backend versions). */
int dist_nccl_reduce_scatter_f32(dist_comm *c, rlvr_backend *be, float *x, size_t n, char *err,
                                 size_t errlen);
int dist_nccl_allgather_shards(dist_comm *c, rlvr_backend *be, void *x, size_t n, size_t elem,
                               char *err, size_t errlen);

#endif
