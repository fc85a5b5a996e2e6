/*
 * engine/reward/reward_paths.h — where the helper executables of the reward host live:
 * rlvr-reward-worker (isolated plugins) and rlvr-sandbox (code execution). Looked up in
 * order: the environment variable, beside the running executable, the build tree.
 */
#ifndef RLVR_ENGINE_REWARD_PATHS_H
#define RLVR_ENGINE_REWARD_PATHS_H

#include <stddef.h>

/* Fills out with the path of "rlvr-reward-worker" or "rlvr-sandbox". Returns 0 when an
 * executable file was found, else -1 (out then holds the last candidate tried). */
int reward_find_helper(const char *base, char *out, size_t outlen);

#endif
