/*
 * engine/cli/cmd_export.c — `rlvr export --checkpoint DIR --out DIR`: a checkpoint (or
 * any model directory) as a clean Hugging Face model directory for transformers or
 * vLLM — config.json, safetensors in the chosen dtype (sharded above --max-shard-mb),
 * and the tokenizer files — without the trainer state. Files are written atomically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/cli_util.h"
#include "engine/cli/commands.h"
#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/model/model.h"

static const char *USAGE =
    "usage: rlvr export --checkpoint DIR --out DIR [--dtype bf16|f16|f32]\n"
    "                   [--max-shard-mb N | --max-shard-bytes B]\n"
    "  DIR   a checkpoint (RUN_DIR/checkpoints/step-N) or any Hugging Face model directory\n"
    "  Writes config.json, model.safetensors (or shards + index above N MiB; default 5000)\n"
    "  and the tokenizer files found beside the weights. Default dtype bf16.\n";

int cmd_export(int argc, char **argv) {
    const char *src = NULL, *dst = NULL, *dtype = "bf16", *v = NULL;
    int shard_mb = 5000;
    long long shard_bytes = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if ((r = cli_opt(argc, argv, &i, "--checkpoint", &src)) ||
            (r = cli_opt(argc, argv, &i, "--out", &dst)) ||
            (r = cli_opt(argc, argv, &i, "--dtype", &dtype))) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = cli_opt(argc, argv, &i, "--max-shard-bytes", &v))) {
            char *end = NULL;
            shard_bytes = r < 0 ? 0 : strtoll(v, &end, 10);
            if (r < 0 || !end || *end || shard_bytes < 1) {
                fprintf(stderr, "rlvr export: --max-shard-bytes expects a positive integer\n");
                return 2;
            }
            continue;
        }
        if ((r = cli_opt(argc, argv, &i, "--max-shard-mb", &v))) {
            if (r < 0 || cli_int("export", "--max-shard-mb", v, 1, 1 << 20, &shard_mb)) return 2;
            continue;
        }
        fprintf(stderr, "rlvr export: unknown argument '%s'\n%s", argv[i], USAGE);
        return 2;
    }
    if (!src || !dst) {
        fprintf(stderr, "rlvr export: --checkpoint and --out are required\n%s", USAGE);
        return 2;
    }
    int st = !strcmp(dtype, "bf16") ? ST_BF16 : !strcmp(dtype, "f16") ? ST_F16
             : !strcmp(dtype, "f32") ? ST_F32 : -1;
    if (st < 0) {
        fprintf(stderr, "rlvr export: --dtype '%s': expected bf16, f16 or f32\n", dtype);
        return 2;
    }
    char err[2048];
    rlvr_backend *be = rlvr_cpu_backend_create(0);
    model *m = NULL;
    int rc = 1;
    if (!be || model_load(src, be, &m, err, sizeof err) ||
        model_save(m, dst, st, shard_bytes ? (size_t)shard_bytes : (size_t)shard_mb << 20, err,
                   sizeof err)) {
        fprintf(stderr, "rlvr export: %s\n", err);
        goto done;
    }
    static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json",
                                            "generation_config.json", "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof tok_files / sizeof tok_files[0]; i++) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", src, tok_files[i]);
        snprintf(to, sizeof to, "%s/%s", dst, tok_files[i]);
        char *data = NULL;
        size_t len = 0;
        if (fio_read_file(from, &data, &len, err, sizeof err)) continue; /* not there */
        int bad = fio_write_file(to, data, len, err, sizeof err);
        free(data);
        if (bad) {
            fprintf(stderr, "rlvr export: %s\n", err);
            goto done;
        }
    }
    printf("rlvr export: %s -> %s (%s, %zu parameters)\n", src, dst, dtype,
           model_config_num_params(&m->cfg));
    rc = 0;
done:
    model_free(m);
    if (be) be->destroy(be);
    return rc;
}
