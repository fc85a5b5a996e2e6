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
/* Makes room for T tokens and B sequences. */
int model_acts_reserve(model *m, int T, int B, int with_backward, char *err, size_t errlen);

#endif
