/*
 * tests/reward/plugins/bad_abi_plugin.c — a plugin built for a future ABI major (99):
 * the host must refuse it and name both versions.
 */
#include "rlvr/reward.h"

static int b_init(const rlvr_host *h, const char *c, void **s, char *e, size_t n) {
    (void)h, (void)c, (void)e, (void)n;
    *s = 0;
    return 0;
}
static int b_score(void *s, const rlvr_batch *b, rlvr_out *o) {
    (void)s, (void)b, (void)o;
    return 0;
}

RLVR_REWARD_EXPORT const rlvr_reward_desc *rlvr_reward_entry(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = 99,
        .abi_minor = 3,
        .name = "bad_abi",
        .init = b_init,
        .score = b_score,
    };
    return &d;
}
