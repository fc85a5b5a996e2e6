/*
 * tests/reward/test_reward_host.c — the reward host: spec parsing, weighted combination,
 * per-component statuses, loader errors (unknown name, wrong ABI major, missing entry
 * symbol, init failure), non-finite scores, the one-state-per-worker rule, deadlines,
 * async jobs, the constant-reward warning, and `isolation: process` surviving a segfault,
 * exit(), an infinite loop, a runaway allocation and stdout junk — each costing only its
 * batch, with the worker restarted for the next one.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/reward/reward_host.h"
#include "tests/common/check.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static rlvr_item item(const char *completion, const char *answer, long long g) {
    rlvr_item it = {0};
    it.prompt = "p";
    it.prompt_len = 1;
    it.completion = completion;
    it.completion_len = strlen(completion);
    it.answer = answer;
    it.answer_len = strlen(answer);
    it.extra_json = "{}";
    it.group_id = g;
    return it;
}

static char g_log[4096];
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER; /* workers log concurrently */
static void capture_log(void *ctx, int level, const char *msg) {
    (void)ctx;
    if (level >= RLVR_LOG_WARN) {
        pthread_mutex_lock(&g_log_mu);
        strncat(g_log, msg, sizeof g_log - strlen(g_log) - 2);
        strcat(g_log, "\n");
        pthread_mutex_unlock(&g_log_mu);
    }
}

static reward_host *make(const char *name, const char *cfg, int workers, char *err,
                         size_t errlen) {
    reward_spec s = {name, cfg, NAN};
    reward_host_opts o = {0};
    o.n_workers = workers;
    o.log = capture_log;
    o.worker_mem_bytes = 512ull << 20;
    return reward_host_create(&s, 1, &o, err, errlen);
}

static void test_combination(void) {
    reward_spec specs[2];
    char *b0, *b1, err[1024] = "";
    CHECK(reward_spec_parse("math_answer", &specs[0], &b0, err, sizeof err) == 0, "%s", err);
    CHECK(reward_spec_parse("format:{\"weight\":0.5}", &specs[1], &b1, err, sizeof err) == 0,
          "%s", err);
    reward_host_opts o = {0};
    o.n_workers = 2;
    o.log = capture_log;
    reward_host *h = reward_host_create(specs, 2, &o, err, sizeof err);
    free(b0);
    free(b1);
    CHECK(h != NULL, "%s", err);
    if (!h) return;
    CHECK(reward_host_reward_weight(h, 1) == 0.5, "weight %g", reward_host_reward_weight(h, 1));
    rlvr_item items[4] = {
        item("<think>t</think><answer>\\boxed{4}</answer>", "4", 1),
        item("<think>t</think> \\boxed{5}", "4", 1),
        item("\\boxed{4}", "", 2),
        item("<think>a</think><answer>x</answer> trailing", "4", 2),
    };
    reward_job *j = reward_host_submit(h, items, 4, 7, 1234, 30.0, err, sizeof err);
    CHECK(j != NULL, "%s", err);
    if (j) {
        const reward_result *r = reward_job_wait(j);
        CHECK(r->n_rewards == 2 && r->n_items == 4, "shape");
        CHECK(r->scores[0] == 1.0 && r->scores[1] == 1.0, "item0 %g %g", r->scores[0], r->scores[1]);
        CHECK(fabs(r->total[0] - 1.5) < 1e-12, "total0 %g", r->total[0]);
        CHECK(r->scores[2] == 0.0 && fabs(r->total[1] - 0.5 * 0.25) < 1e-12, "item1 %g %g",
              r->scores[2], r->total[1]);
        CHECK(r->status[4] == RLVR_STATUS_ABSTAIN && r->item_status[2] == RLVR_STATUS_ABSTAIN,
              "abstain %d", r->status[4]);
        CHECK(r->info[0] && strstr(r->info[0], "boxed"), "info %s", r->info[0] ? r->info[0] : "");
        CHECK(r->scores[7] == 0.5 && r->item_status[3] == RLVR_STATUS_OK, "partial format %g",
              r->scores[7]);
        reward_job_free(j);
    }
    /* Groups must be contiguous. */
    rlvr_item bad[3] = {item("1", "1", 1), item("1", "1", 2), item("1", "1", 1)};
    CHECK(reward_host_submit(h, bad, 3, 0, 0, 5.0, err, sizeof err) == NULL &&
              strstr(err, "contiguous"),
          "%s", err);
    reward_counters c;
    reward_host_counters(h, 0, &c);
    CHECK(c.items == 4 && c.ok == 3 && c.abstain == 1, "counters %llu %llu",
          (unsigned long long)c.items, (unsigned long long)c.ok);
    reward_host_free(h);
}

static void test_loader_errors(void) {
    char err[1024] = "";
    reward_host *h = make("no_such_reward", NULL, 1, err, sizeof err);
    CHECK(!h && strstr(err, "no_such_reward") && strstr(err, "math_answer"), "%s", err);
    h = make(BAD_ABI_SO, NULL, 1, err, sizeof err);
    CHECK(!h && strstr(err, "99.3") && strstr(err, "ABI 1.") && strstr(err, BAD_ABI_SO), "%s",
          err);
    h = make(NO_ENTRY_SO, NULL, 1, err, sizeof err);
    CHECK(!h && strstr(err, "rlvr_reward_entry") && strstr(err, NO_ENTRY_SO), "%s", err);
    h = make("/nonexistent/x.so", NULL, 1, err, sizeof err);
    CHECK(!h && strstr(err, "/nonexistent/x.so"), "%s", err);
    h = make(FAULT_SO, "{\"fail_init\":true}", 1, err, sizeof err);
    CHECK(!h && strstr(err, "fail_init") && strstr(err, FAULT_SO), "%s", err);
    h = make("math_answer", "{\"weight\":\"x\"}", 1, err, sizeof err);
    CHECK(!h && strstr(err, "'weight'"), "%s", err);
    h = make("math_answer", "{\"isolation\":\"vm\"}", 1, err, sizeof err);
    CHECK(!h && strstr(err, "'isolation'"), "%s", err);
    h = make("math_answer", "{\"colour\":1}", 1, err, sizeof err);
    CHECK(!h && strstr(err, "colour"), "%s", err);
    reward_spec s;
    char *b = NULL;
    CHECK(reward_spec_parse("format:{nope", &s, &b, err, sizeof err) != 0 && strstr(err, "JSON"),
          "%s", err);
    /* The same faults through the isolated worker are reported at create, too. */
    h = make(BAD_ABI_SO, "{\"isolation\":\"process\"}", 1, err, sizeof err);
    CHECK(!h && strstr(err, "99.3"), "%s", err);
    h = make(NO_ENTRY_SO, "{\"isolation\":\"process\"}", 1, err, sizeof err);
    CHECK(!h && strstr(err, "rlvr_reward_entry"), "%s", err);
}

static void test_inprocess_faults(void) {
    char err[1024] = "";
    reward_host *h = make(FAULT_SO, NULL, 4, err, sizeof err);
    CHECK(h != NULL, "%s", err);
    if (!h) return;
    /* NaN and Inf become errors; other items are fine. */
    rlvr_item items[3] = {item("NAN", "", 1), item("abc", "", 2), item("INF", "", 3)};
    reward_job *j = reward_host_submit(h, items, 3, 0, 0, 10.0, err, sizeof err);
    const reward_result *r = reward_job_wait(j);
    CHECK(r->status[0] == RLVR_STATUS_ERROR && r->status[2] == RLVR_STATUS_ERROR, "nan/inf");
    CHECK(r->status[1] == RLVR_STATUS_OK && r->scores[1] == 3.0, "ok item %g", r->scores[1]);
    reward_job_free(j);
    reward_counters c;
    reward_host_counters(h, 0, &c);
    CHECK(c.nonfinite == 2 && c.error == 2, "nonfinite %llu", (unsigned long long)c.nonfinite);
    /* One state per worker: 400 single-item groups on 4 workers never collide. */
    enum { N = 400 };
    static rlvr_item many[N];
    static char texts[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "%d", i % 7 == 0 ? 1 : i);
        many[i] = item(texts[i], "", i);
    }
    j = reward_host_submit(h, many, N, 0, 0, 30.0, err, sizeof err);
    r = reward_job_wait(j);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += r->status[i] != RLVR_STATUS_OK;
    CHECK(bad == 0, "%d items failed (concurrent use of a non-thread-safe state?)", bad);
    reward_job_free(j);
    /* Deadline: an in-process plugin cannot be interrupted, but the caller gets its
     * result (timeouts) at the deadline. */
    rlvr_item slow[2] = {item("SLOW", "", 1), item("SLOW", "", 1)};
    double t0 = now_s();
    j = reward_host_submit(h, slow, 2, 0, 0, 0.3, err, sizeof err);
    r = reward_job_wait(j);
    double dt = now_s() - t0;
    CHECK(dt < 1.0, "deadline not honoured: %.2f s", dt);
    CHECK(r->status[0] == RLVR_STATUS_TIMEOUT && r->item_status[1] == RLVR_STATUS_TIMEOUT,
          "timeout statuses %d", r->status[0]);
    reward_job_free(j); /* the late result is discarded safely */
    /* Async: two jobs in flight. */
    rlvr_item a1[1] = {item("xx", "", 1)}, a2[1] = {item("yyy", "", 1)};
    reward_job *ja = reward_host_submit(h, a1, 1, 0, 0, 10.0, err, sizeof err);
    reward_job *jb = reward_host_submit(h, a2, 1, 0, 0, 10.0, err, sizeof err);
    CHECK(reward_job_wait(jb)->scores[0] == 3.0 && reward_job_wait(ja)->scores[0] == 2.0,
          "async results");
    CHECK(reward_job_done(ja) && reward_job_done(jb), "done flags");
    reward_job_free(ja);
    reward_job_free(jb);
    /* Constant rewards over a batch are warned about. */
    g_log[0] = 0;
    rlvr_item same[3] = {item("aa", "", 1), item("bb", "", 1), item("cc", "", 1)};
    CHECK(reward_host_score(h, same, 3, 0, 0, 10.0, NULL, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(g_log, "same score"), "no constant-reward warning: '%s'", g_log);
    reward_host_counters(h, 0, &c);
    CHECK(c.constant_batches >= 1, "constant counter");
    reward_host_free(h); /* waits for the SLOW items still running */
}

static void test_isolated_faults(void) {
    char err[1024] = "";
    reward_host *h = make(FAULT_SO, "{\"isolation\":\"process\"}", 1, err, sizeof err);
    CHECK(h != NULL, "%s", err);
    if (!h) return;
    /* Under AddressSanitizer the worker has no address-space cap, so the runaway
     * allocation case would eat the machine: skipped there. */
#if defined(__SANITIZE_ADDRESS__)
    const char *faults[] = {"SEGV", "EXIT", "HANG", "STDOUT"};
#else
    const char *faults[] = {"SEGV", "EXIT", "HANG", "STDOUT", "ALLOC"};
#endif
    const int n_faults = (int)(sizeof faults / sizeof *faults);
    for (int f = 0; f < n_faults; f++) {
        rlvr_item bad[2] = {item("ok", "", 1), item(faults[f], "", 1)};
        double t0 = now_s();
        reward_job *j = reward_host_submit(h, bad, 2, 0, 0, 2.0, err, sizeof err);
        const reward_result *r = reward_job_wait(j);
        double dt = now_s() - t0;
        int want = !strcmp(faults[f], "HANG") ? RLVR_STATUS_TIMEOUT : RLVR_STATUS_ERROR;
        if (!strcmp(faults[f], "STDOUT")) {
            /* stdout is redirected away from the protocol: scored normally */
            CHECK(r->status[1] == RLVR_STATUS_OK && r->scores[1] == 6.0, "stdout junk %d",
                  r->status[1]);
        } else {
            CHECK(r->status[1] == want && r->status[0] == want, "%s: status %d/%d", faults[f],
                  r->status[0], r->status[1]);
        }
        CHECK(dt < 4.0, "%s took %.2f s", faults[f], dt);
        reward_job_free(j);
        /* The run goes on: the next batch is scored by a fresh worker. */
        rlvr_item good[1] = {item("abcd", "", 1)};
        j = reward_host_submit(h, good, 1, 0, 0, 10.0, err, sizeof err);
        r = reward_job_wait(j);
        CHECK(r->status[0] == RLVR_STATUS_OK && r->scores[0] == 4.0, "after %s: %d", faults[f],
              r->status[0]);
        reward_job_free(j);
    }
    reward_counters c;
    reward_host_counters(h, 0, &c);
    CHECK(c.worker_restarts >= 3 && c.batch_failures >= 3 && c.timeout >= 2,
          "restarts %llu failures %llu timeouts %llu", (unsigned long long)c.worker_restarts,
          (unsigned long long)c.batch_failures, (unsigned long long)c.timeout);
    reward_host_free(h);
    /* Built-ins run isolated too. */
    h = make("math_answer", "{\"isolation\":\"process\"}", 2, err, sizeof err);
    CHECK(h != NULL, "%s", err);
    if (h) {
        rlvr_item m[2] = {item("\\boxed{\\frac{1}{2}}", "0.5", 1), item("7", "8", 2)};
        double tot[2];
        int32_t st[2];
        CHECK(reward_host_score(h, m, 2, 0, 0, 10.0, tot, st, err, sizeof err) == 0, "%s", err);
        CHECK(tot[0] == 1.0 && tot[1] == 0.0 && st[0] == 0 && st[1] == 0, "isolated math %g %g",
              tot[0], tot[1]);
        reward_host_free(h);
    }
}

int main(void) {
    test_combination();
    test_loader_errors();
    test_inprocess_faults();
    test_isolated_faults();
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
        return 1;
    }
    printf("reward host: all checks passed\n");
    return 0;
}
