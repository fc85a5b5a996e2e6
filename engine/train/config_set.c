/*
 * engine/train/config_set.c — `--set a.b.c=VALUE` overrides on the config JSON tree,
 * applied before validation. VALUE is parsed as JSON (numbers, true/false, null, lists,
 * objects, quoted strings); anything that is not JSON is taken as a plain string, so
 * `--set algorithm.advantage=rloo` works without quotes. Objects missing on the path
 * are created; array elements are addressed as rewards[1] or rewards.1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/train/config.h"

/* A path segment: a key, optionally followed by one or more [index]; or a bare index. */
static int parse_index(const char *s, size_t n, int *out) {
    if (n == 0 || n > 9) return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Steps from cur into key (creating an object when missing, unless last). */
static cJSON *step_key(cJSON *cur, const char *key, const char *done, int last, char *err,
                       size_t errlen) {
    if (cJSON_IsArray(cur)) {
        int idx;
        if (parse_index(key, strlen(key), &idx) != 0) {
            snprintf(err, errlen, "%s is a list; expected an index after it, got \"%s\"", done,
                     key);
            return NULL;
        }
        int n = cJSON_GetArraySize(cur);
        if (idx > n) {
            snprintf(err, errlen,
                     "%s has %d elements; index %d is past the end (use %d to "
                     "append)",
                     done, n, idx, n);
            return NULL;
        }
        if (idx == n) {
            if (last) return cur; /* caller appends */
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddItemToArray(cur, o)) return NULL;
            return o;
        }
        return cJSON_GetArrayItem(cur, idx);
    }
    if (!cJSON_IsObject(cur)) {
        snprintf(err, errlen, "%s is not an object, so it has no key \"%s\"",
                 *done ? done : "the config", key);
        return NULL;
    }
    cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, key);
    if (!next && !last) {
        next = cJSON_CreateObject();
        if (!next || !cJSON_AddItemToObject(cur, key, next)) return NULL;
    }
    return next;
}

int train_config_set(cJSON *root, const char *assignment, char *err, size_t errlen) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment) {
        snprintf(err, errlen, "expected KEY=VALUE (e.g. algorithm.clip_high=0.28), got \"%s\"",
                 assignment);
        return -1;
    }
    /* split the key into segments: '.' separates, "[i]" is its own segment */
    size_t klen = (size_t)(eq - assignment);
    char *key = malloc(klen * 2 + 2);
    if (!key) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < klen; i++) {
        char ch = assignment[i];
        if (ch == '[')
            key[o++] = '\0';
        else if (ch == ']')
            continue;
        else
            key[o++] = ch == '.' ? '\0' : ch;
    }
    key[o] = '\0';
    /* validate the bracket syntax and empty segments */
    for (size_t i = 0; i < klen; i++) {
        char ch = assignment[i];
        int bad = 0;
        if (ch == '[') {
            const char *close = memchr(assignment + i, ']', klen - i);
            int idx;
            bad = !close || parse_index(assignment + i + 1,
                                        (size_t)(close - assignment) - i - 1, &idx) != 0;
        }
        if (ch == '.' && (i == 0 || i + 1 == klen || assignment[i + 1] == '.')) bad = 1;
        if (bad) {
            snprintf(err, errlen,
                     "bad key \"%.*s\"; expected section.key, with [N] for list "
                     "elements",
                     (int)klen, assignment);
            free(key);
            return -1;
        }
    }
    const char *value = eq + 1;
    cJSON *v = cJSON_ParseWithOpts(value, NULL, 1);
    if (!v) v = cJSON_CreateString(value);
    if (!v) {
        free(key);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cJSON *cur = root;
    char done[512] = "";
    size_t seg = 0;
    int rc = -1;
    while (seg < o) {
        const char *name = key + seg;
        size_t next = seg + strlen(name) + 1;
        if (*name == '\0') { /* the empty segment after "]." */
            seg = next;
            continue;
        }
        int last = 1;
        for (size_t t = next; t < o; t += strlen(key + t) + 1)
            if (key[t]) last = 0;
        if (last) {
            if (cJSON_IsArray(cur)) {
                int idx;
                int n = cJSON_GetArraySize(cur);
                if (parse_index(name, strlen(name), &idx) != 0 || idx > n) {
                    snprintf(err, errlen, "%s is a list of %d; expected an index in [0, %d]",
                             done, n, n);
                    break;
                }
                if (idx == n)
                    cJSON_AddItemToArray(cur, v);
                else
                    cJSON_ReplaceItemInArray(cur, idx, v);
            } else if (cJSON_IsObject(cur)) {
                if (cJSON_GetObjectItemCaseSensitive(cur, name))
                    cJSON_ReplaceItemInObjectCaseSensitive(cur, name, v);
                else
                    cJSON_AddItemToObject(cur, name, v);
            } else {
                snprintf(err, errlen, "%s is not an object, so it has no key \"%s\"",
                         *done ? done : "the config", name);
                break;
            }
            v = NULL;
            rc = 0;
            break;
        }
        cJSON *n2 = step_key(cur, name, done, 0, err, errlen);
        if (!n2) break;
        size_t dl = strlen(done);
        if (cJSON_IsArray(cur))
            snprintf(done + dl, sizeof(done) - dl, "[%s]", name);
        else
            snprintf(done + dl, sizeof(done) - dl, "%s%s", dl ? "." : "", name);
        cur = n2;
        seg = next;
    }
    cJSON_Delete(v);
    free(key);
    return rc;
}
