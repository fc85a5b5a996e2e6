/*
 * engine/text/chat_template.c — making chat templates: built-ins by name, detection
 * from tokenizer_config.json's Jinja text, custom templates from JSON, and turning JSON
 * prompts into chat_message arrays.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/text/chat_internal.h"

static int cerr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cerr(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void chat_template_free(chat_template *tpl) {
    if (!tpl) return;
    free(tpl->name);
    free(tpl->bos);
    free(tpl->default_system);
    free(tpl->date_string);
    for (int r = 0; r < CHAT_ROLE_COUNT; r++) {
        free(tpl->prefix[r]);
        free(tpl->suffix[r]);
    }
    free(tpl->generation_prompt);
    free(tpl);
}

chat_template_kind chat_template_get_kind(const chat_template *tpl) { return tpl->kind; }
const char *chat_template_name(const chat_template *tpl) { return tpl->name; }

static chat_template *tpl_new(chat_template_kind kind, const char *name, const char *bos) {
    chat_template *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->kind = kind;
    t->name = strdup(name);
    t->bos = strdup(bos ? bos : "");
    if (!t->name || !t->bos) {
        chat_template_free(t);
        return NULL;
    }
    return t;
}

int chat_template_builtin(const char *name, const char *bos_token, chat_template **out,
                          char *err, size_t errlen) {
    static const struct {
        const char *name;
        chat_template_kind kind;
    } known[] = {{"none", CHAT_TEMPLATE_NONE},
                 {"chatml", CHAT_TEMPLATE_CHATML},
                 {"llama3", CHAT_TEMPLATE_LLAMA3},
                 {"llama3.1", CHAT_TEMPLATE_LLAMA31},
                 {"qwen3", CHAT_TEMPLATE_QWEN3}};
    *out = NULL;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i].name) != 0) continue;
        const int llama = known[i].kind == CHAT_TEMPLATE_LLAMA3 ||
                          known[i].kind == CHAT_TEMPLATE_LLAMA31;
        *out = tpl_new(known[i].kind, name, llama ? bos_token : NULL);
        if (*out && known[i].kind == CHAT_TEMPLATE_LLAMA31) {
            (*out)->date_string = strdup("26 Jul 2024");
            if (!(*out)->date_string) {
                chat_template_free(*out);
                *out = NULL;
            }
        }
        return *out ? 0 : cerr(err, errlen, "out of memory");
    }
    return cerr(err, errlen,
                "unknown chat template '%s' (expected chatml, llama3, llama3.1, qwen3, none, "
                "auto or the path of a JSON file with a custom template)",
                name);
}

/* Qwen2/2.5-style default system message: a literal '<|im_start|>system\n...<|im_end|>'
 * inside the template source (where "\n" is written as backslash-n). NULL when none. */
static char *default_system_of(const char *src) {
    const char *key = "<|im_start|>system\\n";
    for (const char *p = strstr(src, key); p; p = strstr(p + 1, key)) {
        const char *b = p + strlen(key), *e = strstr(b, "<|im_end|>");
        if (!e || e <= b) continue;
        int literal = 1;
        for (const char *q = b; q < e; q++)
            if (*q == '\'' || *q == '"' || *q == '{' || *q == '}' || *q == '+') literal = 0;
        if (!literal) continue;
        size_t span = (size_t)(e - b);
        char *s = malloc(span + 1), *o = s;
        if (!s) return NULL;
        for (const char *q = b; q < e; q++) {
            if (q[0] == '\\' && q + 1 < e && q[1] == 'n') {
                *o++ = '\n';
                q++;
            } else {
                *o++ = *q;
            }
        }
        *o = 0;
        return s;
    }
    return NULL;
}

/* The "Today Date" a Llama 3.1+ template renders without a date_string argument: today's
 * date when it calls strftime_now (Llama 3.2's; transformers gives it the local date, as
 * "%d %b %Y"), else the literal of `set date_string = "..."` (3.1/3.3: "26 Jul 2024").
 * Malloc'ed; NULL when out of memory. */
static char *llama31_date_of(const char *src) {
    if (strstr(src, "strftime_now")) {
        char buf[64];
        const time_t now = time(NULL);
        struct tm tmv;
        if (localtime_r(&now, &tmv) && strftime(buf, sizeof buf, "%d %b %Y", &tmv) > 0)
            return strdup(buf);
    }
    const char *key = "set date_string = \"";
    const char *p = strstr(src, key);
    if (p) {
        p += strlen(key);
        const char *e = strchr(p, '"');
        if (e && e - p > 0 && e - p < 64) return strndup(p, (size_t)(e - p));
    }
    return strdup("26 Jul 2024");
}

int chat_template_auto(const tok_tokenizer *t, chat_template **out, char *err, size_t errlen) {
    *out = NULL;
    const char *src = tok_chat_template_source(t);
    if (!src)
        return cerr(err, errlen,
                    "%s: no chat_template in tokenizer_config.json beside it; choose a "
                    "template (chatml, llama3, llama3.1, qwen3, none or a custom JSON file)",
                    tok_path(t));
    if (strstr(src, "<|im_start|>")) {
        if (strstr(src, "enable_thinking"))
            return chat_template_builtin("qwen3", NULL, out, err, errlen);
        if (chat_template_builtin("chatml", NULL, out, err, errlen)) return -1;
        (*out)->default_system = default_system_of(src);
        return 0;
    }
    if (strstr(src, "<|start_header_id|>") && strstr(src, "<|eot_id|>")) {
        if (!strstr(src, "Cutting Knowledge Date"))
            return chat_template_builtin("llama3", tok_bos_token(t), out, err, errlen);
        if (chat_template_builtin("llama3.1", tok_bos_token(t), out, err, errlen)) return -1;
        char *date = llama31_date_of(src);
        if (!date) {
            chat_template_free(*out);
            *out = NULL;
            return cerr(err, errlen, "out of memory");
        }
        free((*out)->date_string);
        (*out)->date_string = date;
        return 0;
    }
    return cerr(err, errlen,
                "%s: tokenizer_config.json chat_template is not one of the built-in formats "
                "(chatml, llama3, llama3.1, qwen3); choose a template explicitly or write a custom "
                "one",
                tok_path(t));
}

int chat_template_from_json(const cJSON *obj, const char *where, chat_template **out,
                            char *err, size_t errlen) {
    static const char *roles[CHAT_ROLE_COUNT] = {"system", "user", "assistant"};
    *out = NULL;
    if (!cJSON_IsObject(obj))
        return cerr(err, errlen, "%s: a custom chat template must be a JSON object", where);
    chat_template *t = tpl_new(CHAT_TEMPLATE_CUSTOM, "custom", NULL);
    if (!t) return cerr(err, errlen, "out of memory");
    const cJSON *e;
    cJSON_ArrayForEach(e, obj) {
        char **slot = NULL;
        if (!strcmp(e->string, "bos")) slot = &t->bos;
        else if (!strcmp(e->string, "generation_prompt")) slot = &t->generation_prompt;
        else if (!strcmp(e->string, "default_system")) slot = &t->default_system;
        for (int r = 0; r < CHAT_ROLE_COUNT && !slot; r++) {
            size_t rl = strlen(roles[r]);
            if (!strncmp(e->string, roles[r], rl) && !strcmp(e->string + rl, "_prefix"))
                slot = &t->prefix[r];
            else if (!strncmp(e->string, roles[r], rl) && !strcmp(e->string + rl, "_suffix"))
                slot = &t->suffix[r];
        }
        if (!slot) {
            chat_template_free(t);
            return cerr(err, errlen,
                        "%s: unknown key '%s' (expected bos, system_prefix, system_suffix, "
                        "user_prefix, user_suffix, assistant_prefix, assistant_suffix, "
                        "generation_prompt, default_system)",
                        where, e->string);
        }
        if (!cJSON_IsString(e)) {
            chat_template_free(t);
            return cerr(err, errlen, "%s: %s: expected a string", where, e->string);
        }
        free(*slot);
        if (!(*slot = strdup(e->valuestring))) {
            chat_template_free(t);
            return cerr(err, errlen, "out of memory");
        }
    }
    *out = t;
    return 0;
}

int chat_template_resolve(const char *name, const tok_tokenizer *t, chat_template **out,
                          char *err, size_t errlen) {
    *out = NULL;
    if (!strcmp(name, "auto")) {
        if (!t) return cerr(err, errlen, "template 'auto' needs a tokenizer");
        return chat_template_auto(t, out, err, errlen);
    }
    if (!strchr(name, '/') && !strstr(name, ".json"))
        return chat_template_builtin(name, t ? tok_bos_token(t) : NULL, out, err, errlen);
    FILE *f = fopen(name, "rb");
    if (!f) return cerr(err, errlen, "%s: cannot open the custom chat template file", name);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) free(buf);
        buf = nb;
    }
    fclose(f);
    if (!buf) return cerr(err, errlen, "out of memory");
    buf[n] = 0;
    cJSON *j = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!j) return cerr(err, errlen, "%s: not valid JSON", name);
    int r = chat_template_from_json(j, name, out, err, errlen);
    cJSON_Delete(j);
    return r;
}

int chat_messages_from_json(const cJSON *j, const char *where, chat_message **msgs, size_t *n,
                            char *err, size_t errlen) {
    *msgs = NULL;
    *n = 0;
    if (cJSON_IsString(j)) {
        *msgs = malloc(sizeof **msgs);
        if (!*msgs) return cerr(err, errlen, "out of memory");
        (*msgs)[0] = (chat_message){"user", j->valuestring, NULL};
        *n = 1;
        return 0;
    }
    if (!cJSON_IsArray(j))
        return cerr(err, errlen,
                    "%s: expected a string or an array of {\"role\", \"content\"} messages",
                    where);
    size_t cnt = (size_t)cJSON_GetArraySize(j);
    chat_message *m = calloc(cnt + 1, sizeof *m);
    if (!m) return cerr(err, errlen, "out of memory");
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, j) {
        if (!cJSON_IsObject(e)) {
            free(m);
            return cerr(err, errlen, "%s[%zu]: expected an object {\"role\", \"content\"}", where,
                        i);
        }
        const cJSON *f;
        cJSON_ArrayForEach(f, e) {
            const char **slot = !strcmp(f->string, "role")      ? &m[i].role
                                : !strcmp(f->string, "content") ? &m[i].content
                                : !strcmp(f->string, "reasoning_content")
                                    ? &m[i].reasoning_content
                                    : NULL;
            if (!slot) {
                free(m);
                return cerr(err, errlen,
                            "%s[%zu].%s: unsupported message field (expected role, content, "
                            "reasoning_content)",
                            where, i, f->string);
            }
            if (!cJSON_IsString(f)) {
                free(m);
                return cerr(err, errlen, "%s[%zu].%s: expected a string", where, i, f->string);
            }
            *slot = f->valuestring;
        }
        if (!m[i].role || !m[i].content) {
            const char *missing = !m[i].role ? "role" : "content";
            free(m);
            return cerr(err, errlen, "%s[%zu]: missing \"%s\" (a string)", where, i, missing);
        }
        i++;
    }
    *msgs = m;
    *n = cnt;
    return 0;
}
