/*
 * engine/train/critic.c — see critic.h.
 */
#include "engine/train/critic.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/builtin.h"

int critic_create(const char *model_spec, rlvr_backend *be, const optim_config *oc, critic *c,
                  char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    if (model_open(model_spec, be, &c->m, err, errlen) || model_enable_grads(c->m, err, errlen) ||
        optim_create(&c->opt, c->m, oc, err, errlen))
        goto fail;
    c->has_opt = 1;
    const int C = c->m->cfg.hidden_size;
    c->w = be->alloc(be, (size_t)C * be->act_size);
    c->b = be->alloc(be, be->act_size);
    c->g = be->alloc(be, (size_t)(C + 1) * sizeof(float));
    c->mom = be->alloc(be, (size_t)(C + 1) * sizeof(float));
    c->vel = be->alloc(be, (size_t)(C + 1) * sizeof(float));
    if (be->act_dtype != RLVR_DTYPE_F32) c->master = be->alloc(be, (size_t)(C + 1) * sizeof(float));
    if (!c->w || !c->b || !c->g || !c->mom || !c->vel ||
        (be->act_dtype != RLVR_DTYPE_F32 && !c->master)) {
        snprintf(err, errlen, "critic: out of %s memory", be->name);
        goto fail;
    }
    be->zero(be, c->w, (size_t)C * be->act_size);
    be->zero(be, c->b, be->act_size);
    be->zero(be, c->g, (size_t)(C + 1) * sizeof(float));
    be->zero(be, c->mom, (size_t)(C + 1) * sizeof(float));
    be->zero(be, c->vel, (size_t)(C + 1) * sizeof(float));
    if (c->master) be->zero(be, c->master, (size_t)(C + 1) * sizeof(float));
    return 0;
fail:
    critic_free(c);
    return -1;
}

void critic_free(critic *c) {
    if (!c->m) return;
    rlvr_backend *be = c->m->be;
    void *bufs[] = {c->w, c->b, c->g, c->mom, c->vel, c->master, c->values, c->dvalues, c->dhidden};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->free(be, bufs[i]);
    if (c->has_opt) optim_free(&c->opt, c->m);
    model_free(c->m);
    memset(c, 0, sizeof *c);
}

static int reserve(critic *c, int T, char *err, size_t errlen) {
    if (T <= c->cap) return 0;
    rlvr_backend *be = c->m->be;
    be->free(be, c->values);
    be->free(be, c->dvalues);
    be->free(be, c->dhidden);
    c->values = be->alloc(be, (size_t)T * be->act_size);
    c->dvalues = be->alloc(be, (size_t)T * be->act_size);
    c->dhidden = be->alloc(be, (size_t)T * c->m->cfg.hidden_size * be->act_size);
    c->cap = c->values && c->dvalues && c->dhidden ? T : 0;
    if (!c->cap) snprintf(err, errlen, "critic: out of %s memory for %d tokens", be->name, T);
    return c->cap ? 0 : -1;
}

int critic_values(critic *c, const model_batch *b, int with_backward, float *values_host,
                  char *err, size_t errlen) {
    rlvr_backend *be = c->m->be;
    if (reserve(c, b->T, err, errlen) ||
        model_forward_hidden(c->m, b, with_backward, err, errlen))
        return -1;
    be->matmul_forward(be, c->values, model_hidden(c->m), c->w, c->b, b->T,
                       c->m->cfg.hidden_size, 1);
    be->act_to_f32(be, values_host, c->values, (size_t)b->T);
    return 0;
}

int critic_backward(critic *c, const float *dvalues_host, char *err, size_t errlen) {
    rlvr_backend *be = c->m->be;
    const int C = c->m->cfg.hidden_size, T = model_tokens(c->m);
    be->act_from_f32(be, c->dvalues, dvalues_host, (size_t)T);
    /* V = h·wᵀ + b: dh = dV·w (written), dw += dVᵀ·h, db += Σ dV */
    be->matmul_backward(be, c->dhidden, c->g, c->g + C, c->dvalues, model_hidden(c->m), c->w, T,
                        C, 1, 0);
    return model_backward_hidden(c->m, c->dhidden, err, errlen);
}

int critic_step(critic *c, float lr, double *grad_norm, char *err, size_t errlen) {
    rlvr_backend *be = c->m->be;
    const int C = c->m->cfg.hidden_size;
    const optim_config *oc = &c->opt.cfg;
    /* one global norm over trunk and head */
    const double head_sq = be->sumsq(be, c->g, (size_t)C + 1);
    const double trunk_sq = be->sumsq(be, c->m->grads, c->m->n_weights);
    const double norm = sqrt(head_sq + trunk_sq);
    *grad_norm = norm;
    if (!isfinite(norm)) {
        snprintf(err, errlen, "critic: gradient norm is %g; update skipped", norm);
        return -1;
    }
    float scale = 1.0f;
    if (oc->max_grad_norm > 0 && norm > oc->max_grad_norm)
        scale = (float)(oc->max_grad_norm / (norm + 1e-6));
    /* the trunk: optim_step clips by its own norm, so hand it the joint scale instead */
    optimizer *o = &c->opt;
    const optim_config saved = o->cfg;
    o->cfg.max_grad_norm = 0;
    double trunk_norm;
    int rc = optim_step(o, c->m, lr, scale, &trunk_norm, err, errlen);
    o->cfg = saved;
    if (rc) return -1;
    c->hstep++;
    /* head weights are not decayed (a 1-row projection) */
    if (c->master) {
        be->adamw(be, c->w, c->master, c->g, c->mom, c->vel, (size_t)C, lr, oc->beta1, oc->beta2,
                  oc->eps, 0.0f, scale, c->hstep);
        be->adamw(be, c->b, c->master + C, c->g + C, c->mom + C, c->vel + C, 1, lr, oc->beta1,
                  oc->beta2, oc->eps, 0.0f, scale, c->hstep);
    } else {
        be->adamw(be, c->w, NULL, c->g, c->mom, c->vel, (size_t)C, lr, oc->beta1, oc->beta2,
                  oc->eps, 0.0f, scale, c->hstep);
        be->adamw(be, c->b, NULL, c->g + C, c->mom + C, c->vel + C, 1, lr, oc->beta1, oc->beta2,
                  oc->eps, 0.0f, scale, c->hstep);
    }
    model_zero_grads(c->m);
    be->zero(be, c->g, (size_t)(C + 1) * sizeof(float));
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "critic step on %s: %s", be->name, e);
        return -1;
    }
    return 0;
}

/* State layout (f32 unless noted): [2 × int64 steps] trunk weights[n], trunk m[n],
 * trunk v[n], head weights+bias[C+1], head m[C+1], head v[C+1]. */
static size_t state_len(const critic *c) {
    const size_t n = c->m->n_weights, h = (size_t)c->m->cfg.hidden_size + 1;
    return 2 * sizeof(int64_t) + (3 * n + 3 * h) * sizeof(float);
}

int critic_state_bytes(const critic *c, void **out, size_t *len, char *err, size_t errlen) {
    rlvr_backend *be = c->m->be;
    const size_t n = c->m->n_weights, C = (size_t)c->m->cfg.hidden_size;
    *len = state_len(c);
    char *buf = malloc(*len);
    if (!buf) {
        snprintf(err, errlen, "critic: out of host memory for its checkpoint state");
        return -1;
    }
    int64_t steps[2] = {c->opt.step, c->hstep};
    memcpy(buf, steps, sizeof steps);
    float *f = (float *)(buf + sizeof steps);
    for (int i = 0; i < c->m->n_params; i++) model_get_param(c->m, i, f + c->m->params[i].offset);
    be->to_host(be, f + n, c->opt.m, n * sizeof(float));
    be->to_host(be, f + 2 * n, c->opt.v, n * sizeof(float));
    float *h = f + 3 * n;
    if (c->master) {
        be->to_host(be, h, c->master, (C + 1) * sizeof(float));
    } else {
        be->to_host(be, h, c->w, C * sizeof(float));
        be->to_host(be, h + C, c->b, sizeof(float));
    }
    be->to_host(be, h + C + 1, c->mom, (C + 1) * sizeof(float));
    be->to_host(be, h + 2 * (C + 1), c->vel, (C + 1) * sizeof(float));
    *out = buf;
    return 0;
}

int critic_state_load(critic *c, const void *data, size_t len, char *err, size_t errlen) {
    rlvr_backend *be = c->m->be;
    const size_t n = c->m->n_weights, C = (size_t)c->m->cfg.hidden_size;
    if (len != state_len(c)) {
        snprintf(err, errlen, "critic state: %zu bytes, expected %zu for this model", len,
                 state_len(c));
        return -1;
    }
    int64_t steps[2];
    memcpy(steps, data, sizeof steps);
    /* the blob may sit at any alignment: read floats by byte offset */
    const char *f = (const char *)data + sizeof steps;
#define F_AT(i) (f + (size_t)(i) * sizeof(float))
    float *tmp = malloc((n > C + 1 ? n : C + 1) * sizeof(float));
    if (!tmp) {
        snprintf(err, errlen, "critic: out of host memory");
        return -1;
    }
    for (int i = 0; i < c->m->n_params; i++) {
        const model_param *p = &c->m->params[i];
        memcpy(tmp, F_AT(p->offset), p->numel * sizeof(float));
        model_set_param(c->m, i, tmp);
    }
    memcpy(tmp, F_AT(n), n * sizeof(float));
    be->to_device(be, c->opt.m, tmp, n * sizeof(float));
    memcpy(tmp, F_AT(2 * n), n * sizeof(float));
    be->to_device(be, c->opt.v, tmp, n * sizeof(float));
    memcpy(tmp, F_AT(3 * n), (C + 1) * sizeof(float));
    if (c->master) be->to_device(be, c->master, tmp, (C + 1) * sizeof(float));
    be->act_from_f32(be, c->w, tmp, C);
    be->act_from_f32(be, c->b, tmp + C, 1);
    memcpy(tmp, F_AT(3 * n + C + 1), (C + 1) * sizeof(float));
    be->to_device(be, c->mom, tmp, (C + 1) * sizeof(float));
    memcpy(tmp, F_AT(3 * n + 2 * (C + 1)), (C + 1) * sizeof(float));
    be->to_device(be, c->vel, tmp, (C + 1) * sizeof(float));
    free(tmp);
#undef F_AT
    c->opt.step = (int)steps[0];
    c->hstep = (int)steps[1];
    return 0;
}
