/*
 * tests/reward/test_math_answer.c — the math_answer verifier against math_cases.jsonl
 * (written by make_math_cases.py): correct answers, wrong answers, equivalent forms,
 * unreadable references (abstain) and hostile inputs, each of which must also be scored
 * within a time bound. Calls the built-in through its ABI descriptor, as the host does.
 *
 * usage: test_math_answer math_cases.jsonl
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rewards/builtin/builtins.h"

static char *expand(const cJSON *v, size_t *len) {
    if (cJSON_IsString(v)) {
        *len = strlen(v->valuestring);
        return strdup(v->valuestring);
    }
    size_t total = 0;
    for (const cJSON *p = v->child; p; p = p->next)
        total += strlen(cJSON_GetArrayItem(p, 0)->valuestring) *
                 (size_t)cJSON_GetArrayItem(p, 1)->valuedouble;
    char *s = malloc(total + 1), *w = s;
    for (const cJSON *p = v->child; p; p = p->next) {
        const char *piece = cJSON_GetArrayItem(p, 0)->valuestring;
        size_t pl = strlen(piece), n = (size_t)cJSON_GetArrayItem(p, 1)->valuedouble;
        for (size_t k = 0; k < n; k++, w += pl) memcpy(w, piece, pl);
    }
    *w = 0;
    *len = total;
    return s;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int set_info(rlvr_out *o, size_t i, const char *json) {
    (void)o;
    (void)i;
    cJSON *v = cJSON_Parse(json);
    int ok = v != NULL;
    cJSON_Delete(v);
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_math_answer math_cases.jsonl\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    const rlvr_reward_desc *d = rlvr_builtin_find("math_answer");
    void *st = NULL;
    char err[256];
    if (!d || d->init(NULL, "{}", &st, err, sizeof err)) {
        fprintf(stderr, "init failed: %s\n", err);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    int n = 0, fails = 0, n_ok = 0, n_no = 0, n_ab = 0;
    double worst = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *o = cJSON_Parse(line);
        if (!o) continue;
        rlvr_item it = {0};
        char *c = expand(cJSON_GetObjectItem(o, "completion"), &it.completion_len);
        char *a = expand(cJSON_GetObjectItem(o, "answer"), &it.answer_len);
        it.completion = c;
        it.answer = a;
        it.prompt = "";
        it.extra_json = "{}";
        const cJSON *e = cJSON_GetObjectItem(o, "expected");
        int want_abstain = cJSON_IsString(e);
        double want = want_abstain ? 0 : e->valuedouble;
        rlvr_batch b = {sizeof b, 0, &it, 1, 0, 0, 10.0};
        double score = NAN;
        int32_t status = 0;
        rlvr_out out = {0};
        out.struct_size = sizeof out;
        out.scores = &score;
        out.status = &status;
        out.set_info = set_info;
        double t0 = now_s();
        int rc = d->score(st, &b, &out);
        double dt = now_s() - t0;
        if (dt > worst) worst = dt;
        n++;
        int good = rc == 0 && (want_abstain ? status == RLVR_STATUS_ABSTAIN
                                            : status == RLVR_STATUS_OK && score == want);
        if (want_abstain) n_ab++;
        else if (want == 1) n_ok++;
        else n_no++;
        if (!good || dt > 0.5) {
            fails++;
            fprintf(stderr, "FAIL case %d: completion='%.80s' answer='%.60s' expected=%s got "
                            "status=%d score=%g (%.3f s)\n",
                    n, c, a, want_abstain ? "abstain" : (want == 1 ? "1" : "0"), status, score,
                    dt);
        }
        free(c);
        free(a);
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    d->destroy(st);
    printf("math_answer: %d cases (%d correct, %d wrong, %d abstain), %d failed, slowest "
           "%.1f ms\n",
           n, n_ok, n_no, n_ab, fails, worst * 1e3);
    if (n < 150) {
        fprintf(stderr, "expected at least 150 cases, found %d\n", n);
        return 1;
    }
    return fails ? 1 : 0;
}
