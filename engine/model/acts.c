/*
 * engine/model/acts.c — sizing and carving of the activation block (see acts.h).
 */
#include "engine/model/acts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

model_acts *model_acts_create(void) { return calloc(1, sizeof(model_acts)); }

void model_acts_free(model_acts *a, rlvr_backend *be) {
    if (!a) return;
    if (be) be->free(be, a->block);
    free(a->resid);
    free(a->layers);
    free(a);
}

/* A bump allocator over the block; with base == NULL it only measures. */
typedef struct {
    char *base;
    size_t used;
} carver;

static void *carve(carver *c, size_t bytes) {
    void *p = c->base ? c->base + c->used : NULL;
    c->used += (bytes + 255) / 256 * 256;
    return p;
}

static void layout(model_acts *a, const model_config *cfg, size_t as, int T, int B, int sets,
                   carver *c) {
    const size_t C = cfg->hidden_size, I = cfg->intermediate_size;
    const size_t qd = (size_t)cfg->num_heads * cfg->head_dim;
    const size_t kvd = (size_t)cfg->num_kv_heads * cfg->head_dim;
    const size_t t = (size_t)T, f = sizeof(float);
    a->ids = carve(c, t * 4);
    a->pos = carve(c, t * 4);
    a->targets = carve(c, t * 4);
    a->offsets = carve(c, ((size_t)B + 1) * 4);
    for (int l = 0; l <= sets; l++) a->resid[l] = carve(c, t * C * as);
    for (int l = 0; l < sets; l++) {
        layer_acts *L = &a->layers[l];
        L->ln1 = carve(c, t * C * as);
        L->q = carve(c, t * qd * as);
        L->k = carve(c, t * kvd * as);
        L->v = carve(c, t * kvd * as);
        L->qpre = cfg->qk_norm ? carve(c, t * qd * as) : NULL;
        L->kpre = cfg->qk_norm ? carve(c, t * kvd * as) : NULL;
        L->att = carve(c, t * qd * as);
        L->mid = carve(c, t * C * as);
        L->ln2 = carve(c, t * C * as);
        L->gu = carve(c, t * 2 * I * as);
        L->h = carve(c, t * I * as);
        L->rstd1 = carve(c, t * f);
        L->rstdq = cfg->qk_norm ? carve(c, t * cfg->num_heads * f) : NULL;
        L->rstdk = cfg->qk_norm ? carve(c, t * cfg->num_kv_heads * f) : NULL;
        L->lse = carve(c, t * cfg->num_heads * f);
        L->rstd2 = carve(c, t * f);
    }
    a->lnf = carve(c, t * C * as);
    a->qkv = carve(c, t * (qd + 2 * kvd) * as);
    a->rstdf = carve(c, t * f);
    a->logp = carve(c, t * f);
    a->entropy = carve(c, t * f);
    a->lse_lm = carve(c, t * f);
    const int bw = sets > 1 || cfg->num_layers == 1;
    a->dresid = bw ? carve(c, t * C * as) : NULL;
    a->dln = bw ? carve(c, t * C * as) : NULL;
    a->datt = bw ? carve(c, t * qd * as) : NULL;
    a->dq = bw ? carve(c, t * qd * as) : NULL;
    a->dk = bw ? carve(c, t * kvd * as) : NULL;
    a->dv = bw ? carve(c, t * kvd * as) : NULL;
    a->dqpre = bw && cfg->qk_norm ? carve(c, t * qd * as) : NULL;
    a->dkpre = bw && cfg->qk_norm ? carve(c, t * kvd * as) : NULL;
    a->dh = bw ? carve(c, t * I * as) : NULL;
    a->dgu = bw ? carve(c, t * 2 * I * as) : NULL;
    a->dqkv = bw ? carve(c, t * (qd + 2 * kvd) * as) : NULL;
}

size_t model_activation_bytes(const model_config *cfg, int T, size_t act_size) {
    model_acts a = {0};
    a.resid = calloc((size_t)cfg->num_layers + 1, sizeof(void *));
    a.layers = calloc((size_t)cfg->num_layers, sizeof(layer_acts));
    carver c = {NULL, 0};
    if (a.resid && a.layers) layout(&a, cfg, act_size, T, 1, cfg->num_layers, &c);
    free(a.resid);
    free(a.layers);
    return c.used;
}

int model_acts_reserve(model *m, int T, int B, int with_backward, char *err, size_t errlen) {
    model_acts *a = m->acts;
    const int sets = with_backward ? m->cfg.num_layers : 1;
    if (a->block && T <= a->T_cap && B <= a->B_cap && sets <= a->sets) return 0;
    rlvr_backend *be = m->be;
    be->free(be, a->block);
    a->block = NULL;
    /* grow geometrically so a slowly rising T does not reallocate every step */
    int Tn = T > a->T_cap ? (T > a->T_cap * 5 / 4 ? T : a->T_cap * 5 / 4) : a->T_cap;
    int Bn = B > a->B_cap ? (B > a->B_cap * 5 / 4 ? B : a->B_cap * 5 / 4) : a->B_cap;
    int Sn = sets > a->sets ? sets : a->sets;
    free(a->resid);
    free(a->layers);
    a->resid = calloc((size_t)Sn + 1, sizeof(void *));
    a->layers = calloc((size_t)Sn, sizeof(layer_acts));
    if (!a->resid || !a->layers) {
        snprintf(err, errlen, "model: out of host memory");
        return -1;
    }
    carver c = {NULL, 0};
    layout(a, &m->cfg, be->act_size, Tn, Bn, Sn, &c);
    a->block = be->alloc(be, c.used);
    if (!a->block) {
        snprintf(err, errlen, "model: cannot allocate %.1f MiB of activations for %d tokens on %s",
                 c.used / 1048576.0, Tn, be->name);
        a->T_cap = a->B_cap = a->sets = 0;
        return -1;
    }
    c.base = a->block;
    c.used = 0;
    layout(a, &m->cfg, be->act_size, Tn, Bn, Sn, &c);
    a->T_cap = Tn;
    a->B_cap = Bn;
    a->sets = Sn;
    return 0;
}
