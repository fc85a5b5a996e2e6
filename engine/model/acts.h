/*
 * engine/model/acts.h — internal: the activation buffers of one forward (kept for the
 * backward) and the backward's scratch, carved out of one backend allocation that
 * grows on demand. Without backward, one layer's set is reused by every layer.
 */
#ifndef RLVR_MODEL_ACTS_H
#define RLVR_MODEL_ACTS_H

#include "engine/model/model.h"

typedef struct {
    void *ln1, *q, *k, *v, *qpre, *kpre, *att, *mid, *ln2, *gate, *up, *h; /* act */
    float *rstd1, *rstdq, *rstdk, *lse, *rstd2;                              /* f32 */
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
    float *rstdf, *logp, *entropy, *lse_lm; /* f32 [T] */
    /* backward scratch */
    void *dresid, *dln, *datt, *dq, *dk, *dv, *dqpre, *dkpre, *dh, *dgate, *dup;
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

/* The attention step of one layer: reads L->q, L->k, L->v, writes L->att. */
typedef void (*model_attention_fn)(model *m, int layer, layer_acts *L, void *ctx);
/* One decoder layer's forward over T tokens at positions pos (backend memory), reading
 * the residual stream x and writing x_next (layer.c). */
void model_layer_forward(model *m, int l, layer_acts *L, void *x, void *x_next, int T,
                         const int *pos, model_attention_fn attention, void *ctx);

/* Makes room for T tokens and B sequences. */
int model_acts_reserve(model *m, int T, int B, int with_backward, char *err, size_t errlen);

#endif
