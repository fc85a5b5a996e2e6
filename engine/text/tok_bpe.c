/*
 * engine/text/tok_bpe.c — byte-level BPE on one pre-tokenized word, and the word cache.
 * Merging uses a binary min-heap of candidate pairs ordered by (merge rank, position),
 * so a word of n bytes costs O(n log n) — the same order in which HF applies merges
 * (lowest rank first, leftmost first among equal ranks). Stale heap entries (a side
 * already merged away) are detected by re-looking the pair up when popped.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/text/tok_internal.h"

struct tok_heap_item {
    int32_t rank;
    int32_t pos; /* index of the left symbol */
};

static inline int heap_less(const struct tok_heap_item *a, const struct tok_heap_item *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct tok_heap_item *h, size_t *n, struct tok_heap_item x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&x, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static struct tok_heap_item heap_pop(struct tok_heap_item *h, size_t *n) {
    struct tok_heap_item top = h[0], x = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct tok_heap_item *best = &x;
        if (l < *n && heap_less(&h[l], best)) {
            m = l;
            best = &h[l];
        }
        if (r < *n && heap_less(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = x;
    return top;
}

static int ensure_scratch(tok_scratch *sc, size_t n) {
    if (n <= sc->sym_cap) return 0;
    size_t c = n < 64 ? 64 : n * 2;
    int32_t *a = realloc(sc->sym_id, c * sizeof *a);
    if (!a) return -1;
    sc->sym_id = a;
    int32_t *b = realloc(sc->sym_prev, c * sizeof *b);
    if (!b) return -1;
    sc->sym_prev = b;
    int32_t *d = realloc(sc->sym_next, c * sizeof *d);
    if (!d) return -1;
    sc->sym_next = d;
    struct tok_heap_item *h = realloc(sc->heap, c * sizeof *h);
    if (!h) return -1;
    sc->heap = h;
    sc->sym_cap = sc->heap_cap = c;
    return 0;
}

/* BPE of w[0..n) without the cache; appends ids to out. */
static int bpe_merge(const tok_tokenizer *t, const unsigned char *w, size_t n, tok_scratch *sc,
                     tok_ids *out) {
    if (ensure_scratch(sc, n)) return -1;
    int32_t *id = sc->sym_id, *prev = sc->sym_prev, *next = sc->sym_next;
    /* Initial symbols: one per byte; bytes without a token become unk (fused when
     * fuse_unk) or are dropped when there is no unk token, as HF does. */
    int32_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t b = t->byte_id[w[i]];
        if (b < 0) {
            if (t->unk_id < 0) continue;
            if (t->fuse_unk && m > 0 && id[m - 1] == t->unk_id) continue;
            b = t->unk_id;
        }
        id[m++] = b;
    }
    for (int32_t i = 0; i < m; i++) {
        prev[i] = i - 1;
        next[i] = i + 1 < m ? i + 1 : -1;
    }
    size_t hn = 0;
    struct tok_heap_item *heap = sc->heap;
    for (int32_t i = 0; i + 1 < m; i++) {
        int32_t rank, merged;
        if (tok_pairmap_get(&t->merges, id[i], id[i + 1], &rank, &merged))
            heap_push(heap, &hn, (struct tok_heap_item){rank, i});
    }
    while (hn) {
        struct tok_heap_item top = heap_pop(heap, &hn);
        int32_t p = top.pos, q = next[p];
        int32_t rank, merged;
        if (id[p] < 0 || q < 0) continue;
        if (!tok_pairmap_get(&t->merges, id[p], id[q], &rank, &merged) || rank != top.rank)
            continue; /* stale: one side changed since this entry was pushed */
        id[p] = merged;
        id[q] = -1; /* removed */
        next[p] = next[q];
        if (next[q] >= 0) prev[next[q]] = p;
        if (prev[p] >= 0 &&
            tok_pairmap_get(&t->merges, id[prev[p]], id[p], &rank, &merged))
            heap_push(heap, &hn, (struct tok_heap_item){rank, prev[p]});
        if (next[p] >= 0 && tok_pairmap_get(&t->merges, id[p], id[next[p]], &rank, &merged))
            heap_push(heap, &hn, (struct tok_heap_item){rank, p});
    }
    for (int32_t i = m > 0 ? 0 : -1; i >= 0; i = next[i])
        if (tok_ids_push(out, id[i])) return -1;
    return 0;
}

/* ------------------------------------------------------------------ word cache --- */
void tok_cache_init(tok_tokenizer *t) {
    for (int s = 0; s < TOK_CACHE_SHARDS; s++) {
        pthread_mutex_init(&t->cache[s].mu, NULL);
        t->cache[s].slots = NULL; /* allocated on first insert */
        t->cache[s].count = 0;
    }
}

void tok_cache_free(tok_tokenizer *t) {
    for (int s = 0; s < TOK_CACHE_SHARDS; s++) {
        tok_cache_shard *sh = &t->cache[s];
        if (sh->slots) {
            for (size_t i = 0; i < TOK_CACHE_SHARD_SLOTS; i++) free(sh->slots[i]);
            free(sh->slots);
        }
        pthread_mutex_destroy(&sh->mu);
    }
}

static inline const int32_t *entry_ids(const tok_cache_entry *e) {
    return (const int32_t *)(e + 1);
}
static inline const char *entry_key(const tok_cache_entry *e) {
    return (const char *)(entry_ids(e) + e->nids);
}

int tok_bpe_word(const tok_tokenizer *t, const char *w, size_t n, tok_scratch *sc,
                 tok_ids *out) {
    /* ignore_merges: a word that is itself a token is emitted whole. */
    int32_t whole;
    if (t->ignore_merges && tok_strmap_get(&t->raw, w, n, &whole)) return tok_ids_push(out, whole);
    if (n == 1 && t->byte_id[(unsigned char)w[0]] >= 0)
        return tok_ids_push(out, t->byte_id[(unsigned char)w[0]]);
    if (n > TOK_CACHE_MAX_WORD) return bpe_merge(t, (const unsigned char *)w, n, sc, out);

    uint64_t h = tok_hash_bytes(w, n);
    /* The cast drops const only to lock the shard's mutex: the cache is the single
     * mutable part of a loaded tokenizer (see the thread-safety contract). */
    tok_cache_shard *sh = (tok_cache_shard *)&t->cache[h % TOK_CACHE_SHARDS];
    size_t mask = TOK_CACHE_SHARD_SLOTS - 1, i = (size_t)(h >> 6) & mask;
    pthread_mutex_lock(&sh->mu);
    if (sh->slots) {
        for (size_t probe = 0; probe < TOK_CACHE_SHARD_SLOTS; probe++, i = (i + 1) & mask) {
            tok_cache_entry *e = sh->slots[i];
            if (!e) break;
            if (e->hash == h && e->klen == n && !memcmp(entry_key(e), w, n)) {
                int r = tok_ids_append(out, entry_ids(e), e->nids);
                pthread_mutex_unlock(&sh->mu);
                return r;
            }
        }
    }
    pthread_mutex_unlock(&sh->mu);

    size_t before = out->n;
    if (bpe_merge(t, (const unsigned char *)w, n, sc, out)) return -1;
    size_t nids = out->n - before;

    pthread_mutex_lock(&sh->mu);
    if (!sh->slots) sh->slots = calloc(TOK_CACHE_SHARD_SLOTS, sizeof *sh->slots);
    if (sh->slots && (sh->count + 1) * 2 <= TOK_CACHE_SHARD_SLOTS) {
        tok_cache_entry *e = malloc(sizeof *e + nids * sizeof(int32_t) + n);
        if (e) {
            e->hash = h;
            e->klen = (uint32_t)n;
            e->nids = (uint32_t)nids;
            memcpy((int32_t *)(e + 1), out->v + before, nids * sizeof(int32_t));
            memcpy((char *)((int32_t *)(e + 1) + nids), w, n);
            i = (size_t)(h >> 6) & mask;
            int dup = 0;
            while (sh->slots[i]) {
                tok_cache_entry *o = sh->slots[i];
                if (o->hash == h && o->klen == n && !memcmp(entry_key(o), w, n)) {
                    dup = 1; /* another thread inserted it meanwhile */
                    break;
                }
                i = (i + 1) & mask;
            }
            if (dup) {
                free(e);
            } else {
                sh->slots[i] = e;
                sh->count++;
            }
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return 0;
}
