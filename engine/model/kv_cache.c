/*
 * engine/model/kv_cache.c — block pool, block tables, forks, and the cached forward
 * (see kv_cache.h).
 */
#include "engine/model/kv_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/acts.h"


static char *layer_k(const kv_cache *kv, int l) {
    return (char *)kv->pool + (size_t)l * 2 * kv->n_blocks * kv->block_bytes;
}
static char *layer_v(const kv_cache *kv, int l) {
    return layer_k(kv, l) + (size_t)kv->n_blocks * kv->block_bytes;
}

int kv_cache_create(model *m, size_t budget_bytes, int block_size, int max_seqs, int max_ctx,
                    kv_cache **out, char *err, size_t errlen) {
    *out = NULL;
    const model_config *c = &m->cfg;
    kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) goto oom;
    kv->m = m;
    kv->block_size = block_size;
    kv->max_seqs = max_seqs;
    kv->max_blocks = (max_ctx + block_size - 1) / block_size;
    kv->block_bytes = (size_t)block_size * c->num_kv_heads * c->head_dim * m->be->act_size;
    const size_t per_block = kv->block_bytes * 2 * c->num_layers;
    size_t nb = budget_bytes / per_block;
    if (nb < (size_t)max_seqs) nb = (size_t)max_seqs;
    if (nb > (1u << 30)) nb = 1u << 30;
    kv->n_blocks = (int)nb;
    kv->pool = m->be->alloc(m->be, nb * per_block);
    kv->tables = malloc((size_t)max_seqs * kv->max_blocks * sizeof(int));
    kv->seq_len = malloc((size_t)max_seqs * sizeof(int));
    kv->refcount = calloc(nb, sizeof(int));
    kv->free_blocks = malloc(nb * sizeof(int));
    kv->dirty = calloc((size_t)max_seqs, 1);
    if (!kv->pool) {
        snprintf(err, errlen, "kv cache: cannot allocate %.1f MiB on %s", nb * per_block / 1048576.0,
                 m->be->name);
        kv_cache_free(kv);
        return -1;
    }
    if (!kv->tables || !kv->seq_len || !kv->refcount || !kv->free_blocks || !kv->dirty) goto oom;
    memset(kv->tables, 0xff, (size_t)max_seqs * kv->max_blocks * sizeof(int));
    for (int s = 0; s < max_seqs; s++) kv->seq_len[s] = -1;
    for (int b = 0; b < kv->n_blocks; b++) kv->free_blocks[b] = kv->n_blocks - 1 - b;
    kv->n_free = kv->n_blocks;
    *out = kv;
    return 0;
oom:
    snprintf(err, errlen, "kv cache: out of host memory");
    kv_cache_free(kv);
    return -1;
}

void kv_cache_free(kv_cache *kv) {
    if (!kv) return;
    rlvr_backend *be = kv->m->be;
    be->free(be, kv->pool);
    be->free(be, kv->tables_dev);
    be->free(be, kv->seq_dev);
    be->free(be, kv->pos_dev);
    be->free(be, kv->slot_dev);
    be->free(be, kv->rows_dev);
    be->free(be, kv->ids_dev);
    be->free(be, kv->logits);
    free(kv->tables);
    free(kv->seq_len);
    free(kv->refcount);
    free(kv->free_blocks);
    free(kv->dirty);
    free(kv);
}

int kv_blocks_used(const kv_cache *kv) { return kv->n_blocks - kv->n_free; }
size_t kv_cache_bytes(const kv_cache *kv) {
    return kv->block_bytes * 2 * kv->m->cfg.num_layers * (size_t)kv->n_blocks;
}

static int block_alloc(kv_cache *kv) {
    if (kv->n_free == 0) return -1;
    int b = kv->free_blocks[--kv->n_free];
    kv->refcount[b] = 1;
    if (kv_blocks_used(kv) > kv->peak_used) kv->peak_used = kv_blocks_used(kv);
    return b;
}

static void block_release(kv_cache *kv, int b) {
    if (--kv->refcount[b] == 0) kv->free_blocks[kv->n_free++] = b;
}

int kv_seq_new(kv_cache *kv) {
    for (int s = 0; s < kv->max_seqs; s++)
        if (kv->seq_len[s] < 0) {
            kv->seq_len[s] = 0;
            return s;
        }
    return -1;
}

int kv_seq_reserve(kv_cache *kv, int seq, int len) {
    int *table = kv->tables + (size_t)seq * kv->max_blocks;
    const int need = (len + kv->block_size - 1) / kv->block_size;
    if (need > kv->max_blocks) return -1;
    int have = 0;
    while (have < kv->max_blocks && table[have] >= 0) have++;
    if (need - have > kv->n_free) return -1;
    for (int i = have; i < need; i++) table[i] = block_alloc(kv);
    if (need > have) kv->dirty[seq] = 1;
    if (len > kv->seq_len[seq]) kv->seq_len[seq] = len;
    return 0;
}

int kv_seq_fork(kv_cache *kv, int src) {
    const int len = kv->seq_len[src];
    const int full = len / kv->block_size, partial = len % kv->block_size != 0;
    if (partial && kv->n_free < 1) return -1;
    int dst = kv_seq_new(kv);
    if (dst < 0) return -1;
    const int *ts = kv->tables + (size_t)src * kv->max_blocks;
    int *td = kv->tables + (size_t)dst * kv->max_blocks;
    for (int i = 0; i < full; i++) {
        td[i] = ts[i];
        kv->refcount[ts[i]]++;
    }
    if (partial) {
        const int b = block_alloc(kv);
        rlvr_backend *be = kv->m->be;
        for (int l = 0; l < kv->m->cfg.num_layers; l++) {
            be->copy(be, layer_k(kv, l) + (size_t)b * kv->block_bytes,
                     layer_k(kv, l) + (size_t)ts[full] * kv->block_bytes, kv->block_bytes);
            be->copy(be, layer_v(kv, l) + (size_t)b * kv->block_bytes,
                     layer_v(kv, l) + (size_t)ts[full] * kv->block_bytes, kv->block_bytes);
        }
        td[full] = b;
    }
    kv->seq_len[dst] = len;
    kv->dirty[dst] = 1;
    return dst;
}

void kv_seq_free(kv_cache *kv, int seq) {
    int *table = kv->tables + (size_t)seq * kv->max_blocks;
    for (int i = 0; i < kv->max_blocks && table[i] >= 0; i++) {
        block_release(kv, table[i]);
        table[i] = -1;
    }
    kv->seq_len[seq] = -1;
    kv->dirty[seq] = 1;
}

/* ---- the cached forward -------------------------------------------------------- */

static int ensure_scratch(kv_cache *kv, int N, int R, char *err, size_t errlen) {
    rlvr_backend *be = kv->m->be;
    if (!kv->tables_dev) {
        kv->tables_dev = be->alloc(be, (size_t)kv->max_seqs * kv->max_blocks * sizeof(int));
        if (!kv->tables_dev) goto fail;
        memset(kv->dirty, 1, (size_t)kv->max_seqs);
    }
    if (N > kv->scratch_cap) {
        int cap = N > kv->scratch_cap * 2 ? N : kv->scratch_cap * 2;
        int **bufs[] = {&kv->seq_dev, &kv->pos_dev, &kv->slot_dev, &kv->rows_dev, &kv->ids_dev};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
            be->free(be, *bufs[i]);
            *bufs[i] = be->alloc(be, (size_t)cap * sizeof(int));
            if (!*bufs[i]) goto fail;
        }
        kv->scratch_cap = cap;
    }
    if (R > kv->logits_cap) {
        int cap = R > kv->logits_cap * 2 ? R : kv->logits_cap * 2;
        be->free(be, kv->logits);
        kv->logits = be->alloc(be, (size_t)cap * kv->m->cfg.vocab_size * be->act_size);
        if (!kv->logits) goto fail;
        kv->logits_cap = cap;
    }
    return 0;
fail:
    snprintf(err, errlen, "model_decode: out of %s memory for %d tokens", be->name, N);
    return -1;
}

typedef struct {
    kv_cache *kv;
    int N, max_ctx;
} cached_ctx;

/* Stores this layer's new keys/values, then attends over the cache. */
static void cached_attention(model *m, int l, layer_acts *L, void *ctx_) {
    const cached_ctx *cc = ctx_;
    kv_cache *kv = cc->kv;
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    be->kv_store(be, layer_k(kv, l), layer_v(kv, l), L->k, L->v, kv->slot_dev, cc->N,
                 c->num_kv_heads, c->head_dim);
    be->attention_cached(be, L->att, L->q, layer_k(kv, l), layer_v(kv, l), kv->tables_dev,
                         kv->max_blocks, kv->block_size, kv->seq_dev, kv->pos_dev, cc->N,
                         c->num_heads, c->num_kv_heads, c->head_dim, cc->max_ctx);
}

int model_decode(model *m, kv_cache *kv, const int32_t *ids, const int *seq, const int *pos,
                 int N, const int *rows, int R, float *logits_host, char *err, size_t errlen) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    if (!be->kv_store || !be->attention_cached) {
        snprintf(err, errlen, "model_decode: the %s backend has no KV-cache ops", be->name);
        return -1;
    }
    if (N < 1 || R < 0 || R > N) {
        snprintf(err, errlen, "model_decode: bad sizes N=%d R=%d", N, R);
        return -1;
    }
    int *slots = malloc((size_t)N * sizeof(int));
    if (!slots) {
        snprintf(err, errlen, "model_decode: out of host memory");
        return -1;
    }
    int max_ctx = 0;
    for (int t = 0; t < N; t++) {
        const int s = seq[t], p = pos[t];
        if (ids[t] < 0 || ids[t] >= c->vocab_size || s < 0 || s >= kv->max_seqs ||
            p < 0 || p >= kv->seq_len[s] || p >= kv->max_blocks * kv->block_size) {
            snprintf(err, errlen,
                     "model_decode: token %d (id %d, sequence %d, position %d) is out of range "
                     "or not reserved",
                     t, ids[t], s, p);
            free(slots);
            return -1;
        }
        slots[t] = kv->tables[(size_t)s * kv->max_blocks + p / kv->block_size] * kv->block_size +
                   p % kv->block_size;
        if (p + 1 > max_ctx) max_ctx = p + 1;
    }
    if (model_acts_reserve(m, N, 1, 0, err, errlen) || ensure_scratch(kv, N, R, err, errlen)) {
        free(slots);
        return -1;
    }
    const size_t row = (size_t)kv->max_blocks;
    for (int s = 0; s < kv->max_seqs; s++) /* only the block tables that changed */
        if (kv->dirty[s]) {
            be->to_device(be, kv->tables_dev + s * row, kv->tables + s * row, row * sizeof(int));
            kv->dirty[s] = 0;
        }
    be->to_device(be, kv->seq_dev, seq, (size_t)N * sizeof(int));
    be->to_device(be, kv->pos_dev, pos, (size_t)N * sizeof(int));
    be->to_device(be, kv->slot_dev, slots, (size_t)N * sizeof(int));
    be->to_device(be, kv->ids_dev, ids, (size_t)N * sizeof(int));
    be->to_device(be, kv->rows_dev, rows, (size_t)R * sizeof(int));
    be->sync(be);
    free(slots);

    model_acts *a = m->acts;
    const int C = c->hidden_size;
    const float eps = c->rms_norm_eps;
    layer_acts *L = &a->layers[0];
    be->embedding_forward(be, a->resid[0], kv->ids_dev, model_w(m, m->embed), N, C);
    cached_ctx cc = {kv, N, max_ctx};
    for (int l = 0; l < c->num_layers; l++)
        model_layer_forward(m, l, L, a->resid[l & 1], a->resid[(l + 1) & 1], N, kv->pos_dev,
                            cached_attention, &cc);
    if (R > 0) {
        /* Only the requested rows go through the final norm and the LM head: gather them
         * (an embedding lookup with the residual stream as the table). */
        void *xL = a->resid[c->num_layers & 1];
        be->embedding_forward(be, L->ln1, kv->rows_dev, xL, R, C);
        be->rmsnorm_forward(be, a->lnf, a->rstdf, L->ln1, model_w(m, m->final_norm), R, C, eps);
        be->matmul_forward(be, kv->logits, a->lnf, model_w(m, m->lm_head), NULL, R, C, c->vocab_size);
        be->act_to_f32(be, logits_host, kv->logits, (size_t)R * c->vocab_size);
    }
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "model_decode on %s: %s", be->name, e);
        return -1;
    }
    return 0;
}
