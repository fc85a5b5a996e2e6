/*
 * engine/train/config_text.c — the words of config error messages: the error
 * collector, "did you mean ..." suggestions by edit distance, values as short text and
 * the allowed range or names of a key.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/train/config_internal.h"

void tc_err(tc_errs *e, const char *fmt, ...) {
    e->count++;
    if (!e->buf || e->cap == 0 || e->len + 1 >= e->cap) return;
    size_t room = e->cap - e->len;
    int n = snprintf(e->buf + e->len, room, "%s%s: ", e->count > 1 ? "\n" : "", e->where);
    if (n < 0 || (size_t)n >= room) {
        e->len = e->cap - 1;
        return;
    }
    e->len += (size_t)n;
    room -= (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(e->buf + e->len, room, fmt, ap);
    va_end(ap);
    e->len = (n < 0 || (size_t)n >= room) ? e->cap - 1 : e->len + (size_t)n;
}

// ---------------------------------------------------------------------------------------
// edit distance and suggestions

int tc_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return (int)(la > lb ? la : lb);
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

/* Looks for key as a key of some other section; writes its full path. */
static int find_elsewhere(const tc_field *rows, const char *prefix, const char *key,
                          const tc_field *skip, char *out, size_t outlen) {
    for (const tc_field *f = rows; f->key; f++) {
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", f->key);
        if (f->type == TCF_SECTION) {
            if (find_elsewhere(f->sub, path, key, skip, out, outlen)) return 1;
        } else if (rows != skip && strcmp(f->key, key) == 0) {
            snprintf(out, outlen, "%s", path);
            return 1;
        }
    }
    return 0;
}

void tc_suggest(const tc_field *rows, const char *prefix, const char *key, char *out,
                size_t outlen) {
    const char *best = NULL;
    int best_d = 1 << 30;
    for (const tc_field *f = rows; f->key; f++) {
        int d = tc_edit_distance(key, f->key);
        /* also catch case slips ("LR" for "lr") */
        if (strcasecmp(key, f->key) == 0) d = 0;
        if (d < best_d) best_d = d, best = f->key;
    }
    int len = (int)strlen(key);
    int limit = len <= 3 ? 1 : (len / 3 > 2 ? len / 3 : 2);
    if (best && best_d <= limit) {
        snprintf(out, outlen, "did you mean %s%s%s?", prefix, *prefix ? "." : "", best);
        return;
    }
    char other[256];
    if (rows != tc_reward_schema &&
        find_elsewhere(tc_schema, "", key, rows, other, sizeof(other))) {
        snprintf(out, outlen, "did you mean %s?", other);
        return;
    }
    size_t o =
        (size_t)snprintf(out, outlen, "allowed keys%s%s: ", *prefix ? " in " : "", prefix);
    for (const tc_field *f = rows; f->key && o < outlen; f++)
        o += (size_t)snprintf(out + o, outlen - o, "%s%s", f == rows ? "" : ", ", f->key);
}

// ---------------------------------------------------------------------------------------
// values and ranges as text

void tc_value_text(const cJSON *v, char *out, size_t outlen) {
    char *s = v ? cJSON_PrintUnformatted(v) : NULL;
    if (!s) {
        snprintf(out, outlen, "(missing)");
        return;
    }
    if (strlen(s) > 60) memcpy(s + 57, "...", 4);
    snprintf(out, outlen, "%s", s);
    free(s);
}

static void num_text(double x, char *out, size_t outlen) {
    if (x >= 1073741824.0 - 0.5 && x == floor(x) && x < 1e15)
        snprintf(out, outlen, "%.0f", x);
    else
        snprintf(out, outlen, "%g", x);
}

static void range_text(const tc_field *f, int integer, char *out, size_t outlen) {
    char lo[32], hi[32];
    num_text(f->lo, lo, sizeof(lo));
    num_text(f->hi, hi, sizeof(hi));
    const char *kind = integer ? "an integer" : "a number";
    snprintf(out, outlen, "%s in %c%s, %s%c", kind, (f->flags & TCF_LO_OPEN) ? '(' : '[', lo,
             hi, (f->flags & TCF_HI_OPEN) ? ')' : ']');
}

void tc_allowed_text(const tc_field *f, char *out, size_t outlen) {
    char tmp[200];
    if (f->what) {
        snprintf(out, outlen, "%s", f->what);
        return;
    }
    switch (f->type) {
    case TCF_BOOL:
        snprintf(out, outlen, "true or false");
        break;
    case TCF_TRIBOOL:
        snprintf(out, outlen, "true, false or null");
        break;
    case TCF_SEED:
        snprintf(out, outlen, "an integer in [0, 2^53]");
        break;
    case TCF_INT:
        range_text(f, 1, out, outlen);
        break;
    case TCF_NUM:
        range_text(f, 0, tmp, sizeof(tmp));
        snprintf(out, outlen, "%s%s", tmp, (f->flags & TCF_NULLABLE) ? " or null" : "");
        break;
    case TCF_STR:
        snprintf(out, outlen, "a %sstring%s", (f->flags & TCF_NONEMPTY) ? "non-empty " : "",
                 (f->flags & TCF_NULLABLE) ? " or null" : "");
        break;
    case TCF_ENUM: {
        size_t o = (size_t)snprintf(out, outlen, "one of ");
        for (int i = 0; f->names[i] && o < outlen; i++)
            o += (size_t)snprintf(out + o, outlen - o, "%s\"%s\"", i ? ", " : "", f->names[i]);
        break;
    }
    case TCF_SECTION:
        snprintf(out, outlen, "an object");
        break;
    default:
        snprintf(out, outlen, "a valid value");
        break;
    }
}
