/*
 * engine/reward/reward_plugin.h — finding a reward by name (built-in) or path (.so),
 * checking its descriptor against the ABI, and running its score() on a batch with
 * host-owned output buffers. Used by the host (in-process) and by the worker subprocess.
 */
#ifndef RLVR_ENGINE_REWARD_PLUGIN_H
#define RLVR_ENGINE_REWARD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "rewards/include/rlvr/reward.h"

typedef struct {
    rlvr_reward_desc desc; /* copy; fields beyond the plugin's struct_size are zero */
    void *dl;              /* dlopen handle, NULL for a built-in */
    char *path;            /* the name or path it was loaded from */
} reward_plugin;

/* 1 when name refers to a shared object (contains '/' or ends in ".so"). */
int reward_name_is_path(const char *name);

/* Loads a built-in by name or a .so by path. Errors name the file and the problem
 * (dlopen message, missing symbol, ABI major mismatch with both versions, bad fields). */
int reward_plugin_load(const char *name, reward_plugin *p, char *err, size_t errlen);
void reward_plugin_unload(reward_plugin *p);

/* Validates a descriptor (size, ABI, name, callbacks); where names the source. */
int reward_desc_check(const rlvr_reward_desc *d, const char *where, rlvr_reward_desc *copy,
                      char *err, size_t errlen);

/* Runs p's score on a batch. scores/status/info are [batch->n_items]; info entries are
 * malloc'ed JSON text or NULL (caller frees). Non-finite scores become errors. Returns 0,
 * or -1 when score() failed as a whole (message in err; every status set to ERROR).
 * *nonfinite receives the count of NaN/Inf scores. */
int reward_plugin_run(const reward_plugin *p, void *state, const rlvr_batch *batch,
                      double *scores, int32_t *status, char **info, uint64_t *nonfinite,
                      char *err, size_t errlen);

#endif
