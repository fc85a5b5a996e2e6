/*
 * engine/text/tok_decode.c — ids back to text: each id's bytes (byte-level alphabet
 * mapped back, precomputed at load) are joined and invalid UTF-8 is repaired
 * (U+FFFD per maximal ill-formed subpart, like String::from_utf8_lossy in HF's
 * ByteLevel decoder). The streaming decoder holds back a trailing incomplete character.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/text/tok_internal.h"
#include "engine/text/utf8.h"

static int wanted(const tok_tokenizer *t, int32_t id, int skip_special) {
    if (id < 0 || id >= t->vocab_size || !t->present[id]) return 0; /* HF skips unknown ids */
    return !(skip_special && t->special[id]);
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
               char **text, size_t *len, char *err, size_t errlen) {
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (wanted(t, ids[i], skip_special)) total += t->dec_off[ids[i] + 1] - t->dec_off[ids[i]];
    char *raw = malloc(total + 1);
    if (!raw) return tok_errf(err, errlen, "out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (!wanted(t, ids[i], skip_special)) continue;
        uint32_t a = t->dec_off[ids[i]], b = t->dec_off[ids[i] + 1];
        memcpy(raw + o, t->dec_bytes + a, b - a);
        o += b - a;
    }
    raw[o] = 0;
    if (utf8_valid(raw, o)) {
        *text = raw;
        *len = o;
        return 0;
    }
    char *out = NULL;
    size_t ol = 0, cap = 0;
    int r = utf8_lossy_append(raw, o, &out, &ol, &cap);
    free(raw);
    if (r) return tok_errf(err, errlen, "out of memory");
    *text = out;
    *len = ol;
    return 0;
}

struct tok_stream {
    const tok_tokenizer *t;
    int skip_special;
    char *pend; /* bytes not yet emitted */
    size_t npend, cpend;
    char *out; /* text returned by the last call */
    size_t nout, cout;
};

int tok_stream_create(const tok_tokenizer *t, int skip_special, tok_stream **out, char *err,
                      size_t errlen) {
    *out = calloc(1, sizeof **out);
    if (!*out) return tok_errf(err, errlen, "out of memory");
    (*out)->t = t;
    (*out)->skip_special = skip_special;
    return 0;
}

void tok_stream_free(tok_stream *s) {
    if (!s) return;
    free(s->pend);
    free(s->out);
    free(s);
}

/* Emits pend[0..upto) lossily into out, keeps the rest. */
static int emit(tok_stream *s, size_t upto, const char **text, size_t *len) {
    s->nout = 0;
    if (utf8_lossy_append(s->pend, upto, &s->out, &s->nout, &s->cout)) return -1;
    if (s->npend > upto) memmove(s->pend, s->pend + upto, s->npend - upto);
    s->npend -= upto;
    *text = s->out;
    *len = s->nout;
    return 0;
}

int tok_stream_push(tok_stream *s, int32_t id, const char **text, size_t *len, char *err,
                    size_t errlen) {
    *text = "";
    *len = 0;
    if (!wanted(s->t, id, s->skip_special)) return 0;
    uint32_t a = s->t->dec_off[id], b = s->t->dec_off[id + 1];
    if (s->npend + (b - a) > s->cpend) {
        size_t c = s->cpend ? s->cpend : 64;
        while (c < s->npend + (b - a)) c *= 2;
        char *p = realloc(s->pend, c);
        if (!p) return tok_errf(err, errlen, "out of memory");
        s->pend = p;
        s->cpend = c;
    }
    memcpy(s->pend + s->npend, s->t->dec_bytes + a, b - a);
    s->npend += b - a;
    /* Everything is final except a trailing proper prefix of a well-formed sequence. */
    const unsigned char *p = (const unsigned char *)s->pend;
    size_t i = 0, n = s->npend;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq_len(p + i, n - i);
        if (l) {
            i += l;
            continue;
        }
        int trunc;
        size_t bl = utf8_bad_len(p + i, n - i, &trunc);
        if (trunc) break; /* may still be completed by the next token */
        i += bl;
    }
    if (emit(s, i, text, len)) return tok_errf(err, errlen, "out of memory");
    return 0;
}

int tok_stream_flush(tok_stream *s, const char **text, size_t *len, char *err, size_t errlen) {
    if (emit(s, s->npend, text, len)) return tok_errf(err, errlen, "out of memory");
    return 0;
}
