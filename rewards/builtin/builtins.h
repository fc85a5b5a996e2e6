/*
 * rewards/builtin/builtins.h — the table of built-in rewards, each written against the
 * public ABI (rewards/include/rlvr/reward.h) exactly as a .so plugin would be.
 */
#ifndef RLVR_REWARDS_BUILTINS_H
#define RLVR_REWARDS_BUILTINS_H

#include "rewards/include/rlvr/reward.h"

const rlvr_reward_desc *rlvr_builtin_math_answer(void);
const rlvr_reward_desc *rlvr_builtin_format(void);
const rlvr_reward_desc *rlvr_builtin_countdown(void);
const rlvr_reward_desc *rlvr_builtin_length(void);
const rlvr_reward_desc *rlvr_builtin_code(void);
const rlvr_reward_desc *rlvr_builtin_sat(void);
const rlvr_reward_desc *rlvr_builtin_external(void);

/* The built-in with this name, or NULL. */
const rlvr_reward_desc *rlvr_builtin_find(const char *name);
/* "math_answer, format, ..." for error messages. */
const char *rlvr_builtin_names(void);

#endif
