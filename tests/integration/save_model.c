/*
 * tests/integration/save_model.c — test tool: loads a model directory with rlvr and
 * saves it again (usage: save_model SRC DST [max_shard_bytes]), so a script can check
 * that transformers loads rlvr's output with identical tensors.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engine/io/safetensors.h"
#include "engine/model/model.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: save_model SRC DST [max_shard_bytes]\n");
        return 2;
    }
    char err[2048];
    rlvr_backend *be = rlvr_cpu_backend_create(1);
    model *m = NULL;
    if (model_load(argv[1], be, &m, err, sizeof err) ||
        model_save(m, argv[2], ST_F32, argc > 3 ? strtoull(argv[3], NULL, 10) : 0, err,
                   sizeof err)) {
        fprintf(stderr, "save_model: %s\n", err);
        model_free(m);
        be->destroy(be);
        return 1;
    }
    model_free(m);
    be->destroy(be);
    return 0;
}
