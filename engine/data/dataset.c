/*
 * engine/data/dataset.c — loading a JSONL prompt file into data_example records: one
 * cJSON parse per line for validation, plus a raw scan of the line's top-level members
 * so the answer and the extra fields keep the exact bytes the file had.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/data/dataset_internal.h"
#include "engine/io/fileio.h"

dataset_opts dataset_opts_default(void) {
    return (dataset_opts){.prompt_field = "prompt",
                          .messages_field = "messages",
                          .answer_field = "answer",
                          .on_bad_line = DATASET_STOP_ON_BAD_LINE,
                          .shuffle = 1,
                          .seed = 42,
                          .epochs = 1};
}

// ---------------------------------------------------------------------------------------
// raw spans of a line's top-level members (the line is known to be a valid JSON object)

typedef struct {
    const char *key, *val; /* key: with its quotes; val: the value's text */
    size_t key_len, val_len;
} raw_member;

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\') p++;
    return p < end ? p + 1 : end;
}

static const char *skip_value(const char *p, const char *end) {
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return end;
    }
    while (p < end && !strchr(",}] \t\r\n", *p))
        p++;
    return p;
}

/* Fills up to cap members in source order; returns their number. */
static int scan_members(const char *p, const char *end, raw_member *m, int cap) {
    int n = 0;
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return 0;
    p++;
    while (n < cap) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"') break;
        m[n].key = p;
        p = skip_string(p, end);
        m[n].key_len = (size_t)(p - m[n].key);
        p = skip_ws(p, end);
        if (p < end && *p == ':') p++;
        p = skip_ws(p, end);
        m[n].val = p;
        p = skip_value(p, end);
        m[n].val_len = (size_t)(p - m[n].val);
        n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p++;
        else
            break;
    }
    return n;
}

// ---------------------------------------------------------------------------------------
// UTF-8 check (RFC 3629: no overlongs, no surrogates, at most U+10FFFF)

static long utf8_bad_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len;
        unsigned min, cp;
        if ((c & 0xE0) == 0xC0)
            len = 2, min = 0x80, cp = c & 0x1F;
        else if ((c & 0xF0) == 0xE0)
            len = 3, min = 0x800, cp = c & 0x0F;
        else if ((c & 0xF8) == 0xF0)
            len = 4, min = 0x10000, cp = c & 0x07;
        else
            return (long)i;
        if (i + (size_t)len > n) return (long)i;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += (size_t)len;
    }
    return -1;
}

// ---------------------------------------------------------------------------------------
// one line

static const char *json_type(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "a list";
    return "an object";
}

static int line_err(char *err, size_t errlen, const char *path, long line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int line_err(char *err, size_t errlen, const char *path, long line, const char *fmt,
                    ...) {
    int n = snprintf(err, errlen, "%s:%ld: ", path, line);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = '\0';
    return d;
}

static int check_messages(const cJSON *m, const char *path, long line, const char *field,
                          char *err, size_t errlen) {
    if (!cJSON_IsArray(m))
        return line_err(err, errlen, path, line,
                        "\"%s\" is %s; expected a list of {\"role\", \"content\"} objects",
                        field, json_type(m));
    if (cJSON_GetArraySize(m) == 0)
        return line_err(err, errlen, path, line,
                        "\"%s\" is an empty list; expected at least "
                        "one {\"role\", \"content\"} message",
                        field);
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    int i = 0;
    for (const cJSON *e = m->child; e; e = e->next, i++) {
        if (!cJSON_IsObject(e))
            return line_err(err, errlen, path, line,
                            "%s[%d] is %s; expected an object {\"role\", \"content\"}", field,
                            i, json_type(e));
        for (const cJSON *f = e->child; f; f = f->next) {
            if (strcmp(f->string, "role") && strcmp(f->string, "content") &&
                strcmp(f->string, "reasoning_content"))
                return line_err(err, errlen, path, line,
                                "%s[%d].%s: unknown message field; expected role, content, "
                                "reasoning_content",
                                field, i, f->string);
            if (!cJSON_IsString(f))
                return line_err(err, errlen, path, line, "%s[%d].%s is %s; expected a string",
                                field, i, f->string, json_type(f));
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(e, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!role || !content)
            return line_err(err, errlen, path, line, "%s[%d]: missing \"%s\" (a string)", field,
                            i, !role ? "role" : "content");
        int ok = 0;
        for (int r = 0; r < 4; r++)
            ok |= strcmp(role->valuestring, roles[r]) == 0;
        if (!ok)
            return line_err(err, errlen, path, line,
                            "%s[%d].role \"%.40s\" is not allowed; expected system, user, "
                            "assistant or tool",
                            field, i, role->valuestring);
    }
    return 0;
}

static void example_free(data_example *e) {
    free(e->prompt);
    free(e->prompt_json);
    free(e->answer);
    free(e->extra_json);
    memset(e, 0, sizeof(*e));
}

/* Parses one non-blank line into ex; -1 with a message naming path:line. */
static int parse_line(const char *s, size_t n, const char *path, long line,
                      const dataset_opts *o, data_example *ex, char *err, size_t errlen) {
    memset(ex, 0, sizeof(*ex));
    ex->line = line;
    if (memchr(s, '\0', n)) return line_err(err, errlen, path, line, "contains a NUL byte");
    long bad = utf8_bad_at((const unsigned char *)s, n);
    if (bad >= 0)
        return line_err(err, errlen, path, line, "invalid UTF-8 at byte %ld of the line",
                        bad + 1);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (j) {
        const char *rest = skip_ws(end, s + n);
        if (rest < s + n) {
            cJSON_Delete(j);
            return line_err(err, errlen, path, line,
                            "invalid JSON: text after the object at column %ld (one JSON "
                            "object per line)",
                            (long)(rest - s) + 1);
        }
    } else {
        long col = end && end >= s && end <= s + n ? (long)(end - s) + 1 : 1;
        return line_err(err, errlen, path, line, "invalid JSON at column %ld", col);
    }
    int rc = -1;
    if (!cJSON_IsObject(j)) {
        line_err(err, errlen, path, line,
                 "the line is %s; expected a JSON object with "
                 "\"%s\" or \"%s\"",
                 json_type(j), o->prompt_field, o->messages_field);
        goto done;
    }
    for (const cJSON *c = j->child; c; c = c->next)
        for (const cJSON *d = j->child; d != c; d = d->next)
            if (strcmp(c->string, d->string) == 0) {
                line_err(err, errlen, path, line, "duplicate key \"%s\"", c->string);
                goto done;
            }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, o->prompt_field);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, o->messages_field);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, o->answer_field);
    if (p && m) {
        line_err(err, errlen, path, line, "both \"%s\" and \"%s\"; expected one of them",
                 o->prompt_field, o->messages_field);
        goto done;
    }
    if (!p && !m) {
        line_err(err, errlen, path, line,
                 "missing prompt: expected \"%s\" (a string) or \"%s\" (a list of {\"role\", "
                 "\"content\"})",
                 o->prompt_field, o->messages_field);
        goto done;
    }
    if (p && !cJSON_IsString(p)) {
        line_err(err, errlen, path, line, "\"%s\" is %s; expected a string", o->prompt_field,
                 json_type(p));
        goto done;
    }
    if (p && p->valuestring[0] == '\0') {
        line_err(err, errlen, path, line, "\"%s\" is empty; expected a non-empty string",
                 o->prompt_field);
        goto done;
    }
    if (m && check_messages(m, path, line, o->messages_field, err, errlen) != 0) goto done;
    if (a && !cJSON_IsString(a) && !cJSON_IsNumber(a)) {
        line_err(err, errlen, path, line, "\"%s\" is %s; expected a string or a number",
                 o->answer_field, json_type(a));
        goto done;
    }

    /* raw member spans, in the same order as cJSON's children */
    int count = cJSON_GetArraySize(j);
    raw_member *rm = calloc((size_t)count + 1, sizeof(*rm));
    if (!rm) {
        line_err(err, errlen, path, line, "out of memory");
        goto done;
    }
    int got = scan_members(s, s + n, rm, count);
    if (got != count) {
        free(rm);
        line_err(err, errlen, path, line, "could not split the object into its fields");
        goto done;
    }
    size_t extra_len = 2;
    for (int i = 0; i < count; i++)
        extra_len += rm[i].key_len + rm[i].val_len + 2;
    char *extra = malloc(extra_len + 1);
    if (!extra) {
        free(rm);
        line_err(err, errlen, path, line, "out of memory");
        goto done;
    }
    size_t x = 0;
    extra[x++] = '{';
    int i = 0, n_extra = 0;
    for (const cJSON *c = j->child; c; c = c->next, i++) {
        if (c == p || c == m) {
            ex->prompt_json = dup_n(rm[i].val, rm[i].val_len);
        } else if (c == a) {
            if (cJSON_IsString(a))
                ex->answer = strdup(a->valuestring);
            else
                ex->answer = dup_n(rm[i].val, rm[i].val_len);
            ex->has_answer = 1;
        } else {
            if (n_extra++) extra[x++] = ',';
            memcpy(extra + x, rm[i].key, rm[i].key_len), x += rm[i].key_len;
            extra[x++] = ':';
            memcpy(extra + x, rm[i].val, rm[i].val_len), x += rm[i].val_len;
        }
    }
    extra[x++] = '}';
    extra[x] = '\0';
    ex->extra_json = extra;
    free(rm);
    if (!ex->has_answer) ex->answer = strdup("");
    ex->is_messages = m != NULL;
    if (p) ex->prompt = strdup(p->valuestring);
    if (!ex->prompt_json || !ex->answer || (p && !ex->prompt)) {
        example_free(ex);
        line_err(err, errlen, path, line, "out of memory");
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(j);
    return rc;
}

// ---------------------------------------------------------------------------------------
// the file

static uint64_t fnv1a64(const unsigned char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) return 0;
    return 1;
}

int dataset_load(const char *path, const dataset_opts *opts, dataset **out, char *err,
                 size_t errlen) {
    *out = NULL;
    dataset_opts o = opts ? *opts : dataset_opts_default();
    if (!o.prompt_field) o.prompt_field = "prompt";
    if (!o.messages_field) o.messages_field = "messages";
    if (!o.answer_field) o.answer_field = "answer";
    if (o.epochs < 0) {
        snprintf(err, errlen, "%s: epochs %d; expected >= 0 (0 = no limit)", path, o.epochs);
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    if (fio_read_file(path, &text, &len, err, errlen) != 0) return -1;
    dataset *ds = calloc(1, sizeof(*ds));
    if (!ds || !(ds->path = strdup(path))) {
        free(ds);
        free(text);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    ds->opts = o;
    ds->fingerprint = fnv1a64((const unsigned char *)text, len);
    ds->first_skip = strdup("");
    size_t cap = 0;
    long line = 0;
    for (size_t at = 0; at < len;) {
        const char *s = text + at;
        const char *nl = memchr(s, '\n', len - at);
        size_t n = nl ? (size_t)(nl - s) : len - at;
        at += n + (nl ? 1 : 0);
        line++;
        if (line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) s += 3, n -= 3; /* BOM */
        if (is_blank(s, n)) continue;
        if ((size_t)ds->n >= cap) {
            size_t nc = cap ? cap * 2 : 256;
            data_example *ne = realloc(ds->ex, nc * sizeof(*ne));
            if (!ne) {
                snprintf(err, errlen, "%s: out of memory at line %ld", path, line);
                goto fail;
            }
            ds->ex = ne, cap = nc;
        }
        char lerr[512];
        if (parse_line(s, n, path, line, &o, &ds->ex[ds->n], lerr, sizeof(lerr)) != 0) {
            if (o.on_bad_line != DATASET_SKIP_BAD_LINES) {
                snprintf(err, errlen, "%s", lerr);
                goto fail;
            }
            if (ds->n_skipped++ == 0) {
                free(ds->first_skip);
                ds->first_skip = strdup(lerr);
            }
            continue;
        }
        if (ds->n == 2147483647) {
            snprintf(err, errlen, "%s: more than 2^31-1 examples", path);
            goto fail;
        }
        ds->n++;
    }
    free(text);
    text = NULL;
    if (ds->n == 0) {
        if (ds->n_skipped)
            snprintf(err, errlen, "%s: no usable examples (%d bad lines skipped; first: %s)",
                     path, ds->n_skipped, ds->first_skip ? ds->first_skip : "");
        else
            snprintf(err, errlen, "%s: no examples (the file has no non-blank line)", path);
        goto fail;
    }
    ds->perm = malloc((size_t)ds->n * sizeof(int));
    if (!ds->perm) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    dataset_epoch_order(o.seed, 0, o.shuffle, ds->perm, ds->n);
    ds->perm_epoch = 0;
    *out = ds;
    return 0;
fail:
    free(text);
    dataset_free(ds);
    return -1;
}

void dataset_free(dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n; i++)
        example_free(&ds->ex[i]);
    free(ds->ex);
    free(ds->perm);
    free(ds->path);
    free(ds->first_skip);
    free(ds);
}

int dataset_size(const dataset *ds) {
    return ds->n;
}
const data_example *dataset_get(const dataset *ds, int index) {
    return index >= 0 && index < ds->n ? &ds->ex[index] : NULL;
}
int dataset_skipped(const dataset *ds) {
    return ds->n_skipped;
}
const char *dataset_first_skip(const dataset *ds) {
    return ds->first_skip ? ds->first_skip : "";
}
const char *dataset_path(const dataset *ds) {
    return ds->path;
}
