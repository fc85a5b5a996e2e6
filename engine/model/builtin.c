/*
 * engine/model/builtin.c — the built-in shapes (see builtin.h).
 *   tiny-llama, tiny-qwen2, tiny-qwen3: a few hundred thousand parameters, vocab 512,
 *     for demos and tests of the CLI;
 *   small-qwen2-d64, small-qwen3-d128: two layers with the real models' head dims (64 and
 *     128, which the fused CUDA kernels need) and Qwen2.5-0.5B's GQA group of 7, small
 *     enough for the CPU emulation of the CUDA backend (tests/emu);
 *   bench-50m: the ~50M-parameter Qwen2 shape of the CPU benchmark;
 *   qwen2.5-0.5b, qwen2.5-1.5b: the real shapes (random weights) for GPU benchmarks.
 */
#include "engine/model/builtin.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    model_arch arch;
    int V, C, I, L, Hq, Hkv, D, tied;
    float theta;
} builtin_shape;

static const builtin_shape SHAPES[] = {
    {"tiny-llama", MODEL_ARCH_LLAMA, 512, 64, 176, 2, 4, 2, 16, 0, 500000.0f},
    {"tiny-qwen2", MODEL_ARCH_QWEN2, 512, 64, 176, 2, 4, 2, 16, 1, 1000000.0f},
    {"tiny-qwen3", MODEL_ARCH_QWEN3, 512, 64, 176, 2, 4, 2, 32, 1, 1000000.0f},
    {"small-qwen2-d64", MODEL_ARCH_QWEN2, 1037, 448, 1216, 2, 7, 1, 64, 1, 1000000.0f},
    {"small-qwen3-d128", MODEL_ARCH_QWEN3, 1000, 256, 704, 2, 4, 2, 128, 1, 1000000.0f},
    {"bench-50m", MODEL_ARCH_QWEN2, 32000, 512, 1408, 8, 8, 2, 64, 1, 1000000.0f},
    {"qwen2.5-0.5b", MODEL_ARCH_QWEN2, 151936, 896, 4864, 24, 14, 2, 64, 1, 1000000.0f},
    {"qwen2.5-1.5b", MODEL_ARCH_QWEN2, 151936, 1536, 8960, 28, 12, 2, 128, 1, 1000000.0f},
};

int model_builtin_config(const char *name, model_config *cfg, char *err, size_t errlen) {
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        const builtin_shape *s = &SHAPES[i];
        if (strcmp(name, s->name) != 0) continue;
        memset(cfg, 0, sizeof *cfg);
        cfg->arch = s->arch;
        cfg->vocab_size = s->V;
        cfg->hidden_size = s->C;
        cfg->intermediate_size = s->I;
        cfg->num_layers = s->L;
        cfg->num_heads = s->Hq;
        cfg->num_kv_heads = s->Hkv;
        cfg->head_dim = s->D;
        cfg->tie_word_embeddings = s->tied;
        cfg->rope_theta = s->theta;
        cfg->rms_norm_eps = 1e-6f;
        cfg->max_position_embeddings = 32768;
        cfg->qkv_bias = s->arch == MODEL_ARCH_QWEN2;
        cfg->qk_norm = s->arch == MODEL_ARCH_QWEN3;
        return 0;
    }
    size_t o = (size_t)snprintf(err, errlen, "unknown built-in model '%s'; built-ins:", name);
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0] && o < errlen; i++)
        o += (size_t)snprintf(err + o, errlen - o, " builtin:%s", SHAPES[i].name);
    return -1;
}

int model_open(const char *spec, rlvr_backend *be, model **out, char *err, size_t errlen) {
    if (strncmp(spec, "builtin:", 8) != 0) return model_load(spec, be, out, err, errlen);
    model_config cfg;
    if (model_builtin_config(spec + 8, &cfg, err, errlen)) return -1;
    if (model_create(&cfg, be, out, err, errlen)) return -1;
    model_init_random(*out, 1234);
    return 0;
}
