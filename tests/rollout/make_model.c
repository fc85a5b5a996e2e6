/*
 * tests/rollout/make_model.c — test tool: writes a random-initialised built-in shape as
 * a Hugging Face model directory, with the vocabulary resized to match a tokenizer
 * (usage: make_model BUILTIN_NAME VOCAB_SIZE OUT_DIR [SEED]).
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine/io/safetensors.h"
#include "engine/model/builtin.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: make_model BUILTIN_NAME VOCAB_SIZE OUT_DIR [SEED]\n");
        return 2;
    }
    char err[1024];
    model_config cfg;
    if (model_builtin_config(argv[1], &cfg, err, sizeof err)) {
        fprintf(stderr, "make_model: %s\n", err);
        return 2;
    }
    cfg.vocab_size = atoi(argv[2]);
    rlvr_backend *be = rlvr_cpu_backend_create(1);
    model *m = NULL;
    if (cfg.vocab_size < 2 || model_create(&cfg, be, &m, err, sizeof err)) {
        fprintf(stderr, "make_model: %s\n", cfg.vocab_size < 2 ? "bad vocab size" : err);
        return 1;
    }
    model_init_random(m, argc > 4 ? strtoull(argv[4], NULL, 10) : 1);
    int rc = model_save(m, argv[3], ST_F32, 0, err, sizeof err);
    if (rc) fprintf(stderr, "make_model: %s\n", err);
    model_free(m);
    be->destroy(be);
    return rc ? 1 : 0;
}
