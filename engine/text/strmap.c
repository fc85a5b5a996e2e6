/*
 * engine/text/strmap.c — open-addressing hash tables for the vocabulary and the merges.
 * Capacity is a power of two kept at most half full, so probes stay short.
 */
#include "engine/text/strmap.h"

#include <stdlib.h>
#include <string.h>

uint64_t tok_hash_bytes(const void *p, size_t n) {
    /* FNV-1a over 8-byte words then bytes, finished with a multiply-xorshift mix. */
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return h | 1; /* never 0: 0 marks an empty slot */
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int tok_strmap_init(tok_strmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2 + 1);
    m->hashes = calloc(m->cap, sizeof *m->hashes);
    m->koff = malloc(m->cap * sizeof *m->koff);
    m->klen = malloc(m->cap * sizeof *m->klen);
    m->vals = malloc(m->cap * sizeof *m->vals);
    if (!m->hashes || !m->koff || !m->klen || !m->vals) {
        tok_strmap_free(m);
        return -1;
    }
    return 0;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->hashes);
    free(m->koff);
    free(m->klen);
    free(m->vals);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static int strmap_grow(tok_strmap *m) {
    tok_strmap n = *m;
    n.cap = m->cap * 2;
    n.hashes = calloc(n.cap, sizeof *n.hashes);
    n.koff = malloc(n.cap * sizeof *n.koff);
    n.klen = malloc(n.cap * sizeof *n.klen);
    n.vals = malloc(n.cap * sizeof *n.vals);
    if (!n.hashes || !n.koff || !n.klen || !n.vals) {
        free(n.hashes);
        free(n.koff);
        free(n.klen);
        free(n.vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->hashes[i]) continue;
        size_t j = (size_t)(m->hashes[i] >> 7) & (n.cap - 1);
        while (n.hashes[j]) j = (j + 1) & (n.cap - 1);
        n.hashes[j] = m->hashes[i];
        n.koff[j] = m->koff[i];
        n.klen[j] = m->klen[i];
        n.vals[j] = m->vals[i];
    }
    free(m->hashes);
    free(m->koff);
    free(m->klen);
    free(m->vals);
    *m = n;
    return 0;
}

int tok_strmap_put(tok_strmap *m, const char *key, size_t n, int32_t val, int32_t *old) {
    if ((m->count + 1) * 2 > m->cap && strmap_grow(m)) return -1;
    uint64_t h = tok_hash_bytes(key, n);
    size_t mask = m->cap - 1, i = (size_t)(h >> 7) & mask;
    while (m->hashes[i]) {
        if (m->hashes[i] == h && m->klen[i] == n && !memcmp(m->arena + m->koff[i], key, n)) {
            if (old) *old = m->vals[i];
            return 1;
        }
        i = (i + 1) & mask;
    }
    if (m->arena_len + n > m->arena_cap) {
        size_t c = m->arena_cap ? m->arena_cap : 4096;
        while (c < m->arena_len + n) c *= 2;
        char *a = realloc(m->arena, c);
        if (!a) return -1;
        m->arena = a;
        m->arena_cap = c;
    }
    if (n) memcpy(m->arena + m->arena_len, key, n);
    m->hashes[i] = h;
    m->koff[i] = (uint32_t)m->arena_len;
    m->klen[i] = (uint32_t)n;
    m->vals[i] = val;
    m->arena_len += n;
    m->count++;
    return 0;
}

int tok_strmap_get(const tok_strmap *m, const char *key, size_t n, int32_t *val) {
    if (!m->cap) return 0;
    uint64_t h = tok_hash_bytes(key, n);
    size_t mask = m->cap - 1, i = (size_t)(h >> 7) & mask;
    while (m->hashes[i]) {
        if (m->hashes[i] == h && m->klen[i] == n && !memcmp(m->arena + m->koff[i], key, n)) {
            *val = m->vals[i];
            return 1;
        }
        i = (i + 1) & mask;
    }
    return 0;
}

int tok_pairmap_init(tok_pairmap *m, size_t expected) {
    memset(m, 0, sizeof *m);
    m->cap = pow2_at_least(expected * 2 + 1);
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->ranks = malloc(m->cap * sizeof *m->ranks);
    m->merged = malloc(m->cap * sizeof *m->merged);
    if (!m->keys || !m->ranks || !m->merged) {
        tok_pairmap_free(m);
        return -1;
    }
    return 0;
}

void tok_pairmap_free(tok_pairmap *m) {
    free(m->keys);
    free(m->ranks);
    free(m->merged);
    memset(m, 0, sizeof *m);
}

int tok_pairmap_put(tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    if ((m->count + 1) * 2 > m->cap) {
        tok_pairmap n;
        if (tok_pairmap_init(&n, m->cap)) return -1;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            uint64_t k = m->keys[i] - 1;
            tok_pairmap_put(&n, (int32_t)(k >> 32), (int32_t)(uint32_t)k, m->ranks[i],
                            m->merged[i]);
        }
        tok_pairmap_free(m);
        *m = n;
    }
    uint64_t k = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    uint64_t h = k * 0x9E3779B97F4A7C15ull;
    size_t mask = m->cap - 1, i = (size_t)(h >> 20) & mask;
    while (m->keys[i]) {
        if (m->keys[i] == k) return 1;
        i = (i + 1) & mask;
    }
    m->keys[i] = k;
    m->ranks[i] = rank;
    m->merged[i] = merged;
    m->count++;
    return 0;
}
