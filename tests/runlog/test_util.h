/*
 * tests/runlog/test_util.h — the shared check macros (tests/common/check.h) and a
 * scratch-directory helper for the runlog tests.
 */
#ifndef RLVR_TESTS_RUNLOG_TEST_UTIL_H
#define RLVR_TESTS_RUNLOG_TEST_UTIL_H

#include "tests/common/check.h"

#include <stdio.h>
#include <stdlib.h>

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
