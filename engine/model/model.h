/*
 * engine/model/model.h — the decoder-only transformer (Llama / Qwen2 / Qwen3), written
 * once against the op table (kernels/backend.h).
 *
 * Parameters live in one backend allocation (act dtype), addressable by their Hugging
 * Face names; gradients in one f32 allocation with the same layout. On backends whose
 * act dtype is not fp32 an f32 master copy is kept for the optimizer.
 *
 * A forward takes a packed batch (sequences end to end, offsets[B+1], no padding) and
 * produces, for every token t, the log-probability of the next token of its sequence
 * (0 at each sequence's last token, which has no next token) and the entropy of the
 * next-token distribution. The backward takes d(objective)/d(logp[t]) (and optionally
 * d/d(entropy[t])) and accumulates the gradient of every parameter.
 */
#ifndef RLVR_MODEL_MODEL_H
#define RLVR_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/config.h"
#include "kernels/backend.h"

typedef struct {
    char name[96];     /* Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int ndim;
    int shape[2];
    size_t offset;     /* element offset into weights / grads / master */
    size_t numel;
    int decay;         /* weight decay applies (matrices; not norms, biases) */
} model_param;

/* Per-layer parameter indices into model.params (-1 when absent). */
typedef struct {
    int ln1, q, q_b, k, k_b, v, v_b, o, o_b, q_norm, k_norm, ln2, gate, up, down;
} model_layer_params;

typedef struct model_acts model_acts; /* activations saved for the backward */

typedef struct {
    model_config cfg;
    rlvr_backend *be;
    model_param *params;
    int n_params;
    size_t n_weights;       /* total elements */
    size_t n_decay;         /* params[0..] with decay occupy elements [0, n_decay) */
    void *weights;          /* act [n_weights] */
    float *master;          /* f32 [n_weights] when be->act_dtype != F32, else NULL */
    float *grads;           /* f32 [n_weights]; NULL until model_enable_grads */
    float *inv_freq;        /* f32 [head_dim/2], backend memory */
    int embed, final_norm, lm_head; /* param indices (lm_head == embed when tied) */
    model_layer_params *layers;
    model_acts *acts;
    char *config_json;      /* config.json as loaded (kept verbatim on save), or NULL */
    /* Stacked projections: every layer's q, k, v weights (and biases) lie back to back,
     * as do gate and up, so one GEMM computes each group (layer.c) when the backend has
     * the split/merge ops; RLVR_STACKED_PROJ=0 turns it off (separate GEMMs). */
    int stacked_qkv, stacked_gate_up;
} model;

/* Builds an empty parameter table for cfg and allocates weights on be. */
int model_create(const model_config *cfg, rlvr_backend *be, model **out, char *err,
                 size_t errlen);
/* Loads config.json + safetensors (single or sharded) from a model directory. */
int model_load(const char *dir, rlvr_backend *be, model **out, char *err, size_t errlen);
/* Random initialisation (normal(0, 0.02) matrices, norms 1, biases 0), seeded. */
void model_init_random(model *m, uint64_t seed);
/* Writes config.json + model.safetensors (sharded above max_shard_bytes, 0 = never) in
 * dtype ("F32"/"BF16" via st_dtype) into dir, atomically per file. */
int model_save(const model *m, const char *dir, int st_dtype, size_t max_shard_bytes,
               char *err, size_t errlen);
void model_free(model *m);

int model_find_param(const model *m, const char *name); /* index or -1 */
/* Copies a parameter (or its gradient) to host fp32 / from host fp32. */
void model_get_param(const model *m, int i, float *host);
void model_set_param(model *m, int i, const float *host);
int model_get_grad(const model *m, int i, float *host); /* -1 when grads are off */

/* Allocates (zeroed) gradients; a model without them is frozen (reference model). */
int model_enable_grads(model *m, char *err, size_t errlen);
void model_zero_grads(model *m);

/* A packed batch in host memory. */
typedef struct {
    int T, B;
    const int32_t *ids;     /* [T] */
    const int32_t *offsets; /* [B+1], offsets[0] = 0, offsets[B] = T */
} model_batch;

/* Forward over a packed batch at sampling temperature 1/inv_temp. Results stay in
 * backend memory (model_logp/model_entropy) until the next forward. with_backward
 * keeps what the backward needs. Returns -1 with a message on bad input (token id out
 * of range, bad offsets) or a backend error. */
int model_forward(model *m, const model_batch *b, float inv_temp, int with_backward,
                  char *err, size_t errlen);
const float *model_logp(const model *m);    /* f32 [T], backend memory */
const float *model_entropy(const model *m); /* f32 [T], backend memory */
/* Backward of the last forward (with_backward = 1): dlogp[T], dentropy[T] (nullable)
 * in backend memory; accumulates into grads. */
int model_backward(model *m, const float *dlogp, const float *dentropy, char *err,
                   size_t errlen);

/* The trunk only (embedding, layers, final norm) — for a value head on top: the
 * hidden states are model_hidden(m) (act [T, hidden_size]) until the next forward. */
int model_forward_hidden(model *m, const model_batch *b, int with_backward, char *err,
                         size_t errlen);
const void *model_hidden(const model *m);
/* Tokens of the last forward. */
int model_tokens(const model *m);
/* Backward of the last model_forward_hidden from d(hidden states) (act [T, hidden]). */
int model_backward_hidden(model *m, const void *dhidden, char *err, size_t errlen);

/* Bytes of activations a forward+backward of T tokens needs (for `inspect`). */
size_t model_activation_bytes(const model_config *cfg, int T, size_t act_size);

#endif
