/*
 * tests/rl/rl_test.h — tiny check macros for the engine/rl unit tests: each failed check
 * prints file:line and the values, and the test exits 1 at the end if any failed.
 */
#ifndef RLVR_TESTS_RL_TEST_H
#define RLVR_TESTS_RL_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int rl_test_failures = 0;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
            rl_test_failures++;                                                                \
        }                                                                                      \
    } while (0)

/* |got − want| ≤ tol (absolute). */
#define CHECK_NEAR(got, want, tol)                                                             \
    do {                                                                                       \
        double g_ = (double)(got), w_ = (double)(want);                                        \
        if (!(fabs(g_ - w_) <= (tol))) {                                                       \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %.9g (tol %g)\n", __FILE__, __LINE__,  \
                    #got, g_, w_, (double)(tol));                                              \
            rl_test_failures++;                                                                \
        }                                                                                      \
    } while (0)

/* rc == want, and (for errors) the message contains `needle`. */
#define CHECK_ERR(call, want, needle)                                                          \
    do {                                                                                       \
        err[0] = 0;                                                                            \
        int rc_ = (call);                                                                      \
        if (rc_ != (want) || ((want) != 0 && !strstr(err, (needle)))) {                        \
            fprintf(stderr, "%s:%d: %s returned %d (\"%s\"), expected %d with \"%s\"\n",       \
                    __FILE__, __LINE__, #call, rc_, err, (int)(want), (needle));               \
            rl_test_failures++;                                                                \
        }                                                                                      \
    } while (0)

#define CHECK_OK(call) CHECK_ERR(call, 0, "")

static inline int rl_test_done(const char *name) {
    if (rl_test_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, rl_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
