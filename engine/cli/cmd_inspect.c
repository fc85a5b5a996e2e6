/*
 * engine/cli/cmd_inspect.c — `rlvr inspect MODEL`: architecture, shapes, parameter
 * count, the dtypes stored in the safetensors files, and the memory the model needs
 * for inference and for training (CPU fp32 and GPU bf16 + fp32 master/AdamW).
 */
#include <stdio.h>
#include <string.h>

#include "engine/cli/commands.h"
#include "engine/io/safetensors.h"
#include "engine/model/builtin.h"

static const char *USAGE =
    "usage: rlvr inspect MODEL\n"
    "  MODEL   a Hugging Face model directory (config.json + safetensors) or builtin:NAME\n";

static void print_bytes(const char *label, double bytes) {
    printf("  %-42s %10.2f GiB\n", label, bytes / (1024.0 * 1024 * 1024));
}

int cmd_inspect(int argc, char **argv) {
    if (argc != 2 || argv[1][0] == '-') {
        int help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        fputs(USAGE, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    const char *spec = argv[1];
    char err[2048];
    model_config cfg;
    int builtin = strncmp(spec, "builtin:", 8) == 0;
    if (builtin ? model_builtin_config(spec + 8, &cfg, err, sizeof err)
                : model_config_load(spec, &cfg, err, sizeof err)) {
        fprintf(stderr, "rlvr inspect: %s\n", err);
        return 1;
    }
    printf("model          %s\n", spec);
    printf("architecture   %s\n", model_arch_name(cfg.arch));
    printf("layers         %d\n", cfg.num_layers);
    printf("hidden         %d (intermediate %d)\n", cfg.hidden_size, cfg.intermediate_size);
    printf("heads          %d query, %d key-value (group %d), head_dim %d\n", cfg.num_heads,
           cfg.num_kv_heads, cfg.num_heads / cfg.num_kv_heads, cfg.head_dim);
    printf("vocab          %d (%s embeddings)\n", cfg.vocab_size,
           cfg.tie_word_embeddings ? "tied" : "untied");
    printf("rope           theta %g", cfg.rope_theta);
    if (cfg.rope_factor > 0)
        printf(", llama3 scaling factor %g (low %g, high %g, original %d)", cfg.rope_factor,
               cfg.rope_low_freq_factor, cfg.rope_high_freq_factor, cfg.rope_original_max_pos);
    printf("\nextras         %s%s%s\n", cfg.qkv_bias ? "q/k/v biases " : "",
           cfg.o_bias ? "o bias " : "", cfg.qk_norm ? "q/k RMSNorm" : "");
    const size_t n = model_config_num_params(&cfg);
    printf("parameters     %zu (%.1fM)\n", n, n / 1e6);
    if (!builtin) {
        st_set *st = NULL;
        if (st_open_dir(spec, &st, err, sizeof err)) {
            fprintf(stderr, "rlvr inspect: %s\n", err);
            return 1;
        }
        size_t per[ST_BOOL + 1] = {0}, bytes = 0;
        for (int i = 0; i < st_count(st); i++) {
            const st_tensor *t = st_get(st, i);
            per[t->dtype] += (size_t)t->numel;
            bytes += t->nbytes;
        }
        printf("stored         %d tensors, %.1f MiB:", st_count(st), bytes / 1048576.0);
        for (int d = 0; d <= ST_BOOL; d++)
            if (per[d]) printf(" %s %zu", st_dtype_name((st_dtype)d), per[d]);
        printf("\n");
        st_close(st);
    }
    printf("memory (weights; training adds gradients, AdamW moments, activations):\n");
    print_bytes("cpu fp32 inference weights", n * 4.0);
    print_bytes("cpu fp32 training (w, g, m, v)", n * 16.0);
    print_bytes("gpu bf16 inference weights", n * 2.0);
    print_bytes("gpu training (bf16 w, fp32 master/g/m/v)", n * 18.0);
    print_bytes("activations per 1024 tokens, fp32", (double)model_activation_bytes(&cfg, 1024, 4));
    print_bytes("activations per 1024 tokens, bf16", (double)model_activation_bytes(&cfg, 1024, 2));
    return 0;
}
