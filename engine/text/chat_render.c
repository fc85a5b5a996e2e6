/*
 * engine/text/chat_render.c — rendering messages with a chat_template: the built-in
 * formats are written out as C, following the Jinja templates they stand for step by
 * step (including Python string semantics: str.strip(), split()[0]/[-1]).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/text/chat_internal.h"
#include "engine/text/utf8.h"

typedef struct {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) c *= 2;
        char *p = realloc(b->s, c);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = c;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

/* A view of a string. */
typedef struct {
    const char *p;
    size_t n;
} view;

static view v_of(const char *s) { return (view){s, strlen(s)}; }

/* Python str.strip(chars) / lstrip / rstrip with chars = "\n". */
static view lstrip_nl(view v) {
    while (v.n && v.p[0] == '\n') v.p++, v.n--;
    return v;
}
static view rstrip_nl(view v) {
    while (v.n && v.p[v.n - 1] == '\n') v.n--;
    return v;
}

/* Python str.strip() without arguments: str.isspace() characters at both ends. The
 * content is assumed well-formed UTF-8 (it came through JSON); bad bytes stop the strip. */
static view strip_py(view v) {
    while (v.n) {
        size_t l = utf8_seq_len((const unsigned char *)v.p, v.n);
        int32_t cp;
        if (!l) break;
        utf8_decode(v.p, &cp);
        if (!utf8_is_py_space(cp)) break;
        v.p += l;
        v.n -= l;
    }
    while (v.n) {
        size_t st = v.n - 1;
        while (st > 0 && ((unsigned char)v.p[st] & 0xC0) == 0x80) st--;
        if (utf8_seq_len((const unsigned char *)v.p + st, v.n - st) != v.n - st) break;
        int32_t cp;
        utf8_decode(v.p + st, &cp);
        if (!utf8_is_py_space(cp)) break;
        v.n = st;
    }
    return v;
}

/* First occurrence of needle in v (memmem over a view); NULL when none. */
static const char *find(view v, const char *needle) {
    size_t k = strlen(needle);
    if (k > v.n) return NULL;
    for (size_t i = 0; i + k <= v.n; i++)
        if (!memcmp(v.p + i, needle, k)) return v.p + i;
    return NULL;
}
static const char *rfind(view v, const char *needle) {
    size_t k = strlen(needle);
    if (k > v.n) return NULL;
    for (size_t i = v.n - k + 1; i-- > 0;)
        if (!memcmp(v.p + i, needle, k)) return v.p + i;
    return NULL;
}
static int starts(view v, const char *s) {
    size_t k = strlen(s);
    return v.n >= k && !memcmp(v.p, s, k);
}
static int ends(view v, const char *s) {
    size_t k = strlen(s);
    return v.n >= k && !memcmp(v.p + v.n - k, s, k);
}

static void put_v(sbuf *b, view v) { put(b, v.p, v.n); }

/* ---------------------------------------------------------------------- qwen3 --- */
static void render_qwen3(sbuf *b, const chat_message *m, size_t n, const chat_render_opts *o) {
    if (n && !strcmp(m[0].role, "system")) {
        puts_(b, "<|im_start|>system\n");
        puts_(b, m[0].content);
        puts_(b, "<|im_end|>\n");
    }
    /* The last user query: the last user message that is not a tool response. */
    size_t last_query = n ? n - 1 : 0;
    for (size_t k = n; k-- > 0;) {
        view c = v_of(m[k].content);
        if (!strcmp(m[k].role, "user") &&
            !(starts(c, "<tool_response>") && ends(c, "</tool_response>"))) {
            last_query = k;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *role = m[i].role;
        view content = v_of(m[i].content);
        if (!strcmp(role, "user") || (!strcmp(role, "system") && i != 0)) {
            puts_(b, "<|im_start|>");
            puts_(b, role);
            puts_(b, "\n");
            put_v(b, content);
            puts_(b, "<|im_end|>\n");
        } else if (!strcmp(role, "assistant")) {
            view reasoning = {"", 0};
            if (m[i].reasoning_content) {
                reasoning = v_of(m[i].reasoning_content);
            } else if (find(content, "</think>")) {
                /* content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
                const char *first_end = find(content, "</think>");
                view head = {content.p, (size_t)(first_end - content.p)};
                head = rstrip_nl(head);
                const char *open = rfind(head, "<think>");
                if (open) head = (view){open + 7, head.n - (size_t)(open + 7 - head.p)};
                reasoning = lstrip_nl(head);
                /* content.split('</think>')[-1].lstrip('\n') */
                const char *last_end = rfind(content, "</think>");
                view tail = {last_end + 8, content.n - (size_t)(last_end + 8 - content.p)};
                content = lstrip_nl(tail);
            }
            puts_(b, "<|im_start|>");
            puts_(b, role);
            if (i > last_query && (i == n - 1 || reasoning.n)) {
                puts_(b, "\n<think>\n");
                put_v(b, lstrip_nl(rstrip_nl(reasoning)));
                puts_(b, "\n</think>\n\n");
                put_v(b, lstrip_nl(content));
            } else {
                puts_(b, "\n");
                put_v(b, content);
            }
            puts_(b, "<|im_end|>\n");
        } else if (!strcmp(role, "tool")) {
            if (i == 0 || strcmp(m[i - 1].role, "tool") != 0) puts_(b, "<|im_start|>user");
            puts_(b, "\n<tool_response>\n");
            put_v(b, content);
            puts_(b, "\n</tool_response>");
            if (i == n - 1 || strcmp(m[i + 1].role, "tool") != 0) puts_(b, "<|im_end|>\n");
        }
        /* Other roles render nothing, as in the Jinja template. */
    }
    if (o->add_generation_prompt) {
        puts_(b, "<|im_start|>assistant\n");
        if (o->enable_thinking == 0) puts_(b, "<think>\n\n</think>\n\n");
    }
}

/* --------------------------------------------------------------------- others --- */
static void render_chatml(sbuf *b, const chat_template *t, const chat_message *m, size_t n,
                          const chat_render_opts *o) {
    if (t->default_system && (n == 0 || strcmp(m[0].role, "system") != 0)) {
        puts_(b, "<|im_start|>system\n");
        puts_(b, t->default_system);
        puts_(b, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        puts_(b, "<|im_start|>");
        puts_(b, m[i].role);
        puts_(b, "\n");
        puts_(b, m[i].content);
        puts_(b, "<|im_end|>\n");
    }
    if (o->add_generation_prompt) puts_(b, "<|im_start|>assistant\n");
}

static void render_llama3(sbuf *b, const chat_template *t, const chat_message *m, size_t n,
                          const chat_render_opts *o) {
    for (size_t i = 0; i < n; i++) {
        if (i == 0) puts_(b, t->bos);
        puts_(b, "<|start_header_id|>");
        puts_(b, m[i].role);
        puts_(b, "<|end_header_id|>\n\n");
        put_v(b, strip_py(v_of(m[i].content)));
        puts_(b, "<|eot_id|>");
    }
    if (o->add_generation_prompt) puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

/* Llama 3.1 (also 3.2/3.3 without tools): the system header always comes first, with the
 * knowledge cutoff, the date and the trimmed system message (messages[0] when its role
 * is system, else empty); the other messages as in llama3. */
static void render_llama31(sbuf *b, const chat_template *t, const chat_message *m, size_t n,
                           const chat_render_opts *o) {
    puts_(b, t->bos);
    puts_(b, "<|start_header_id|>system<|end_header_id|>\n\n");
    puts_(b, "Cutting Knowledge Date: December 2023\n");
    puts_(b, "Today Date: ");
    puts_(b, t->date_string);
    puts_(b, "\n\n");
    size_t i = 0;
    if (n > 0 && !strcmp(m[0].role, "system")) put_v(b, strip_py(v_of(m[i++].content)));
    puts_(b, "<|eot_id|>");
    for (; i < n; i++) {
        puts_(b, "<|start_header_id|>");
        puts_(b, m[i].role);
        puts_(b, "<|end_header_id|>\n\n");
        put_v(b, strip_py(v_of(m[i].content)));
        puts_(b, "<|eot_id|>");
    }
    if (o->add_generation_prompt) puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static int role_index(const char *role) {
    if (!strcmp(role, "system")) return CHAT_ROLE_SYSTEM;
    if (!strcmp(role, "user")) return CHAT_ROLE_USER;
    if (!strcmp(role, "assistant")) return CHAT_ROLE_ASSISTANT;
    return -1;
}

static const char *or_empty(const char *s) { return s ? s : ""; }

int chat_template_render(const chat_template *tpl, const chat_message *msgs, size_t n,
                         const chat_render_opts *opts, char **text, size_t *len, char *err,
                         size_t errlen) {
    *text = NULL;
    *len = 0;
    chat_render_opts o = opts ? *opts : (chat_render_opts){1, -1};
    sbuf b = {0};
    put(&b, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content) {
            free(b.s);
            snprintf(err, errlen, "messages[%zu]: role and content must be set", i);
            return -1;
        }
    }
    for (size_t i = 0; tpl->kind == CHAT_TEMPLATE_LLAMA31 && i < n; i++)
        if (!strcmp(msgs[i].role, "tool") || !strcmp(msgs[i].role, "ipython")) {
            free(b.s);
            snprintf(err, errlen,
                     "messages[%zu].role: '%s': the llama3.1 template renders tool messages "
                     "with the tool-calling format, which rlvr does not implement (expected "
                     "system, user or assistant)",
                     i, msgs[i].role);
            return -1;
        }
    switch (tpl->kind) {
    case CHAT_TEMPLATE_NONE:
        for (size_t i = 0; i < n; i++) puts_(&b, msgs[i].content);
        break;
    case CHAT_TEMPLATE_CHATML: render_chatml(&b, tpl, msgs, n, &o); break;
    case CHAT_TEMPLATE_LLAMA3: render_llama3(&b, tpl, msgs, n, &o); break;
    case CHAT_TEMPLATE_LLAMA31: render_llama31(&b, tpl, msgs, n, &o); break;
    case CHAT_TEMPLATE_QWEN3: render_qwen3(&b, msgs, n, &o); break;
    case CHAT_TEMPLATE_CUSTOM:
        puts_(&b, or_empty(tpl->bos));
        if (tpl->default_system && (n == 0 || strcmp(msgs[0].role, "system") != 0)) {
            puts_(&b, or_empty(tpl->prefix[CHAT_ROLE_SYSTEM]));
            puts_(&b, tpl->default_system);
            puts_(&b, or_empty(tpl->suffix[CHAT_ROLE_SYSTEM]));
        }
        for (size_t i = 0; i < n; i++) {
            int r = role_index(msgs[i].role);
            if (r < 0) {
                free(b.s);
                snprintf(err, errlen,
                         "messages[%zu].role: '%s' has no prefix/suffix in the custom template "
                         "(expected system, user or assistant)",
                         i, msgs[i].role);
                return -1;
            }
            puts_(&b, or_empty(tpl->prefix[r]));
            puts_(&b, msgs[i].content);
            puts_(&b, or_empty(tpl->suffix[r]));
        }
        if (o.add_generation_prompt) puts_(&b, or_empty(tpl->generation_prompt));
        break;
    }
    if (b.oom) {
        free(b.s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *text = b.s;
    *len = b.n;
    return 0;
}
