/*
 * rewards/builtin/length.c — the `length` reward (a penalty, <= 0):
 *   "mode":"dapo"   DAPO's soft overlong punishment: with L = length, Lmax = max_len,
 *                   C = cache: 0 when L <= Lmax - C; ((Lmax - C) - L) / C when
 *                   Lmax - C < L <= Lmax; -1 when L > Lmax.
 *   "mode":"linear" -min(1, L / max_len).
 * Length unit: "unit":"tokens" reads the item's extra field "completion_tokens" (the
 * trainer fills it); "chars" counts Unicode code points; "bytes" counts bytes.
 * Config: {"mode":"dapo","max_len":4096,"cache":512,"unit":"tokens"}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewards/builtin/builtin_util.h"
#include "rewards/builtin/builtins.h"

typedef struct {
    int dapo;
    double max_len, cache;
    int unit; /* 0 tokens, 1 chars, 2 bytes */
} length_state;

static int length_init(const rlvr_host *host, const char *config, void **state, char *err,
                       size_t errlen) {
    (void)host;
    cJSON *cfg = bu_config("length", config, err, errlen);
    if (!cfg) return -1;
    static const char *const keys[] = {"mode", "max_len", "cache", "unit", NULL};
    length_state *st = calloc(1, sizeof *st);
    const char *mode = NULL, *unit = NULL;
    int rc = -1;
    if (st && !bu_known_keys("length", cfg, keys, err, errlen) &&
        !bu_get_str("length", cfg, "mode", "dapo", &mode, err, errlen) &&
        !bu_get_str("length", cfg, "unit", "tokens", &unit, err, errlen) &&
        !bu_get_num("length", cfg, "max_len", 4096, 1, 1e9, &st->max_len, err, errlen) &&
        !bu_get_num("length", cfg, "cache", 512, 0, 1e9, &st->cache, err, errlen)) {
        rc = 0;
        if (!strcmp(mode, "dapo")) st->dapo = 1;
        else if (strcmp(mode, "linear")) {
            snprintf(err, errlen, "length: config field 'mode' = \"%s\": expected \"dapo\" or "
                     "\"linear\"", mode);
            rc = -1;
        }
        if (!strcmp(unit, "tokens")) st->unit = 0;
        else if (!strcmp(unit, "chars")) st->unit = 1;
        else if (!strcmp(unit, "bytes")) st->unit = 2;
        else if (!rc) {
            snprintf(err, errlen, "length: config field 'unit' = \"%s\": expected \"tokens\", "
                     "\"chars\" or \"bytes\"", unit);
            rc = -1;
        }
        if (!rc && st->dapo && (st->cache <= 0 || st->cache > st->max_len)) {
            snprintf(err, errlen, "length: config field 'cache' = %g: expected 0 < cache <= "
                     "max_len (%g)", st->cache, st->max_len);
            rc = -1;
        }
    }
    cJSON_Delete(cfg);
    if (rc) {
        free(st);
        return -1;
    }
    *state = st;
    return 0;
}

static void length_destroy(void *s) { free(s); }

static int length_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    const length_state *st = state;
    for (size_t i = 0; i < b->n_items; i++) {
        const rlvr_item *it = &b->items[i];
        double len = 0;
        if (st->unit == 0) {
            cJSON *ex = cJSON_Parse(it->extra_json);
            cJSON *t = ex ? cJSON_GetObjectItemCaseSensitive(ex, "completion_tokens") : NULL;
            int ok = t && cJSON_IsNumber(t) && t->valuedouble >= 0;
            if (ok) len = t->valuedouble;
            cJSON_Delete(ex);
            if (!ok) {
                cJSON *info = cJSON_CreateObject();
                cJSON_AddStringToObject(info, "reason",
                                        "extra field 'completion_tokens' missing or not a "
                                        "non-negative number (unit \"tokens\")");
                bu_set_info(out, i, info);
                out->status[i] = RLVR_STATUS_ERROR;
                out->scores[i] = 0;
                continue;
            }
        } else if (st->unit == 1) {
            for (size_t k = 0; k < it->completion_len; k++)
                if (((unsigned char)it->completion[k] & 0xC0) != 0x80) len++;
        } else {
            len = (double)it->completion_len;
        }
        double s;
        if (st->dapo) {
            double free_len = st->max_len - st->cache;
            if (len <= free_len) s = 0.0;
            else if (len <= st->max_len) s = (free_len - len) / st->cache;
            else s = -1.0;
        } else {
            s = -(len / st->max_len < 1.0 ? len / st->max_len : 1.0);
        }
        out->scores[i] = s;
        out->status[i] = RLVR_STATUS_OK;
    }
    return 0;
}

const rlvr_reward_desc *rlvr_builtin_length(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "length",
        .version = "1.0",
        .description = "DAPO soft overlong penalty or a linear length penalty",
        .flags = RLVR_REWARD_THREAD_SAFE | RLVR_REWARD_DETERMINISTIC,
        .init = length_init,
        .score = length_score,
        .destroy = length_destroy,
    };
    return &d;
}
