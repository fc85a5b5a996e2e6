/*
 * tests/io/io_test.h — the few check macros the I/O tests share. A failed check prints
 * file:line and what was expected; main returns the number of failures (0 = pass).
 */
#ifndef RLVR_TESTS_IO_TEST_H
#define RLVR_TESTS_IO_TEST_H

#include <stdio.h>
#include <string.h>

static int io_test_failures;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
            io_test_failures++;                                                                \
        }                                                                                      \
    } while (0)

/* rc must be -1 and the message must contain substr. */
#define CHECK_ERR(rc, err, substr)                                                             \
    do {                                                                                       \
        if ((rc) != -1 || !strstr((err), (substr))) {                                          \
            fprintf(stderr, "%s:%d: expected failure with \"%s\", got rc=%d err=\"%s\"\n",     \
                    __FILE__, __LINE__, (substr), (rc), (err));                                \
            io_test_failures++;                                                                \
        }                                                                                      \
    } while (0)

#define CHECK_OK(rc, err)                                                                      \
    do {                                                                                       \
        if ((rc) != 0) {                                                                       \
            fprintf(stderr, "%s:%d: unexpected failure: %s\n", __FILE__, __LINE__, (err));     \
            io_test_failures++;                                                                \
        }                                                                                      \
    } while (0)

#endif
