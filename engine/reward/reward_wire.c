/*
 * engine/reward/reward_wire.c — encoder/decoder for host <-> worker frames.
 */
#include "engine/reward/reward_wire.h"

#include <stdlib.h>
#include <string.h>

void rw_init(rw_buf *b) { memset(b, 0, sizeof *b); }
void rw_free(rw_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void rw_put(rw_buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

void rw_u32(rw_buf *b, uint32_t v) { rw_put(b, &v, 4); }
void rw_u64(rw_buf *b, uint64_t v) { rw_put(b, &v, 8); }
void rw_f64(rw_buf *b, double v) { rw_put(b, &v, 8); }
void rw_str(rw_buf *b, const char *s, size_t n) {
    rw_u64(b, n);
    if (n) rw_put(b, s, n);
}
void rw_finish_frame(rw_buf *b) {
    if (b->oom || b->len < 4) return;
    uint32_t n = (uint32_t)(b->len - 4);
    memcpy(b->p, &n, 4);
}

static const void *rr_take(rw_reader *r, size_t n) {
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const void *p = r->p + r->pos;
    r->pos += n;
    return p;
}
uint32_t rr_u32(rw_reader *r) {
    uint32_t v = 0;
    const void *p = rr_take(r, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}
uint64_t rr_u64(rw_reader *r) {
    uint64_t v = 0;
    const void *p = rr_take(r, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}
double rr_f64(rw_reader *r) {
    double v = 0;
    const void *p = rr_take(r, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}
const char *rr_str(rw_reader *r, size_t *n) {
    uint64_t len = rr_u64(r);
    if (r->bad || len > r->len - r->pos) {
        r->bad = 1;
        *n = 0;
        return "";
    }
    *n = (size_t)len;
    return rr_take(r, (size_t)len);
}
