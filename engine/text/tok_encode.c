/*
 * engine/text/tok_encode.c — tok_encode: repair invalid UTF-8, split on added tokens
 * (raw text), normalize each remaining segment, split on normalized added tokens, then
 * pre-tokenize and BPE (tok_pretok.c). add_special_tokens=False: no post-processing.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/text/tok_internal.h"
#include "engine/text/utf8.h"

void tok_scratch_free(tok_scratch *sc) {
    if (sc->md) pcre2_match_data_free(sc->md);
    if (sc->mctx) pcre2_match_context_free(sc->mctx);
    if (sc->jit_stack) pcre2_jit_stack_free(sc->jit_stack);
    free(sc->wbuf);
    free(sc->sym_id);
    free(sc->sym_prev);
    free(sc->sym_next);
    free(sc->heap);
    memset(sc, 0, sizeof *sc);
}

typedef struct {
    const tok_tokenizer *t;
    tok_scratch *sc;
    tok_ids *out;
    char *err;
    size_t errlen;
} enc_ctx;

/* Splits s on the added tokens of set; gap(...) gets the text between them. Follows HF:
 * matches are found leftmost-longest on the whole text; lstrip widens a match over the
 * White_Space before it (not before the end of the previous match), rstrip over the
 * White_Space after it. */
static int split_added(enc_ctx *c, const tok_added_set *set, const char *s, size_t n,
                       int (*gap)(enc_ctx *, const char *, size_t)) {
    size_t scan = 0, prev_end = 0, ms, me;
    int32_t k;
    while (tok_added_find(c->t, set, s, n, scan, &ms, &me, &k)) {
        const tok_added *a = &c->t->added[k];
        scan = me;
        size_t start = ms, stop = me;
        if (a->lstrip) {
            size_t ns = ms - tok_ws_suffix_len(s, ms);
            start = ns > prev_end ? ns : prev_end;
        }
        if (a->rstrip) stop += tok_ws_prefix_len(s + me, n - me);
        if (start < prev_end) start = prev_end;
        if (start > prev_end && gap(c, s + prev_end, start - prev_end)) return -1;
        if (tok_ids_push(c->out, a->id)) return tok_errf(c->err, c->errlen, "out of memory");
        prev_end = stop;
        if (stop > scan) scan = stop;
    }
    if (prev_end < n && gap(c, s + prev_end, n - prev_end)) return -1;
    return 0;
}

static int gap_pretok(enc_ctx *c, const char *s, size_t n) {
    return tok_pretok_encode(c->t, s, n, c->sc, c->out, c->err, c->errlen);
}

static int is_ascii(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

/* A segment between raw-matched added tokens: normalize, then the normalized set. */
static int gap_normalize(enc_ctx *c, const char *s, size_t n) {
    const tok_tokenizer *t = c->t;
    char *norm = NULL;
    size_t nl = n;
    if (t->nfc && !is_ascii(s, n)) {
        if (utf8_nfc(s, n, &norm, &nl)) return tok_errf(c->err, c->errlen, "NFC failed");
        s = norm;
    }
    int r = t->norm_set.n ? split_added(c, &t->norm_set, s, nl, gap_pretok) : gap_pretok(c, s, nl);
    free(norm);
    return r;
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int32_t **ids,
               size_t *n_ids, char *err, size_t errlen) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return tok_errf(err, errlen, "tok_encode: text is NULL");
    char *fixed = NULL;
    if (!utf8_valid(text, len)) {
        size_t fl = 0, cap = 0;
        if (utf8_lossy_append(text, len, &fixed, &fl, &cap))
            return tok_errf(err, errlen, "out of memory");
        text = fixed;
        len = fl;
    }
    tok_ids out = {0};
    tok_scratch sc = {0};
    enc_ctx c = {t, &sc, &out, err, errlen};
    int r = split_added(&c, &t->raw_set, text, len, gap_normalize);
    tok_scratch_free(&sc);
    free(fixed);
    if (r) {
        free(out.v);
        return -1;
    }
    if (!out.v) out.v = malloc(sizeof(int32_t)); /* callers may always free() */
    *ids = out.v;
    *n_ids = out.n;
    return 0;
}
