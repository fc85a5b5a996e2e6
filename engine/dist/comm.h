/*
 * engine/dist/comm.h — the communicator of data-parallel training: one interface, three
 * implementations chosen at dist_init:
 *   single  one process (always built): collectives are copies or no-ops;
 *   mpi     CPU ranks under mpirun (built when MPI is found): non-blocking MPI
 *           collectives polled against a deadline;
 *   nccl    GPU ranks (built when NCCL and CUDA are found): all-reduce of device
 *           buffers with NCCL, bootstrapped over MPI (the NCCL unique id is broadcast
 *           with MPI; host collectives stay on MPI); asynchronous NCCL errors are polled
 *           and the NCCL communicator aborted on a timeout.
 *
 * Rank, world size and local rank come from the launcher's environment (OpenMPI:
 * OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK; MPICH/Hydra and PMI: PMI_RANK/PMI_SIZE/
 * MPI_LOCALRANKID) and, once MPI is up, from MPI itself.
 *
 * No hangs: every blocking call has a deadline (dist_opts.timeout_s; the environment
 * variable RLVR_DIST_TIMEOUT_S overrides it; default 600 s). A rank that does not reach a
 * collective in time makes the call fail with a message naming the rank(s) that did not
 * arrive (each rank announces every collective it enters to rank 0, and rank 0 to every
 * rank, on a side channel). The caller (the CLI) then calls dist_abort, which takes the
 * whole job down (MPI_Abort) with a non-zero status. Library functions return -1 with a
 * message in err and never exit.
 *
 * ZeRO-1 (sharded optimizer state): dist_shard_range splits a flat vector of n elements
 * into one contiguous shard per rank; dist_reduce_scatter_backend_f32 sums gradients so
 * that each rank holds the sum of its own shard, and dist_allgather_backend copies every
 * rank's shard to every rank (MPI: MPI_Ireduce_scatter / MPI_Iallgatherv on host memory;
 * NCCL: ncclReduceScatter + ncclReduce of the remainder / ncclAllGather + ncclBroadcast of
 * the remainder, grouped, on device memory).
 */
#ifndef RLVR_DIST_COMM_H
#define RLVR_DIST_COMM_H

#include <stddef.h>

#include "kernels/backend.h"

typedef struct dist_comm dist_comm;

typedef enum { DIST_SINGLE = 0, DIST_MPI = 1, DIST_NCCL = 2 } dist_kind;
typedef enum { DIST_SUM = 0, DIST_MIN = 1, DIST_MAX = 2 } dist_op;

typedef struct {
    /* "auto" (NULL too): mpi when the launcher's environment says world size > 1 (nccl
     * instead when want_gpu and NCCL is built), else single. "single", "mpi", "nccl"
     * force one (mpi/nccl fail with a message when not built). The environment variable
     * RLVR_DIST overrides this field. */
    const char *kind;
    int want_gpu;     /* the ranks train on CUDA: pick NCCL for gradients when "auto" */
    double timeout_s; /* deadline of every blocking call; <= 0: 600 (RLVR_DIST_TIMEOUT_S
                         overrides) */
} dist_opts;

dist_opts dist_opts_default(void);

/* Launcher environment only (no MPI call): world size, rank, local rank, with 1/0/0 when
 * not launched by mpirun/PMI. Returns 0, or -1 with a message when a variable is
 * malformed. */
int dist_env(int *size, int *rank, int *local_rank, char *err, size_t errlen);

/* Creates the communicator (MPI_Init for mpi/nccl). On failure after MPI_Init the
 * process should exit non-zero (the launcher then stops the job). */
int dist_init(const dist_opts *o, dist_comm **out, char *err, size_t errlen);
/* Finalizes cleanly (call on success on every rank; after an error call dist_abort). */
void dist_free(dist_comm *c);
/* Terminates every rank of the job with the given status (MPI_Abort; exit(code) for a
 * single process). For the CLI only: library code returns errors instead. */
void dist_abort(dist_comm *c, int code);

dist_kind dist_kind_of(const dist_comm *c);
const char *dist_kind_name(const dist_comm *c);
int dist_rank(const dist_comm *c);
int dist_size(const dist_comm *c);
int dist_local_rank(const dist_comm *c);
double dist_timeout_s(const dist_comm *c);
/* The CUDA device this rank should use (one rank per GPU): the local rank, modulo the
 * visible GPUs for the nccl kind. */
int dist_device_index(const dist_comm *c);
/* Seconds spent inside collectives since dist_init (waiting included). */
double dist_comm_seconds(const dist_comm *c);
/* Sets the deadline of every later blocking call (seconds > 0; ignored otherwise). */
void dist_set_timeout(dist_comm *c, double timeout_s);
/* 1 when collectives on backend memory of a CUDA backend run on NCCL (the nccl kind,
 * unless dist_set_device_nccl(c, 0) turned that off). */
int dist_device_nccl(const dist_comm *c);
/* on = 0: backend memory goes through host memory and MPI even on the nccl kind
 * (dist.backend = "mpi" when the communicator was created with NCCL). */
void dist_set_device_nccl(dist_comm *c, int on);

/* ---- collectives (every rank calls each one, in the same order) --------------------- */
int dist_barrier(dist_comm *c, char *err, size_t errlen);
/* In-place all-reduce of n host values. */
int dist_allreduce_f64(dist_comm *c, double *x, size_t n, dist_op op, char *err,
                       size_t errlen);
int dist_allreduce_f32(dist_comm *c, float *x, size_t n, dist_op op, char *err, size_t errlen);
/* In-place sum of n f32 values in backend memory of be (gradients): NCCL on device for the
 * nccl communicator with a CUDA backend, MPI on host memory for the CPU backend, else
 * staged through host memory. */
int dist_allreduce_backend_f32(dist_comm *c, rlvr_backend *be, float *x, size_t n, char *err,
                               size_t errlen);
/* Broadcast of bytes host bytes from root. */
int dist_bcast(dist_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen);
/* All-gather of variable-size byte strings: each rank gives (mine, len); *all receives a
 * malloc'd concatenation in rank order (free it) and lens[size] / offs[size] (caller
 * arrays of dist_size entries) the length and offset of each rank's part. */
int dist_allgatherv(dist_comm *c, const void *mine, size_t len, void **all, size_t *lens,
                    size_t *offs, char *err, size_t errlen);

/* ---- ZeRO-1: sharded vectors (every rank calls each one, in the same order) --------- */
/* The shard of rank `rank` of a flat vector of n elements split over `size` ranks:
 * [lo, hi) = [rank·q, (rank+1)·q) with q = n / size, the last rank also taking the
 * n − size·q remaining elements (so the shards are contiguous, in rank order). */
void dist_shard_range(size_t n, int size, int rank, size_t *lo, size_t *hi);
/* Reduce-scatter (sum) of n f32 values in backend memory of be: on return x[lo, hi) of
 * this rank's shard holds the sum over all ranks of their x[lo, hi); the rest of x is
 * left unspecified (this rank's own values or partial sums). One rank: nothing to do. */
int dist_reduce_scatter_backend_f32(dist_comm *c, rlvr_backend *be, float *x, size_t n,
                                    char *err, size_t errlen);
/* All-gather in place of n elements of elem bytes (2 or 4) in backend memory of be: each
 * rank's shard x[lo_r, hi_r) (dist_shard_range) is copied to every rank. */
int dist_allgather_backend(dist_comm *c, rlvr_backend *be, void *x, size_t n, size_t elem,
                           char *err, size_t errlen);

/* ---- test hook ------------------------------------------------------------------------ */
/* TEST ONLY (fault-injection for tests/dist): when the environment variable
 * RLVR_DIST_TEST_FAULT is "RANK:STEP:exit" this rank calls _exit(3) at that point of step
 * STEP; with "RANK:STEP:hang" it sleeps forever there (a hung rank). Does nothing when the
 * variable is unset or names another rank/step. */
void dist_test_fault_point(const dist_comm *c, long step);

#endif
