/*
 * tests/reward/test_external.c — the `external` built-in (a JSON-lines subprocess) driven
 * through its ABI descriptor with real Python processes: the example exact-match reward
 * (right, wrong, abstain, invalid UTF-8, a 1 MB completion, one process across batches),
 * and tests/reward/external_faults.py crashing mid-batch, printing garbage, hanging,
 * answering twice, sending a bad score and exiting between batches — each gives the
 * right per-item statuses, the next batch runs on a restarted process, and no process
 * (grandchildren included) is left behind. Config errors name the field.
 *
 * usage: test_external EXAMPLE_PY FAULTS_PY   (exit 77 when python3 is not on PATH)
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rewards/builtin/builtins.h"
#include "tests/common/check.h"

static const char *g_example, *g_faults;

#define MAXN 8

typedef struct {
    double scores[MAXN];
    int32_t status[MAXN];
    char *info[MAXN];
    int rc;
    char err[512];
} result;

static int keep_info(rlvr_out *o, size_t i, const char *j) {
    result *r = o->host_ctx;
    free(r->info[i]);
    r->info[i] = strdup(j);
    return 0;
}

static void result_free(result *r) {
    for (int i = 0; i < MAXN; i++) free(r->info[i]);
    memset(r, 0, sizeof *r);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const rlvr_reward_desc *D(void) { return rlvr_builtin_find("external"); }

static void *make(const char *cfg) {
    void *st = NULL;
    char err[512] = "";
    if (D()->init(NULL, cfg, &st, err, sizeof err)) {
        fprintf(stderr, "FAIL init %s: %s\n", cfg, err);
        check_failures++;
        return NULL;
    }
    return st;
}

/* Scores n items (completion c[i], answer a[i]) on state st into r. */
static void run(void *st, size_t n, const char *const *c, const size_t *clen,
                const char *const *a, result *r) {
    result_free(r);
    rlvr_item it[MAXN];
    for (size_t i = 0; i < n; i++) {
        size_t cl = clen ? clen[i] : strlen(c[i]);
        it[i] = (rlvr_item){"p", 1, c[i], cl, a[i], strlen(a[i]), "{\"k\":[1,2]}", 7};
    }
    rlvr_batch b = {sizeof b, 0, it, n, 3, 42, 30.0};
    rlvr_out out = {0};
    out.struct_size = sizeof out;
    out.scores = r->scores;
    out.status = r->status;
    out.set_info = keep_info;
    out.host_ctx = r;
    out.err = r->err;
    out.errlen = sizeof r->err;
    for (size_t i = 0; i < n; i++) {
        r->scores[i] = NAN;
        r->status[i] = RLVR_STATUS_OK;
    }
    r->rc = D()->score(st, &b, &out);
}

static long info_num(const result *r, int i, const char *key) {
    cJSON *j = r->info[i] ? cJSON_Parse(r->info[i]) : NULL;
    const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, key) : NULL;
    long x = v && cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    cJSON_Delete(j);
    return x;
}

static int info_has(const result *r, int i, const char *needle) {
    return r->info[i] && strstr(r->info[i], needle);
}

/* A process is gone when it does not exist or is a zombie awaiting its reaper. */
static int gone(long pid) {
    if (pid <= 0) return 0;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

static int wait_gone(long pid) {
    for (int k = 0; k < 200 && !gone(pid); k++) usleep(10000);
    return gone(pid);
}

static void faults_cfg(char *buf, size_t n, const char *args, double timeout_s) {
    snprintf(buf, n, "{\"command\":[\"python3\",\"%s\"%s], \"timeout_s\": %g}", g_faults,
             args, timeout_s);
}

static const char *const C4[] = {"a", "b", "c", "d"};
static const char *const A4[] = {"a", "x", "c", "d"};

static void test_example(void) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "{\"command\":[\"python3\",\"%s\"],\"timeout_s\":10}", g_example);
    void *st = make(cfg);
    if (!st) return;
    result r = {0};
    const char *c[] = {"The answer is below.\n<answer> 42 </answer>", "work\n41\n", "x\n17",
                       "\xff\xfe bad utf8 \xc3", "anything"};
    const char *a[] = {"42", "42", "17", "17", ""};
    run(st, 5, c, NULL, a, &r);
    CHECK(r.rc == 0, "rc %d (%s)", r.rc, r.err);
    const double want[] = {1, 0, 1, 0, 0};
    const int wst[] = {0, 0, 0, 0, RLVR_STATUS_ABSTAIN};
    for (int i = 0; i < 5; i++)
        CHECK(r.status[i] == wst[i] && (wst[i] || r.scores[i] == want[i]),
              "example item %d: score %g status %d info %s", i, r.scores[i], r.status[i],
              r.info[i] ? r.info[i] : "-");
    CHECK(info_has(&r, 0, "\"pred\":\"42\""), "info %s", r.info[0] ? r.info[0] : "-");
    long pid1 = info_num(&r, 0, "pid");
    /* A 1 MB completion and a second batch: the same, long-lived process. */
    size_t big = 1 << 20;
    char *bigc = malloc(big + 16);
    memset(bigc, 'z', big);
    memcpy(bigc + big, "\n99", 4);
    const char *c2[] = {bigc};
    const size_t l2[] = {big + 3};
    const char *a2[] = {"99"};
    run(st, 1, c2, l2, a2, &r);
    CHECK(r.rc == 0 && r.status[0] == 0 && r.scores[0] == 1.0, "1 MB item: %g %d %s",
          r.scores[0], r.status[0], r.info[0] ? r.info[0] : "-");
    CHECK(info_num(&r, 0, "pid") == pid1 && pid1 > 0, "process changed between batches");
    free(bigc);
    D()->destroy(st);
    CHECK(wait_gone(pid1), "example process %ld left behind", pid1);
    result_free(&r);
}

static void test_crash(void) {
    char cfg[1024];
    faults_cfg(cfg, sizeof cfg, ",\"crash=2\"", 10);
    void *st = make(cfg);
    if (!st) return;
    result r = {0};
    run(st, 4, C4, NULL, A4, &r);
    CHECK(r.status[0] == 0 && r.scores[0] == 1 && r.status[1] == 0 && r.scores[1] == 0,
          "crash: items before the crash keep their scores (%d %g, %d %g)", r.status[0],
          r.scores[0], r.status[1], r.scores[1]);
    CHECK(r.status[2] == RLVR_STATUS_ERROR && r.status[3] == RLVR_STATUS_ERROR,
          "crash: unanswered items are errors (%d %d)", r.status[2], r.status[3]);
    CHECK(info_has(&r, 2, "exited with status 3"), "crash info: %s", r.info[2] ? r.info[2] : "-");
    long pid1 = info_num(&r, 0, "pid");
    CHECK(wait_gone(pid1), "crashed process not reaped");
    run(st, 2, C4, NULL, A4, &r); /* restarted */
    CHECK(r.status[0] == 0 && r.status[1] == 0 && r.scores[0] == 1,
          "crash: next batch runs on a restarted process (%d %d)", r.status[0], r.status[1]);
    CHECK(info_num(&r, 0, "pid") != pid1, "crash: same pid after restart");
    long pid2 = info_num(&r, 0, "pid");
    D()->destroy(st);
    CHECK(wait_gone(pid2), "process left behind");
    result_free(&r);
}

static void test_garbage_double_badscore(void) {
    const char *args[] = {",\"garbage=1\"", ",\"double=0\"", ",\"badscore=1\""};
    for (int k = 0; k < 3; k++) {
        char cfg[1024];
        faults_cfg(cfg, sizeof cfg, args[k], 10);
        void *st = make(cfg);
        if (!st) continue;
        result r = {0};
        run(st, 4, C4, NULL, A4, &r);
        long pid1 = info_num(&r, 0, "pid");
        CHECK(r.status[0] == 0 && r.scores[0] == 1, "%s: item 0 (%d %g)", args[k],
              r.status[0], r.scores[0]);
        CHECK(r.status[1] == RLVR_STATUS_ERROR, "%s: item 1 status %d", args[k], r.status[1]);
        if (k == 2) {
            /* A wrong field is that item's error; the stream is in step: the rest is ok. */
            CHECK(info_has(&r, 1, "score"), "badscore info %s", r.info[1] ? r.info[1] : "-");
            CHECK(r.status[2] == 0 && r.scores[2] == 1 && r.status[3] == 0,
                  "badscore: later items (%d %d)", r.status[2], r.status[3]);
            CHECK(info_num(&r, 3, "pid") == pid1, "badscore: process was restarted");
        } else {
            CHECK(info_has(&r, 1, k == 0 ? "not a JSON object" : "wrong \\\"id\\\""),
                  "%s: info %s", args[k], r.info[1] ? r.info[1] : "-");
            CHECK(r.status[2] == RLVR_STATUS_ERROR && r.status[3] == RLVR_STATUS_ERROR,
                  "%s: items after an out-of-step reply (%d %d)", args[k], r.status[2],
                  r.status[3]);
            CHECK(wait_gone(pid1), "%s: the out-of-step process was not stopped", args[k]);
            run(st, 1, C4, NULL, A4, &r); /* a fresh process: its item 0 is fine */
            CHECK(r.status[0] == 0 && r.scores[0] == 1, "%s: next batch (%d)", args[k],
                  r.status[0]);
            CHECK(info_num(&r, 0, "pid") != pid1, "%s: not restarted", args[k]);
        }
        long pid2 = info_num(&r, 0, "pid");
        D()->destroy(st);
        CHECK(wait_gone(pid2), "process left behind");
        result_free(&r);
    }
}

static void test_hang(void) {
    char cfg[1024];
    faults_cfg(cfg, sizeof cfg, ",\"hang=1\",\"child=1\"", 0.5);
    void *st = make(cfg);
    if (!st) return;
    result r = {0};
    double t0 = now_s();
    run(st, 3, C4, NULL, A4, &r);
    double dt = now_s() - t0;
    CHECK(r.status[0] == 0 && r.scores[0] == 1, "hang: item 0 (%d)", r.status[0]);
    CHECK(r.status[1] == RLVR_STATUS_TIMEOUT && r.status[2] == RLVR_STATUS_TIMEOUT,
          "hang: items %d %d, want timeout", r.status[1], r.status[2]);
    CHECK(dt < 5.0, "hang: batch took %.2f s with timeout_s 0.5", dt);
    long pid = info_num(&r, 0, "pid"), child = info_num(&r, 0, "child");
    CHECK(wait_gone(pid) && wait_gone(child), "hang: process %ld / grandchild %ld survived",
          pid, child);
    run(st, 1, C4, NULL, A4, &r);
    CHECK(r.status[0] == 0 && r.scores[0] == 1, "hang: next batch (%d)", r.status[0]);
    pid = info_num(&r, 0, "pid");
    child = info_num(&r, 0, "child");
    D()->destroy(st);
    CHECK(wait_gone(pid) && wait_gone(child), "destroy: process %ld / grandchild %ld survived",
          pid, child);
    result_free(&r);
}

static void test_exit_between_batches(void) {
    char cfg[1024];
    faults_cfg(cfg, sizeof cfg, ",\"exit_after=1\"", 10);
    void *st = make(cfg);
    if (!st) return;
    result r = {0};
    run(st, 2, C4, NULL, A4, &r);
    CHECK(r.status[0] == 0 && r.status[1] == 0, "exit_after: first batch (%d %d)",
          r.status[0], r.status[1]);
    usleep(100000);
    run(st, 2, C4, NULL, A4, &r);
    CHECK(r.status[0] == 0 && r.status[1] == 0 && r.scores[0] == 1,
          "exit_after: second batch on a restarted process (%d %d)", r.status[0], r.status[1]);
    long pid = info_num(&r, 0, "pid");
    D()->destroy(st);
    CHECK(wait_gone(pid), "process left behind");
    result_free(&r);
}

static void expect_cfg_error(const char *cfg, const char *needle) {
    void *st = NULL;
    char err[512] = "";
    int rc = D()->init(NULL, cfg, &st, err, sizeof err);
    CHECK(rc != 0 && strstr(err, needle), "config %s: rc %d err '%s' (want '%s')", cfg, rc,
          err, needle);
    if (rc == 0) D()->destroy(st);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_external EXAMPLE_PY FAULTS_PY\n");
        return 2;
    }
    g_example = argv[1];
    g_faults = argv[2];
    if (system("python3 -c 'import json, subprocess' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "python3 not found: skipping\n");
        return 77;
    }
    CHECK(D() != NULL, "external is not registered");
    if (!D()) return 1;
    expect_cfg_error("{}", "'command'");
    expect_cfg_error("{\"command\":[]}", "'command'");
    expect_cfg_error("{\"command\":\"python3 x.py\"}", "'command'");
    expect_cfg_error("{\"command\":[\"/no/such/program\"]}", "/no/such/program");
    expect_cfg_error("{\"command\":[\"no-such-program-xyz\"]}", "no-such-program-xyz");
    expect_cfg_error("{\"command\":[\"python3\"],\"timeout_s\":0}", "'timeout_s'");
    expect_cfg_error("{\"command\":[\"python3\"],\"env\":[1]}", "'env'");
    expect_cfg_error("{\"command\":[\"python3\"],\"env\":{\"A\":1}}", "'env'");
    expect_cfg_error("{\"command\":[\"python3\"],\"cmd\":1}", "unknown config field 'cmd'");
    test_example();
    test_crash();
    test_garbage_double_badscore();
    test_hang();
    test_exit_between_batches();
    if (check_failures) {
        fprintf(stderr, "%d failure(s)\n", check_failures);
        return 1;
    }
    printf("external: all cases passed\n");
    return 0;
}
