/*
 * engine/cli/cli_util.c — see cli_util.h.
 */
#include "engine/cli/cli_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cli_opt(int argc, char **argv, int *i, const char *name, const char **value) {
    if (strcmp(argv[*i], name) != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "rlvr %s: option %s expects a value\n", argv[0], name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_int(const char *cmd, const char *name, const char *value, int lo, int hi, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi) {
        fprintf(stderr, "rlvr %s: %s = '%s': expected an integer in [%d, %d]\n", cmd, name, value,
                lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_float(const char *cmd, const char *name, const char *value, float lo, float hi,
              float *out) {
    char *end = NULL;
    errno = 0;
    float v = strtof(value, &end);
    if (errno || end == value || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "rlvr %s: %s = '%s': expected a number in [%g, %g]\n", cmd, name, value,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

long cli_getline(char **buf, size_t *cap, FILE *f) {
    ssize_t n = getline(buf, cap, f);
    return n < 0 ? -1 : (long)n;
}
