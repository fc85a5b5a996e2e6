/*
 * engine/model/layer.c — one decoder layer's forward, shared by the training forward
 * (forward.c, packed causal attention) and the cached generation forward (kv_cache.c,
 * paged KV-cache attention); only the attention call differs, passed in as a callback.
 *   ln1 = rmsnorm(x); q,k,v = ln1·Wᵀ (+b); [Qwen3: q,k = rmsnorm per head]; rope(q,k)
 *   att = attention(q,k,v); mid = x + att·Woᵀ (+b)
 *   ln2 = rmsnorm(mid); h = silu(ln2·Wgᵀ) ⊙ (ln2·Wuᵀ); x' = mid + h·Wdᵀ
 * With stacked projections (model.stacked_qkv / stacked_gate_up) q, k, v come from one
 * GEMM over the stacked weights, split (and rotated) by qkv_split, and gate, up from one
 * GEMM read by swiglu_packed_forward: 4 GEMMs per layer instead of 7. The two residual
 * adds are fused with the RMSNorm that follows each (add_rmsnorm_forward): ln2 here, and
 * the next layer's ln1 (or the final norm) through `next`. In generation the split also
 * stores k and v into the KV cache (`kv`, qkv_split_store) where they are final there;
 * with the residual add deferred to this layer (`x_add`), the add, the input norm, the
 * q|k|v GEMM and that split are one op (add_rmsnorm_qkv_store) where the backend has it
 * and fuses it at this many rows (be->qkv_store_fused_rows); else, in a decode step, the
 * split can go into the cached attention instead (qkv_attention_cached, kv->attend_qkv;
 * until session 22 only layer 0 took it above 8 rows on CUDA, the others the two ops).
 */
#include "engine/model/acts.h"


/* sum = a + b (sum may alias a), ln = rmsnorm(sum)·w: one op where the backend has it. */
static void add_norm(rlvr_backend *be, void *sum, void *ln, float *rstd, const void *a,
                     const void *b, const void *w, int T, int C, float eps) {
    if (be->add_rmsnorm_forward) {
        be->add_rmsnorm_forward(be, sum, ln, rstd, a, b, w, T, C, eps);
        return;
    }
    be->add(be, sum, a, b, (size_t)T * C);
    be->rmsnorm_forward(be, ln, rstd, sum, w, T, C, eps);
}

/* mid += x; ln2 = rmsnorm(mid)·w; h = silu(ln2·Wgᵀ) ⊙ (ln2·Wuᵀ) (gu keeps the two
 * projections): one op where the backend fuses them (add_rmsnorm_swiglu), else the
 * pieces. */
static void residual_norm_swiglu(model *m, const model_layer_params *P, layer_acts *L,
                                 const void *x, int T) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    const int C = c->hidden_size, I = c->intermediate_size;
    const float eps = c->rms_norm_eps;
    if (m->stacked_gate_up && be->add_rmsnorm_swiglu) {
        be->add_rmsnorm_swiglu(be, L->mid, L->ln2, L->rstd2, L->mid, x, model_w(m, P->ln2), eps,
                               L->h, L->gu, model_w(m, P->gate), T, C, I);
        return;
    }
    add_norm(be, L->mid, L->ln2, L->rstd2, L->mid, x, model_w(m, P->ln2), T, C, eps);
    if (m->stacked_gate_up) {
        if (be->matmul_swiglu_forward) {
            be->matmul_swiglu_forward(be, L->h, L->gu, L->ln2, model_w(m, P->gate), T, C, I);
        } else {
            be->matmul_forward(be, L->gu, L->ln2, model_w(m, P->gate), NULL, T, C, 2 * I);
            be->swiglu_packed_forward(be, L->h, L->gu, T, I);
        }
    } else {
        void *up = model_up_of(m, L->gu, T);
        be->matmul_forward(be, L->gu, L->ln2, model_w(m, P->gate), NULL, T, C, I);
        be->matmul_forward(be, up, L->ln2, model_w(m, P->up), NULL, T, C, I);
        be->swiglu_forward(be, L->h, L->gu, up, (size_t)T * I);
    }
}

int model_layer_forward(model *m, int l, layer_acts *L, void *x, void *x_next, int T,
                        const int *pos, model_attention_fn attention, void *ctx, int ln1_ready,
                        const model_norm_dst *next, model_kv_dst *kv, const void *x_add) {
    const model_config *c = &m->cfg;
    rlvr_backend *be = m->be;
    const model_layer_params *P = &m->layers[l];
    const int C = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
    const int Hq = c->num_heads, Hkv = c->num_kv_heads, qd = Hq * D, kvd = Hkv * D;
    const float eps = c->rms_norm_eps;
    void *qkv = m->acts->qkv;
    void *q_out = c->qk_norm ? L->qpre : L->q, *k_out = c->qk_norm ? L->kpre : L->k;
    /* 1: the stacked q|k|v GEMM already ran (fused with the input norm); 2: its split and
     * cache store too */
    int qkv_done = 0;
    /* the attention can take the q|k|v split and cache store (qkv_attention_cached) */
    const int attend = kv && kv->attend_qkv && !c->qk_norm && be->qkv_attention_cached;
    if (x_add) { /* x += x_add, then the input norm (+ the q|k|v GEMM, + its split) */
        if (m->stacked_qkv && kv && !c->qk_norm && be->add_rmsnorm_qkv_store &&
            (!attend || T <= be->qkv_store_fused_rows)) {
            be->add_rmsnorm_qkv_store(be, x, L->ln1, L->rstd1, x, x_add, model_w(m, P->ln1),
                                      eps, qkv, model_w(m, P->q), model_w(m, P->q_b), q_out,
                                      k_out, L->v, kv->k_cache, kv->v_cache, kv->slots, pos,
                                      m->inv_freq, T, C, Hq, Hkv, D);
            kv->stored = 1;
            qkv_done = 2;
        } else if (m->stacked_qkv && be->add_rmsnorm_matmul) {
            be->add_rmsnorm_matmul(be, x, L->ln1, L->rstd1, x, x_add, model_w(m, P->ln1), eps,
                                   qkv, model_w(m, P->q), model_w(m, P->q_b), T, C,
                                   qd + 2 * kvd);
            qkv_done = 1;
        } else {
            add_norm(be, x, L->ln1, L->rstd1, x, x_add, model_w(m, P->ln1), T, C, eps);
        }
    } else if (!ln1_ready) {
        be->rmsnorm_forward(be, L->ln1, L->rstd1, x, model_w(m, P->ln1), T, C, eps);
    }
    if (m->stacked_qkv) {
        if (!qkv_done)
            be->matmul_forward(be, qkv, L->ln1, model_w(m, P->q), model_w(m, P->q_b), T, C,
                               qd + 2 * kvd);
        /* rotated here unless the per-head norms come first; k and v stored into the
         * cache in the same pass when they are final here */
        if (qkv_done == 2) {
            /* split and stored by add_rmsnorm_qkv_store */
        } else if (attend) {
            kv->stored = 2; /* split, rotated and stored by the attention (qkv in acts) */
        } else if (kv && !c->qk_norm && be->qkv_split_store) {
            be->qkv_split_store(be, q_out, k_out, L->v, kv->k_cache, kv->v_cache, kv->slots,
                                qkv, pos, m->inv_freq, T, Hq, Hkv, D);
            kv->stored = 1;
        } else {
            be->qkv_split(be, q_out, k_out, L->v, qkv, c->qk_norm ? NULL : pos, m->inv_freq,
                          T, Hq, Hkv, D);
        }
    } else {
        be->matmul_forward(be, q_out, L->ln1, model_w(m, P->q), model_w(m, P->q_b), T, C, qd);
        be->matmul_forward(be, k_out, L->ln1, model_w(m, P->k), model_w(m, P->k_b), T, C, kvd);
        be->matmul_forward(be, L->v, L->ln1, model_w(m, P->v), model_w(m, P->v_b), T, C, kvd);
    }
    if (c->qk_norm) {
        be->rmsnorm_forward(be, L->q, L->rstdq, L->qpre, model_w(m, P->q_norm), T * Hq, D, eps);
        be->rmsnorm_forward(be, L->k, L->rstdk, L->kpre, model_w(m, P->k_norm), T * Hkv, D, eps);
    }
    if (c->qk_norm || !m->stacked_qkv) {
        be->rope_forward(be, L->q, pos, m->inv_freq, T, Hq, D);
        be->rope_forward(be, L->k, pos, m->inv_freq, T, Hkv, D);
    }
    attention(m, l, L, ctx); /* q, k, v → att */
    be->matmul_forward(be, L->mid, L->att, model_w(m, P->o), model_w(m, P->o_b), T, qd, C);
    residual_norm_swiglu(m, P, L, x, T);
    be->matmul_forward(be, x_next, L->h, model_w(m, P->down), NULL, T, I, C);
    if (next && next->defer) return 2; /* x_next + mid: the next layer's x_add */
    if (next && be->add_rmsnorm_forward) {
        be->add_rmsnorm_forward(be, x_next, next->out, next->rstd, x_next, L->mid, next->w, T,
                                C, eps);
        return 1;
    }
    be->add(be, x_next, x_next, L->mid, (size_t)T * C);
    return 0;
}
