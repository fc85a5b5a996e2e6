/*
 * rewards/builtin/builtins.c — name -> descriptor lookup for the built-in rewards.
 */
#include "rewards/builtin/builtins.h"

#include <string.h>

typedef const rlvr_reward_desc *(*entry_fn)(void);

static const entry_fn k_builtins[] = {
    rlvr_builtin_math_answer, rlvr_builtin_format, rlvr_builtin_countdown,
    rlvr_builtin_length,      rlvr_builtin_code,   rlvr_builtin_sat,
    rlvr_builtin_external,
};

const rlvr_reward_desc *rlvr_builtin_find(const char *name) {
    for (size_t i = 0; i < sizeof k_builtins / sizeof *k_builtins; i++) {
        const rlvr_reward_desc *d = k_builtins[i]();
        if (d && !strcmp(d->name, name)) return d;
    }
    return NULL;
}

const char *rlvr_builtin_names(void) { return "math_answer, format, countdown, length, code, sat, external"; }
