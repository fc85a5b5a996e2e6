/*
 * engine/reward/reward_paths.c — locating rlvr-reward-worker and rlvr-sandbox.
 */
#include "engine/reward/reward_paths.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef RLVR_REWARD_BIN_DIR
#define RLVR_REWARD_BIN_DIR "."
#endif

int reward_find_helper(const char *base, char *out, size_t outlen) {
    char env[64];
    size_t k = 0;
    for (const char *p = base; *p && k + 1 < sizeof env; p++)
        env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    env[k] = 0;
    /* RLVR_REWARD_WORKER / RLVR_SANDBOX */
    const char *e = getenv(env);
    if (e && e[0]) {
        snprintf(out, outlen, "%s", e);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            snprintf(out, outlen, "%s/%s", self, base);
            if (access(out, X_OK) == 0) return 0;
        }
    }
    snprintf(out, outlen, "%s/%s", RLVR_REWARD_BIN_DIR, base);
    return access(out, X_OK) == 0 ? 0 : -1;
}
