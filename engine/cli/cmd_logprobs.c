/*
 * engine/cli/cmd_logprobs.c — `rlvr logprobs --model MODEL [--input FILE]`.
 * Public interface (scripts depend on it): reads JSON lines {"ids": [...]} and writes,
 * for each, one line {"logprobs": [...]} with logprobs[t] = log p(ids[t+1] | ids[..t])
 * (length len(ids) − 1). Lines are packed into batches of up to --batch-tokens tokens
 * and answered in input order.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/cli_util.h"
#include "engine/cli/commands.h"
#include "engine/model/builtin.h"

static const char *USAGE =
    "usage: rlvr logprobs --model MODEL [--input FILE] [--device cpu|cuda] [--threads N]\n"
    "                     [--temperature T] [--batch-tokens N]\n"
    "  MODEL   a Hugging Face model directory (config.json + safetensors) or builtin:NAME\n"
    "  reads JSON lines {\"ids\": [int, ...]} (stdin by default), writes one line\n"
    "  {\"logprobs\": [...]} per input: logprobs[t] = log p(ids[t+1] | ids[..t]),\n"
    "  computed at the given sampling temperature (default 1).\n";

typedef struct {
    int32_t *ids;
    int *offsets;
    int T, B, cap_T, cap_B;
} pending;

static int flush(model *m, pending *p, float inv_temp, FILE *out) {
    if (p->B == 0) return 0;
    char err[1024];
    model_batch b = {.T = p->T, .B = p->B, .ids = p->ids, .offsets = p->offsets};
    if (model_forward(m, &b, inv_temp, 0, err, sizeof err)) {
        fprintf(stderr, "rlvr logprobs: %s\n", err);
        return -1;
    }
    float *lp = malloc((size_t)p->T * sizeof(float));
    if (!lp) return -1;
    m->be->to_host(m->be, lp, model_logp(m), (size_t)p->T * sizeof(float));
    for (int s = 0; s < p->B; s++) {
        fputs("{\"logprobs\": [", out);
        for (int t = p->offsets[s]; t < p->offsets[s + 1] - 1; t++)
            fprintf(out, "%s%.9g", t > p->offsets[s] ? ", " : "", lp[t]);
        fputs("]}\n", out);
    }
    fflush(out);
    free(lp);
    p->T = p->B = 0;
    return 0;
}

static int push(pending *p, const int32_t *ids, int n) {
    if (p->T + n > p->cap_T) {
        int cap = (p->T + n) * 2;
        int32_t *r = realloc(p->ids, (size_t)cap * sizeof *r);
        if (!r) return -1;
        p->ids = r;
        p->cap_T = cap;
    }
    if (p->B + 2 > p->cap_B) {
        int cap = (p->B + 2) * 2;
        int *r = realloc(p->offsets, (size_t)cap * sizeof *r);
        if (!r) return -1;
        p->offsets = r;
        p->cap_B = cap;
    }
    memcpy(p->ids + p->T, ids, (size_t)n * sizeof *ids);
    p->offsets[p->B] = p->T;
    p->T += n;
    p->offsets[++p->B] = p->T;
    return 0;
}

/* Parses one input line into ids; prints an error naming the line on failure. */
static int parse_line(const char *line, const char *src, long lineno, int V, int32_t **ids,
                      int *n) {
    cJSON *root = cJSON_Parse(line);
    const cJSON *arr = root ? cJSON_GetObjectItemCaseSensitive(root, "ids") : NULL;
    int rc = -1;
    if (!root || !cJSON_IsObject(root)) {
        fprintf(stderr, "rlvr logprobs: %s:%ld: not a JSON object\n", src, lineno);
    } else if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1) {
        fprintf(stderr, "rlvr logprobs: %s:%ld: \"ids\" must be a non-empty array of token ids\n",
                src, lineno);
    } else {
        *n = cJSON_GetArraySize(arr);
        *ids = malloc((size_t)*n * sizeof **ids);
        int i = 0;
        rc = *ids ? 0 : -1;
        for (const cJSON *v = arr->child; v && rc == 0; v = v->next, i++) {
            if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble ||
                v->valuedouble < 0 || v->valuedouble >= V) {
                char *s = cJSON_PrintUnformatted(v);
                fprintf(stderr,
                        "rlvr logprobs: %s:%ld: ids[%d] = %s: expected a token id in [0, %d)\n",
                        src, lineno, i, s ? s : "?", V);
                free(s);
                rc = -1;
            } else {
                (*ids)[i] = (int32_t)v->valuedouble;
            }
        }
        if (rc) {
            free(*ids);
            *ids = NULL;
        }
    }
    cJSON_Delete(root);
    return rc;
}

int cmd_logprobs(int argc, char **argv) {
    const char *model_dir = NULL, *input = NULL, *device = "cpu", *v = NULL;
    int threads = 0, batch_tokens = 8192;
    float temperature = 1.0f;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if ((r = cli_opt(argc, argv, &i, "--model", &model_dir)) ||
            (r = cli_opt(argc, argv, &i, "--input", &input)) ||
            (r = cli_opt(argc, argv, &i, "--device", &device))) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            if (r < 0 || cli_int("logprobs", "--threads", v, 1, 4096, &threads)) return 2;
            continue;
        }
        if ((r = cli_opt(argc, argv, &i, "--batch-tokens", &v))) {
            if (r < 0 || cli_int("logprobs", "--batch-tokens", v, 1, 1 << 24, &batch_tokens))
                return 2;
            continue;
        }
        if ((r = cli_opt(argc, argv, &i, "--temperature", &v))) {
            if (r < 0 || cli_float("logprobs", "--temperature", v, 1e-4f, 1e4f, &temperature))
                return 2;
            continue;
        }
        fprintf(stderr, "rlvr logprobs: unknown argument '%s'\n%s", argv[i], USAGE);
        return 2;
    }
    if (!model_dir) {
        fprintf(stderr, "rlvr logprobs: --model is required\n%s", USAGE);
        return 2;
    }
    FILE *in = input ? fopen(input, "r") : stdin;
    if (!in) {
        fprintf(stderr, "rlvr logprobs: cannot open --input %s: %m\n", input);
        return 1;
    }
    char err[2048];
    rlvr_backend *be = rlvr_backend_create(device, threads, err, sizeof err);
    if (!be) {
        fprintf(stderr, "rlvr logprobs: %s\n", err);
        return 1;
    }
    model *m = NULL;
    if (model_open(model_dir, be, &m, err, sizeof err)) {
        fprintf(stderr, "rlvr logprobs: %s\n", err);
        be->destroy(be);
        return 1;
    }
    pending p = {0};
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, n;
    int rc = 0;
    const char *src = input ? input : "<stdin>";
    while ((n = cli_getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        int32_t *ids = NULL;
        int len = 0;
        if (parse_line(line, src, lineno, m->cfg.vocab_size, &ids, &len)) {
            flush(m, &p, 1.0f / temperature, stdout); /* answer the good lines before it */
            rc = 1;
            break;
        }
        if (p.T > 0 && p.T + len > batch_tokens && flush(m, &p, 1.0f / temperature, stdout)) {
            free(ids);
            rc = 1;
            break;
        }
        int bad = push(&p, ids, len);
        free(ids);
        if (bad) {
            rc = 1;
            break;
        }
    }
    if (rc == 0 && flush(m, &p, 1.0f / temperature, stdout)) rc = 1;
    free(line);
    free(p.ids);
    free(p.offsets);
    if (in != stdin) fclose(in);
    model_free(m);
    be->destroy(be);
    return rc;
}
