/*
 * engine/model/backward.c — the backward of model_forward, layer by layer in reverse,
 * accumulating parameter gradients (f32) through the op table. dresid carries
 * d(objective)/d(residual stream); the RMSNorm backwards add into it (accumulate = 1)
 * because the residual path already holds its own gradient.
 */
#include <stdio.h>

#include "engine/model/acts.h"


/* From d(hidden states) in a->dln to every parameter below the LM head. */
static int backward_trunk(model *m, char *err, size_t errlen) {
    model_acts *a = m->acts;
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    const int T = a->T, C = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
    const int Hq = c->num_heads, Hkv = c->num_kv_heads, qd = Hq * D, kvd = Hkv * D;
    be->rmsnorm_backward(be, a->dresid, model_g(m, m->final_norm), a->dln, a->resid[c->num_layers],
                         model_w(m, m->final_norm), a->rstdf, T, C, 0);
    for (int l = c->num_layers - 1; l >= 0; l--) {
        const model_layer_params *P = &m->layers[l];
        layer_acts *L = &a->layers[l];
        /* x' = mid + down(h): dresid is d x' and, through the skip, part of d mid */
        be->matmul_backward(be, a->dh, model_g(m, P->down), NULL, a->dresid, L->h, model_w(m, P->down), T, I,
                            C, 0);
        if (m->stacked_gate_up) { /* one GEMM pair over the stacked gate|up weights */
            be->swiglu_packed_backward(be, a->dgu, a->dh, L->gu, T, I);
            be->matmul_backward(be, a->dln, model_g(m, P->gate), NULL, a->dgu, L->ln2,
                                model_w(m, P->gate), T, C, 2 * I, 0);
        } else {
            void *up = model_up_of(m, L->gu, T), *dup = model_up_of(m, a->dgu, T);
            be->swiglu_backward(be, a->dgu, dup, a->dh, L->gu, up, (size_t)T * I);
            be->matmul_backward(be, a->dln, model_g(m, P->gate), NULL, a->dgu, L->ln2,
                                model_w(m, P->gate), T, C, I, 0);
            be->matmul_backward(be, a->dln, model_g(m, P->up), NULL, dup, L->ln2,
                                model_w(m, P->up), T, C, I, 1);
        }
        be->rmsnorm_backward(be, a->dresid, model_g(m, P->ln2), a->dln, L->mid, model_w(m, P->ln2), L->rstd2,
                             T, C, 1);
        /* mid = x + o(att): dresid is now d mid */
        be->matmul_backward(be, a->datt, model_g(m, P->o), model_g(m, P->o_b), a->dresid, L->att, model_w(m, P->o),
                            T, qd, C, 0);
        be->attention_backward(be, a->dq, a->dk, a->dv, a->datt, L->q, L->k, L->v, L->att, L->lse,
                               a->offsets, a->B, T, Hq, Hkv, D, a->max_len);
        const int merge_rope = m->stacked_qkv && !c->qk_norm; /* rotated by qkv_merge */
        if (!merge_rope) {
            be->rope_backward(be, a->dq, a->pos, m->inv_freq, T, Hq, D);
            be->rope_backward(be, a->dk, a->pos, m->inv_freq, T, Hkv, D);
        }
        void *dq = a->dq, *dk = a->dk;
        if (c->qk_norm) {
            be->rmsnorm_backward(be, a->dqpre, model_g(m, P->q_norm), a->dq, L->qpre, model_w(m, P->q_norm),
                                 L->rstdq, T * Hq, D, 0);
            be->rmsnorm_backward(be, a->dkpre, model_g(m, P->k_norm), a->dk, L->kpre, model_w(m, P->k_norm),
                                 L->rstdk, T * Hkv, D, 0);
            dq = a->dqpre;
            dk = a->dkpre;
        }
        if (m->stacked_qkv) { /* one GEMM pair over the stacked q|k|v weights */
            be->qkv_merge(be, a->dqkv, dq, dk, a->dv, merge_rope ? a->pos : NULL, m->inv_freq,
                          T, Hq, Hkv, D);
            be->matmul_backward(be, a->dln, model_g(m, P->q), model_g(m, P->q_b), a->dqkv,
                                L->ln1, model_w(m, P->q), T, C, qd + 2 * kvd, 0);
        } else {
            be->matmul_backward(be, a->dln, model_g(m, P->q), model_g(m, P->q_b), dq, L->ln1,
                                model_w(m, P->q), T, C, qd, 0);
            be->matmul_backward(be, a->dln, model_g(m, P->k), model_g(m, P->k_b), dk, L->ln1,
                                model_w(m, P->k), T, C, kvd, 1);
            be->matmul_backward(be, a->dln, model_g(m, P->v), model_g(m, P->v_b), a->dv,
                                L->ln1, model_w(m, P->v), T, C, kvd, 1);
        }
        be->rmsnorm_backward(be, a->dresid, model_g(m, P->ln1), a->dln, a->resid[l], model_w(m, P->ln1),
                             L->rstd1, T, C, 1);
    }
    if (m->grads) be->embedding_backward(be, model_g(m, m->embed), a->dresid, a->ids, T, C);
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "backward on %s: %s", be->name, e);
        return -1;
    }
    return 0;
}

static int check_forward(const model *m, int head, char *err, size_t errlen) {
    const model_acts *a = m->acts;
    if (!a->block || !a->with_backward || a->head != head) {
        snprintf(err, errlen, "%s: the last forward was not %s with_backward",
                 head ? "model_backward" : "model_backward_hidden",
                 head ? "model_forward" : "model_forward_hidden");
        return -1;
    }
    return 0;
}

int model_backward(model *m, const float *dlogp, const float *dentropy, char *err,
                   size_t errlen) {
    if (check_forward(m, 1, err, errlen)) return -1;
    model_acts *a = m->acts;
    const model_config *c = &m->cfg;
    m->be->lmhead_backward(m->be, a->dln, model_g(m, m->lm_head), dlogp, dentropy, a->lnf,
                           model_w(m, m->lm_head), a->targets, a->lse_lm, a->entropy, a->T,
                           c->hidden_size, c->vocab_size, a->inv_temp);
    return backward_trunk(m, err, errlen);
}

int model_backward_hidden(model *m, const void *dhidden, char *err, size_t errlen) {
    if (check_forward(m, 0, err, errlen)) return -1;
    model_acts *a = m->acts;
    m->be->copy(m->be, a->dln, dhidden, (size_t)a->T * m->cfg.hidden_size * m->be->act_size);
    return backward_trunk(m, err, errlen);
}
