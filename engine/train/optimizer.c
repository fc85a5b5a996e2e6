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
    rlvr_backend *be = m->be;
    o->cfg = *cfg;
    o->step = 0;
    o->m = be->alloc(be, m->n_weights * sizeof(float));
    o->v = be->alloc(be, m->n_weights * sizeof(float));
    if (!o->m || !o->v) {
        snprintf(err, errlen, "optimizer: cannot allocate %.1f MiB of AdamW state on %s",
                 m->n_weights * 8.0 / 1048576, be->name);
        optim_free(o, m);
        return -1;
    }
    be->zero(be, o->m, m->n_weights * sizeof(float));
    be->zero(be, o->v, m->n_weights * sizeof(float));
    return 0;
}

void optim_free(optimizer *o, const model *m) {
    m->be->free(m->be, o->m);
    m->be->free(m->be, o->v);
    o->m = o->v = NULL;
}

int optim_step(optimizer *o, model *m, float lr, float grad_scale, double *grad_norm, char *err,
               size_t errlen) {
    rlvr_backend *be = m->be;
    if (!m->grads) {
        snprintf(err, errlen, "optimizer: the model has no gradients");
        return -1;
    }
    const double norm = sqrt(be->sumsq(be, m->grads, m->n_weights)) * fabs(grad_scale);
    *grad_norm = norm;
    if (!isfinite(norm)) {
        snprintf(err, errlen, "optimizer: gradient norm is %g; update skipped", norm);
        return -1;
    }
    float scale = grad_scale;
    if (o->cfg.max_grad_norm > 0 && norm > o->cfg.max_grad_norm)
        scale *= (float)(o->cfg.max_grad_norm / (norm + 1e-6));
    o->step++;
    const optim_config *c = &o->cfg;
    /* [0, n_decay): matrices with weight decay; [n_decay, n): norms and biases. */
    const size_t split = m->n_decay, n = m->n_weights;
    char *w = m->weights;
    be->adamw(be, w, m->master, m->grads, o->m, o->v, split, lr, c->beta1, c->beta2, c->eps,
              c->weight_decay, scale, o->step);
    be->adamw(be, w + split * be->act_size, m->master ? m->master + split : NULL,
              m->grads + split, o->m + split, o->v + split, n - split, lr, c->beta1, c->beta2,
              c->eps, 0.0f, scale, o->step);
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "optimizer step on %s: %s", be->name, e);
        return -1;
    }
    return 0;
}
