/*
 * engine/model/config.c — config.json → model_config, with errors that name the file,
 * the key, the value and what is supported. Accepts both the classic layout
 * (rope_theta + rope_scaling) and transformers ≥ 5's rope_parameters.
 */
#include "engine/model/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/io/fileio.h"

static const char *const SUPPORTED =
    "supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM";

const char *model_arch_name(model_arch a) {
    switch (a) {
    case MODEL_ARCH_LLAMA: return "LlamaForCausalLM";
    case MODEL_ARCH_QWEN2: return "Qwen2ForCausalLM";
    case MODEL_ARCH_QWEN3: return "Qwen3ForCausalLM";
    }
    return "?";
}

/* Reads an integer key; missing → def (or an error when def < 0 means required). */
static int get_int(const cJSON *o, const char *key, int def, int *out, const char *path,
                   char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) {
            snprintf(err, errlen, "%s: missing required key \"%s\" (a positive integer)", path,
                     key);
            return -1;
        }
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
        v->valuedouble > 1e9) {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(err, errlen, "%s: \"%s\" = %s: expected a positive integer", path, key,
                 s ? s : "?");
        free(s);
        return -1;
    }
    *out = (int)v->valuedouble;
    return 0;
}

static int get_float(const cJSON *o, const char *key, float def, float *out, const char *path,
                     char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble)) {
        char *s = cJSON_PrintUnformatted(v);
        snprintf(err, errlen, "%s: \"%s\" = %s: expected a positive number", path, key,
                 s ? s : "?");
        free(s);
        return -1;
    }
    *out = (float)v->valuedouble;
    return 0;
}

static int get_bool(const cJSON *o, const char *key, int def, int *out, const char *path,
                    char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        snprintf(err, errlen, "%s: \"%s\" must be true or false", path, key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

static int parse_arch(const cJSON *root, const char *path, model_config *cfg, char *err,
                      size_t errlen) {
    static const struct { const char *arch, *type; model_arch a; } names[] = {
        {"LlamaForCausalLM", "llama", MODEL_ARCH_LLAMA},
        {"Qwen2ForCausalLM", "qwen2", MODEL_ARCH_QWEN2},
        {"Qwen3ForCausalLM", "qwen3", MODEL_ARCH_QWEN3},
    };
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *a = NULL;
    if (cJSON_IsArray(archs) && cJSON_GetArraySize(archs) > 0) {
        const cJSON *first = cJSON_GetArrayItem(archs, 0);
        if (!cJSON_IsString(first)) {
            snprintf(err, errlen, "%s: \"architectures\"[0] must be a string; %s", path,
                     SUPPORTED);
            return -1;
        }
        a = first->valuestring;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(a, names[i].arch)) {
                cfg->arch = names[i].a;
                return 0;
            }
        snprintf(err, errlen, "%s: architecture \"%s\" is not supported; %s", path, a,
                 SUPPORTED);
        return -1;
    }
    if (cJSON_IsString(type)) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(type->valuestring, names[i].type)) {
                cfg->arch = names[i].a;
                return 0;
            }
        snprintf(err, errlen, "%s: model_type \"%s\" is not supported; %s", path,
                 type->valuestring, SUPPORTED);
        return -1;
    }
    snprintf(err, errlen, "%s: neither \"architectures\" nor \"model_type\" is given; %s",
             path, SUPPORTED);
    return -1;
}

/* rope_scaling (classic) or rope_parameters (transformers ≥ 5). */
static int parse_rope(const cJSON *root, const char *path, model_config *cfg, char *err,
                      size_t errlen) {
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const char *key = "rope_parameters";
    if (!params || cJSON_IsNull(params)) {
        params = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
        key = "rope_scaling";
    }
    if (get_float(root, "rope_theta", 10000.0f, &cfg->rope_theta, path, err, errlen)) return -1;
    cfg->rope_factor = 0.0f;
    if (!params || cJSON_IsNull(params)) return 0;
    if (!cJSON_IsObject(params)) {
        snprintf(err, errlen, "%s: \"%s\" must be an object or null", path, key);
        return -1;
    }
    if (cJSON_GetObjectItemCaseSensitive(params, "rope_theta") &&
        get_float(params, "rope_theta", 10000.0f, &cfg->rope_theta, path, err, errlen))
        return -1;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(params, "rope_type");
    if (!type) type = cJSON_GetObjectItemCaseSensitive(params, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "default";
    if (!strcmp(t, "default")) return 0;
    if (strcmp(t, "llama3") != 0) {
        snprintf(err, errlen,
                 "%s: %s.rope_type = \"%s\" is not supported; supported: \"default\", "
                 "\"llama3\"",
                 path, key, t);
        return -1;
    }
    if (get_float(params, "factor", 8.0f, &cfg->rope_factor, path, err, errlen) ||
        get_float(params, "low_freq_factor", 1.0f, &cfg->rope_low_freq_factor, path, err,
                  errlen) ||
        get_float(params, "high_freq_factor", 4.0f, &cfg->rope_high_freq_factor, path, err,
                  errlen) ||
        get_int(params, "original_max_position_embeddings", 8192, &cfg->rope_original_max_pos,
                path, err, errlen))
        return -1;
    if (cfg->rope_high_freq_factor <= cfg->rope_low_freq_factor) {
        snprintf(err, errlen, "%s: %s.high_freq_factor must exceed low_freq_factor", path, key);
        return -1;
    }
    return 0;
}

int model_config_parse(const char *json, const char *path, model_config *cfg, char *err,
                       size_t errlen) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: not a JSON object", path);
        cJSON_Delete(root);
        return -1;
    }
    int rc = -1;
    if (parse_arch(root, path, cfg, err, errlen)) goto done;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu"))) {
        snprintf(err, errlen, "%s: hidden_act must be \"silu\" (SwiGLU MLP)", path);
        goto done;
    }
    if (get_int(root, "vocab_size", -1, &cfg->vocab_size, path, err, errlen) ||
        get_int(root, "hidden_size", -1, &cfg->hidden_size, path, err, errlen) ||
        get_int(root, "intermediate_size", -1, &cfg->intermediate_size, path, err, errlen) ||
        get_int(root, "num_hidden_layers", -1, &cfg->num_layers, path, err, errlen) ||
        get_int(root, "num_attention_heads", -1, &cfg->num_heads, path, err, errlen) ||
        get_int(root, "num_key_value_heads", cfg->num_heads, &cfg->num_kv_heads, path, err,
                errlen) ||
        get_int(root, "head_dim", cfg->hidden_size / cfg->num_heads, &cfg->head_dim, path, err,
                errlen) ||
        get_int(root, "max_position_embeddings", 4096, &cfg->max_position_embeddings, path, err,
                errlen) ||
        get_float(root, "rms_norm_eps", 1e-6f, &cfg->rms_norm_eps, path, err, errlen) ||
        get_bool(root, "tie_word_embeddings", 0, &cfg->tie_word_embeddings, path, err,
                 errlen) ||
        parse_rope(root, path, cfg, err, errlen))
        goto done;
    if (cfg->num_heads % cfg->num_kv_heads != 0) {
        snprintf(err, errlen,
                 "%s: num_attention_heads = %d is not a multiple of num_key_value_heads = %d",
                 path, cfg->num_heads, cfg->num_kv_heads);
        goto done;
    }
    if (cfg->head_dim % 2 != 0) {
        snprintf(err, errlen, "%s: head_dim = %d must be even for rotary embeddings", path,
                 cfg->head_dim);
        goto done;
    }
    int attention_bias = 0, mlp_bias = 0, sliding = 0;
    if (get_bool(root, "attention_bias", 0, &attention_bias, path, err, errlen) ||
        get_bool(root, "mlp_bias", 0, &mlp_bias, path, err, errlen) ||
        get_bool(root, "use_sliding_window", 0, &sliding, path, err, errlen))
        goto done;
    if (mlp_bias) {
        snprintf(err, errlen, "%s: mlp_bias = true is not supported (no MLP biases)", path);
        goto done;
    }
    if (sliding) {
        snprintf(err, errlen, "%s: use_sliding_window = true is not supported", path);
        goto done;
    }
    switch (cfg->arch) {
    case MODEL_ARCH_LLAMA: cfg->qkv_bias = cfg->o_bias = attention_bias; break;
    case MODEL_ARCH_QWEN2: cfg->qkv_bias = 1; break; /* Qwen2: q/k/v biases, none on o */
    case MODEL_ARCH_QWEN3:
        cfg->qkv_bias = cfg->o_bias = attention_bias;
        cfg->qk_norm = 1;
        break;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
    if (!cJSON_IsString(dt)) dt = cJSON_GetObjectItemCaseSensitive(root, "dtype");
    if (cJSON_IsString(dt))
        snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "%s", dt->valuestring);
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int model_config_load(const char *dir, model_config *cfg, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    if (fio_read_file(path, &text, &len, err, errlen)) return -1;
    int rc = model_config_parse(text, path, cfg, err, errlen);
    free(text);
    return rc;
}

char *model_config_to_json(const model_config *cfg) {
    cJSON *o = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(model_arch_name(cfg->arch)));
    static const char *types[] = {"llama", "qwen2", "qwen3"};
    cJSON_AddStringToObject(o, "model_type", types[cfg->arch]);
    cJSON_AddNumberToObject(o, "vocab_size", cfg->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", cfg->hidden_size);
    cJSON_AddNumberToObject(o, "intermediate_size", cfg->intermediate_size);
    cJSON_AddNumberToObject(o, "num_hidden_layers", cfg->num_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", cfg->num_heads);
    cJSON_AddNumberToObject(o, "num_key_value_heads", cfg->num_kv_heads);
    cJSON_AddNumberToObject(o, "head_dim", cfg->head_dim);
    cJSON_AddNumberToObject(o, "max_position_embeddings", cfg->max_position_embeddings);
    cJSON_AddNumberToObject(o, "rms_norm_eps", cfg->rms_norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", cfg->rope_theta);
    cJSON_AddStringToObject(o, "hidden_act", "silu");
    cJSON_AddBoolToObject(o, "tie_word_embeddings", cfg->tie_word_embeddings);
    if (cfg->arch != MODEL_ARCH_QWEN2) cJSON_AddBoolToObject(o, "attention_bias", cfg->o_bias);
    if (cfg->rope_factor > 0) {
        cJSON *rs = cJSON_AddObjectToObject(o, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", "llama3");
        cJSON_AddNumberToObject(rs, "factor", cfg->rope_factor);
        cJSON_AddNumberToObject(rs, "low_freq_factor", cfg->rope_low_freq_factor);
        cJSON_AddNumberToObject(rs, "high_freq_factor", cfg->rope_high_freq_factor);
        cJSON_AddNumberToObject(rs, "original_max_position_embeddings",
                                cfg->rope_original_max_pos);
    }
    cJSON_AddStringToObject(o, "torch_dtype", cfg->torch_dtype[0] ? cfg->torch_dtype : "float32");
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

void model_config_inv_freq(const model_config *cfg, float *inv_freq) {
    const int D = cfg->head_dim, half = D / 2;
    for (int i = 0; i < half; i++) {
        /* transformers: 1 / base ** (arange(0, D, 2).float() / D), in fp32 */
        float expo = (float)(2 * i) / (float)D;
        inv_freq[i] = 1.0f / powf(cfg->rope_theta, expo);
    }
    if (cfg->rope_factor <= 0) return;
    /* llama3 scaling: long wavelengths divided by factor, short ones kept, a smooth
     * interpolation between the two bands. */
    const float factor = cfg->rope_factor, lo = cfg->rope_low_freq_factor,
                hi = cfg->rope_high_freq_factor, old = (float)cfg->rope_original_max_pos;
    const float low_wavelen = old / lo, high_wavelen = old / hi;
    for (int i = 0; i < half; i++) {
        const float f = inv_freq[i];
        const float wavelen = 2.0f * (float)M_PI / f;
        float g = wavelen > low_wavelen ? f / factor : f;
        if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
            const float smooth = (old / wavelen - lo) / (hi - lo);
            g = (1.0f - smooth) * g / factor + smooth * g;
        }
        inv_freq[i] = g;
    }
}

size_t model_config_num_params(const model_config *c) {
    const size_t C = c->hidden_size, I = c->intermediate_size, D = c->head_dim;
    const size_t q = (size_t)c->num_heads * D, kv = (size_t)c->num_kv_heads * D;
    size_t layer = 2 * C                             /* two norms */
                   + C * q + 2 * C * kv + q * C      /* q, k, v, o */
                   + 3 * C * I;                      /* gate, up, down */
    if (c->qkv_bias) layer += q + 2 * kv;
    if (c->o_bias) layer += C;
    if (c->qk_norm) layer += 2 * D;
    size_t n = (size_t)c->num_layers * layer + C + (size_t)c->vocab_size * C;
    if (!c->tie_word_embeddings) n += (size_t)c->vocab_size * C;
    return n;
}
