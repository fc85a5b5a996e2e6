/*
 * tests/text/test_util.h — helpers shared by the tokenizer tests: whole-file reads,
 * JSON-lines iteration, hex decoding, and a failure counter that prints the first few
 * failures in detail.
 */
#ifndef RLVR_TESTS_TEXT_TEST_UTIL_H
#define RLVR_TESTS_TEXT_TEST_UTIL_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *tu_read(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

/* Parses a JSON-lines file into an array of cJSON objects (*n of them). */
static inline cJSON **tu_jsonl(const char *path, size_t *n) {
    char *data = tu_read(path, NULL);
    size_t cap = 64;
    cJSON **rows = malloc(cap * sizeof *rows);
    *n = 0;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        if (!*line) continue;
        cJSON *j = cJSON_Parse(line);
        if (!j) {
            fprintf(stderr, "%s: bad JSON line %zu\n", path, *n + 1);
            exit(1);
        }
        if (*n == cap) rows = realloc(rows, (cap *= 2) * sizeof *rows);
        rows[(*n)++] = j;
    }
    free(data);
    return rows;
}

static inline void tu_jsonl_free(cJSON **rows, size_t n) {
    for (size_t i = 0; i < n; i++) cJSON_Delete(rows[i]);
    free(rows);
}

/* Hex string -> malloc'ed bytes. */
static inline char *tu_unhex(const char *hex, size_t *len) {
    size_t n = strlen(hex) / 2;
    char *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        b[i] = (char)v;
    }
    b[n] = 0;
    *len = n;
    return b;
}

static inline int32_t *tu_ids(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *ids = malloc((*n + 1) * sizeof *ids);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) ids[i++] = (int32_t)e->valuedouble;
    return ids;
}

static inline void tu_print_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

static int tu_failures;
#define TU_CHECK(cond, ...)                                                                     \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            if (tu_failures++ < 12) {                                                          \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                           \
                fprintf(stderr, __VA_ARGS__);                                                  \
                fprintf(stderr, "\n");                                                         \
            }                                                                                  \
        }                                                                                      \
    } while (0)

#endif
