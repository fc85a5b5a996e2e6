/*
 * engine/model/kv_cache.h — the paged key/value cache for generation and the cached
 * forward pass (model_decode) that the sampler drives.
 *
 * Layout: per layer, k and v hold [n_blocks, block_size, Hkv, D] in the backend's act
 * dtype. A sequence owns a block table (its positions p live in block
 * table[p / block_size], row p % block_size). Blocks are reference-counted so a fork
 * shares every full block of its parent (the G completions of a group read their
 * prompt's blocks once); the parent's partial last block is copied for the child.
 * Freed sequences return their blocks. Block bookkeeping is on the host; the tables
 * are uploaded to the backend before each model_decode.
 * model_decode_sample is the same forward ending in sampling on the backend.
 *
 * Graphs: on a backend with graph ops (CUDA), a decode step of N sequences (one new
 * token each, every token a row) runs padded to a bucket size (N itself up to 16, then
 * multiples of 16 up to 256, then of 64); padding tokens sit at position 0 of the
 * first token's sequence with no cache slot (nothing stored, one key read) and their
 * rows are never used. The bucket's layers are recorded as one graph on its second use
 * and replayed afterwards: one launch instead of ~20 per layer. Prefill steps run
 * unrecorded.
 *
 * Shared prefixes: in a decode step where every token is its sequence's only one, runs of
 * neighbouring sequences whose tables start with the same blocks (a group's samples, side
 * by side in the sampler's order) form units (kv_share.h), passed to the attention as
 * `share` (backend.h): the CUDA kernel reads a unit's shared keys once for all its
 * members. RLVR_DECODE_SHARE=0 turns it off.
 *
 * Prefill: a batch whose tokens are whole sequences from position 0 (the prompts the
 * sampler admits together) attends with the packed causal attention of training
 * (backend attention_forward: the fused flash kernel on CUDA) after storing its keys and
 * values, instead of query by query over the cache; RLVR_PREFILL_ATTN=cached keeps the
 * cache path.
 */
#ifndef RLVR_MODEL_KV_CACHE_H
#define RLVR_MODEL_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/model.h"

enum { KV_GRAPH_SLOTS = 48, KV_GRAPH_KEY = 20 };

typedef struct {
    model *m;
    int block_size, n_blocks, max_seqs, max_blocks; /* max_blocks: per sequence */
    size_t block_bytes;     /* one block of one layer's k (or v), bytes */
    void *pool;             /* backend: [L][2][n_blocks][block_size][Hkv][D] act */
    int *tables;            /* host [max_seqs][max_blocks], -1 = none */
    int *seq_len;           /* host [max_seqs]: positions filled; -1 = free slot */
    int *refcount;          /* host [n_blocks] */
    int *free_blocks;       /* host stack of free block ids */
    int n_free, peak_used;
    unsigned char *dirty;   /* host [max_seqs]: table row changed since the last upload */
    unsigned *seq_mark;     /* host [max_seqs]: model_decode's sequence marks (mark_stamp) */
    unsigned mark_stamp;
    /* backend scratch for model_decode, grown on demand: the per-step inputs seq, pos,
     * slot, ids (N entries each), the shared-prefix units (3·N) and rows (R) are the eight
     * [scratch_cap] parts of one allocation, step_dev, uploaded from its host mirror
     * step_host in one copy */
    int *tables_dev, *seq_dev, *pos_dev, *slot_dev, *ids_dev, *rows_dev;
    int *share_dev;         /* the step's shared-prefix units (kv_share.h), [3·N] */
    int share_on;           /* RLVR_DECODE_SHARE (default 1): units planned in decode steps */
    int share_used;         /* a step had a unit: every decode step since passes share_dev */
    int *step_dev, *step_host;
    int scratch_cap;        /* tokens the scratch above holds */
    void *logits;           /* act [logits_cap, V] */
    int logits_cap;
    /* backend buffers for model_decode_sample, grown on demand (entries held) */
    /* [3·D] 4-byte entries per call: uniforms in (f32), then the sampled ids (i32) and
     * their log-probabilities (f32) out, those two brought back in one copy through the
     * host buffer io_host [2·D] */
    void *io_dev, *io_host;
    int *seen_dev, *seen_off_dev; /* i32: penalty ids, concatenated, and offsets [D+1] */
    int *draw_dev;          /* i32 [D]: the gathered row each draw reads */
    void *xdraw;            /* act [DRAW_CHUNK, C]: those rows, one chunk of draws */
    size_t io_cap, seen_cap, seen_off_cap, draw_cap, xdraw_cap;
    /* Decode graphs (backends with graph ops; RLVR_CUDA_GRAPHS=0 turns them off): the
     * layers of a pure decode step (one token and one row per sequence) padded to a
     * bucket size, recorded on the bucket's second use and replayed after. Dropped
     * when any buffer they read moves (graph_key). */
    struct {
        int n;      /* padded token count */
        int eager;  /* unrecorded runs so far */
        void *exec; /* the backend's graph, NULL until recorded */
    } graphs[KV_GRAPH_SLOTS];
    int n_graphs;
    int graphs_off;
    int pad_only;           /* RLVR_DECODE_PAD=1: padding without graphs (tests) */
    int prefill_cached;     /* RLVR_PREFILL_ATTN=cached: no packed prefill attention */
    size_t prefetch_bytes;  /* RLVR_DECODE_PREFETCH_MB: weights prefetched per layer, 0 off */
    uintptr_t graph_key[KV_GRAPH_KEY];
    long graph_launches, graph_records; /* counters for benchmarks */
    long share_units;       /* shared-prefix units planned, all steps (tests, benchmarks) */
    long share_rows;        /* the queries in them, all steps */
} kv_cache;

/* Sizes the pool to budget_bytes (at least one block per sequence), for sequences of up
 * to max_ctx positions. */
int kv_cache_create(model *m, size_t budget_bytes, int block_size, int max_seqs, int max_ctx,
                    kv_cache **out, char *err, size_t errlen);
void kv_cache_free(kv_cache *kv);

int kv_seq_new(kv_cache *kv);                 /* a free sequence slot, or -1 */
/* A new sequence sharing src's positions (full blocks shared, partial block copied);
 * -1 when out of slots or blocks. */
int kv_seq_fork(kv_cache *kv, int src);
/* Makes room for positions [0, len) of seq; -1 when out of blocks (nothing changed). */
int kv_seq_reserve(kv_cache *kv, int seq, int len);
void kv_seq_free(kv_cache *kv, int seq);
int kv_blocks_used(const kv_cache *kv);
size_t kv_cache_bytes(const kv_cache *kv);    /* the pool's size */

/* Cached forward of N new tokens: token t has id ids[t], belongs to sequence seq[t] at
 * position pos[t] (positions of each sequence must already be reserved, and every
 * earlier position of it already stored). Their keys/values are stored, and for the R
 * rows rows[r] (indices into the N tokens) the logits (before temperature) are written
 * to logits_host[R, V] as fp32. */
int model_decode(model *m, kv_cache *kv, const int32_t *ids, const int *seq, const int *pos,
                 int N, const int *rows, int R, float *logits_host, char *err, size_t errlen);

/* The same cached forward, ending in the backend's fused LM head + sampling op
 * (backend.h: lmhead_sample) instead of logits: the logits stay in backend memory and
 * only tokens[D] and logprobs[D] (host) come back. Draw d samples from gathered row
 * draw_rows[d] ∈ [0, R) (the G first draws of a group read one prompt row); with
 * draw_rows NULL, D = R and draw d reads row d. u[D] (host, each in [0, 1)) is read
 * unless greedy; seen / seen_offsets[D+1] (host: draw d's penalty ids are
 * seen[seen_offsets[d] .. seen_offsets[d+1])) are uploaded only when the repetition
 * penalty is on, and may be NULL otherwise. */
int model_decode_sample(model *m, kv_cache *kv, const int32_t *ids, const int *seq,
                        const int *pos, int N, const int *rows, int R, const int *draw_rows,
                        int D, const rlvr_sample_params *sp, const float *u,
                        const int32_t *seen, const int *seen_offsets, int32_t *tokens,
                        float *logprobs, char *err, size_t errlen);

#endif
