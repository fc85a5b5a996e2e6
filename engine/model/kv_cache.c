/*
 * engine/model/kv_cache.c — block pool, block tables, forks, and the cached forward
 * (see kv_cache.h).
 */
#include "engine/model/kv_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/acts.h"
#include "engine/model/kv_share.h"


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
    const char *graphs = getenv("RLVR_CUDA_GRAPHS");
    kv->graphs_off = !m->be->graph_begin || (graphs && !strcmp(graphs, "0"));
    /* RLVR_DECODE_PAD=1: pad decode steps to their bucket without graphs (a check of the
     * padding on backends without graph ops; tests/rollout uses it on the CPU) */
    const char *pad = getenv("RLVR_DECODE_PAD");
    kv->pad_only = pad && !strcmp(pad, "1");
    /* RLVR_PREFILL_ATTN=cached: prompts attend through the cache as decode steps do */
    const char *pf = getenv("RLVR_PREFILL_ATTN");
    kv->prefill_cached = pf && !strcmp(pf, "cached");
    /* RLVR_DECODE_SHARE=0: no shared-prefix units (each sample reads its prompt's keys) */
    const char *sh = getenv("RLVR_DECODE_SHARE");
    kv->share_on = !(sh && !strcmp(sh, "0"));
    /* RLVR_DECODE_PREFETCH_MB=N: each decode layer first prefetches up to N MiB of the
     * weights its GEMVs read next (decode_prefetch); opt-in until measured on a GPU */
    const char *pfm = getenv("RLVR_DECODE_PREFETCH_MB");
    if (pfm && *pfm) {
        char *end;
        const unsigned long long mb = strtoull(pfm, &end, 10);
        if (*end || pfm[0] == '-' || mb > (1ull << 20)) {
            snprintf(err, errlen,
                     "RLVR_DECODE_PREFETCH_MB: '%s' is not a size in MiB (expected an "
                     "integer from 0 to 1048576; 0 turns the prefetch off)",
                     pfm);
            kv_cache_free(kv);
            return -1;
        }
        kv->prefetch_bytes = m->be->prefetch_l2 ? (size_t)mb << 20 : 0;
    }
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
    kv->seq_mark = calloc((size_t)max_seqs, sizeof(unsigned));
    if (!kv->pool) {
        snprintf(err, errlen, "kv cache: cannot allocate %.1f MiB on %s", nb * per_block / 1048576.0,
                 m->be->name);
        kv_cache_free(kv);
        return -1;
    }
    if (!kv->tables || !kv->seq_len || !kv->refcount || !kv->free_blocks || !kv->dirty ||
        !kv->seq_mark)
        goto oom;
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
    be->free(be, kv->step_dev);
    free(kv->step_host);
    be->free(be, kv->logits);
    be->free(be, kv->io_dev);
    free(kv->io_host);
    be->free(be, kv->seen_dev);
    be->free(be, kv->seen_off_dev);
    be->free(be, kv->draw_dev);
    be->free(be, kv->xdraw);
    for (int i = 0; i < kv->n_graphs; i++)
        if (kv->graphs[i].exec) be->graph_free(be, kv->graphs[i].exec);
    free(kv->tables);
    free(kv->seq_len);
    free(kv->refcount);
    free(kv->free_blocks);
    free(kv->dirty);
    free(kv->seq_mark);
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

/* The parts of the step inputs (kv_cache.step_dev): seq, pos, slot, ids, the shared-prefix
 * units (three parts: kv_share_plan's [3·N] of the step's N tokens, from the first), then
 * rows. */
enum { KV_STEP_PARTS = 8, KV_STEP_SHARE = 4, KV_STEP_ROWS = 7 };

/* Backend buffers for N tokens, R gathered rows, and (when logits_rows > 0) fp32
 * logits of logits_rows rows. */
static int ensure_scratch(kv_cache *kv, int N, int R, int logits_rows, char *err,
                          size_t errlen) {
    rlvr_backend *be = kv->m->be;
    if (!kv->tables_dev) {
        kv->tables_dev = be->alloc(be, (size_t)kv->max_seqs * kv->max_blocks * sizeof(int));
        if (!kv->tables_dev) goto fail;
        memset(kv->dirty, 1, (size_t)kv->max_seqs);
    }
    if (R > N) N = R; /* rows_dev holds R entries (the sampling path repeats rows) */
    if (N > kv->scratch_cap) {
        int cap = N > kv->scratch_cap * 2 ? N : kv->scratch_cap * 2;
        be->free(be, kv->step_dev);
        free(kv->step_host);
        kv->step_dev = be->alloc(be, (size_t)KV_STEP_PARTS * cap * sizeof(int));
        kv->step_host = malloc((size_t)KV_STEP_PARTS * cap * sizeof(int));
        kv->scratch_cap = kv->step_dev && kv->step_host ? cap : 0;
        if (!kv->scratch_cap) goto fail;
        int **parts[] = {&kv->seq_dev, &kv->pos_dev, &kv->slot_dev, &kv->ids_dev};
        for (int i = 0; i < 4; i++) *parts[i] = kv->step_dev + (size_t)i * cap;
        kv->share_dev = kv->step_dev + (size_t)KV_STEP_SHARE * cap;
        kv->rows_dev = kv->step_dev + (size_t)KV_STEP_ROWS * cap;
    }
    if (logits_rows > kv->logits_cap) {
        int cap = logits_rows > kv->logits_cap * 2 ? logits_rows : kv->logits_cap * 2;
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
    int runs;                /* prefill: sequences in the batch (0: cached attention) */
    const model_kv_dst *dst; /* this layer's cache destination (stored: already there) */
    const int *share;        /* the step's shared-prefix units (backend.h), or NULL */
} cached_ctx;

/* The layer's new keys/values into the cache, unless its q|k|v split stored them. */
static void store_new_kv(model *m, int l, layer_acts *L, const cached_ctx *cc) {
    kv_cache *kv = cc->kv;
    if (cc->dst && cc->dst->stored) return;
    m->be->kv_store(m->be, layer_k(kv, l), layer_v(kv, l), L->k, L->v, kv->slot_dev, cc->N,
                    m->cfg.num_kv_heads, m->cfg.head_dim);
}

/* Stores this layer's new keys/values, then attends over the cache (or both in one op
 * from the stacked q|k|v, when the layer left its split to the attention: stored 2). */
static void cached_attention(model *m, int l, layer_acts *L, void *ctx_) {
    const cached_ctx *cc = ctx_;
    kv_cache *kv = cc->kv;
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    if (cc->dst && cc->dst->stored == 2) {
        be->qkv_attention_cached(be, L->att, L->q, L->k, L->v, m->acts->qkv, layer_k(kv, l),
                                 layer_v(kv, l), kv->slot_dev, kv->pos_dev, m->inv_freq,
                                 kv->tables_dev, kv->max_blocks, kv->block_size, kv->seq_dev,
                                 cc->share, cc->N, c->num_heads, c->num_kv_heads, c->head_dim,
                                 cc->max_ctx);
        return;
    }
    store_new_kv(m, l, L, cc);
    be->attention_cached(be, L->att, L->q, layer_k(kv, l), layer_v(kv, l), kv->tables_dev,
                         kv->max_blocks, kv->block_size, kv->seq_dev, kv->pos_dev, cc->share,
                         cc->N, c->num_heads, c->num_kv_heads, c->head_dim, cc->max_ctx);
}

/* Prefill: the new tokens are whole sequences from position 0 (runs of the packed
 * batch, m->acts->offsets on the backend): their keys/values are stored, and they attend
 * among themselves with the packed causal attention of training (the fused flash
 * kernel on CUDA) instead of query by query over the cache: the same result (the cache
 * holds exactly these keys/values), at tensor-core speed. */
static void prefill_attention(model *m, int l, layer_acts *L, void *ctx_) {
    const cached_ctx *cc = ctx_;
    const model_config *c = &m->cfg;
    const model_acts *a = m->acts;
    rlvr_backend *be = m->be;
    store_new_kv(m, l, L, cc);
    be->attention_forward(be, L->att, L->lse, L->q, L->k, L->v, a->offsets, cc->runs, cc->N,
                          c->num_heads, c->num_kv_heads, c->head_dim, cc->max_ctx);
}

/* The bucket a pure decode step of N tokens is padded to: N up to 16, multiples of 16 up
 * to 256 (at most 15 padding rows where a shrinking batch spends most of its steps; until
 * session 15 multiples of 64 above 128, up to 63 rows), multiples of 64 above: 31
 * buckets up to 256 sequences, 43 up to 1024, within KV_GRAPH_SLOTS. */
static int decode_bucket(int N) {
    if (N <= 16) return N;
    if (N <= 256) return (N + 15) / 16 * 16;
    return (N + 63) / 64 * 64;
}

/* Appends the bytes of parameter idx to a prefetch plan, within the budget left (a
 * parameter that starts where the last range ends extends it: a layer's matrices lie
 * back to back, so a whole plan is usually one range); returns the budget left. */
static size_t plan_param(const model *m, int idx, const void **ptr, size_t *bytes, int *n,
                         size_t left) {
    if (idx < 0 || left == 0) return left;
    size_t b = m->params[idx].numel * m->be->act_size;
    if (b > left) b = left;
    const char *p = model_w(m, idx);
    if (*n > 0 && (const char *)ptr[*n - 1] + bytes[*n - 1] == p) {
        bytes[*n - 1] += b;
    } else {
        if (*n >= RLVR_PREFETCH_MAX) return left;
        ptr[*n] = p;
        bytes[*n] = b;
        (*n)++;
    }
    return left - b;
}

/* At the start of decode layer l (opt-in, kv->prefetch_bytes > 0): the weights its GEMVs
 * read after the q|k|v projection, in the order they read them — o, gate|up, down — and
 * the next layer's q|k|v (layer 0 first its own), at most prefetch_bytes in all, so HBM
 * keeps streaming them while the norms, the attention and the launch gaps run. */
static void decode_prefetch(model *m, const kv_cache *kv, int l) {
    const model_config *c = &m->cfg;
    const void *ptr[RLVR_PREFETCH_MAX];
    size_t bytes[RLVR_PREFETCH_MAX];
    int n = 0;
    size_t left = kv->prefetch_bytes;
    const model_layer_params *P = &m->layers[l];
    const model_layer_params *Q = l + 1 < c->num_layers ? &m->layers[l + 1] : NULL;
    const int order[] = {l == 0 ? P->q : -1, l == 0 ? P->k : -1, l == 0 ? P->v : -1,
                         P->o,               P->gate,            P->up,
                         P->down,            Q ? Q->q : -1,      Q ? Q->k : -1,
                         Q ? Q->v : -1};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        left = plan_param(m, order[i], ptr, bytes, &n, left);
    m->be->prefetch_l2(m->be, ptr, bytes, n);
}

/* The ops of the forward over the uploaded tokens: embedding, the layers, the gather of
 * the R rows and the final norm (into m->acts->lnf). Only backend ops: recordable.
 * attend_qkv: every token is its sequence's only one, past position 0 (model_kv_dst). */
static void decode_layers(model *m, kv_cache *kv, int N, int R, int max_ctx, int runs,
                          int attend_qkv, const int *share) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    model_acts *a = m->acts;
    const int C = c->hidden_size;
    const float eps = c->rms_norm_eps;
    layer_acts *L = &a->layers[0];
    be->embedding_forward(be, a->resid[0], kv->ids_dev, model_w(m, m->embed), N, C);
    cached_ctx cc = {kv, N, max_ctx, runs, NULL, runs > 0 ? NULL : share};
    int ready = 0; /* L->ln1 holds the layer's input norm, written by the layer before */
    const void *x_add = NULL; /* the residual add the layer before left to this one */
    for (int l = 0; l < c->num_layers; l++) {
        /* the final norm is taken of the R gathered rows only, below; a layer leaves its
         * residual add and the next layer's input norm to that layer when the backend can
         * fuse them with its q|k|v projection */
        const model_norm_dst next = {L->ln1, L->rstd1,
                                     l + 1 < c->num_layers ? model_w(m, m->layers[l + 1].ln1)
                                                           : NULL,
                                     be->add_rmsnorm_matmul != NULL};
        model_kv_dst dst = {layer_k(kv, l), layer_v(kv, l), kv->slot_dev, 0,
                            attend_qkv && runs == 0};
        cc.dst = &dst;
        if (kv->prefetch_bytes && runs == 0) decode_prefetch(m, kv, l);
        const int r = model_layer_forward(
            m, l, L, a->resid[l & 1], a->resid[(l + 1) & 1], N, kv->pos_dev,
            runs > 0 ? prefill_attention : cached_attention, &cc, ready,
            l + 1 < c->num_layers ? &next : NULL, &dst, x_add);
        ready = r == 1;
        x_add = r == 2 ? L->mid : NULL;
    }
    if (R > 0) {
        /* Only the requested rows go through the final norm and the LM head: gather them
         * (an embedding lookup with the residual stream as the table). */
        void *xL = a->resid[c->num_layers & 1];
        be->embedding_forward(be, L->ln1, kv->rows_dev, xL, R, C);
        be->rmsnorm_forward(be, a->lnf, a->rstdf, L->ln1, model_w(m, m->final_norm), R, C, eps);
    }
}

/* Every buffer a recorded decode graph reads or writes, by address and layout. */
static void graph_key_now(const model *m, const kv_cache *kv, uintptr_t *key) {
    const model_acts *a = m->acts;
    const uintptr_t k[KV_GRAPH_KEY] = {
        (uintptr_t)a->block, (uintptr_t)a->T_cap, (uintptr_t)a->B_cap, (uintptr_t)a->sets,
        (uintptr_t)kv->pool, (uintptr_t)kv->tables_dev, (uintptr_t)kv->seq_dev,
        (uintptr_t)kv->pos_dev, (uintptr_t)kv->slot_dev, (uintptr_t)kv->rows_dev,
        (uintptr_t)kv->ids_dev, (uintptr_t)model_w((model *)m, m->embed),
        (uintptr_t)model_w((model *)m, m->final_norm), (uintptr_t)m->inv_freq,
        (uintptr_t)m->be, (uintptr_t)a->resid, (uintptr_t)a->layers,
        (uintptr_t)kv->share_dev, (uintptr_t)kv->share_used};
    memcpy(key, k, sizeof k);
}

static void graphs_drop(kv_cache *kv) {
    rlvr_backend *be = kv->m->be;
    for (int i = 0; i < kv->n_graphs; i++)
        if (kv->graphs[i].exec) be->graph_free(be, kv->graphs[i].exec);
    kv->n_graphs = 0;
}

/* Runs the layers of a padded decode step of Nb tokens: replays the bucket's graph,
 * records it (second use), or runs the ops unrecorded (first use, no free slot). */
static int decode_graph(model *m, kv_cache *kv, int Nb, int max_ctx, const int *share,
                        char *err, size_t errlen) {
    rlvr_backend *be = m->be;
    uintptr_t key[KV_GRAPH_KEY];
    graph_key_now(m, kv, key);
    if (memcmp(key, kv->graph_key, sizeof key)) { /* a buffer moved: every graph is stale */
        graphs_drop(kv);
        memcpy(kv->graph_key, key, sizeof key);
    }
    int g = -1;
    for (int i = 0; i < kv->n_graphs && g < 0; i++)
        if (kv->graphs[i].n == Nb) g = i;
    if (g < 0 && kv->n_graphs < KV_GRAPH_SLOTS) {
        g = kv->n_graphs++;
        kv->graphs[g].n = Nb;
        kv->graphs[g].eager = 0;
        kv->graphs[g].exec = NULL;
    }
    if (g < 0 || (!kv->graphs[g].exec && kv->graphs[g].eager < 1)) {
        decode_layers(m, kv, Nb, Nb, max_ctx, 0, 1, share);
        if (g >= 0) kv->graphs[g].eager++;
        return 0;
    }
    if (!kv->graphs[g].exec) {
        if (be->graph_begin(be)) goto fail;
        /* (max_ctx is recorded but must not matter: backend.h, attention_cached) */
        decode_layers(m, kv, Nb, Nb, max_ctx, 0, 1, share);
        kv->graphs[g].exec = be->graph_end(be);
        if (!kv->graphs[g].exec) goto fail;
        kv->graph_records++;
    }
    be->graph_launch(be, kv->graphs[g].exec);
    kv->graph_launches++;
    return 0;
fail:
    kv->graphs_off = 1;
    snprintf(err, errlen, "model_decode: recording the decode step of %d tokens as a graph "
             "failed: %s (RLVR_CUDA_GRAPHS=0 runs without graphs)", Nb,
             be->error(be) ? be->error(be) : "unknown error");
    return -1;
}

/* Uploads the block-table rows that changed since the last upload: one copy of the
 * rows from the first to the last changed one when that range is small (or mostly
 * changed), else one copy per changed row. Each copy is a host round trip, and with
 * hundreds of sequences a few dozen cross a block boundary at every decode step. */
static void upload_tables(kv_cache *kv) {
    rlvr_backend *be = kv->m->be;
    const size_t row = (size_t)kv->max_blocks;
    int lo = -1, hi = -1, changed = 0;
    for (int s = 0; s < kv->max_seqs; s++)
        if (kv->dirty[s]) {
            if (lo < 0) lo = s;
            hi = s;
            changed++;
        }
    if (!changed) return;
    const size_t span = (size_t)(hi - lo + 1) * row * sizeof(int);
    if (span <= (size_t)64 << 10 || span <= 4 * changed * row * sizeof(int)) {
        be->to_device(be, kv->tables_dev + lo * row, kv->tables + lo * row, span);
        memset(kv->dirty + lo, 0, (size_t)(hi - lo + 1));
        return;
    }
    for (int s = lo; s <= hi; s++)
        if (kv->dirty[s]) {
            be->to_device(be, kv->tables_dev + s * row, kv->tables + s * row, row * sizeof(int));
            kv->dirty[s] = 0;
        }
}

/* The layers over N new tokens, then the final norm of the R gathered rows rows[r]
 * (into m->acts->lnf [R, C]). logits_rows: rows of fp32 logits scratch to provide. */
static int decode_hidden(model *m, kv_cache *kv, const int32_t *ids, const int *seq,
                         const int *pos, int N, const int *rows, int R, int logits_rows,
                         char *err, size_t errlen) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    if (!be->kv_store || !be->attention_cached) {
        snprintf(err, errlen, "model_decode: the %s backend has no KV-cache ops", be->name);
        return -1;
    }
    if (N < 1 || R < 0) {
        snprintf(err, errlen, "model_decode: bad sizes N=%d R=%d", N, R);
        return -1;
    }
    for (int r = 0; r < R; r++)
        if (rows[r] < 0 || rows[r] >= N) {
            snprintf(err, errlen, "model_decode: row %d selects token %d; there are %d tokens",
                     r, rows[r], N);
            return -1;
        }
    /* A pure decode step (every token a row, in order) may run padded to a bucket and
     * through a recorded graph. */
    int pure = R == N && (!kv->graphs_off || kv->pad_only);
    for (int r = 0; pure && r < R; r++) pure = rows[r] == r;
    /* (pad_only pads even small steps, to multiples of 16, so the tests exercise it) */
    const int Nb = !pure ? N : kv->pad_only ? (N + 15) / 16 * 16 : decode_bucket(N);
    const int Rb = pure ? Nb : R;
    int max_ctx = 0;
    for (int t = 0; t < N; t++) {
        const int s = seq[t], p = pos[t];
        if (ids[t] < 0 || ids[t] >= c->vocab_size || s < 0 || s >= kv->max_seqs ||
            p < 0 || p >= kv->seq_len[s] || p >= kv->max_blocks * kv->block_size) {
            snprintf(err, errlen,
                     "model_decode: token %d (id %d, sequence %d, position %d) is out of range "
                     "or not reserved",
                     t, ids[t], s, p);
            return -1;
        }
        if (p + 1 > max_ctx) max_ctx = p + 1;
    }
    /* A prefill: every token continues a run of its sequence that starts at position 0
     * in this batch (prompts admitted together). Runs → packed offsets. */
    int runs = 0, longest = 0;
    if (!pure && N > 1 && !kv->prefill_cached) {
        int start = 0;
        for (int t = 0; t < N && runs >= 0; t++) {
            if (t == 0 || seq[t] != seq[t - 1]) {
                start = t;
                runs++;
            }
            if (pos[t] != t - start) runs = -1;
            else if (t - start + 1 > longest) longest = t - start + 1;
        }
        if (runs < 0) runs = 0;
    }
    if (model_acts_reserve(m, Nb > Rb ? Nb : Rb, runs > 0 ? runs : 1, 0, err, errlen) ||
        ensure_scratch(kv, Nb, Rb, logits_rows, err, errlen))
        return -1;
    /* the step's inputs in the host mirror of step_dev (parts of scratch_cap entries) */
    const int cap = kv->scratch_cap;
    int *pseq = kv->step_host, *ppos = pseq + cap, *slots = pseq + 2 * cap;
    int *pids = pseq + 3 * cap, *pshare = pseq + KV_STEP_SHARE * cap;
    int *prows = pseq + KV_STEP_ROWS * cap;
    for (int t = 0; t < N; t++) {
        const int s = seq[t], p = pos[t];
        slots[t] = kv->tables[(size_t)s * kv->max_blocks + p / kv->block_size] * kv->block_size +
                   p % kv->block_size;
        pids[t] = ids[t];
        pseq[t] = s;
        ppos[t] = p;
    }
    for (int t = N; t < Nb; t++) { /* padding: position 0 of the first sequence, no slot */
        slots[t] = -1;
        pids[t] = ids[0];
        pseq[t] = seq[0];
        ppos[t] = 0;
    }
    for (int r = 0; r < Rb; r++) prows[r] = r < R ? rows[r] : r;
    /* Every token its sequence's only one, past position 0: the attention may take the
     * layer's q|k|v split and store (qkv_attention_cached; a padding row reads position 0
     * of seq[0], which no token of such a step writes). Recorded graphs hold that op, so
     * other pure steps run unrecorded. */
    int one_each = 1;
    if (++kv->mark_stamp == 0) { /* wrapped: clear the marks */
        memset(kv->seq_mark, 0, (size_t)kv->max_seqs * sizeof(unsigned));
        kv->mark_stamp = 1;
    }
    for (int t = 0; t < N && one_each; t++) {
        if (pos[t] == 0 || kv->seq_mark[seq[t]] == kv->mark_stamp) one_each = 0;
        kv->seq_mark[seq[t]] = kv->mark_stamp;
    }
    /* Such a step's shared-prefix units (a group's samples read their prompt's blocks once
     * in the attention): passed from the first step that has one on, so the recorded
     * graphs of a run without groups stay as they were */
    const int *share = NULL;
    if (one_each && runs == 0 && kv->share_on) {
        const int units = kv_share_plan(kv->tables, kv->max_blocks, kv->block_size, pseq, ppos,
                                        Nb, c->num_heads / c->num_kv_heads, pshare);
        kv->share_units += units;
        for (int u = 0; u < units; u++) kv->share_rows += pshare[2 * Nb + u];
        if (units > 0) kv->share_used = 1;
        if (kv->share_used) share = kv->share_dev;
    }
    upload_tables(kv);
    /* one copy: the parts before rows whole (their first Nb entries, or 3·Nb of the
     * shared-prefix parts, are read), then the rows part up to Rb; to_device returns once
     * the host buffer is consumed */
    be->to_device(be, kv->step_dev, kv->step_host,
                  ((size_t)KV_STEP_ROWS * cap + Rb) * sizeof(int));
    if (runs > 0) { /* packed offsets of the runs, into the activations' offsets */
        int *offs = malloc(((size_t)runs + 1) * sizeof(int));
        if (!offs) {
            snprintf(err, errlen, "model_decode: out of host memory");
            return -1;
        }
        int b = 0;
        for (int t = 0; t < N; t++)
            if (t == 0 || seq[t] != seq[t - 1]) offs[b++] = t;
        offs[runs] = N;
        be->to_device(be, m->acts->offsets, offs, ((size_t)runs + 1) * sizeof(int));
        free(offs);
    }
    if (!pure || kv->graphs_off || !one_each) { /* (pad_only: padded, unrecorded) */
        decode_layers(m, kv, Nb, Rb, runs > 0 ? longest : max_ctx, runs, one_each, share);
        return 0;
    }
    return decode_graph(m, kv, Nb, max_ctx, share, err, errlen);
}

static int decode_check(rlvr_backend *be, const char *what, char *err, size_t errlen) {
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "%s on %s: %s", what, be->name, e);
        return -1;
    }
    return 0;
}

int model_decode(model *m, kv_cache *kv, const int32_t *ids, const int *seq, const int *pos,
                 int N, const int *rows, int R, float *logits_host, char *err, size_t errlen) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    if (decode_hidden(m, kv, ids, seq, pos, N, rows, R, R, err, errlen)) return -1;
    if (R > 0) {
        be->matmul_forward(be, kv->logits, m->acts->lnf, model_w(m, m->lm_head), NULL, R,
                           c->hidden_size, c->vocab_size);
        be->act_to_f32(be, logits_host, kv->logits, (size_t)R * c->vocab_size);
    }
    return decode_check(be, "model_decode", err, errlen);
}

/* Draws sampled per lmhead_sample call when draws read repeated rows. */
enum { DRAW_CHUNK = 512 };

/* realloc that frees the old block when it fails (NULL then). */
static void *realloc_or_free(void *p, size_t bytes) {
    void *q = realloc(p, bytes);
    if (!q) free(p);
    return q;
}

/* Grows a backend buffer of `elem`-byte entries to hold n (doubling). */
static int grow_dev(rlvr_backend *be, void **buf, size_t *cap, size_t n, size_t elem) {
    if (n <= *cap) return 0;
    size_t want = n > *cap * 2 ? n : *cap * 2;
    be->free(be, *buf);
    *buf = be->alloc(be, want * elem);
    *cap = *buf ? want : 0;
    return *buf ? 0 : -1;
}

int model_decode_sample(model *m, kv_cache *kv, const int32_t *ids, const int *seq,
                        const int *pos, int N, const int *rows, int R, const int *draw_rows,
                        int D, const rlvr_sample_params *sp, const float *u,
                        const int32_t *seen, const int *seen_offsets, int32_t *tokens,
                        float *logprobs, char *err, size_t errlen) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    const int C = c->hidden_size;
    if (!be->lmhead_sample) {
        snprintf(err, errlen, "model_decode_sample: the %s backend has no lmhead_sample op",
                 be->name);
        return -1;
    }
    if (D < 0 || (!draw_rows && D != R)) {
        snprintf(err, errlen, "model_decode_sample: %d draws from %d rows (without draw_rows "
                 "they must be equal)", D, R);
        return -1;
    }
    for (int d = 0; draw_rows && d < D; d++)
        if (draw_rows[d] < 0 || draw_rows[d] >= R) {
            snprintf(err, errlen, "model_decode_sample: draw %d reads row %d; there are %d rows",
                     d, draw_rows[d], R);
            return -1;
        }
    const int pen = sp->repetition_penalty != 1.0f && seen && seen_offsets;
    const size_t n_seen = pen && D > 0 ? (size_t)seen_offsets[D] : 0;
    size_t io_cap = kv->io_cap; /* (grow_dev updates kv->io_cap) */
    if (D > 0 && (grow_dev(be, &kv->io_dev, &kv->io_cap, (size_t)3 * D, 4) ||
                  ((kv->io_cap != io_cap || !kv->io_host) &&
                   !(kv->io_host = realloc_or_free(kv->io_host, kv->io_cap * 4))) ||
                  (draw_rows && (grow_dev(be, (void **)&kv->draw_dev, &kv->draw_cap, (size_t)D,
                                          4) ||
                                 grow_dev(be, &kv->xdraw, &kv->xdraw_cap, (size_t)DRAW_CHUNK * C,
                                          be->act_size))) ||
                  (pen && (grow_dev(be, (void **)&kv->seen_off_dev, &kv->seen_off_cap,
                                    (size_t)D + 1, 4) ||
                           grow_dev(be, (void **)&kv->seen_dev, &kv->seen_cap,
                                    n_seen ? n_seen : 1, 4))))) {
        snprintf(err, errlen, "model_decode_sample: out of %s memory for %d draws", be->name, D);
        return -1;
    }
    float *u_dev = kv->io_dev, *lp_dev = u_dev + 2 * (size_t)D;
    int32_t *tok_dev = (int32_t *)(u_dev + D);
    /* uploads first: to_device waits for the stream, which is idle before the forward */
    if (D > 0 && sp->temperature > 0.0f)
        be->to_device(be, u_dev, u, (size_t)D * sizeof(float));
    if (D > 0 && draw_rows) be->to_device(be, kv->draw_dev, draw_rows, (size_t)D * sizeof(int));
    if (pen) {
        be->to_device(be, kv->seen_off_dev, seen_offsets, ((size_t)D + 1) * sizeof(int));
        if (n_seen) be->to_device(be, kv->seen_dev, seen, n_seen * sizeof(int32_t));
    }
    if (decode_hidden(m, kv, ids, seq, pos, N, rows, R, 0, err, errlen)) return -1;
    if (D == 0) return decode_check(be, "model_decode_sample", err, errlen);
    const void *wl = model_w(m, m->lm_head);
    if (!draw_rows) {
        be->lmhead_sample(be, tok_dev, lp_dev, m->acts->lnf, wl, D, C, c->vocab_size, sp, u_dev,
                          pen ? kv->seen_dev : NULL, pen ? kv->seen_off_dev : NULL);
    } else {
        /* gather the normed rows each chunk of draws reads, then sample the chunk */
        for (int d0 = 0; d0 < D; d0 += DRAW_CHUNK) {
            const int dc = D - d0 < DRAW_CHUNK ? D - d0 : DRAW_CHUNK;
            be->embedding_forward(be, kv->xdraw, kv->draw_dev + d0, m->acts->lnf, dc, C);
            be->lmhead_sample(be, tok_dev + d0, lp_dev + d0, kv->xdraw, wl, dc, C,
                              c->vocab_size, sp, u_dev + d0, pen ? kv->seen_dev : NULL,
                              pen ? kv->seen_off_dev + d0 : NULL);
        }
    }
    be->to_host(be, kv->io_host, tok_dev, (size_t)2 * D * 4); /* ids, log-probs: one copy */
    memcpy(tokens, kv->io_host, (size_t)D * sizeof(int32_t));
    memcpy(logprobs, (const char *)kv->io_host + (size_t)D * 4, (size_t)D * sizeof(float));
    return decode_check(be, "model_decode_sample", err, errlen);
}
