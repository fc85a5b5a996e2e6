/*
 * engine/text/strmap.h — the two hash tables of the tokenizer, open addressing with
 * linear probing, built once at load time and read-only afterwards (safe to read from
 * many threads):
 *   tok_strmap:  byte string -> int32 (vocabulary lookups); keys are copied in.
 *   tok_pairmap: (left id, right id) -> (merge rank, merged id) (BPE merges).
 */
#ifndef RLVR_TEXT_STRMAP_H
#define RLVR_TEXT_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t *hashes; /* [cap] 0 = empty slot */
    uint32_t *koff;   /* [cap] key offset in arena */
    uint32_t *klen;   /* [cap] key length in bytes */
    int32_t *vals;    /* [cap] */
    size_t cap, count;
    char *arena; /* all keys, back to back */
    size_t arena_len, arena_cap;
} tok_strmap;

uint64_t tok_hash_bytes(const void *p, size_t n);

int tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m);
/* Inserts key -> val. Returns 0 when inserted, 1 when the key was already present
 * (*old gets its value, nothing changes), -1 when out of memory. */
int tok_strmap_put(tok_strmap *m, const char *key, size_t n, int32_t val, int32_t *old);
/* Returns 1 and sets *val when found, else 0. */
int tok_strmap_get(const tok_strmap *m, const char *key, size_t n, int32_t *val);

typedef struct {
    uint64_t *keys;  /* [cap] (left << 32 | right) + 1; 0 = empty */
    int32_t *ranks;  /* [cap] */
    int32_t *merged; /* [cap] */
    size_t cap, count;
} tok_pairmap;

int tok_pairmap_init(tok_pairmap *m, size_t expected);
void tok_pairmap_free(tok_pairmap *m);
/* Inserts unless present (a repeated merge keeps its first, lowest rank). 0 / 1 / -1 as
 * tok_strmap_put. */
int tok_pairmap_put(tok_pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t merged);
/* Returns 1 and the rank and merged id when the pair is a merge, else 0. */
static inline int tok_pairmap_get(const tok_pairmap *m, int32_t left, int32_t right,
                                  int32_t *rank, int32_t *merged) {
    uint64_t k = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    uint64_t h = k * 0x9E3779B97F4A7C15ull;
    size_t mask = m->cap - 1, i = (size_t)(h >> 20) & mask;
    for (;;) {
        uint64_t s = m->keys[i];
        if (s == k) {
            *rank = m->ranks[i];
            *merged = m->merged[i];
            return 1;
        }
        if (s == 0) return 0;
        i = (i + 1) & mask;
    }
}

#endif
