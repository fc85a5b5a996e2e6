/*
 * tests/io/st_tool.c — a small driver the Python interop test uses to exercise the
 * rlvr safetensors reader and writer from outside.
 *
 *   st_tool write OUT DTYPE MAX_SHARD IN.f32 NAME:D0xD1x.. [NAME:SHAPE ...]
 *       takes fp32 values (raw little-endian) from IN.f32 in order, one tensor per
 *       NAME:SHAPE ("-" for a scalar); MAX_SHARD < 0 writes the single file OUT with
 *       st_write_file, otherwise the model directory OUT with st_write_dir.
 *   st_tool dump PATH
 *       opens a file (or a model directory), prints one line per tensor:
 *       NAME<TAB>DTYPE<TAB>D0,D1,..<TAB>hex fp32 bits of every element (st_to_f32).
 * Exit status 1 with the error message on stderr when the library says no.
 */
#include "engine/io/safetensors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int dump(const char *path) {
    char err[1024];
    st_set *s = NULL;
    struct stat st;
    int isdir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if ((isdir ? st_open_dir(path, &s, err, sizeof err)
               : st_open_file(path, &s, err, sizeof err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int i = 0; i < st_count(s); i++) {
        const st_tensor *t = st_get(s, i);
        printf("%s\t%s\t", t->name, st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
        printf("\t");
        if (t->dtype != ST_F32 && t->dtype != ST_BF16 && t->dtype != ST_F16 &&
            t->dtype != ST_F64) {
            printf("-\n");
            continue;
        }
        float *v = malloc(sizeof(float) * (size_t)(t->numel + 1));
        if (!v || st_to_f32(t, v, err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", v ? err : "out of memory");
            free(v);
            st_close(s);
            return 1;
        }
        for (int64_t k = 0; k < t->numel; k++) {
            uint32_t u;
            memcpy(&u, &v[k], 4);
            printf(k ? " %08x" : "%08x", u);
        }
        printf("\n");
        free(v);
    }
    st_close(s);
    return 0;
}

static int write_cmd(int argc, char **argv) {
    const char *out = argv[2];
    st_dtype dt;
    if (st_dtype_parse(argv[3], &dt) != 0) {
        fprintf(stderr, "st_tool: unknown dtype %s\n", argv[3]);
        return 2;
    }
    long long max_shard = atoll(argv[4]);
    FILE *f = fopen(argv[5], "rb");
    if (!f) {
        perror(argv[5]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f) / 4;
    fseek(f, 0, SEEK_SET);
    float *vals = malloc(sizeof(float) * (size_t)(n + 1));
    if (!vals || fread(vals, 4, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "st_tool: cannot read %s\n", argv[5]);
        fclose(f);
        free(vals);
        return 2;
    }
    fclose(f);
    int nt = argc - 6;
    st_write_tensor *ts = calloc((size_t)nt + 1, sizeof *ts);
    long used = 0;
    int rc = 2;
    for (int i = 0; i < nt; i++) {
        char *spec = argv[6 + i], *colon = strrchr(spec, ':');
        if (!colon) {
            fprintf(stderr, "st_tool: expected NAME:SHAPE, got %s\n", spec);
            goto done;
        }
        *colon = '\0';
        ts[i].name = spec;
        long numel = 1;
        if (strcmp(colon + 1, "-") != 0) {
            for (char *p = colon + 1; *p;) {
                char *end;
                long long d = strtoll(p, &end, 10);
                if (end == p || d < 0 || ts[i].ndim == ST_MAX_DIMS || (*end && *end != 'x')) {
                    fprintf(stderr, "st_tool: bad shape in %s (expected D0xD1x..)\n", spec);
                    goto done;
                }
                ts[i].shape[ts[i].ndim++] = d;
                numel *= (long)d;
                p = *end ? end + 1 : end;
            }
        }
        if (used + numel > n) {
            fprintf(stderr, "st_tool: %s needs more values than %s holds\n", spec, argv[5]);
            goto done;
        }
        ts[i].data = vals + used;
        used += numel;
    }
    char err[1024];
    int r = max_shard < 0 ? st_write_file(out, ts, nt, dt, err, sizeof err)
                          : st_write_dir(out, ts, nt, dt, (size_t)max_shard, err, sizeof err);
    if (r != 0) {
        fprintf(stderr, "%s\n", err);
        rc = 1;
    } else {
        rc = 0;
    }
done:
    free(ts);
    free(vals);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "dump") == 0) return dump(argv[2]);
    if (argc >= 6 && strcmp(argv[1], "write") == 0) return write_cmd(argc, argv);
    fprintf(stderr, "usage: st_tool write OUT DTYPE MAX_SHARD IN.f32 NAME:SHAPE...\n"
                    "       st_tool dump PATH\n");
    return 2;
}
