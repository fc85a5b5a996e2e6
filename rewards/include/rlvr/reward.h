/*
 * rlvr/reward.h — the public, versioned C ABI for rlvr reward plugins.
 *
 * A plugin is a shared object exporting ONE symbol, RLVR_REWARD_ENTRY_SYMBOL
 * ("rlvr_reward_entry"), a function returning a pointer to a const descriptor
 * (rlvr_reward_desc). The built-in rewards of rlvr are written against this same header.
 *
 * Versioning (in the style of SQLite extensions, CLAP and PG_MODULE_MAGIC):
 *  - every struct starts with its own size (struct_size, bytes). Structs only ever grow
 *    at the end; a reader treats any field lying beyond struct_size as absent.
 *  - the descriptor carries abi_major/abi_minor. The host refuses a plugin whose major
 *    differs from its own and names both versions; a newer minor on either side is fine.
 *
 * Ownership: the host owns every buffer it hands in (batch, items, strings, the out
 * arrays, error buffers) and every string it hands out; a plugin never frees them and
 * never keeps a pointer to them after the call returns. Strings a plugin returns through
 * callbacks (info JSON, error text) are copied by the host during the call.
 *
 * Threading (CLAP-style tags):
 *  [control-thread]  init, destroy: called from the thread that creates/destroys the
 *                    reward host (or from the worker subprocess's main thread under
 *                    `isolation: process`). Never concurrently with anything else on
 *                    the same state.
 *  [worker-thread]   score: called on a host worker thread. If the descriptor has
 *                    RLVR_REWARD_THREAD_SAFE, several workers may call score on the SAME
 *                    state concurrently; otherwise the host creates one state per worker
 *                    and never calls score concurrently on one state.
 *  [thread-safe]     the rlvr_host callbacks (log, exec) may be called from any thread.
 *
 * Rules for plugins: never call exit()/abort() on bad input, never write to stdout
 * (under `isolation: process` stdout is redirected to stderr anyway), never install
 * signal handlers, return scores that are finite. A score of NaN/Inf is turned into
 * RLVR_STATUS_ERROR by the host.
 */
#ifndef RLVR_REWARD_H
#define RLVR_REWARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RLVR_REWARD_ABI_MAJOR 1
#define RLVR_REWARD_ABI_MINOR 0
#define RLVR_REWARD_ENTRY_SYMBOL "rlvr_reward_entry"

#if defined(__GNUC__)
#define RLVR_REWARD_EXPORT __attribute__((visibility("default")))
#else
#define RLVR_REWARD_EXPORT
#endif

/* Per-item outcome. Only OK items enter the loss; ABSTAIN items are masked (e.g. the
 * reference answer could not be parsed); TIMEOUT and ERROR are infrastructure faults
 * counted separately from wrong answers. */
typedef enum {
    RLVR_STATUS_OK = 0,
    RLVR_STATUS_ABSTAIN = 1,
    RLVR_STATUS_TIMEOUT = 2,
    RLVR_STATUS_ERROR = 3
} rlvr_status;

/* Descriptor flags. */
#define RLVR_REWARD_THREAD_SAFE (1ull << 0)   /* score may run concurrently on one state */
#define RLVR_REWARD_DETERMINISTIC (1ull << 1) /* same batch + seed => same scores */

/* Log levels for rlvr_host.log. */
#define RLVR_LOG_DEBUG 0
#define RLVR_LOG_INFO 1
#define RLVR_LOG_WARN 2
#define RLVR_LOG_ERROR 3

/* ---------------------------------------------------------------------------------------
 * Sandboxed execution, offered by the host (see rlvr_host.exec). Runs an untrusted
 * program in a fresh temp dir with a cleared environment, rlimits, its own process group
 * (and PID/network namespaces where the kernel allows), a wall-clock deadline that kills
 * every process it started, and byte caps on stdout/stderr.
 * ------------------------------------------------------------------------------------- */
typedef enum {
    RLVR_EXEC_EXITED = 0,    /* exited normally; see exit_code */
    RLVR_EXEC_SIGNALED = 1,  /* killed by a signal; see signal */
    RLVR_EXEC_TIMEOUT = 2,   /* wall-clock deadline or CPU limit reached */
    RLVR_EXEC_MEMORY = 3,    /* hit the address-space limit (best-effort detection) */
    RLVR_EXEC_OUTPUT = 4,    /* stdout/stderr cap or file-size limit exceeded */
    RLVR_EXEC_SANDBOX_ERROR = 5 /* the sandbox itself failed to start the program */
} rlvr_exec_outcome;

typedef struct {
    uint32_t struct_size;   /* sizeof(rlvr_exec_request) */
    const char *const *argv; /* NULL-terminated; argv[0] an absolute path of the program */
    /* Files written into the fresh working directory before the run (relative names,
     * no '/'); n_files entries. */
    const char *const *file_names;
    const char *const *file_data;
    const size_t *file_lens;
    size_t n_files;
    const char *stdin_data; /* bytes fed to the program's stdin (may be NULL) */
    size_t stdin_len;
    double wall_s;          /* wall-clock limit in seconds (the whole process tree) */
    double cpu_s;           /* RLIMIT_CPU seconds */
    uint64_t mem_bytes;     /* RLIMIT_AS bytes */
    uint64_t fsize_bytes;   /* RLIMIT_FSIZE bytes */
    uint64_t output_bytes;  /* cap on captured stdout and on stderr, each */
    uint32_t max_procs;     /* processes/threads the program may have */
    uint32_t max_files;     /* RLIMIT_NOFILE */
} rlvr_exec_request;

typedef struct {
    uint32_t struct_size;   /* set by the caller: sizeof(rlvr_exec_result) */
    int32_t outcome;        /* rlvr_exec_outcome */
    int32_t exit_code;      /* when EXITED */
    int32_t signal;         /* when SIGNALED */
    double wall_s;          /* measured wall time */
    /* Captured output, owned by the host until rlvr_host.exec_free is called. */
    char *out;
    size_t out_len;
    char *err;
    size_t err_len;
    /* What isolation was achieved, e.g. "pgrp,rlimits,uid,nonewprivs,netns,pidns". */
    char isolation[128];
    char message[256];      /* sandbox error text */
} rlvr_exec_result;

/* ---------------------------------------------------------------------------------------
 * Services the host offers to a plugin. Passed to init; valid until destroy returns.
 * ------------------------------------------------------------------------------------- */
typedef struct rlvr_host {
    uint32_t struct_size; /* sizeof(rlvr_host) as the host knows it */
    uint16_t abi_major, abi_minor;
    void *ctx;            /* opaque, pass back to the callbacks */
    /* [thread-safe] Log one line (no trailing newline needed). */
    void (*log)(void *ctx, int level, const char *msg);
    /* [thread-safe] Run a program in the sandbox. Returns 0 when the sandbox ran (the
     * program's fate is in res->outcome), -1 when it could not (message in res->message).
     * Blocks the calling thread. Always call exec_free(res) afterwards. */
    int (*exec)(void *ctx, const rlvr_exec_request *req, rlvr_exec_result *res);
    void (*exec_free)(void *ctx, rlvr_exec_result *res);
} rlvr_host;

/* ---------------------------------------------------------------------------------------
 * A batch: a whole number of groups (items of one group are contiguous).
 * ------------------------------------------------------------------------------------- */
typedef struct {
    const char *prompt;      /* UTF-8, NUL-terminated; prompt_len bytes */
    size_t prompt_len;
    const char *completion;  /* UTF-8, NUL-terminated; completion_len bytes */
    size_t completion_len;
    const char *answer;      /* reference answer; "" when the row has none */
    size_t answer_len;
    const char *extra_json;  /* the dataset row's other fields as a JSON object ("{}") */
    int64_t group_id;        /* items with equal group_id were sampled from one prompt */
} rlvr_item;

typedef struct {
    uint32_t struct_size;    /* sizeof(rlvr_batch) */
    uint32_t reserved;
    const rlvr_item *items;  /* [n_items] */
    size_t n_items;
    int64_t step;            /* training step */
    uint64_t seed;           /* per-batch seed for randomised rewards */
    double time_budget_s;    /* seconds left before the host's deadline (hint) */
} rlvr_batch;

typedef struct rlvr_out {
    uint32_t struct_size;    /* sizeof(rlvr_out) */
    uint32_t reserved;
    /* [n_items] each, host-owned. The host pre-fills scores with NaN and statuses with
     * RLVR_STATUS_OK, so an item the plugin forgets to score becomes an error. */
    double *scores;
    int32_t *status;
    /* Attach a JSON value (object text) with per-item details to item i; the host copies
     * it (and validates it is JSON). Returns 0 on success. */
    int (*set_info)(struct rlvr_out *out, size_t i, const char *json);
    void *host_ctx;          /* for set_info; do not touch */
    char *err;               /* batch-level error text (when score returns non-zero) */
    size_t errlen;
} rlvr_out;

/* ---------------------------------------------------------------------------------------
 * The descriptor.
 * ------------------------------------------------------------------------------------- */
typedef struct rlvr_reward_desc {
    uint32_t struct_size;    /* sizeof(rlvr_reward_desc) as the plugin was built */
    uint16_t abi_major;      /* RLVR_REWARD_ABI_MAJOR */
    uint16_t abi_minor;      /* RLVR_REWARD_ABI_MINOR */
    const char *name;        /* short identifier, [a-z0-9_]+ */
    const char *version;     /* the plugin's own version string */
    const char *description; /* one line */
    uint64_t flags;          /* RLVR_REWARD_* */
    /* [control-thread] Parse config_json (a JSON object, never NULL; "{}" when empty) and
     * create a state. Return 0 and set *state, or non-zero with a message in err (which
     * should name the config field, the value and what was expected). */
    int (*init)(const rlvr_host *host, const char *config_json, void **state, char *err,
                size_t errlen);
    /* [worker-thread] Score a batch: fill out->scores[i] and out->status[i] for every
     * item. Return 0, or non-zero when the whole batch failed (message in out->err; every
     * item then counts as an error). */
    int (*score)(void *state, const rlvr_batch *batch, rlvr_out *out);
    /* [control-thread] Free the state. May be NULL. */
    void (*destroy)(void *state);
} rlvr_reward_desc;

typedef const rlvr_reward_desc *(*rlvr_reward_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
