/*
 * tests/bench/tokenizer_bench.c — single-thread encode throughput of rlvr's tokenizer.
 * Reads JSON lines {"text": ...}, encodes every text REPS times (the first pass warms the
 * word cache, as HF's does), and prints one JSON line: bytes, ids, a checksum of the ids
 * (to compare with HF), and MB/s of the best pass. tokenizer_bench.py runs it beside the
 * PyPI tokenizers package on the same texts.
 *
 * usage: tokenizer_bench TOKENIZER JSONL [REPS]
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/text/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER JSONL [REPS]\n", argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    if (reps < 1) reps = 1;
    char err[1024];
    double t0 = now();
    tok_tokenizer *t;
    if (tok_load(argv[1], &t, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double load_s = now() - t0;
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 1;
    }
    size_t cap = 1024, n = 0, bytes = 0;
    char **texts = malloc(cap * sizeof *texts);
    size_t *lens = malloc(cap * sizeof *lens);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, f)) > 0) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *tx = cJSON_GetObjectItem(j, "text");
        if (!cJSON_IsString(tx)) {
            fprintf(stderr, "%s: line %zu: expected {\"text\": string}\n", argv[2], n + 1);
            return 1;
        }
        if (n == cap) {
            cap *= 2;
            texts = realloc(texts, cap * sizeof *texts);
            lens = realloc(lens, cap * sizeof *lens);
        }
        lens[n] = strlen(tx->valuestring);
        texts[n] = strdup(tx->valuestring);
        bytes += lens[n++];
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    double best = 1e30, cold = 0;
    size_t total_ids = 0;
    unsigned long long checksum = 0;
    for (int r = 0; r < reps; r++) {
        double s = now();
        size_t ids_n = 0;
        unsigned long long sum = 0;
        for (size_t i = 0; i < n; i++) {
            int32_t *ids;
            size_t k;
            if (tok_encode(t, texts[i], lens[i], &ids, &k, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            for (size_t q = 0; q < k; q++) sum = sum * 1000003ull + (unsigned long long)ids[q];
            ids_n += k;
            free(ids);
        }
        double e = now() - s;
        if (r == 0) cold = e;
        if (e < best) best = e;
        total_ids = ids_n;
        checksum = sum;
    }
    printf("{\"engine\": \"rlvr\", \"texts\": %zu, \"bytes\": %zu, \"ids\": %zu, \"checksum\": %llu, "
           "\"load_s\": %.3f, \"first_pass_s\": %.4f, \"best_pass_s\": %.4f, \"mb_per_s\": %.2f}\n",
           n, bytes, total_ids, checksum, load_s, cold, best, (double)bytes / best / 1e6);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    tok_free(t);
    return 0;
}
