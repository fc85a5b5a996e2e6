/*
 * rewards/builtin/builtin_util.c — config and info helpers for the built-in rewards.
 */
#include "rewards/builtin/builtin_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cJSON *bu_config(const char *reward, const char *json, char *err, size_t errlen) {
    cJSON *c = cJSON_Parse(json && json[0] ? json : "{}");
    if (!c || !cJSON_IsObject(c)) {
        snprintf(err, errlen, "%s: config '%s' is not a JSON object", reward, json);
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

int bu_known_keys(const char *reward, const cJSON *cfg, const char *const *keys, char *err,
                  size_t errlen) {
    for (const cJSON *it = cfg->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *k = keys; *k && !ok; k++) ok = !strcmp(*k, it->string);
        if (!ok) {
            char list[512] = "";
            for (const char *const *k = keys; *k; k++) {
                strncat(list, *k, sizeof list - strlen(list) - 3);
                if (k[1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
            }
            snprintf(err, errlen, "%s: unknown config field '%s' (known: %s)", reward,
                     it->string, list);
            return -1;
        }
    }
    return 0;
}

int bu_get_bool(const char *reward, const cJSON *cfg, const char *key, int def, int *out,
                char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        char *t = cJSON_PrintUnformatted(v);
        snprintf(err, errlen, "%s: config field '%s' = %s: expected true or false", reward,
                 key, t ? t : "?");
        free(t);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

int bu_get_num(const char *reward, const cJSON *cfg, const char *key, double def, double lo,
               double hi, double *out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        char *t = cJSON_PrintUnformatted(v);
        snprintf(err, errlen, "%s: config field '%s' = %s: expected a number in [%g, %g]",
                 reward, key, t ? t : "?", lo, hi);
        free(t);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

int bu_get_str(const char *reward, const cJSON *cfg, const char *key, const char *def,
               const char **out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsString(v)) {
        char *t = cJSON_PrintUnformatted(v);
        snprintf(err, errlen, "%s: config field '%s' = %s: expected a string", reward, key,
                 t ? t : "?");
        free(t);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

void bu_set_info(rlvr_out *out, size_t i, cJSON *info) {
    if (!info) return;
    char *t = cJSON_PrintUnformatted(info);
    if (t && out->set_info) out->set_info(out, i, t);
    free(t);
    cJSON_Delete(info);
}

void bu_add_str(cJSON *obj, const char *key, const char *s, size_t n, size_t max) {
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    char *t = malloc(n + 1);
    if (!t) return;
    /* Copy, replacing bytes that are not valid UTF-8 with '?' so logs stay valid JSON
     * (cJSON escapes control characters itself). */
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok) {
            memcpy(t + i, s + i, len);
            i += len;
        } else {
            t[i++] = '?';
        }
    }
    t[n] = 0;
    cJSON_AddStringToObject(obj, key, t);
    free(t);
}

int bu_score_each(const void *state, const rlvr_batch *b, rlvr_out *out, bu_item_fn one) {
    for (size_t i = 0; i < b->n_items; i++) {
        cJSON *info = cJSON_CreateObject();
        double s = 0;
        out->status[i] = info ? one(state, &b->items[i], &s, info) : RLVR_STATUS_ERROR;
        out->scores[i] = s;
        bu_set_info(out, i, info);
    }
    return 0;
}
