/*
 * tests/reward/test_sat.c — the `sat` built-in through its ABI descriptor: satisfying and
 * falsifying assignments in every accepted notation, contradictions, out-of-range and
 * huge variables, partial assignments with and without require_all, unsatisfiable
 * formulas, formulas as DIMACS text / JSON clauses / the answer field, unparseable
 * formulas (ABSTAIN), the bits format, config errors, and hostile inputs (a million-
 * literal line, 5,000-digit numbers, 1 MB of prose) scored in bounded time.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rewards/builtin/builtins.h"

static int g_fail = 0, g_cases = 0;

static int no_info(rlvr_out *o, size_t i, const char *j) {
    (void)o, (void)i, (void)j;
    return 0;
}

static double run1(const char *cfg, const char *completion, size_t clen, const char *answer,
                   const char *extra, int *status) {
    const rlvr_reward_desc *d = rlvr_builtin_find("sat");
    void *st = NULL;
    char err[512] = "";
    if (!d || d->init(NULL, cfg, &st, err, sizeof err)) {
        fprintf(stderr, "FAIL init sat %s: %s\n", cfg, err);
        g_fail++;
        *status = -1;
        return NAN;
    }
    rlvr_item it = {"", 0, completion, clen, answer, strlen(answer), extra, 0};
    rlvr_batch b = {sizeof b, 0, &it, 1, 0, 0, 10.0};
    double s = NAN;
    int32_t stt = -1;
    rlvr_out out = {0};
    out.struct_size = sizeof out;
    out.scores = &s;
    out.status = &stt;
    out.set_info = no_info;
    d->score(st, &b, &out);
    d->destroy(st);
    *status = stt;
    return s;
}

static void expect_ex(const char *cfg, const char *c, const char *answer, const char *extra,
                      double want, int want_status) {
    int st;
    g_cases++;
    double s = run1(cfg, c, strlen(c), answer, extra, &st);
    if (st != want_status || (want_status == RLVR_STATUS_OK && s != want)) {
        fprintf(stderr, "FAIL sat %s: completion='%.80s' extra=%.80s: got %g (status %d), "
                        "want %g (status %d)\n",
                cfg, c, extra, s, st, want, want_status);
        g_fail++;
    }
}

/* (x1 ∨ ¬x2) ∧ (x2 ∨ x3) ∧ (¬x1 ∨ ¬x3): satisfied exactly by {1,2,-3} and {-1,-2,3}. */
#define F3 "{\"cnf\":\"c a small formula\\np cnf 3 3\\n1 -2 0\\n2 3 0\\n-1 -3 0\\n\"}"

static void expect(const char *c, double want) { expect_ex("{}", c, "", F3, want, 0); }

static void expect_cfg_error(const char *cfg, const char *needle) {
    const rlvr_reward_desc *d = rlvr_builtin_find("sat");
    void *st = NULL;
    char err[512] = "";
    g_cases++;
    int rc = d->init(NULL, cfg, &st, err, sizeof err);
    if (rc == 0 || !strstr(err, needle)) {
        fprintf(stderr, "FAIL sat config %s: rc %d err '%s' (want '%s')\n", cfg, rc, err,
                needle);
        g_fail++;
    }
    if (rc == 0) d->destroy(st);
}

static double secs(clock_t a) { return (double)(clock() - a) / CLOCKS_PER_SEC; }

int main(void) {
    expect("1 2 -3 0", 1);
    expect("1 2 -3", 1);
    expect("-1 -2 3 0", 1);
    expect("v 1 2 -3 0", 1);
    expect("s SATISFIABLE\nv 1 2\nv -3 0", 1);
    expect("[1, 2, -3]", 1);
    expect("x1=T, x2=T, x3=F", 1);
    expect("x1 = True\nx2 = TRUE\nx3 = false", 1);
    expect("x1: 1; x2: 1; x3: 0", 1);
    expect("x1, x2, ¬x3", 1);
    expect("~x1 !x2 x3", 1);
    expect("-x1 -x2 +x3", 1);
    expect("X1=t X2=T X3=f", 1);
    expect("−1 −2 3 0", 1); /* unicode minus */
    expect("Let me think.\nTrying 1 2 3 fails.\n<answer>\n1 2 -3 0\n</answer>", 1);
    expect("<answer>1 2 -3 0</answer>\nHope that helps!", 1);
    expect("1 2 -3 0\n<answer>1 -2 3 0</answer>", 0); /* the answer block wins */
    expect("Reasoning...\nFinal assignment:\n1 2 -3 0\n\nThat's it.", 1);
    expect("The assignment is 1 2 -3 0.", 0);            /* prose, no literal line */
    expect("1 2 -3 0\n\n\n", 1);                          /* trailing blank lines */
    /* Partial assignments: unassigned variables make no literal true. */
    const char *p2 = "{\"cnf\":\"p cnf 3 2\\n1 2 0\\n-3 1 0\\n\"}";
    expect_ex("{}", "1", "", p2, 1, 0); /* x2, x3 unassigned; each clause has x1 */
    expect_ex("{\"require_all\":true}", "1", "", p2, 0, 0);
    expect_ex("{\"require_all\":true}", "1 -2 -3", "", p2, 1, 0);
    expect_ex("{}", "2", "", p2, 0, 0); /* clause 2 has no true literal */
    expect("1 2", 0);                   /* clause 3 needs x3 false or x1 false */
    expect("1", 0);
    expect_ex("{\"require_all\":true}", "1 2 -3 0", "", F3, 1, 0);
    /* Falsifying assignments. */
    expect("1 -2 3 0", 0);
    expect("-1 2 -3 0", 0);
    expect("x1=F x2=F x3=F", 0);
    /* Earlier attempts are ignored: only the last block counts. */
    expect("1 -2 3 0\nno wait\n1 2 -3 0", 1);
    expect("1 2 -3 0\nno wait\n1 -2 3 0", 0);
    /* A block spans consecutive lines; a blank line splits blocks. */
    expect("1\n2\n-3", 1);
    expect("1 -2 3\n\n-3", 0); /* the last block is just "-3" */
    /* Contradictions. */
    expect("1 -1 2 -3 0", 0);
    expect("x1=T x1=F x2=T x3=F", 0);
    expect("1 2 -3 1 0", 1); /* a repeat of the same sign is fine */
    /* Out of range / malformed literal lists. */
    expect("1 2 -3 4 0", 0);
    expect("1 2 -3 99999999999999999999 0", 0);
    expect("x0=T x1=T x2=T x3=F", 0); /* x0 is not a variable: not an assignment line */
    expect("[1, 0, 0]", 0);             /* 0 inside the list (a bit vector) */
    expect("1 0 2 -3", 0);
    expect("", 0);
    expect("no numbers at all", 0);
    /* Bits format. */
    expect_ex("{\"format\":\"bits\"}", "[1, 1, 0]", "", F3, 1, 0);
    expect_ex("{\"format\":\"bits\"}", "<answer>0 0 1</answer>", "", F3, 1, 0);
    expect_ex("{\"format\":\"bits\"}", "[1, 0, 1]", "", F3, 0, 0);
    expect_ex("{\"format\":\"bits\"}", "[1, 0]", "", F3, 0, 0);
    expect_ex("{\"format\":\"bits\"}", "[1, 0, 2]", "", F3, 0, 0);
    /* Formula sources. */
    expect_ex("{}", "1 -2", "", "{\"sat_dimacs\":\"p cnf 2 1\\n1 2 0\"}", 1, 0);
    expect_ex("{}", "-1 2", "", "{\"dimacs\":\"p cnf 2 2\\n1 2 0 -1 0\\n\"}", 1, 0);
    expect_ex("{}", "1 2", "", "{\"dimacs\":\"p cnf 2 2\\n1 2 0 -1 0\\n\"}", 0, 0);
    expect_ex("{}", "-1 2", "", "{\"cnf\":[[1,2],[-1]]}", 1, 0);
    expect_ex("{}", "-1 -2", "", "{\"cnf\":[[1,2],[-1]]}", 0, 0);
    expect_ex("{}", "-1 2", "p cnf 2 2\n1 2 0\n-1 0\n", "{}", 1, 0);
    expect_ex("{}", "1 2 0", "", "{\"cnf\":\"p cnf 2 1\\n1 2\"}", 1, 0); /* no final 0 */
    expect_ex("{}", "1", "", "{\"cnf\":\"p cnf 2 1\\n1 2 0\\n%\\n0\\n\"}", 1, 0); /* SATLIB % */
    /* Unsatisfiable formulas: nothing scores. */
    const char *unsat = "{\"cnf\":\"p cnf 1 2\\n1 0\\n-1 0\\n\"}";
    expect_ex("{}", "1 0", "", unsat, 0, 0);
    expect_ex("{}", "-1 0", "", unsat, 0, 0);
    expect_ex("{}", "1 -1 0", "", unsat, 0, 0);
    expect_ex("{}", "1", "", "{\"cnf\":\"p cnf 1 2\\n1 0\\n0\\n\"}", 0, 0); /* empty clause */
    /* Pigeonhole 3 pigeons / 2 holes (unsat): the all-true assignment fails. */
    expect_ex("{}", "1 2 3 4 5 6", "",
              "{\"cnf\":\"p cnf 6 9\\n1 2 0\\n3 4 0\\n5 6 0\\n-1 -3 0\\n-1 -5 0\\n-3 -5 0\\n"
              "-2 -4 0\\n-2 -6 0\\n-4 -6 0\\n\"}",
              0, 0);
    /* Unparseable or missing formulas → ABSTAIN. */
    expect_ex("{}", "1", "", "{}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "42", "{}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":\"p cnf 2 1\\n1 x 0\"}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":\"p cnf 2 1\\n1 3 0\"}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":\"p dnf 2 1\\n1 2 0\"}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":\"p cnf 99999999999 1\\n1 0\"}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":\"p cnf 2 1\\np cnf 2 1\\n1 0\"}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":\"1 -0 0\"}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":\"\"}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":42}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":[[1,0]]}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":[[1.5]]}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "{\"cnf\":[1]}", 0, RLVR_STATUS_ABSTAIN);
    expect_ex("{}", "1", "", "not json", 0, RLVR_STATUS_ABSTAIN);
    /* Config errors name the field. */
    expect_cfg_error("{\"format\":\"binary\"}", "'format'");
    expect_cfg_error("{\"require_all\":1}", "'require_all'");
    expect_cfg_error("{\"strict\":true}", "unknown config field 'strict'");
    expect_cfg_error("[1]", "not a JSON object");

    /* Hostile inputs, bounded time. */
    {
        /* A million-literal line over a 1,000,000-variable formula (one clause). */
        size_t nv = 1000000;
        size_t cap = nv * 9 + 64;
        char *c = malloc(cap), *f = malloc(cap + 64);
        size_t k = 0, m = 0;
        m += (size_t)sprintf(f + m, "{\"cnf\":\"p cnf %zu 1\\n", nv);
        for (size_t v = 1; v <= nv; v++) {
            k += (size_t)sprintf(c + k, "%s%zu", v > 1 ? " -" : "-", v);
            if (v == nv) m += (size_t)sprintf(f + m, "%zu 0\"}", v);
            else if (v % 2 == 0) m += (size_t)sprintf(f + m, "%zu ", v);
        }
        /* The clause holds the even variables; every literal in c is negative → false. */
        clock_t t0 = clock();
        int st;
        g_cases++;
        double s = run1("{}", c, k, "", f, &st);
        double dt = secs(t0);
        if (st != 0 || s != 0 || dt > 2.0) {
            fprintf(stderr, "FAIL million literals: %g status %d in %.3f s\n", s, st, dt);
            g_fail++;
        }
        memcpy(c + k - 8, " 1000000", 8); /* the last literal made positive */
        t0 = clock();
        g_cases++;
        s = run1("{}", c, k, "", f, &st);
        dt = secs(t0);
        if (st != 0 || s != 1 || dt > 2.0) {
            fprintf(stderr, "FAIL million literals (satisfying): %g status %d in %.3f s\n", s,
                    st, dt);
            g_fail++;
        }
        free(c);
        free(f);
    }
    {
        /* 5,000-digit numbers and 1 MB of prose with digits. */
        size_t n = 1 << 20;
        char *c = malloc(n + 1);
        for (size_t i = 0; i < n; i++) c[i] = i % 80 == 79 ? '\n' : "abc 12 x3=T, def"[i % 16];
        c[n] = 0;
        clock_t t0 = clock();
        int st;
        g_cases++;
        run1("{}", c, n, "", F3, &st);
        double dt = secs(t0);
        if (st != 0 || dt > 2.0) {
            fprintf(stderr, "FAIL 1 MB prose: status %d in %.3f s\n", st, dt);
            g_fail++;
        }
        memset(c, '7', 5000);
        c[5000] = '\n';
        memcpy(c + 5001, "-", 1);
        memset(c + 5002, '9', 5000);
        c[10002] = 0;
        t0 = clock();
        g_cases++;
        double s = run1("{}", c, strlen(c), "", F3, &st);
        dt = secs(t0);
        if (st != 0 || s != 0 || dt > 1.0) {
            fprintf(stderr, "FAIL 5000-digit literals: %g status %d in %.3f s\n", s, st, dt);
            g_fail++;
        }
        /* 512k lines of "1": one block of 512k lines (x1 true, clause 2 false). */
        for (size_t i = 0; i < n; i += 2) {
            c[i] = '1';
            c[i + 1] = '\n';
        }
        c[n] = 0;
        t0 = clock();
        g_cases++;
        s = run1("{}", c, n, "", F3, &st);
        dt = secs(t0);
        if (st != 0 || s != 0 || dt > 2.0) {
            fprintf(stderr, "FAIL 500k lines: %g status %d in %.3f s\n", s, st, dt);
            g_fail++;
        }
        free(c);
    }
    if (g_fail) {
        fprintf(stderr, "sat: %d of %d cases failed\n", g_fail, g_cases);
        return 1;
    }
    printf("sat: %d cases passed\n", g_cases);
    return 0;
}
