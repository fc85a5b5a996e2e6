/*
 * tests/reward/plugins/fault_plugin.c — a reward plugin that misbehaves on request, for
 * the host's fault tests. Per item, by completion text: "SEGV" crashes, "EXIT" calls
 * exit(3), "HANG" loops forever, "SLOW" sleeps 1.5 s, "NAN" scores NaN, "INF" scores
 * +Inf, "ALLOC" allocates (and touches) memory until it runs out, "STDOUT" writes junk to
 * stdout; anything else scores strlen(completion). Not thread-safe on purpose: it detects
 * concurrent score() calls on one state and reports them as a batch failure.
 * Config {"fail_init": true} makes init fail with a message.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rlvr/reward.h"

typedef struct {
    atomic_int busy;
} fault_state;

static int f_init(const rlvr_host *host, const char *config, void **state, char *err,
                  size_t errlen) {
    (void)host;
    if (strstr(config, "\"fail_init\":true")) {
        snprintf(err, errlen, "fault_plugin: config field 'fail_init' asked me to fail");
        return -1;
    }
    fault_state *s = calloc(1, sizeof *s);
    if (!s) return -1;
    *state = s;
    return 0;
}

static int f_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    fault_state *s = state;
    if (atomic_fetch_add(&s->busy, 1) != 0) {
        atomic_fetch_sub(&s->busy, 1);
        snprintf(out->err, out->errlen, "score() entered concurrently on one state");
        return -1;
    }
    for (size_t i = 0; i < b->n_items; i++) {
        const char *c = b->items[i].completion;
        out->status[i] = RLVR_STATUS_OK;
        out->scores[i] = (double)b->items[i].completion_len;
        if (!strcmp(c, "SEGV")) {
            volatile int *p = NULL;
            *p = 1;
        } else if (!strcmp(c, "EXIT")) {
            exit(3);
        } else if (!strcmp(c, "HANG")) {
            for (volatile unsigned long k = 0;; k++) {
            }
        } else if (!strcmp(c, "SLOW")) {
            struct timespec ts = {1, 500000000};
            nanosleep(&ts, NULL);
        } else if (!strcmp(c, "NAN")) {
            out->scores[i] = NAN;
        } else if (!strcmp(c, "INF")) {
            out->scores[i] = INFINITY;
        } else if (!strcmp(c, "ALLOC")) {
            for (;;) {
                char *p = malloc(64u << 20);
                if (!p) {
                    volatile int *z = NULL;
                    *z = 1; /* a plugin that does not check malloc */
                }
                memset(p, 1, 64u << 20);
            }
        } else if (!strcmp(c, "STDOUT")) {
            printf("garbage on stdout\n");
            fflush(stdout);
        }
    }
    atomic_fetch_sub(&s->busy, 1);
    return 0;
}

static void f_destroy(void *s) { free(s); }

RLVR_REWARD_EXPORT const rlvr_reward_desc *rlvr_reward_entry(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "fault",
        .version = "0",
        .description = "misbehaves on request",
        .flags = 0,
        .init = f_init,
        .score = f_score,
        .destroy = f_destroy,
    };
    return &d;
}
