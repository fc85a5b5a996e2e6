/*
 * engine/model/forward.c — the transformer forward over a packed batch, as op-table
 * calls: embedding, the decoder layers (layer.c) with causal attention over the packed
 * sequences, then lnf = rmsnorm(x_L) and the fused LM head gives logp/entropy of the
 * next tokens.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine/model/acts.h"


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

/* Causal attention over the packed batch (offsets). */
static void packed_attention(model *m, int l, layer_acts *L, void *ctx) {
    (void)l;
    (void)ctx;
    const model_acts *a = m->acts;
    const model_config *c = &m->cfg;
    m->be->attention_forward(m->be, L->att, L->lse, L->q, L->k, L->v, a->offsets, a->B, a->T,
                             c->num_heads, c->num_kv_heads, c->head_dim, a->max_len);
}

/* Embedding, decoder layers and the final norm: acts->lnf holds the hidden states. */
static int forward_trunk(model *m, const model_batch *b, float inv_temp, int with_backward,
                         char *err, size_t errlen) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    if (model_acts_reserve(m, b->T, b->B, with_backward, err, errlen)) return -1;
    if (upload_batch(m, b, err, errlen)) return -1;
    model_acts *a = m->acts;
    a->with_backward = with_backward;
    a->inv_temp = inv_temp;
    const int T = a->T, C = c->hidden_size;
    const float eps = c->rms_norm_eps;

    be->embedding_forward(be, a->resid[0], a->ids, model_w(m, m->embed), T, C);
    int ready = 0; /* the layer's input norm was written by the layer before */
    for (int l = 0; l < c->num_layers; l++) {
        const int last = l + 1 == c->num_layers;
        layer_acts *L = &a->layers[with_backward ? l : 0];
        layer_acts *Ln = &a->layers[with_backward && !last ? l + 1 : 0];
        const model_norm_dst next =
            last ? (model_norm_dst){a->lnf, a->rstdf, model_w(m, m->final_norm), 0}
                 : (model_norm_dst){Ln->ln1, Ln->rstd1, model_w(m, m->layers[l + 1].ln1), 0};
        ready = model_layer_forward(m, l, L, a->resid[with_backward ? l : (l & 1)],
                                    a->resid[with_backward ? l + 1 : ((l + 1) & 1)], T, a->pos,
                                    packed_attention, NULL, ready, &next, NULL, NULL);
    }
    void *xL = a->resid[with_backward ? c->num_layers : (c->num_layers & 1)];
    if (!ready)
        be->rmsnorm_forward(be, a->lnf, a->rstdf, xL, model_w(m, m->final_norm), T, C, eps);
    a->head = 0;
    return 0;
}

static int check_backend(model *m, const char *what, char *err, size_t errlen) {
    const char *e = m->be->error(m->be);
    if (e) {
        snprintf(err, errlen, "%s on %s: %s", what, m->be->name, e);
        return -1;
    }
    return 0;
}

int model_forward(model *m, const model_batch *b, float inv_temp, int with_backward, char *err,
                  size_t errlen) {
    if (forward_trunk(m, b, inv_temp, with_backward, err, errlen)) return -1;
    model_acts *a = m->acts;
    const model_config *c = &m->cfg;
    m->be->lmhead_forward(m->be, a->logp, a->entropy, a->lse_lm, a->lnf,
                          model_w(m, m->lm_head), a->targets, a->T, c->hidden_size,
                          c->vocab_size, inv_temp);
    a->head = 1;
    return check_backend(m, "forward", err, errlen);
}

int model_forward_hidden(model *m, const model_batch *b, int with_backward, char *err,
                         size_t errlen) {
    if (forward_trunk(m, b, 1.0f, with_backward, err, errlen)) return -1;
    return check_backend(m, "forward", err, errlen);
}

const void *model_hidden(const model *m) { return m->acts->lnf; }
int model_tokens(const model *m) { return m->acts->T; }

const float *model_logp(const model *m) { return m->acts->logp; }
const float *model_entropy(const model *m) { return m->acts->entropy; }
