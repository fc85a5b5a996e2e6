/*
 * engine/reward/reward_isolated.h — one worker subprocess running one reward plugin
 * (`isolation: process`). Spawned through libuv with pipes for stdin (requests) and
 * stdout (replies); each reward_iso is driven by one thread at a time and owns its own
 * uv loop. A crash, exit(), hang past the deadline or allocation failure in the plugin
 * fails that batch only; the next call starts a fresh subprocess.
 */
#ifndef RLVR_ENGINE_REWARD_ISOLATED_H
#define RLVR_ENGINE_REWARD_ISOLATED_H

#include <stdint.h>

#include "rewards/include/rlvr/reward.h"

typedef struct reward_iso reward_iso;

typedef struct {
    const char *worker_exe;  /* path of rlvr-reward-worker */
    const char *sandbox_exe; /* passed on to the worker for rlvr_host.exec */
    const char *plugin;      /* built-in name or .so path */
    const char *config_json; /* plugin config */
    uint64_t mem_bytes;      /* RLIMIT_AS of the subprocess */
} reward_iso_opts;

reward_iso *reward_iso_new(const reward_iso_opts *o);
void reward_iso_free(reward_iso *w);

/* Starts the subprocess (if not running) and initialises the plugin in it, waiting at
 * most until deadline_ns (uv_hrtime clock). On success fills *flags (descriptor flags)
 * and name (descriptor name, namelen bytes). *restarted is set when a previous
 * subprocess had died. Returns 0 or -1 with err. */
int reward_iso_start(reward_iso *w, uint64_t deadline_ns, uint64_t *flags, char *name,
                     size_t namelen, int *restarted, char *err, size_t errlen);

/* Scores a batch in the subprocess. Outputs as reward_plugin_run. On deadline all
 * statuses are TIMEOUT and the subprocess is killed; when it dies, all are ERROR. Returns
 * 0 when the plugin answered, -1 otherwise (err says why). */
int reward_iso_score(reward_iso *w, const rlvr_batch *b, uint64_t deadline_ns,
                     double *scores, int32_t *status, char **info, uint64_t *nonfinite,
                     int *restarted, char *err, size_t errlen);

#endif
