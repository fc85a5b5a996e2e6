/*
 * engine/model/forward.c — the transformer forward over a packed batch, as op-table
 * calls. Per layer (pre-norm):
 *   ln1 = rmsnorm(x); q,k,v = ln1·Wᵀ (+b); [Qwen3: q,k = rmsnorm per head]; rope(q,k)
 *   att = causal_gqa_attention(q,k,v); mid = x + att·Woᵀ (+b)
 *   ln2 = rmsnorm(mid); h = silu(ln2·Wgᵀ) ⊙ (ln2·Wuᵀ); x' = mid + h·Wdᵀ
 * then lnf = rmsnorm(x_L) and the fused LM head gives logp/entropy of the next tokens.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine/model/acts.h"

#define W(m, idx) ((idx) < 0 ? NULL : (const char *)(m)->weights + (m)->params[idx].offset * (m)->be->act_size)

/* Validates the batch and uploads ids, positions, next-token targets and offsets. */
static int upload_batch(model *m, const model_batch *b, char *err, size_t errlen) {
    model_acts *a = m->acts;
    const int T = b->T, B = b->B, V = m->cfg.vocab_size;
    if (B < 1 || T < 1 || b->offsets[0] != 0 || b->offsets[B] != T) {
        snprintf(err, errlen, "batch: offsets must start at 0 and end at T = %d (got %d..%d, B = %d)",
                 T, B >= 0 ? b->offsets[0] : -1, B >= 0 ? b->offsets[B] : -1, B);
        return -1;
    }
    int32_t *host = malloc((size_t)T * 3 * sizeof(int32_t));
    if (!host) {
        snprintf(err, errlen, "batch: out of host memory");
        return -1;
    }
    int32_t *pos = host + T, *tgt = host + 2 * T;
    int max_len = 0;
    for (int s = 0; s < B; s++) {
        const int lo = b->offsets[s], hi = b->offsets[s + 1];
        if (hi <= lo) {
            snprintf(err, errlen, "batch: sequence %d is empty (offsets %d..%d)", s, lo, hi);
            free(host);
            return -1;
        }
        if (hi - lo > max_len) max_len = hi - lo;
        for (int t = lo; t < hi; t++) {
            pos[t] = t - lo;
            tgt[t] = t + 1 < hi ? b->ids[t + 1] : -1;
        }
    }
    for (int t = 0; t < T; t++) {
        if (b->ids[t] < 0 || b->ids[t] >= V) {
            snprintf(err, errlen, "batch: token id %d at position %d is outside the vocabulary [0, %d)",
                     b->ids[t], t, V);
            free(host);
            return -1;
        }
        host[t] = b->ids[t];
    }
    rlvr_backend *be = m->be;
    be->to_device(be, a->ids, host, (size_t)T * 4);
    be->to_device(be, a->pos, pos, (size_t)T * 4);
    be->to_device(be, a->targets, tgt, (size_t)T * 4);
    be->to_device(be, a->offsets, b->offsets, ((size_t)B + 1) * 4);
    be->sync(be); /* host buffer is freed next */
    free(host);
    a->T = T;
    a->B = B;
    a->max_len = max_len;
    return 0;
}

int model_forward(model *m, const model_batch *b, float inv_temp, int with_backward, char *err,
                  size_t errlen) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    if (model_acts_reserve(m, b->T, b->B, with_backward, err, errlen)) return -1;
    if (upload_batch(m, b, err, errlen)) return -1;
    model_acts *a = m->acts;
    a->with_backward = with_backward;
    a->inv_temp = inv_temp;
    const int T = a->T, C = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
    const int Hq = c->num_heads, Hkv = c->num_kv_heads;
    const int qd = Hq * D, kvd = Hkv * D;
    const float eps = c->rms_norm_eps;

    be->embedding_forward(be, a->resid[0], a->ids, W(m, m->embed), T, C);
    for (int l = 0; l < c->num_layers; l++) {
        const model_layer_params *P = &m->layers[l];
        layer_acts *L = &a->layers[with_backward ? l : 0];
        void *x = a->resid[with_backward ? l : (l & 1)];
        void *x_next = a->resid[with_backward ? l + 1 : ((l + 1) & 1)];
        be->rmsnorm_forward(be, L->ln1, L->rstd1, x, W(m, P->ln1), T, C, eps);
        void *q_out = c->qk_norm ? L->qpre : L->q, *k_out = c->qk_norm ? L->kpre : L->k;
        be->matmul_forward(be, q_out, L->ln1, W(m, P->q), W(m, P->q_b), T, C, qd);
        be->matmul_forward(be, k_out, L->ln1, W(m, P->k), W(m, P->k_b), T, C, kvd);
        be->matmul_forward(be, L->v, L->ln1, W(m, P->v), W(m, P->v_b), T, C, kvd);
        if (c->qk_norm) {
            be->rmsnorm_forward(be, L->q, L->rstdq, L->qpre, W(m, P->q_norm), T * Hq, D, eps);
            be->rmsnorm_forward(be, L->k, L->rstdk, L->kpre, W(m, P->k_norm), T * Hkv, D, eps);
        }
        be->rope_forward(be, L->q, a->pos, m->inv_freq, T, Hq, D);
        be->rope_forward(be, L->k, a->pos, m->inv_freq, T, Hkv, D);
        be->attention_forward(be, L->att, L->lse, L->q, L->k, L->v, a->offsets, a->B, T, Hq, Hkv,
                              D, a->max_len);
        be->matmul_forward(be, L->mid, L->att, W(m, P->o), W(m, P->o_b), T, qd, C);
        be->add(be, L->mid, L->mid, x, (size_t)T * C);
        be->rmsnorm_forward(be, L->ln2, L->rstd2, L->mid, W(m, P->ln2), T, C, eps);
        be->matmul_forward(be, L->gate, L->ln2, W(m, P->gate), NULL, T, C, I);
        be->matmul_forward(be, L->up, L->ln2, W(m, P->up), NULL, T, C, I);
        be->swiglu_forward(be, L->h, L->gate, L->up, (size_t)T * I);
        be->matmul_forward(be, x_next, L->h, W(m, P->down), NULL, T, I, C);
        be->add(be, x_next, x_next, L->mid, (size_t)T * C);
    }
    void *xL = a->resid[with_backward ? c->num_layers : (c->num_layers & 1)];
    be->rmsnorm_forward(be, a->lnf, a->rstdf, xL, W(m, m->final_norm), T, C, eps);
    be->lmhead_forward(be, a->logp, a->entropy, a->lse_lm, a->lnf, W(m, m->lm_head), a->targets,
                       T, C, c->vocab_size, inv_temp);
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "forward on %s: %s", be->name, e);
        return -1;
    }
    return 0;
}

const float *model_logp(const model *m) { return m->acts->logp; }
const float *model_entropy(const model *m) { return m->acts->entropy; }
