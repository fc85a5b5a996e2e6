/*
 * rewards/builtin/format.c — the `format` reward: the completion must be
 *   <think> ... </think> <answer> ... </answer>
 * with each tag exactly once, in that order, no tag inside another block, and nothing but
 * whitespace outside (score 1.0). Otherwise partial credit: 0.125 for each tag that
 * occurs exactly the expected number of times (at most 0.5), so a model is pulled
 * towards the format without being paid fully for a broken one.
 *
 * Config: {"think_prefilled": false}  true when the chat template already opened the
 * think block in the prompt: the completion must then NOT contain "<think>" and starts
 * inside the block (credit is split over the three remaining tags).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rewards/builtin/builtin_util.h"
#include "rewards/builtin/builtins.h"

typedef struct {
    int think_prefilled;
} format_state;

static int format_init(const rlvr_host *host, const char *config, void **state, char *err,
                       size_t errlen) {
    (void)host;
    cJSON *cfg = bu_config("format", config, err, errlen);
    if (!cfg) return -1;
    static const char *const keys[] = {"think_prefilled", NULL};
    format_state *st = calloc(1, sizeof *st);
    if (!st || bu_known_keys("format", cfg, keys, err, errlen) ||
        bu_get_bool("format", cfg, "think_prefilled", 0, &st->think_prefilled, err, errlen)) {
        free(st);
        cJSON_Delete(cfg);
        return -1;
    }
    cJSON_Delete(cfg);
    *state = st;
    return 0;
}

static void format_destroy(void *s) { free(s); }

static size_t count(const char *s, size_t n, const char *tag, size_t *first) {
    size_t l = strlen(tag), c = 0;
    *first = (size_t)-1;
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *q = memmem(p, (size_t)(end - p), tag, l);
        if (!q) break;
        if (c == 0) *first = (size_t)(q - s);
        c++;
        p = q + l;
    }
    return c;
}

static int only_space(const char *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

static double format_one(const format_state *st, const char *s, size_t n, cJSON *info) {
    static const char *tags[4] = {"<think>", "</think>", "<answer>", "</answer>"};
    size_t pos[4], cnt[4];
    for (int t = 0; t < 4; t++) cnt[t] = count(s, n, tags[t], &pos[t]);
    const size_t want_open = st->think_prefilled ? 0 : 1;
    double partial = 0.0;
    const double per = st->think_prefilled ? 0.5 / 3.0 : 0.125;
    for (int t = 0; t < 4; t++) {
        size_t want = t == 0 ? want_open : 1;
        if (t == 0 && st->think_prefilled) continue;
        if (cnt[t] == want) partial += per;
    }
    int counts_ok = cnt[0] == want_open && cnt[1] == 1 && cnt[2] == 1 && cnt[3] == 1;
    int ok = counts_ok;
    if (ok) {
        size_t think_start = st->think_prefilled ? 0 : pos[0];
        if (!st->think_prefilled && !only_space(s, 0, pos[0])) ok = 0;
        if (ok && !(think_start <= pos[1] && pos[1] < pos[2] && pos[2] < pos[3])) ok = 0;
        if (ok && !only_space(s, pos[1] + 8, pos[2])) ok = 0;
        if (ok && !only_space(s, pos[3] + 9, n)) ok = 0;
    }
    cJSON_AddBoolToObject(info, "tag_counts_ok", counts_ok);
    cJSON_AddBoolToObject(info, "structure_ok", ok);
    return ok ? 1.0 : partial;
}

static int format_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    for (size_t i = 0; i < b->n_items; i++) {
        cJSON *info = cJSON_CreateObject();
        if (!info) {
            out->status[i] = RLVR_STATUS_ERROR;
            continue;
        }
        out->scores[i] = format_one(state, b->items[i].completion, b->items[i].completion_len,
                                    info);
        out->status[i] = RLVR_STATUS_OK;
        bu_set_info(out, i, info);
    }
    return 0;
}

const rlvr_reward_desc *rlvr_builtin_format(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "format",
        .version = "1.0",
        .description = "<think>...</think><answer>...</answer> structure, partial credit per tag",
        .flags = RLVR_REWARD_THREAD_SAFE | RLVR_REWARD_DETERMINISTIC,
        .init = format_init,
        .score = format_score,
        .destroy = format_destroy,
    };
    return &d;
}
