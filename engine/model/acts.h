/*
 * engine/model/acts.h — internal: the activation buffers of one forward (kept for the
 * backward) and the backward's scratch, carved out of one backend allocation that
 * grows on demand. Without backward, one layer's set is reused by every layer.
 */
#ifndef RLVR_MODEL_ACTS_H
#define RLVR_MODEL_ACTS_H

#include "engine/model/model.h"

/* gu holds the MLP's gate and up projections: [T, 2I] rows [gate_t | up_t] when the
 * model stacks them (model.stacked_gate_up), else gate [T, I] then up [T, I]. */
typedef struct {
    void *ln1, *q, *k, *v, *qpre, *kpre, *att, *mid, *ln2, *gu, *h; /* act */
    float *rstd1, *rstdq, *rstdk, *lse, *rstd2;                     /* f32 */
} layer_acts;

struct model_acts {
    int T_cap, B_cap, sets;    /* capacity in tokens, sequences, per-layer sets */
    void *block;               /* the one allocation */
    int T, B, max_len;         /* the current batch */
    int with_backward;
    int head;                  /* the LM head ran (model_forward, not _hidden) */
    float inv_temp;
    int *ids, *pos, *targets, *offsets;   /* i32, backend memory */
    void **resid;              /* act [sets+1][T,C]: resid[l] is the input of layer l */
    layer_acts *layers;        /* [sets] */
    void *lnf;                 /* act [T,C] */
    void *qkv;                 /* act [T, qd + 2·kvd]: the stacked q/k/v GEMM's output */
    float *rstdf, *logp, *entropy, *lse_lm; /* f32 [T] */
    /* backward scratch; dgu is laid out as layer_acts.gu, dqkv as qkv */
    void *dresid, *dln, *datt, *dq, *dk, *dv, *dqpre, *dkpre, *dh, *dgu, *dqkv;
};

model_acts *model_acts_create(void);
void model_acts_free(model_acts *a, rlvr_backend *be);
/* Backend pointer to parameter idx's weights (NULL for an absent optional parameter),
 * and to its f32 gradient (NULL when absent or when the model is frozen). */
static inline const void *model_w(const model *m, int idx) {
    return idx < 0 ? NULL : (const char *)m->weights + m->params[idx].offset * m->be->act_size;
}
static inline float *model_g(const model *m, int idx) {
    return idx < 0 || !m->grads ? NULL : m->grads + m->params[idx].offset;
}

/* The up projection in the separate layout of layer_acts.gu (gate is gu itself). */
static inline void *model_up_of(const model *m, void *gu, int T) {
    return (char *)gu + (size_t)T * m->cfg.intermediate_size * m->be->act_size;
}

/* The attention step of one layer: reads L->q, L->k, L->v, writes L->att. */
typedef void (*model_attention_fn)(model *m, int layer, layer_acts *L, void *ctx);
/* Where an RMSNorm of a layer's output goes: the next layer's ln1/rstd1 or the final
 * norm's lnf/rstdf, with its weight. defer: leave the residual add and this norm to the
 * next layer instead (its x_add), which can fuse them with its q|k|v projection. */
typedef struct {
    void *out;
    float *rstd;
    const void *w;
    int defer;
} model_norm_dst;

/* Where a layer's new keys and values also go: the paged KV cache of generation
 * (kv_store's k_cache, v_cache, slots). The layer sets `stored` when it stored them
 * (fused with the split of the stacked q|k|v: qkv_split_store): 1; or, when the caller
 * allows it (`attend_qkv`: every query is its sequence's only one in the step, past
 * position 0), 2: the split, rotation and store are left to the attention callback with
 * the stacked q|k|v (qkv_attention_cached); the attention callback stores them otherwise
 * (0). */
typedef struct {
    void *k_cache, *v_cache;
    const int *slots;
    int stored;
    int attend_qkv;
} model_kv_dst;

/* One decoder layer's forward over T tokens at positions pos (backend memory), reading
 * the residual stream x and writing x_next (layer.c). ln1_ready: L->ln1 and L->rstd1
 * already hold x's input norm (the previous layer wrote them through its next). next,
 * when not NULL and the backend has add_rmsnorm_forward: x_next's norm is also written
 * there, by the op that makes x_next; returns 1 then, 0 when next was not written.
 * next->defer: x_next gets the MLP output only and 2 is returned; the caller passes L->mid
 * as the next layer's x_add (read before that layer writes its own mid).
 * x_add, when not NULL: x += x_add first (the add the layer before deferred), then the
 * input norm (ln1_ready is ignored), fused with the q|k|v GEMM where the backend can.
 * kv: the cache destination of the new keys and values (generation), or NULL. */
int model_layer_forward(model *m, int l, layer_acts *L, void *x, void *x_next, int T,
                        const int *pos, model_attention_fn attention, void *ctx, int ln1_ready,
                        const model_norm_dst *next, model_kv_dst *kv, const void *x_add);

/* Makes room for T tokens and B sequences. */
int model_acts_reserve(model *m, int T, int B, int with_backward, char *err, size_t errlen);

#endif
