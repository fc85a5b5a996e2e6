/*
 * engine/text/tok_added.c — added tokens: the two match sets (normalized=false tokens
 * matched on the raw text, normalized=true ones on the normalized text, their pattern
 * normalized too) and the leftmost-longest search that splits text on them.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/text/tok_internal.h"
#include "engine/text/utf8.h"

/* Order of candidates: by first byte, then longest first, then lowest id. */
static int cand_before(const tok_tokenizer *t, int32_t a, int32_t b) {
    const tok_added *x = &t->added[a], *y = &t->added[b];
    unsigned char fx = (unsigned char)x->match[0], fy = (unsigned char)y->match[0];
    if (fx != fy) return fx < fy;
    if (x->match_len != y->match_len) return x->match_len > y->match_len;
    return x->id < y->id;
}

static int build_set(tok_tokenizer *t, tok_added_set *set, int normalized) {
    set->n = 0;
    set->cand = malloc((t->n_added + 1) * sizeof *set->cand);
    if (!set->cand) return -1;
    for (size_t k = 0; k < t->n_added; k++)
        if (t->added[k].normalized == normalized && t->added[k].match_len)
            set->cand[set->n++] = (int32_t)k;
    for (size_t i = 1; i < set->n; i++) { /* insertion sort: a few hundred tokens */
        int32_t v = set->cand[i];
        size_t j = i;
        while (j > 0 && cand_before(t, v, set->cand[j - 1])) {
            set->cand[j] = set->cand[j - 1];
            j--;
        }
        set->cand[j] = v;
    }
    memset(set->bucket_off, 0, sizeof set->bucket_off);
    for (size_t i = 0; i < set->n; i++)
        set->bucket_off[(unsigned char)t->added[set->cand[i]].match[0] + 1]++;
    for (int b = 0; b < 256; b++) set->bucket_off[b + 1] += set->bucket_off[b];
    return 0;
}

int tok_added_build(tok_tokenizer *t, char *err, size_t errlen) {
    for (size_t k = 0; k < t->n_added; k++) {
        tok_added *a = &t->added[k];
        a->match = a->content;
        a->match_len = a->len;
        if (a->normalized && t->nfc) {
            if (utf8_nfc(a->content, a->len, &a->match, &a->match_len))
                return tok_errf(err, errlen, "%s: added token '%s': cannot normalize", t->path,
                                a->content);
        }
    }
    if (build_set(t, &t->raw_set, 0) || build_set(t, &t->norm_set, 1))
        return tok_errf(err, errlen, "out of memory");
    return 0;
}

int tok_added_find(const tok_tokenizer *t, const tok_added_set *set, const char *s, size_t n,
                   size_t from, size_t *ms, size_t *me, int32_t *k) {
    if (!set->n) return 0;
    for (size_t i = from; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        uint32_t lo = set->bucket_off[b], hi = set->bucket_off[b + 1];
        for (uint32_t c = lo; c < hi; c++) {
            const tok_added *a = &t->added[set->cand[c]];
            if (a->match_len <= n - i && !memcmp(s + i, a->match, a->match_len)) {
                *ms = i;
                *me = i + a->match_len;
                *k = set->cand[c];
                return 1;
            }
        }
    }
    return 0;
}

size_t tok_ws_suffix_len(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t st = end - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        int32_t cp;
        utf8_decode(s + st, &cp);
        if (!utf8_is_white_space(cp)) break;
        end = st;
    }
    return n - end;
}

size_t tok_ws_prefix_len(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        int32_t cp;
        size_t l = utf8_decode(s + i, &cp);
        if (!utf8_is_white_space(cp)) break;
        i += l;
    }
    return i;
}
