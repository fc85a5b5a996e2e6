/*
 * engine/model/config.h — the transformer hyper-parameters, read from a Hugging Face
 * config.json. Supported: LlamaForCausalLM (incl. rope_scaling type llama3),
 * Qwen2ForCausalLM (q/k/v biases) and Qwen3ForCausalLM (q/k RMSNorm, explicit head_dim).
 */
#ifndef RLVR_MODEL_CONFIG_H
#define RLVR_MODEL_CONFIG_H

#include <stddef.h>

typedef enum { MODEL_ARCH_LLAMA, MODEL_ARCH_QWEN2, MODEL_ARCH_QWEN3 } model_arch;

typedef struct {
    model_arch arch;
    int vocab_size;          /* V */
    int hidden_size;         /* C */
    int intermediate_size;   /* I */
    int num_layers;          /* L */
    int num_heads;           /* Hq */
    int num_kv_heads;        /* Hkv (grouped-query attention when < Hq) */
    int head_dim;            /* D */
    float rms_norm_eps;
    float rope_theta;
    int tie_word_embeddings; /* lm_head shares model.embed_tokens.weight */
    int qkv_bias;            /* q/k/v projections have biases (Qwen2; Llama attention_bias) */
    int o_bias;              /* o_proj has a bias (Llama attention_bias) */
    int qk_norm;             /* per-head RMSNorm on q and k before rope (Qwen3) */
    int max_position_embeddings;
    /* rope_scaling {"rope_type": "llama3"}; factor 0 = no scaling. */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    char torch_dtype[16];    /* as written in config.json ("bfloat16", ...) or "" */
} model_config;

const char *model_arch_name(model_arch a); /* "LlamaForCausalLM", ... */

/* Parses config.json text; `path` is only used in error messages. */
int model_config_parse(const char *json, const char *path, model_config *cfg, char *err,
                       size_t errlen);
/* Reads MODEL_DIR/config.json. */
int model_config_load(const char *dir, model_config *cfg, char *err, size_t errlen);
/* A config.json text for cfg (malloc'ed), loadable by transformers. */
char *model_config_to_json(const model_config *cfg);
/* Rotary inverse frequencies inv_freq[D/2], computed in fp32 as transformers does,
 * with llama3 scaling applied when configured. */
void model_config_inv_freq(const model_config *cfg, float *inv_freq);
/* Parameter count (tied embeddings counted once). */
size_t model_config_num_params(const model_config *cfg);

#endif
