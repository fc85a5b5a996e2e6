/*
 * engine/runlog/checkpoint_load.c — opening a checkpoint directory and restoring the
 * weights, the optimizer state, the blobs and the scalars (see checkpoint.h).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/runlog/checkpoint.h"
#include "engine/runlog/ckpt_internal.h"

struct checkpoint {
    char *dir;
    long step;
    int optimizer_step, has_optimizer;
    size_t n_weights;
    cJSON *json;  /* trainer_state.json */
    st_set *st;   /* trainer_state.safetensors */
};

void checkpoint_close(checkpoint *c) {
    if (!c) return;
    st_close(c->st);
    cJSON_Delete(c->json);
    free(c->dir);
    free(c);
}

long checkpoint_step(const checkpoint *c) { return c->step; }
const char *checkpoint_dir(const checkpoint *c) { return c->dir; }

/* A non-negative integer field of trainer_state.json. */
static int json_count(const checkpoint *c, const char *path, const char *key, double max,
                      double *out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->json, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max ||
        v->valuedouble != (double)(long long)v->valuedouble) {
        snprintf(err, errlen, "%s: field \"%s\" must be an integer in [0, %.0f]", path, key, max);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

int checkpoint_open(const char *dir, checkpoint **out, char *err, size_t errlen) {
    *out = NULL;
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, CKPT_MARKER);
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: not a complete checkpoint (no %s marker: it was interrupted "
                 "while being written, or is not a checkpoint)", dir, CKPT_MARKER);
        return -1;
    }
    checkpoint *c = calloc(1, sizeof *c);
    if (!c || !(c->dir = strdup(dir))) {
        free(c);
        snprintf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s", dir, CKPT_STATE_JSON);
    char *text = NULL;
    size_t len = 0;
    if (fio_read_file(path, &text, &len, err, errlen)) goto fail;
    c->json = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(c->json)) {
        snprintf(err, errlen, "%s: not a JSON object", path);
        goto fail;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(c->json, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(c->json, "version");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, CKPT_FORMAT) != 0) {
        snprintf(err, errlen, "%s: field \"format\" must be \"%s\"", path, CKPT_FORMAT);
        goto fail;
    }
    if (!cJSON_IsNumber(ver) || ver->valuedouble != CKPT_VERSION) {
        snprintf(err, errlen, "%s: field \"version\" is %g; this rlvr reads version %d", path,
                 cJSON_IsNumber(ver) ? ver->valuedouble : -1.0, CKPT_VERSION);
        goto fail;
    }
    double v;
    if (json_count(c, path, "step", 9.0e15, &v, err, errlen)) goto fail;
    c->step = (long)v;
    if (json_count(c, path, "optimizer_step", 2147483647.0, &v, err, errlen)) goto fail;
    c->optimizer_step = (int)v;
    if (json_count(c, path, "n_weights", 9.0e15, &v, err, errlen)) goto fail;
    c->n_weights = (size_t)v;
    c->has_optimizer = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->json, "has_optimizer"));
    snprintf(path, sizeof path, "%s/%s", dir, CKPT_STATE_ST);
    if (st_open_file(path, &c->st, err, errlen)) goto fail;
    *out = c;
    return 0;
fail:
    checkpoint_close(c);
    return -1;
}

/* An F32 tensor of n elements from trainer_state.safetensors, or NULL + message. */
static const st_tensor *state_f32(const checkpoint *c, const char *name, size_t n, char *err,
                                  size_t errlen) {
    const st_tensor *t = st_find(c->st, name);
    if (!t) {
        snprintf(err, errlen, "%s/%s: tensor \"%s\" is missing", c->dir, CKPT_STATE_ST, name);
        return NULL;
    }
    if (t->dtype != ST_F32 || t->numel != (int64_t)n) {
        snprintf(err, errlen, "%s/%s: tensor \"%s\" is %s with %lld elements; expected F32 with "
                 "%zu (the model's weight count)", c->dir, CKPT_STATE_ST, name,
                 st_dtype_name(t->dtype), (long long)t->numel, n);
        return NULL;
    }
    return t;
}

int checkpoint_load_model(const checkpoint *c, model *m, char *err, size_t errlen) {
    if (c->n_weights != m->n_weights) {
        snprintf(err, errlen, "%s: the checkpoint holds %zu weights but the model has %zu "
                 "(a different model shape)", c->dir, c->n_weights, m->n_weights);
        return -1;
    }
    const st_tensor *master = NULL;
    if (st_find(c->st, "model.master") &&
        !(master = state_f32(c, "model.master", m->n_weights, err, errlen)))
        return -1;
    st_set *w = NULL;
    if (st_open_dir(c->dir, &w, err, errlen)) return -1;
    size_t maxn = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].numel > maxn) maxn = m->params[i].numel;
    float *buf = malloc(maxn * sizeof(float));
    int rc = -1;
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory loading weights", c->dir);
        goto done;
    }
    for (int i = 0; i < m->n_params; i++) {
        const model_param *p = &m->params[i];
        const st_tensor *t = st_find(w, p->name);
        if (!t) {
            snprintf(err, errlen, "%s: tensor \"%s\" is missing", c->dir, p->name);
            goto done;
        }
        if (t->ndim != p->ndim || t->shape[0] != p->shape[0] ||
            (p->ndim == 2 && t->shape[1] != p->shape[1])) {
            snprintf(err, errlen, "%s: tensor \"%s\" has %d dims [%lld, %lld]; the model expects "
                     "[%d, %d]", t->file, p->name, t->ndim, (long long)t->shape[0],
                     (long long)(t->ndim > 1 ? t->shape[1] : 1), p->shape[0], p->shape[1]);
            goto done;
        }
        if (master) memcpy(buf, (const float *)master->data + p->offset, p->numel * sizeof(float));
        else if (st_to_f32(t, buf, err, errlen)) goto done;
        model_set_param(m, i, buf);
    }
    if (m->be->error(m->be)) {
        snprintf(err, errlen, "%s: loading weights on %s: %s", c->dir, m->be->name,
                 m->be->error(m->be));
        goto done;
    }
    rc = 0;
done:
    free(buf);
    st_close(w);
    return rc;
}

int checkpoint_load_optimizer(const checkpoint *c, optimizer *o, const model *m, char *err,
                              size_t errlen) {
    if (!c->has_optimizer) {
        snprintf(err, errlen, "%s: the checkpoint holds no optimizer state", c->dir);
        return -1;
    }
    const st_tensor *tm = state_f32(c, "optimizer.m", m->n_weights, err, errlen);
    const st_tensor *tv = tm ? state_f32(c, "optimizer.v", m->n_weights, err, errlen) : NULL;
    if (!tm || !tv) return -1;
    rlvr_backend *be = m->be;
    be->to_device(be, o->m, tm->data, tm->nbytes);
    be->to_device(be, o->v, tv->data, tv->nbytes);
    o->step = c->optimizer_step;
    if (be->error(be)) {
        snprintf(err, errlen, "%s: loading optimizer state on %s: %s", c->dir, be->name,
                 be->error(be));
        return -1;
    }
    return 0;
}

int checkpoint_get_blob(const checkpoint *c, const char *name, const void **data, size_t *len,
                        char *err, size_t errlen) {
    char key[96];
    snprintf(key, sizeof key, "blob.%s", name);
    const st_tensor *t = ckpt_name_ok(name) ? st_find(c->st, key) : NULL;
    if (!t || t->dtype != ST_U8 || t->ndim != 1) {
        snprintf(err, errlen, "%s/%s: blob \"%s\" is missing", c->dir, CKPT_STATE_ST, name);
        return -1;
    }
    *data = t->data;
    *len = t->nbytes;
    return 0;
}

int checkpoint_get_scalar(const checkpoint *c, const char *name, double *value, char *err,
                          size_t errlen) {
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(c->json, "scalars");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sc, name);
    if (!cJSON_IsNumber(v)) {
        snprintf(err, errlen, "%s/%s: scalar \"%s\" is missing", c->dir, CKPT_STATE_JSON, name);
        return -1;
    }
    *value = v->valuedouble;
    return 0;
}

int checkpoint_load(const char *dir, model *m, optimizer *opt, checkpoint **out, char *err,
                    size_t errlen) {
    *out = NULL;
    checkpoint *c;
    if (checkpoint_open(dir, &c, err, errlen)) return -1;
    if (checkpoint_load_model(c, m, err, errlen) ||
        (opt && checkpoint_load_optimizer(c, opt, m, err, errlen))) {
        checkpoint_close(c);
        return -1;
    }
    *out = c;
    return 0;
}
