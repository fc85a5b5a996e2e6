/*
 * tests/runlog/test_util.h — CHECK macro and scratch-directory helpers for the runlog
 * tests.
 */
#ifndef RLVR_TESTS_RUNLOG_TEST_UTIL_H
#define RLVR_TESTS_RUNLOG_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

static int test_failures;

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
            test_failures++;                                                                   \
        }                                                                                      \
    } while (0)

/* rm -rf dir && mkdir -p dir (the scratch directory given on the command line). */
static void test_fresh_dir(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot prepare %s\n", dir);
        exit(1);
    }
}

#endif
