/*
 * tests/bench/reward_bench.c — throughput of the reward host on this machine:
 *   math_answer items/s  (GSM8K/MATH-like completions of ~1 KB, mixed answer forms)
 *   code executions/s    (sandboxed python3 runs of a tiny stdin/stdout program)
 * usage: reward_bench [--workers N] [--math-items N] [--code-items N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/reward/reward_host.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *k_forms[][2] = {
    {"\\boxed{\\frac{3}{4}}", "0.75"},
    {"The answer is 1,234,567.", "1234567"},
    {"#### 72", "72"},
    {"\\boxed{2\\sqrt{3}}", "\\sqrt{12}"},
    {"\\boxed{(1, \\frac{1}{2})}", "(1,0.5)"},
    {"<answer>12345678901234567890123</answer>", "12345678901234567890124"},
    {"so we get 3.5 in the end", "\\frac{7}{2}"},
    {"\\boxed{50\\%}", "0.5"},
};

int main(int argc, char **argv) {
    int workers = (int)sysconf(_SC_NPROCESSORS_ONLN), math_n = 20000, code_n = 40;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--workers")) workers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--math-items")) math_n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--code-items")) code_n = atoi(argv[i + 1]);
    }
    char err[1024] = "";
    reward_host_opts o = {0};
    o.n_workers = workers;
    /* ---- math_answer ---- */
    reward_spec ms = {"math_answer", NULL, NAN};
    reward_host *h = reward_host_create(&ms, 1, &o, err, sizeof err);
    if (!h) {
        fprintf(stderr, "reward_bench: %s\n", err);
        return 1;
    }
    const char *filler = "Let us reason step by step. First we compute the partial sums "
                         "12 + 30 = 42, then 42 * 2 = 84, and we simplify the fraction. ";
    size_t nf = sizeof k_forms / sizeof *k_forms;
    rlvr_item *items = calloc((size_t)math_n, sizeof *items);
    char **texts = calloc((size_t)math_n, sizeof *texts);
    size_t bytes = 0;
    for (int i = 0; i < math_n; i++) {
        size_t l = 8 * strlen(filler) + 64;
        texts[i] = malloc(l);
        texts[i][0] = 0;
        for (int k = 0; k < 8; k++) strcat(texts[i], filler);
        strcat(texts[i], k_forms[i % nf][0]);
        items[i].prompt = "";
        items[i].completion = texts[i];
        items[i].completion_len = strlen(texts[i]);
        items[i].answer = k_forms[i % nf][1];
        items[i].answer_len = strlen(items[i].answer);
        items[i].extra_json = "{}";
        items[i].group_id = i / 8;
        bytes += items[i].completion_len;
    }
    double t0 = now_s();
    int ok = reward_host_score(h, items, (size_t)math_n, 0, 0, 600, NULL, NULL, err, sizeof err);
    double dt = now_s() - t0;
    if (ok != 0) fprintf(stderr, "reward_bench: %s\n", err);
    printf("math_answer: %d items (%.0f B avg) in %.3f s with %d workers: %.0f items/s\n",
           math_n, (double)bytes / math_n, dt, workers, math_n / dt);
    reward_host_free(h);
    for (int i = 0; i < math_n; i++) free(texts[i]);
    free(texts);
    free(items);
    /* ---- code ---- */
    if (access("/usr/bin/python3", X_OK) != 0) {
        printf("code: skipped (no /usr/bin/python3)\n");
        return 0;
    }
    reward_spec cs = {"code", NULL, NAN};
    h = reward_host_create(&cs, 1, &o, err, sizeof err);
    if (!h) {
        fprintf(stderr, "reward_bench: %s\n", err);
        return 1;
    }
    const char *prog = "```python\na, b = map(int, input().split())\nprint(a + b)\n```\n";
    const char *extra = "{\"tests\":[{\"input\":\"2 3\\n\",\"output\":\"5\\n\"}]}";
    items = calloc((size_t)code_n, sizeof *items);
    for (int i = 0; i < code_n; i++) {
        items[i].prompt = "";
        items[i].completion = prog;
        items[i].completion_len = strlen(prog);
        items[i].answer = "";
        items[i].extra_json = extra;
        items[i].group_id = i;
    }
    double *tot = calloc((size_t)code_n, sizeof *tot);
    t0 = now_s();
    ok = reward_host_score(h, items, (size_t)code_n, 0, 0, 600, tot, NULL, err, sizeof err);
    dt = now_s() - t0;
    int passed = 0;
    for (int i = 0; i < code_n; i++) passed += tot[i] == 1.0;
    printf("code: %d sandboxed python3 runs (%d passed) in %.3f s with %d workers: %.1f "
           "executions/s\n",
           code_n, passed, dt, workers, code_n / dt);
    reward_host_free(h);
    free(items);
    free(tot);
    return 0;
}
