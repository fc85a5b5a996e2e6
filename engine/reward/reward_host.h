/*
 * engine/reward/reward_host.h — the reward host: loads reward plugins (built-in names or
 * .so paths), runs them on a worker pool off the caller's thread with a per-batch
 * deadline, optionally inside worker subprocesses, and combines their scores with
 * weights. This is what the trainer and `rlvr score` call.
 *
 * Threading contract:
 *  - reward_host_create / reward_host_free: [control-thread] (the thread that owns the
 *    host). Plugins' init/destroy run there (in-process plugins).
 *  - reward_host_submit, reward_job_wait, reward_job_done, reward_job_free,
 *    reward_host_score, reward_host_counters: may be called from any thread, also
 *    concurrently; several jobs may be in flight at once. Each job is used by one thread
 *    at a time.
 *  - Scoring itself runs on the host's worker threads (libuv threads). Plugins without
 *    RLVR_REWARD_THREAD_SAFE get one state per worker.
 *
 * Deadlines: each job has a deadline (seconds from submit). At the deadline
 * reward_job_wait returns; items not yet scored are RLVR_STATUS_TIMEOUT. An in-process
 * plugin that hangs keeps its worker thread busy (nothing can interrupt it safely): use
 * `"isolation":"process"` for plugins you do not trust — then the worker subprocess is
 * killed at the deadline and restarted for the next batch, and a crash, exit() or
 * runaway allocation in the plugin costs only that batch.
 *
 * Combination: total[i] = sum over components r with status OK of weight_r * score[i,r].
 * The item status is the worst component status (ERROR > TIMEOUT > ABSTAIN > OK); the
 * trainer should mask items whose status is not OK.
 */
#ifndef RLVR_ENGINE_REWARD_HOST_H
#define RLVR_ENGINE_REWARD_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "rewards/include/rlvr/reward.h"

/* One reward component. */
typedef struct {
    const char *name;        /* built-in name ("math_answer") or path to a .so */
    const char *config_json; /* JSON object text or NULL for "{}". Keys read by the host
                              * (and removed before the plugin sees them):
                              *   "weight": number (default 1.0)
                              *   "isolation": "thread" (default) | "process" */
    double weight;           /* used when config has no "weight"; NAN means 1.0 */
} reward_spec;

/* Log sink. It may be called from any host thread, sometimes with the host's internal
 * lock held (batch-level warnings are logged before waiters wake): it must not call back
 * into the host. */
typedef void (*reward_log_fn)(void *ctx, int level, const char *msg);

typedef struct {
    int n_workers;           /* worker threads; <= 0 means the number of CPUs */
    reward_log_fn log;       /* NULL: lines go to stderr as "rlvr reward: ..." */
    void *log_ctx;
    const char *worker_exe;  /* worker executable for isolation:process; NULL: default
                              * ($RLVR_REWARD_WORKER, beside the running executable, or
                              * the build tree) */
    const char *sandbox_exe; /* sandbox launcher; NULL: default, likewise
                              * ($RLVR_SANDBOX) */
    uint64_t worker_mem_bytes; /* RLIMIT_AS of isolated worker subprocesses (0: 8 GiB) */
} reward_host_opts;

/* Counters for metrics; cumulative since creation, per component. */
typedef struct {
    uint64_t items;          /* item scores produced (any status) */
    uint64_t ok, abstain, timeout, error;
    uint64_t nonfinite;      /* scores that were NaN/Inf (counted in error too) */
    uint64_t batches;        /* sub-batches run */
    uint64_t batch_failures; /* sub-batches where score() failed or the worker died */
    uint64_t worker_restarts;/* isolated subprocesses started after a death/kill */
    uint64_t constant_batches; /* jobs where all OK scores were equal (zero advantage) */
    double busy_s;           /* worker seconds spent in this component */
} reward_counters;

typedef struct reward_host reward_host;
typedef struct reward_job reward_job;

/* Per-item results of one job. Arrays are owned by the job (freed by reward_job_free). */
typedef struct {
    size_t n_items, n_rewards;
    double *total;          /* [n_items] weighted sum over OK components */
    int32_t *item_status;   /* [n_items] worst component status */
    double *scores;         /* [n_items * n_rewards] raw component scores (unweighted) */
    int32_t *status;        /* [n_items * n_rewards] */
    char **info;            /* [n_items * n_rewards] JSON text or NULL */
} reward_result;

/* Creates a host with n_specs components. Returns NULL with a message in err (naming
 * the plugin file / config field) on failure. */
reward_host *reward_host_create(const reward_spec *specs, int n_specs,
                                const reward_host_opts *opts, char *err, size_t errlen);
void reward_host_free(reward_host *h);

int reward_host_n_rewards(const reward_host *h);
const char *reward_host_reward_name(const reward_host *h, int r); /* descriptor name */
double reward_host_reward_weight(const reward_host *h, int r);

/* Parses a command-line SPEC: "name" or "name:{json}" (a .so path may itself contain
 * ':' only if followed by '{'). Fills spec with pointers into a copy owned by *buf
 * (free it after the host is created). Returns 0 or -1 with err. */
int reward_spec_parse(const char *text, reward_spec *spec, char **buf, char *err,
                      size_t errlen);

/* Submits a batch (items must form whole groups: equal group ids contiguous). The batch
 * is copied, so the caller may free it right away. deadline_s: seconds from now. */
reward_job *reward_host_submit(reward_host *h, const rlvr_item *items, size_t n_items,
                               int64_t step, uint64_t seed, double deadline_s, char *err,
                               size_t errlen);
/* 1 when the job has finished (all scored or deadline passed), else 0. Non-blocking. */
int reward_job_done(reward_job *j);
/* Blocks until the job is complete or its deadline passed; then the result is final. The
 * returned pointer stays valid until reward_job_free. */
const reward_result *reward_job_wait(reward_job *j);
void reward_job_free(reward_job *j);

/* Convenience: submit + wait, copying into caller-owned arrays of n_items (total,
 * item_status may be NULL). Returns 0, or -1 when the batch could not be submitted. */
int reward_host_score(reward_host *h, const rlvr_item *items, size_t n_items, int64_t step,
                      uint64_t seed, double deadline_s, double *total, int32_t *item_status,
                      char *err, size_t errlen);

/* Copies the counters of component r. */
void reward_host_counters(reward_host *h, int r, reward_counters *out);

const char *reward_status_name(int status); /* "ok", "abstain", "timeout", "error" */

#endif
