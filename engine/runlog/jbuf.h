/*
 * engine/runlog/jbuf.h — a growable text buffer for writing JSON by hand (the run logs
 * write one object per line, in the caller's key order). Strings are escaped and
 * invalid UTF-8 bytes become U+FFFD, so a line is always valid JSON whatever a model
 * generated; numbers use the shortest text that reads back to the same double, and
 * non-finite numbers (which JSON cannot hold) become null.
 * Out-of-memory is sticky: every put is a no-op after it and jbuf_ok() says so.
 */
#ifndef RLVR_RUNLOG_JBUF_H
#define RLVR_RUNLOG_JBUF_H

#include <stddef.h>

typedef struct {
    char *p;      /* NUL-terminated text */
    size_t n;     /* bytes used (excluding the NUL) */
    size_t cap;
    int oom;
} jbuf;

void jbuf_init(jbuf *b);
void jbuf_free(jbuf *b);
void jbuf_reset(jbuf *b); /* empties the text, keeps the memory */
int jbuf_ok(const jbuf *b); /* 1 unless an allocation failed */
void jbuf_put(jbuf *b, const char *s, size_t n);
void jbuf_puts(jbuf *b, const char *s);
/* A JSON string literal of s[0..n) (quotes included). */
void jbuf_str(jbuf *b, const char *s, size_t n);
/* A JSON number for v: shortest round-trip form; null when v is NaN or ±inf. */
void jbuf_num(jbuf *b, double v);
void jbuf_int(jbuf *b, long long v);

#endif
