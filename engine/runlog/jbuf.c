/*
 * engine/runlog/jbuf.c — see jbuf.h.
 */
#include "engine/runlog/jbuf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jbuf_init(jbuf *b) { memset(b, 0, sizeof *b); }

void jbuf_free(jbuf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void jbuf_reset(jbuf *b) {
    b->n = 0;
    if (b->p) b->p[0] = '\0';
}

int jbuf_ok(const jbuf *b) { return !b->oom; }

void jbuf_put(jbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void jbuf_puts(jbuf *b, const char *s) { jbuf_put(b, s, strlen(s)); }

/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 when ill-formed
 * (overlong, surrogate, above U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    const unsigned c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07;
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

void jbuf_str(jbuf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    jbuf_put(b, "\"", 1);
    size_t i = 0;
    while (i < n) {
        const unsigned c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            jbuf_put(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[8];
            const char *named = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (!named) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                named = esc;
            }
            jbuf_puts(b, named);
            i++;
        } else {
            size_t len = utf8_seq(p + i, n - i);
            if (len == 0) {
                jbuf_puts(b, "\\ufffd"); /* one replacement per invalid byte */
                i++;
            } else {
                jbuf_put(b, (const char *)p + i, len);
                i += len;
            }
        }
    }
    jbuf_put(b, "\"", 1);
}

void jbuf_num(jbuf *b, double v) {
    if (!isfinite(v)) {
        jbuf_puts(b, "null");
        return;
    }
    char tmp[40];
    /* The shortest %.Ng that parses back to exactly v (at most 17 digits). */
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    jbuf_puts(b, tmp);
}

void jbuf_int(jbuf *b, long long v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", v);
    jbuf_puts(b, tmp);
}
