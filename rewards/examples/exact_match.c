/*
 * rewards/examples/exact_match.c — an example out-of-tree reward plugin for rlvr.
 * Score 1.0 when the completion, trimmed of surrounding whitespace, equals the reference
 * answer (also trimmed); with {"case_sensitive": false} letters are compared ignoring
 * case. ABSTAIN when the row has no answer.
 *
 * Build it with one line against the installed header:
 *   cc -shared -fPIC -O2 -I /path/to/rlvr/rewards/include -o exact_match.so exact_match.c
 * and use it:
 *   rlvr score --reward ./exact_match.so:'{"case_sensitive":false}' --input rows.jsonl
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rlvr/reward.h"

typedef struct {
    int case_sensitive;
} em_state;

/* [control-thread] The config is JSON; this tiny plugin only looks for one flag. */
static int em_init(const rlvr_host *host, const char *config, void **state, char *err,
                   size_t errlen) {
    (void)host;
    em_state *st = calloc(1, sizeof *st);
    if (!st) {
        strncpy(err, "exact_match: out of memory", errlen - 1);
        return -1;
    }
    st->case_sensitive = 1;
    const char *k = strstr(config, "\"case_sensitive\"");
    if (k) {
        k = strchr(k, ':');
        while (k && (*k == ':' || isspace((unsigned char)*k))) k++;
        if (k && !strncmp(k, "false", 5)) st->case_sensitive = 0;
        else if (!k || strncmp(k, "true", 4)) {
            strncpy(err, "exact_match: config field 'case_sensitive': expected true or false",
                    errlen - 1);
            free(st);
            return -1;
        }
    }
    *state = st;
    return 0;
}

static void trim(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

/* [worker-thread] Thread-safe: the state is read-only after init. */
static int em_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    const em_state *st = state;
    for (size_t i = 0; i < b->n_items; i++) {
        const char *c = b->items[i].completion, *a = b->items[i].answer;
        size_t cn = b->items[i].completion_len, an = b->items[i].answer_len;
        trim(&c, &cn);
        trim(&a, &an);
        if (an == 0) {
            out->status[i] = RLVR_STATUS_ABSTAIN;
            out->scores[i] = 0.0;
            continue;
        }
        int eq = cn == an;
        for (size_t k = 0; eq && k < an; k++)
            eq = st->case_sensitive ? c[k] == a[k]
                                    : tolower((unsigned char)c[k]) == tolower((unsigned char)a[k]);
        out->scores[i] = eq ? 1.0 : 0.0;
        out->status[i] = RLVR_STATUS_OK;
        if (out->struct_size >= sizeof(rlvr_out) && out->set_info)
            out->set_info(out, i, eq ? "{\"match\":true}" : "{\"match\":false}");
    }
    return 0;
}

static void em_destroy(void *state) { free(state); }

RLVR_REWARD_EXPORT const rlvr_reward_desc *rlvr_reward_entry(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "exact_match",
        .version = "1.0",
        .description = "1 when the trimmed completion equals the trimmed answer",
        .flags = RLVR_REWARD_THREAD_SAFE | RLVR_REWARD_DETERMINISTIC,
        .init = em_init,
        .score = em_score,
        .destroy = em_destroy,
    };
    return &d;
}
