/*
 * tests/reward/test_builtins.c — cases for the format, countdown and length built-ins
 * (math_answer has its own fixture; code has test_code_sandbox), called through their
 * ABI descriptors: expected scores and statuses, config errors that name the field.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewards/builtin/builtins.h"

static int g_fail = 0;

static int no_info(rlvr_out *o, size_t i, const char *j) {
    (void)o, (void)i, (void)j;
    return 0;
}

/* Scores one item with reward `name` configured by cfg; returns the score. */
static double run1(const char *name, const char *cfg, const char *completion,
                   const char *answer, const char *extra, int *status) {
    const rlvr_reward_desc *d = rlvr_builtin_find(name);
    void *st = NULL;
    char err[512] = "";
    if (d->init(NULL, cfg, &st, err, sizeof err)) {
        fprintf(stderr, "init %s %s: %s\n", name, cfg, err);
        g_fail++;
        return NAN;
    }
    rlvr_item it = {"", 0, completion, strlen(completion), answer, strlen(answer), extra, 0};
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

static void expect(const char *name, const char *cfg, const char *c, const char *a,
                   const char *extra, double want, int want_status) {
    int st;
    double s = run1(name, cfg, c, a, extra, &st);
    if (st != want_status || (want_status == RLVR_STATUS_OK && fabs(s - want) > 1e-12)) {
        fprintf(stderr, "FAIL %s %s: completion='%.60s' extra=%s: got %g (status %d), want %g "
                        "(status %d)\n",
                name, cfg, c, extra, s, st, want, want_status);
        g_fail++;
    }
}

static void expect_cfg_error(const char *name, const char *cfg, const char *needle) {
    const rlvr_reward_desc *d = rlvr_builtin_find(name);
    void *st = NULL;
    char err[512] = "";
    int rc = d->init(NULL, cfg, &st, err, sizeof err);
    if (rc == 0 || !strstr(err, needle)) {
        fprintf(stderr, "FAIL %s config %s: rc=%d err='%s' (want '%s')\n", name, cfg, rc, err,
                needle);
        g_fail++;
        if (rc == 0) d->destroy(st);
    }
}

int main(void) {
    const int OK = RLVR_STATUS_OK, AB = RLVR_STATUS_ABSTAIN, ER = RLVR_STATUS_ERROR;
    /* ---- format ---- */
    const char *F = "format", *E = "{}";
    expect(F, E, "<think>a</think><answer>b</answer>", "", E, 1.0, OK);
    expect(F, E, "  <think>\na\n</think>\n<answer>\nb\n</answer>\n", "", E, 1.0, OK);
    expect(F, E, "<answer>b</answer><think>a</think>", "", E, 0.5, OK);   /* order */
    expect(F, E, "<think>a<answer>b</answer></think>", "", E, 0.5, OK);   /* nesting */
    expect(F, E, "<think>a</think>", "", E, 0.25, OK);
    expect(F, E, "no tags at all", "", E, 0.0, OK);
    expect(F, E, "<think>a</think><think>b</think><answer>c</answer>", "", E, 0.25, OK);
    expect(F, E, "<think>a</think><answer>b</answer> extra text", "", E, 0.5, OK);
    expect(F, E, "preamble <think>a</think><answer>b</answer>", "", E, 0.5, OK);
    expect(F, E, "<think>a</think> text <answer>b</answer>", "", E, 0.5, OK);
    /* chat template already opened <think>: the completion starts inside the block */
    const char *P = "{\"think_prefilled\":true}";
    expect(F, P, "reasoning</think><answer>b</answer>", "", E, 1.0, OK);
    expect(F, P, "<think>reasoning</think><answer>b</answer>", "", E, 0.5, OK);
    expect(F, E, "reasoning</think><answer>b</answer>", "", E, 0.375, OK);
    expect(F, P, "reasoning</think>", "", E, 0.5 / 3.0, OK);
    expect_cfg_error(F, "{\"think_prefilled\":1}", "'think_prefilled'");
    expect_cfg_error(F, "{\"typo\":true}", "typo");
    /* ---- countdown ---- */
    const char *C = "countdown", *CE = "{\"nums\":[3,5,7],\"target\":22}";
    expect(C, E, "<answer>3*5+7</answer>", "", CE, 1.0, OK);
    expect(C, E, "<answer>(7 + 5) * 3 - 14</answer>", "", CE, 0.0, OK);      /* 14 not given */
    expect(C, E, "<answer>7*3+5</answer>", "", CE, 0.0, OK);                 /* 26 */
    expect(C, E, "<answer>3*5+7+7</answer>", "", CE, 0.0, OK);               /* 7 twice */
    expect(C, E, "<answer>3*5</answer>", "", CE, 0.0, OK);                   /* 7 unused */
    expect(C, E, "<answer>3*5+7 = 22</answer>", "", CE, 1.0, OK);
    expect(C, E, "I think 3*5+7", "", CE, 1.0, OK);                          /* last line */
    expect(C, E, "<answer>3**5+7</answer>", "", CE, 0.0, OK);               /* no powers */
    expect(C, E, "<answer>9**9**9</answer>", "", CE, 0.0, OK);
    expect(C, E, "<answer>__import__('os')</answer>", "", CE, 0.0, OK);
    expect(C, E, "<answer>-3+5*7-10</answer>", "", CE, 0.0, OK);            /* unary minus */
    expect(C, E, "<answer>7/(5-5)+3</answer>", "", CE, 0.0, OK);             /* div by zero */
    expect(C, "{\"format_score\":0.1}", "<answer>7*3+5</answer>", "", CE, 0.1, OK);
    expect(C, E, "<answer>(3+5)/7</answer>", "", "{\"nums\":[3,5,7],\"target\":1}", 0.0, OK);
    expect(C, E, "<answer>(7-5)/(3-1)*2</answer>", "", "{\"numbers\":[7,5,3,1,2],\"target\":2}",
           1.0, OK);
    expect(C, E, "<answer>6/4*2</answer>", "", "{\"nums\":[6,4,2],\"target\":3}", 1.0, OK);
    expect(C, E, "<answer>1+2</answer>", "3", "{\"nums\":[1,2]}", 1.0, OK);  /* answer = target */
    expect(C, E, "<answer>1+2</answer>", "", "{\"target\":3}", 0.0, AB);
    expect(C, E, "<answer>1+2</answer>", "", "{\"nums\":\"1 2\",\"target\":3}", 0.0, AB);
    {
        /* 3000 nested parentheses: rejected by the depth bound, not a stack overflow */
        char *deep = malloc(7000);
        strcpy(deep, "<answer>");
        for (int i = 0; i < 3000; i++) strcat(deep, "(");
        strcat(deep, "3");
        for (int i = 0; i < 3000; i++) strcat(deep, ")");
        strcat(deep, "</answer>");
        expect(C, E, deep, "", "{\"nums\":[3],\"target\":3}", 0.0, OK);
        free(deep);
    }
    /* ---- length ---- */
    const char *L = "length";
    const char *D = "{\"mode\":\"dapo\",\"max_len\":100,\"cache\":20,\"unit\":\"tokens\"}";
    expect(L, D, "x", "", "{\"completion_tokens\":50}", 0.0, OK);
    expect(L, D, "x", "", "{\"completion_tokens\":80}", 0.0, OK);
    expect(L, D, "x", "", "{\"completion_tokens\":90}", -0.5, OK);
    expect(L, D, "x", "", "{\"completion_tokens\":100}", -1.0, OK);
    expect(L, D, "x", "", "{\"completion_tokens\":101}", -1.0, OK);
    expect(L, D, "x", "", "{}", 0.0, ER);
    const char *LC = "{\"mode\":\"linear\",\"max_len\":4,\"unit\":\"chars\"}";
    expect(L, LC, "ab", "", E, -0.5, OK);
    expect(L, LC, "\xc3\xa9\xc3\xa9", "", E, -0.5, OK); /* two code points */
    expect(L, LC, "abcdefgh", "", E, -1.0, OK);
    expect(L, "{\"mode\":\"linear\",\"max_len\":4,\"unit\":\"bytes\"}", "\xc3\xa9", "", E, -0.5, OK);
    expect_cfg_error(L, "{\"mode\":\"quadratic\"}", "'mode'");
    expect_cfg_error(L, "{\"unit\":\"words\"}", "'unit'");
    expect_cfg_error(L, "{\"max_len\":100,\"cache\":200}", "'cache'");
    expect_cfg_error(L, "{\"max_len\":-5}", "'max_len'");
    expect_cfg_error("math_answer", "{\"require_marker\":\"yes\"}", "'require_marker'");
    expect_cfg_error("code", "{\"interpreter\":\"python3\"}", "'interpreter'");
    expect_cfg_error("code", "{\"mode\":\"some\"}", "'mode'");
    /* math_answer with require_marker: the last-number fallback is off */
    expect("math_answer", "{\"require_marker\":true}", "it is 42", "42", E, 0.0, OK);
    expect("math_answer", "{\"require_marker\":true}", "Answer: 42", "42", E, 1.0, OK);
    if (g_fail) {
        fprintf(stderr, "%d case(s) failed\n", g_fail);
        return 1;
    }
    printf("builtins: all cases passed\n");
    return 0;
}
