/*
 * engine/text/tok_pretok.c — pre-tokenization: the file's Split/Digits regexes (each
 * piece split into matches and the gaps between them, "Isolated"), then ByteLevel
 * (optional prefix space, optional GPT-2 regex), then BPE on every resulting word.
 * Regexes run in PCRE2 with UTF + UCP so \p{L}, \s and (?i:...) follow Unicode, the
 * way the Oniguruma engine of HF tokenizers runs them.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/text/tok_internal.h"

pcre2_code *tok_regex_compile(const char *pattern, size_t len, int literal, char *err,
                              size_t errlen) {
    int ec;
    PCRE2_SIZE eo;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        tok_errf(err, errlen, "%s at offset %zu of /%.*s/", (const char *)msg, (size_t)eo,
                 (int)(len > 200 ? 200 : len), pattern);
        return NULL;
    }
    /* JIT is an accelerator only: when unavailable pcre2_match interprets. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* One match of re in s[0..n) from pos; 1 with [*ms,*me), 0 when none, -1 on error. */
static int re_next(const pcre2_code *re, const char *s, size_t n, size_t pos, tok_scratch *sc,
                   size_t *ms, size_t *me, char *err, size_t errlen) {
    for (;;) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, sc->md, sc->mctx);
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
            *ms = ov[0];
            *me = ov[1];
            return 1;
        }
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !sc->jit_stack) {
            /* Very long pieces can outgrow the default 32 KiB JIT stack. */
            sc->jit_stack = pcre2_jit_stack_create(256 * 1024, 64 * 1024 * 1024, NULL);
            if (!sc->mctx) sc->mctx = pcre2_match_context_create(NULL);
            if (!sc->jit_stack || !sc->mctx)
                return tok_errf(err, errlen, "out of memory for the regex stack");
            pcre2_jit_stack_assign(sc->mctx, NULL, sc->jit_stack);
            continue;
        }
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return tok_errf(err, errlen, "pre-tokenizer regex failed: %s", (const char *)msg);
    }
}

typedef struct {
    const tok_tokenizer *t;
    tok_scratch *sc;
    tok_ids *out;
    char *err;
    size_t errlen;
} pre_ctx;

static int word_cb(pre_ctx *c, const char *w, size_t n) {
    if (!n) return 0;
    if (tok_bpe_word(c->t, w, n, c->sc, c->out)) return tok_errf(c->err, c->errlen, "out of memory");
    return 0;
}

/* Calls fn on every match of re in s and on every non-empty gap between them. */
static int split_isolated(pre_ctx *c, const pcre2_code *re, const char *s, size_t n,
                          int (*fn)(pre_ctx *, const char *, size_t, size_t), size_t level) {
    size_t pos = 0, last = 0, ms = 0, me = 0;
    while (pos <= n) {
        int r = re_next(re, s, n, pos, c->sc, &ms, &me, c->err, c->errlen);
        if (r < 0) return -1;
        if (r == 0) break;
        if (ms > last && fn(c, s + last, ms - last, level)) return -1;
        if (me > ms) {
            if (fn(c, s + ms, me - ms, level)) return -1;
            pos = last = me;
        } else { /* empty match: step over one character */
            last = ms;
            if (ms >= n) break;
            pos = ms + 1;
            while (pos < n && ((unsigned char)s[pos] & 0xC0) == 0x80) pos++;
        }
    }
    if (last < n && fn(c, s + last, n - last, level)) return -1;
    return 0;
}

static int bytelevel_word(pre_ctx *c, const char *s, size_t n, size_t level) {
    (void)level;
    return word_cb(c, s, n);
}

/* The ByteLevel step on one piece. */
static int bytelevel(pre_ctx *c, const char *s, size_t n) {
    const tok_tokenizer *t = c->t;
    if (t->bl_add_prefix_space && n > 0 && s[0] != ' ') {
        tok_scratch *sc = c->sc;
        if (n + 2 > sc->wcap) {
            size_t cap = (n + 2) * 2;
            char *b = realloc(sc->wbuf, cap);
            if (!b) return tok_errf(c->err, c->errlen, "out of memory");
            sc->wbuf = b;
            sc->wcap = cap;
        }
        /* ByteLevel is the last step and BPE never touches wbuf: no nested use. */
        char *w = sc->wbuf;
        w[0] = ' ';
        memcpy(w + 1, s, n);
        return t->bl_re ? split_isolated(c, t->bl_re, w, n + 1, bytelevel_word, 0)
                        : word_cb(c, w, n + 1);
    }
    if (!n) return 0;
    return t->bl_re ? split_isolated(c, t->bl_re, s, n, bytelevel_word, 0) : word_cb(c, s, n);
}

static int step(pre_ctx *c, const char *s, size_t n, size_t level);
static int step_next(pre_ctx *c, const char *s, size_t n, size_t level) {
    return step(c, s, n, level + 1);
}

static int step(pre_ctx *c, const char *s, size_t n, size_t level) {
    if (level == c->t->n_splits) return bytelevel(c, s, n);
    return split_isolated(c, c->t->splits[level].re, s, n, step_next, level);
}

int tok_pretok_encode(const tok_tokenizer *t, const char *s, size_t n, tok_scratch *sc,
                      tok_ids *out, char *err, size_t errlen) {
    pre_ctx c = {t, sc, out, err, errlen};
    if (!sc->md && !(sc->md = pcre2_match_data_create(1, NULL)))
        return tok_errf(err, errlen, "out of memory");
    return step(&c, s, n, 0);
}
