/*
 * engine/train/optimizer.c — see optimizer.h.
 */
#include "engine/train/optimizer.h"

#include <math.h>
#include <stdio.h>

optim_config optim_default_config(void) {
    optim_config c = {.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                      .max_grad_norm = 1.0f};
    return c;
}

int optim_create(optimizer *o, const model *m, const optim_config *cfg, char *err,
                 size_t errlen) {
    return optim_create_range(o, m, cfg, 0, m->n_weights, err, errlen);
}

int optim_create_range(optimizer *o, const model *m, const optim_config *cfg, size_t lo,
                       size_t hi, char *err, size_t errlen) {
    rlvr_backend *be = m->be;
    o->cfg = *cfg;
    o->step = 0;
    o->m = o->v = NULL;
    if (lo >= hi || hi > m->n_weights) {
        snprintf(err, errlen, "optimizer: weight range [%zu, %zu) of a model of %zu weights", lo,
                 hi, m->n_weights);
        return -1;
    }
    o->lo = lo;
    o->hi = hi;
    const size_t n = hi - lo;
    o->m = be->alloc(be, n * sizeof(float));
    o->v = be->alloc(be, n * sizeof(float));
    if (!o->m || !o->v) {
        snprintf(err, errlen, "optimizer: cannot allocate %.1f MiB of AdamW state on %s",
                 n * 8.0 / 1048576, be->name);
        optim_free(o, m);
        return -1;
    }
    be->zero(be, o->m, n * sizeof(float));
    be->zero(be, o->v, n * sizeof(float));
    return 0;
}

size_t optim_state_bytes(const optimizer *o) { return o->m ? (o->hi - o->lo) * 2 * sizeof(float) : 0; }

void optim_free(optimizer *o, const model *m) {
    m->be->free(m->be, o->m);
    m->be->free(m->be, o->v);
    o->m = o->v = NULL;
}

float optim_clip_scale(const optimizer *o, double norm, float grad_scale) {
    float scale = grad_scale;
    if (o->cfg.max_grad_norm > 0 && norm > o->cfg.max_grad_norm)
        scale *= (float)(o->cfg.max_grad_norm / (norm + 1e-6));
    return scale;
}

int optim_update(optimizer *o, model *m, const float *grads, float lr, float scale, char *err,
                 size_t errlen) {
    rlvr_backend *be = m->be;
    o->step++;
    const optim_config *c = &o->cfg;
    /* [0, n_decay): matrices with weight decay; [n_decay, n): norms and biases. This
     * range [lo, hi) takes its part of each. */
    const size_t lo = o->lo, hi = o->hi, split = m->n_decay;
    const size_t d_hi = split < lo ? lo : split > hi ? hi : split; /* [lo, d_hi) decays */
    char *w = m->weights;
    if (d_hi > lo)
        be->adamw(be, w + lo * be->act_size, m->master ? m->master + lo : NULL, grads, o->m, o->v,
                  d_hi - lo, lr, c->beta1, c->beta2, c->eps, c->weight_decay, scale, o->step);
    if (hi > d_hi)
        be->adamw(be, w + d_hi * be->act_size, m->master ? m->master + d_hi : NULL,
                  grads + (d_hi - lo), o->m + (d_hi - lo), o->v + (d_hi - lo), hi - d_hi, lr,
                  c->beta1, c->beta2, c->eps, 0.0f, scale, o->step);
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "optimizer step on %s: %s", be->name, e);
        return -1;
    }
    return 0;
}

int optim_step(optimizer *o, model *m, float lr, float grad_scale, double *grad_norm, char *err,
               size_t errlen) {
    rlvr_backend *be = m->be;
    if (!m->grads) {
        snprintf(err, errlen, "optimizer: the model has no gradients");
        return -1;
    }
    if (o->lo != 0 || o->hi != m->n_weights) {
        snprintf(err, errlen, "optimizer: optim_step needs the whole model; this optimizer "
                 "holds weights [%zu, %zu) of %zu", o->lo, o->hi, m->n_weights);
        return -1;
    }
    const double norm = sqrt(be->sumsq(be, m->grads, m->n_weights)) * fabs(grad_scale);
    *grad_norm = norm;
    if (!isfinite(norm)) {
        snprintf(err, errlen, "optimizer: gradient norm is %g; update skipped", norm);
        return -1;
    }
    return optim_update(o, m, m->grads, lr, optim_clip_scale(o, norm, grad_scale), err, errlen);
}
