/*
 * engine/model/model.c — the parameter table (Hugging Face names → offsets into one
 * allocation), model creation, random initialisation, loading from and saving to a
 * Hugging Face directory (config.json + safetensors).
 */
#include "engine/model/model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/model/acts.h"

/* ---- parameter table ------------------------------------------------------------ */

static int add_param(model *m, const char *name, int ndim, int d0, int d1) {
    model_param *p = &m->params[m->n_params];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim == 2 ? d1 : 1;
    p->numel = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    p->offset = m->n_weights;
    p->decay = ndim == 2;
    m->n_weights += p->numel;
    return m->n_params++;
}

/* Matrices first (weight decay), then vectors, so AdamW runs on two ranges. */
static void build_table(model *m) {
    const model_config *c = &m->cfg;
    const int C = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
    const int q = c->num_heads * D, kv = c->num_kv_heads * D;
    char name[96];
    for (int l = 0; l < c->num_layers; l++) {
        model_layer_params *lp = &m->layers[l];
        memset(lp, 0xff, sizeof *lp); /* all -1 */
    }
    m->embed = add_param(m, "model.embed_tokens.weight", 2, c->vocab_size, C);
#define LAYER_PARAM(field, suffix, nd, a, b)                                                   \
    do {                                                                                       \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);                          \
        m->layers[l].field = add_param(m, name, nd, a, b);                                     \
    } while (0)
    for (int l = 0; l < c->num_layers; l++) {
        LAYER_PARAM(q, "self_attn.q_proj.weight", 2, q, C);
        LAYER_PARAM(k, "self_attn.k_proj.weight", 2, kv, C);
        LAYER_PARAM(v, "self_attn.v_proj.weight", 2, kv, C);
        LAYER_PARAM(o, "self_attn.o_proj.weight", 2, C, q);
        LAYER_PARAM(gate, "mlp.gate_proj.weight", 2, I, C);
        LAYER_PARAM(up, "mlp.up_proj.weight", 2, I, C);
        LAYER_PARAM(down, "mlp.down_proj.weight", 2, C, I);
    }
    m->lm_head = c->tie_word_embeddings ? m->embed : add_param(m, "lm_head.weight", 2, c->vocab_size, C);
    m->n_decay = m->n_weights;
    for (int l = 0; l < c->num_layers; l++) {
        LAYER_PARAM(ln1, "input_layernorm.weight", 1, C, 0);
        if (c->qkv_bias) {
            LAYER_PARAM(q_b, "self_attn.q_proj.bias", 1, q, 0);
            LAYER_PARAM(k_b, "self_attn.k_proj.bias", 1, kv, 0);
            LAYER_PARAM(v_b, "self_attn.v_proj.bias", 1, kv, 0);
        }
        if (c->o_bias) LAYER_PARAM(o_b, "self_attn.o_proj.bias", 1, C, 0);
        if (c->qk_norm) {
            LAYER_PARAM(q_norm, "self_attn.q_norm.weight", 1, D, 0);
            LAYER_PARAM(k_norm, "self_attn.k_norm.weight", 1, D, 0);
        }
        LAYER_PARAM(ln2, "post_attention_layernorm.weight", 1, C, 0);
    }
#undef LAYER_PARAM
    m->final_norm = add_param(m, "model.norm.weight", 1, C, 0);
}

/* Whether params b and c follow a directly (a, b, c >= 0; c < 0: only a and b). */
static int back_to_back(const model *m, int a, int b, int c) {
    if (a < 0 || b < 0) return 0;
    const model_param *p = m->params;
    if (p[b].offset != p[a].offset + p[a].numel) return 0;
    return c < 0 || p[c].offset == p[b].offset + p[b].numel;
}

/* Sets m->stacked_qkv / stacked_gate_up: the table lays every layer's groups out back to
 * back (build_table), the backend can split/merge, and RLVR_STACKED_PROJ is not 0. */
static void choose_stacking(model *m) {
    const char *e = getenv("RLVR_STACKED_PROJ");
    const rlvr_backend *be = m->be;
    int qkv = !(e && !strcmp(e, "0")) && be->qkv_split && be->qkv_merge;
    int gu = !(e && !strcmp(e, "0")) && be->swiglu_packed_forward && be->swiglu_packed_backward;
    for (int l = 0; l < m->cfg.num_layers; l++) {
        const model_layer_params *P = &m->layers[l];
        qkv = qkv && back_to_back(m, P->q, P->k, P->v) &&
              (P->q_b < 0 ? P->k_b < 0 && P->v_b < 0 : back_to_back(m, P->q_b, P->k_b, P->v_b));
        gu = gu && back_to_back(m, P->gate, P->up, -1);
    }
    m->stacked_qkv = qkv;
    m->stacked_gate_up = gu;
}

int model_create(const model_config *cfg, rlvr_backend *be, model **out, char *err,
                 size_t errlen) {
    *out = NULL;
    model *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->cfg = *cfg;
    m->be = be;
    m->params = calloc((size_t)cfg->num_layers * 16 + 4, sizeof *m->params);
    m->layers = calloc((size_t)cfg->num_layers, sizeof *m->layers);
    if (!m->params || !m->layers) goto oom;
    build_table(m);
    choose_stacking(m);
    m->weights = be->alloc(be, m->n_weights * be->act_size);
    m->inv_freq = be->alloc(be, (size_t)cfg->head_dim / 2 * sizeof(float));
    if (be->act_dtype != RLVR_DTYPE_F32) m->master = be->alloc(be, m->n_weights * sizeof(float));
    if (!m->weights || !m->inv_freq || (be->act_dtype != RLVR_DTYPE_F32 && !m->master)) {
        snprintf(err, errlen, "model: cannot allocate %.1f MiB of weights on %s",
                 m->n_weights * (double)(be->act_size + (m->master ? 4 : 0)) / (1 << 20),
                 be->name);
        model_free(m);
        return -1;
    }
    float *inv = malloc((size_t)cfg->head_dim / 2 * sizeof(float));
    if (!inv) goto oom;
    model_config_inv_freq(cfg, inv);
    be->to_device(be, m->inv_freq, inv, (size_t)cfg->head_dim / 2 * sizeof(float));
    free(inv);
    m->acts = model_acts_create();
    if (!m->acts) goto oom;
    *out = m;
    return 0;
oom:
    snprintf(err, errlen, "model: out of host memory");
    model_free(m);
    return -1;
}

void model_free(model *m) {
    if (!m) return;
    rlvr_backend *be = m->be;
    if (m->acts) model_acts_free(m->acts, be);
    if (be) {
        be->free(be, m->weights);
        be->free(be, m->master);
        be->free(be, m->grads);
        be->free(be, m->inv_freq);
    }
    free(m->params);
    free(m->layers);
    free(m->config_json);
    free(m);
}

int model_find_param(const model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

void model_get_param(const model *m, int i, float *host) {
    const model_param *p = &m->params[i];
    if (m->master)
        m->be->to_host(m->be, host, m->master + p->offset, p->numel * sizeof(float));
    else
        m->be->act_to_f32(m->be, host, (const char *)m->weights + p->offset * m->be->act_size,
                          p->numel);
}

void model_set_param(model *m, int i, const float *host) {
    const model_param *p = &m->params[i];
    m->be->act_from_f32(m->be, (char *)m->weights + p->offset * m->be->act_size, host, p->numel);
    if (m->master) m->be->to_device(m->be, m->master + p->offset, host, p->numel * sizeof(float));
}

int model_get_grad(const model *m, int i, float *host) {
    if (!m->grads) return -1;
    const model_param *p = &m->params[i];
    m->be->to_host(m->be, host, m->grads + p->offset, p->numel * sizeof(float));
    return 0;
}

int model_enable_grads(model *m, char *err, size_t errlen) {
    if (m->grads) return 0;
    m->grads = m->be->alloc(m->be, m->n_weights * sizeof(float));
    if (!m->grads) {
        snprintf(err, errlen, "model: cannot allocate %.1f MiB of gradients on %s",
                 m->n_weights * 4.0 / (1 << 20), m->be->name);
        return -1;
    }
    model_zero_grads(m);
    return 0;
}

void model_zero_grads(model *m) {
    if (m->grads) m->be->zero(m->be, m->grads, m->n_weights * sizeof(float));
}

/* ---- random initialisation ------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s) { return ((splitmix64(s) >> 11) + 0.5) * 0x1.0p-53; }

void model_init_random(model *m, uint64_t seed) {
    size_t maxn = 0;
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].numel > maxn) maxn = m->params[i].numel;
    float *buf = malloc(maxn * sizeof(float));
    if (!buf) return;
    enum { CHUNK = 1 << 16 };
    for (int i = 0; i < m->n_params; i++) {
        const model_param *p = &m->params[i];
        if (p->ndim == 2) {
            /* chunks seeded by (seed, parameter, chunk): the same values for any thread
             * count */
            const long nchunks = (long)((p->numel + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static)
            for (long c = 0; c < nchunks; c++) {
                uint64_t s = (seed * 0x100000001b3ULL + (uint64_t)i) * 0x9E3779B97F4A7C15ULL + (uint64_t)c;
                const size_t j1 = (size_t)(c + 1) * CHUNK < p->numel ? (size_t)(c + 1) * CHUNK : p->numel;
                for (size_t j = (size_t)c * CHUNK; j < j1; j++) {
                    double u1 = uniform01(&s), u2 = uniform01(&s);
                    buf[j] = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
                }
            }
        } else {
            const int is_bias = strstr(p->name, ".bias") != NULL;
            for (size_t j = 0; j < p->numel; j++) buf[j] = is_bias ? 0.0f : 1.0f;
        }
        model_set_param(m, i, buf);
    }
    free(buf);
}

/* ---- Hugging Face directory I/O -------------------------------------------------- */

int model_load(const char *dir, rlvr_backend *be, model **out, char *err, size_t errlen) {
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    model_config cfg;
    if (fio_read_file(path, &text, &len, err, errlen)) return -1;
    if (model_config_parse(text, path, &cfg, err, errlen)) {
        free(text);
        return -1;
    }
    st_set *st = NULL;
    if (st_open_dir(dir, &st, err, errlen)) {
        free(text);
        return -1;
    }
    model *m = NULL;
    if (model_create(&cfg, be, &m, err, errlen)) {
        st_close(st);
        free(text);
        return -1;
    }
    m->config_json = text;
    float *buf = NULL;
    size_t cap = 0;
    for (int i = 0; i < m->n_params; i++) {
        const model_param *p = &m->params[i];
        const st_tensor *t = st_find(st, p->name);
        if (!t) {
            snprintf(err, errlen, "%s: tensor \"%s\" is missing (required by %s in config.json)",
                     dir, p->name, model_arch_name(cfg.arch));
            goto fail;
        }
        int ok = t->ndim == p->ndim && t->shape[0] == p->shape[0] &&
                 (p->ndim == 1 || t->shape[1] == p->shape[1]);
        if (!ok) {
            char got[128] = "";
            size_t o = 0;
            for (int d = 0; d < t->ndim && o < sizeof got - 24; d++)
                o += (size_t)snprintf(got + o, sizeof got - o, "%s%lld", d ? ", " : "",
                                      (long long)t->shape[d]);
            snprintf(err, errlen,
                     "%s: tensor \"%s\" has shape [%s] but config.json implies [%d%s%.0d]",
                     t->file, p->name, got, p->shape[0], p->ndim == 2 ? ", " : "",
                     p->ndim == 2 ? p->shape[1] : 0);
            goto fail;
        }
        if (p->numel > cap) {
            free(buf);
            cap = p->numel;
            buf = malloc(cap * sizeof(float));
            if (!buf) {
                snprintf(err, errlen, "model: out of host memory loading %s", p->name);
                goto fail;
            }
        }
        if (st_to_f32(t, buf, err, errlen)) goto fail;
        model_set_param(m, i, buf);
    }
    free(buf);
    st_close(st);
    if (be->error(be)) {
        snprintf(err, errlen, "%s: loading weights: %s", dir, be->error(be));
        model_free(m);
        return -1;
    }
    *out = m;
    return 0;
fail:
    free(buf);
    st_close(st);
    model_free(m);
    return -1;
}

int model_save(const model *m, const char *dir, int dtype, size_t max_shard_bytes, char *err,
               size_t errlen) {
    if (fio_mkdirs(dir, err, errlen)) return -1;
    int rc = -1;
    st_write_tensor *ts = calloc((size_t)m->n_params, sizeof *ts);
    float *host = malloc(m->n_weights * sizeof(float));
    if (!ts || !host) {
        snprintf(err, errlen, "model_save: out of host memory");
        goto done;
    }
    int n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const model_param *p = &m->params[i];
        model_get_param(m, i, host + p->offset);
        ts[n].name = p->name;
        ts[n].ndim = p->ndim;
        ts[n].shape[0] = p->shape[0];
        ts[n].shape[1] = p->shape[1];
        ts[n].data = host + p->offset;
        n++;
    }
    if (st_write_dir(dir, ts, n, (st_dtype)dtype, max_shard_bytes, err, errlen)) goto done;
    /* config.json: the loaded one verbatim except the dtype, or a fresh one. */
    const char *dtype_name = dtype == ST_BF16 ? "bfloat16" : dtype == ST_F16 ? "float16" : "float32";
    char *json = NULL;
    cJSON *root = m->config_json ? cJSON_Parse(m->config_json) : NULL;
    if (!root) {
        char *fresh = model_config_to_json(&m->cfg);
        root = fresh ? cJSON_Parse(fresh) : NULL;
        free(fresh);
    }
    if (!root) {
        snprintf(err, errlen, "model_save: cannot build config.json");
        goto done;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "torch_dtype");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "dtype");
    cJSON_AddStringToObject(root, "torch_dtype", dtype_name);
    json = cJSON_Print(root);
    cJSON_Delete(root);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = json ? fio_write_file(path, json, strlen(json), err, errlen) : -1;
    free(json);
done:
    free(ts);
    free(host);
    return rc;
}
