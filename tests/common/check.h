/*
 * tests/common/check.h — the assertion macros the C tests share.
 *
 * Contract: a check that fails prints one line to stderr,
 *     FAIL file:line: <the condition as written>[: <message>]
 * increments check_failures and carries on (later checks still run). A test's main ends
 * with `return check_failures ? 1 : 0;` (or `return check_done("name");`), so the test
 * exits non-zero when any check failed. The counter is per program: include this header
 * from the test's one translation unit (it is `static`).
 *
 *   CHECK(cond)                        cond must hold
 *   CHECK(cond, fmt, ...)              same, with a printf-style message (format-checked;
 *                                      fmt must be a string literal)
 *   CHECK_OR_RETURN(cond[, fmt, ...])  CHECK, then `return;` from the enclosing void
 *                                      function when it failed (later checks need it)
 *   CHECK_NEAR(got, want, tol)         |got − want| ≤ tol (absolute, in double); prints
 *                                      both values and the tolerance
 *   CHECK_ERR(call, want, err, needle) clears the message buffer err (a char array), runs
 *                                      call once; its int result must equal want and, when
 *                                      want ≠ 0, err must contain needle
 *   CHECK_OK(call, err)                CHECK_ERR(call, 0, err, ""): call must return 0;
 *                                      prints err when it did not
 *
 * Arguments are evaluated once; a message's arguments only when the check failed.
 */
#ifndef RLVR_TESTS_COMMON_CHECK_H
#define RLVR_TESTS_COMMON_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Failed checks so far in this program. */
__attribute__((unused)) static int check_failures;

/* Reports one failed check. fmt is ": " followed by the caller's message (CHECK pastes
 * the separator in front of the literal, so an absent message is just ": " and the
 * compiler still checks the format against its arguments). */
__attribute__((format(printf, 4, 5))) static inline void
check_fail_(const char *file, int line, const char *cond, const char *fmt, ...) {
    check_failures++;
    fprintf(stderr, "FAIL %s:%d: %s", file, line, cond);
    if (fmt[0] && fmt[1] && fmt[2]) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) check_fail_(__FILE__, __LINE__, #cond, ": " __VA_ARGS__);                 \
    } while (0)

#define CHECK_OR_RETURN(cond, ...)                                                             \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            check_fail_(__FILE__, __LINE__, #cond, ": " __VA_ARGS__);                          \
            return;                                                                            \
        }                                                                                      \
    } while (0)

#define CHECK_NEAR(got, want, tol)                                                             \
    do {                                                                                       \
        const double g_ = (double)(got), w_ = (double)(want), t_ = (double)(tol);              \
        if (!(fabs(g_ - w_) <= t_))                                                            \
            check_fail_(__FILE__, __LINE__, "|" #got " - " #want "| <= " #tol,                 \
                        ": got %.9g, expected %.9g (tol %g)", g_, w_, t_);                     \
    } while (0)

#define CHECK_ERR(call, want, err, needle)                                                     \
    do {                                                                                       \
        (err)[0] = 0;                                                                          \
        const int rc_ = (call);                                                                \
        const int want_ = (want);                                                              \
        if (rc_ != want_ || (want_ != 0 && !strstr((err), (needle))))                          \
            check_fail_(__FILE__, __LINE__, #call,                                             \
                        ": returned %d (\"%s\"), expected %d with \"%s\"", rc_, (err), want_,  \
                        (needle));                                                             \
    } while (0)

#define CHECK_OK(call, err) CHECK_ERR(call, 0, err, "")

/* Prints "name: N check(s) failed" (stderr) or "name: all checks passed" (stdout) and
 * returns main's exit status: 1 when any check failed, else 0. */
static inline int check_done(const char *name) {
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
