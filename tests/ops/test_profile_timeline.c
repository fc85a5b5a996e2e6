/*
 * tests/ops/test_profile_timeline.c — kernels/profile.c's mode 2 (device timeline)
 * proved without a GPU: a fake inner backend whose ops advance a fake device clock by
 * known amounts and whose timer_mark/timer_read timestamp that clock, so every per-op
 * total, call count and "between ops" total is known exactly. Covers reads when the
 * inner pool is full before a start marker and between a start and an end marker, the
 * wrapper's own read limit, reads after synchronising calls, reset, failing markers,
 * and the fallback to mode 1 for a backend without timer ops.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/profile.h"
#include "tests/common/check.h"

/* Fake device time per op, ms (exact in binary). */
#define T_RMS 0.5
#define T_MM 1.5
#define T_ADD 0.25
#define T_SUMSQ 0.75
#define T_ZERO 0.125 /* an untimed op: lands in "between ops" */

typedef struct {
    double clock_ms; /* the fake device clock */
    int cap;         /* marker pool size */
    double *mark_t;  /* [cap] clock at each held marker */
    int used;        /* markers held */
    long reads;      /* timer_read calls */
    int fail_marks;  /* 1: timer_mark fails as on an error */
    int bad_read;    /* 1: a timer_read asked for more markers than held */
} fake_ctx;

static fake_ctx *F(rlvr_backend *be) { return be->ctx; }

static void f_destroy(rlvr_backend *be) {
    free(F(be)->mark_t);
    free(be->ctx);
    free(be);
}
static const char *f_error(rlvr_backend *be) {
    (void)be;
    return NULL;
}
static void f_sync(rlvr_backend *be) { (void)be; }
static void f_zero(rlvr_backend *be, void *p, size_t n) {
    (void)p;
    (void)n;
    F(be)->clock_ms += T_ZERO;
}
static void f_to_host(rlvr_backend *be, void *d, const void *s, size_t n) {
    memcpy(d, s, n);
    (void)be;
}
static void f_rmsnorm_forward(rlvr_backend *be, void *out, float *rstd, const void *in,
                              const void *w, int N, int C, float eps) {
    (void)out, (void)rstd, (void)in, (void)w, (void)N, (void)C, (void)eps;
    F(be)->clock_ms += T_RMS;
}
static void f_matmul_forward(rlvr_backend *be, void *out, const void *in, const void *w,
                             const void *bias, int N, int IC, int OC) {
    (void)out, (void)in, (void)w, (void)bias, (void)N, (void)IC, (void)OC;
    F(be)->clock_ms += T_MM;
}
static void f_add(rlvr_backend *be, void *out, const void *a, const void *b, size_t n) {
    (void)out, (void)a, (void)b, (void)n;
    F(be)->clock_ms += T_ADD;
}
static double f_sumsq(rlvr_backend *be, const float *x, size_t n) {
    (void)x, (void)n;
    F(be)->clock_ms += T_SUMSQ;
    return 1.0;
}
static int f_timer_mark(rlvr_backend *be) {
    fake_ctx *c = F(be);
    if (c->fail_marks || c->used == c->cap) return -1;
    c->mark_t[c->used] = c->clock_ms;
    return c->used++;
}
static int f_timer_read(rlvr_backend *be, int n, float *ms) {
    fake_ctx *c = F(be);
    c->reads++;
    if (n < 0 || n > c->used) {
        c->bad_read = 1;
        return -1;
    }
    for (int i = 0; ms && i + 1 < n; i++) ms[i] = (float)(c->mark_t[i + 1] - c->mark_t[i]);
    memmove(c->mark_t, c->mark_t + n, (size_t)(c->used - n) * sizeof(double));
    c->used -= n;
    return 0;
}

static rlvr_backend *fake_create(int cap, int with_timers) {
    rlvr_backend *be = calloc(1, sizeof *be);
    fake_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) exit(1);
    c->cap = cap;
    c->mark_t = calloc((size_t)cap + 1, sizeof(double));
    if (!c->mark_t) exit(1);
    be->name = "fake";
    be->ctx = c;
    be->destroy = f_destroy;
    be->error = f_error;
    be->sync = f_sync;
    be->zero = f_zero;
    be->to_host = f_to_host;
    be->rmsnorm_forward = f_rmsnorm_forward;
    be->matmul_forward = f_matmul_forward;
    be->add = f_add;
    be->sumsq = f_sumsq;
    if (with_timers) {
        be->timer_mark = f_timer_mark;
        be->timer_read = f_timer_read;
    }
    return be;
}

/* One fake "step": 3 × (rmsnorm, matmul, zero, add), then sumsq (synchronous). */
static void step(rlvr_backend *w) {
    for (int l = 0; l < 3; l++) {
        w->rmsnorm_forward(w, NULL, NULL, NULL, NULL, 1, 1, 1e-6f);
        w->matmul_forward(w, NULL, NULL, NULL, NULL, 1, 1, 1);
        w->zero(w, NULL, 0);
        w->add(w, NULL, NULL, NULL, 0);
    }
    (void)w->sumsq(w, NULL, 0);
}

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * (1 + fabs(b)); }

static void expect_op(rlvr_backend *w, const char *op, long calls, double ms,
                      const char *what) {
    long c = -1;
    double m = -1;
    CHECK(rlvr_profile_op(w, op, &c, &m) == 0, "%s: %s unknown", what, op);
    CHECK(c == calls, "%s: %s calls %ld, expected %ld", what, op, c, calls);
    CHECK(near(m, ms), "%s: %s %.9f ms, expected %.9f", what, op, m, ms);
}

/* STEPS steps on a pool of `cap` markers: exact per-op totals whatever the pool size. */
static void test_steps(int cap, int expect_mid_reads) {
    char what[64];
    snprintf(what, sizeof what, "pool %d", cap);
    char err[256];
    rlvr_backend *inner = fake_create(cap, 1);
    rlvr_backend *w = rlvr_profile_wrap_mode(inner, 2, err, sizeof err);
    CHECK(w != NULL, "%s: wrap: %s", what, err);
    if (!w) return;
    fake_ctx *fc = F(inner); /* alive until the wrapper is destroyed */
    CHECK(rlvr_profile_mode(w) == RLVR_PROFILE_TIMELINE, "%s: mode %d", what,
          rlvr_profile_mode(w));
    CHECK(!w->timer_mark && !w->timer_read && !w->graph_begin && !w->graph_launch,
          "%s: the wrapper must not expose timer or graph ops", what);
    enum { STEPS = 5 };
    for (int s = 0; s < STEPS; s++) {
        step(w);
        /* sumsq synchronised: the wrapper has read every marker */
        CHECK(fc->used == 0, "%s: step %d: %d markers still held after sumsq", what, s,
              fc->used);
    }
    CHECK(!fc->bad_read, "%s: a read asked for more markers than held", what);
    if (expect_mid_reads)
        CHECK(fc->reads > STEPS, "%s: %ld reads, expected reads inside the steps", what,
              fc->reads);
    else
        CHECK(fc->reads == STEPS, "%s: %ld reads, expected one per step", what, fc->reads);
    expect_op(w, "rmsnorm_forward", 3 * STEPS, 3 * STEPS * T_RMS, what);
    expect_op(w, "matmul_forward", 3 * STEPS, 3 * STEPS * T_MM, what);
    expect_op(w, "add", 3 * STEPS, 3 * STEPS * T_ADD, what);
    expect_op(w, "sumsq", STEPS, STEPS * T_SUMSQ, what);
    expect_op(w, "attention_forward", 0, 0, what);
    rlvr_profile_totals t;
    rlvr_profile_get_totals(w, &t);
    const double op_ms = STEPS * (3 * (T_RMS + T_MM + T_ADD) + T_SUMSQ);
    CHECK(near(t.op_ms, op_ms), "%s: op total %.9f, expected %.9f", what, t.op_ms, op_ms);
    CHECK(t.untimed == 0, "%s: %ld untimed", what, t.untimed);
    CHECK(t.reads == fc->reads, "%s: reads %ld vs %ld", what, t.reads, fc->reads);
    /* every zero lies between a matmul and an add: the gap when both pairs are in one
     * read; a read between them loses it */
    if (!expect_mid_reads)
        CHECK(near(t.between_ms, 3 * STEPS * T_ZERO), "%s: between %.9f, expected %.9f",
              what, t.between_ms, 3 * STEPS * T_ZERO);
    else
        CHECK(t.between_ms >= 0 && t.between_ms <= 3 * STEPS * T_ZERO + 1e-9,
              "%s: between %.9f out of [0, %.9f]", what, t.between_ms, 3 * STEPS * T_ZERO);
    /* no sync: markers stay held until a synchronising call */
    w->add(w, NULL, NULL, NULL, 0);
    CHECK(fc->used == 2, "%s: %d markers held after one add, expected 2", what, fc->used);
    int x = 7, y = 0;
    w->to_host(w, &y, &x, sizeof x);
    CHECK(fc->used == 0 && y == 7, "%s: to_host: %d markers held", what, fc->used);
    expect_op(w, "add", 3 * STEPS + 1, (3 * STEPS + 1) * T_ADD, what);
    w->add(w, NULL, NULL, NULL, 0);
    w->sync(w);
    CHECK(fc->used == 0, "%s: sync: %d markers held", what, fc->used);
    /* paused: no markers, nothing counted; resumed: counted again */
    rlvr_profile_pause(w, 1);
    step(w);
    CHECK(fc->used == 0, "%s: paused: %d markers held", what, fc->used);
    expect_op(w, "add", 3 * STEPS + 2, (3 * STEPS + 2) * T_ADD, what);
    expect_op(w, "sumsq", STEPS, STEPS * T_SUMSQ, what);
    rlvr_profile_pause(w, 0);
    w->add(w, NULL, NULL, NULL, 0);
    expect_op(w, "add", 3 * STEPS + 3, (3 * STEPS + 3) * T_ADD, what);
    /* reset discards held markers and totals */
    w->matmul_forward(w, NULL, NULL, NULL, NULL, 1, 1, 1);
    rlvr_profile_reset(w);
    CHECK(fc->used == 0, "%s: reset: %d markers held", what, fc->used);
    expect_op(w, "matmul_forward", 0, 0, what);
    w->matmul_forward(w, NULL, NULL, NULL, NULL, 1, 1, 1);
    expect_op(w, "matmul_forward", 1, T_MM, what);
    /* the report: mode 2 header and the same numbers */
    FILE *f = tmpfile();
    CHECK(f != NULL, "tmpfile");
    if (f) {
        rlvr_profile_report(w, f);
        rewind(f);
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        CHECK(strstr(buf, "(fake backend, GPU timeline per op, not synchronised)") != NULL,
              "%s: report header missing:\n%s", what, buf);
        CHECK(strstr(buf, "including GPU idle time") != NULL, "%s: no idle note:\n%s", what,
              buf);
        long calls = 0;
        double ms = 0;
        const char *row = strstr(buf, "\nmatmul_forward");
        CHECK(row && sscanf(row, " matmul_forward %ld %lf", &calls, &ms) == 2 &&
                  calls == 1 && near(ms, T_MM),
              "%s: report row wrong:\n%s", what, buf);
        CHECK(strstr(buf, "between ops") != NULL, "%s: no between-ops row", what);
    }
    w->destroy(w);
}

/* The wrapper's own read limit (8192 markers) with an inner pool larger than that. */
static void test_wrapper_limit(void) {
    char err[256];
    const int cap = 20000, n = 5000;
    rlvr_backend *inner = fake_create(cap, 1);
    rlvr_backend *w = rlvr_profile_wrap_mode(inner, 2, err, sizeof err);
    if (!w) {
        CHECK(0, "wrap: %s", err);
        return;
    }
    fake_ctx *fc = F(inner);
    for (int i = 0; i < n; i++) w->add(w, NULL, NULL, NULL, 0);
    CHECK(fc->reads >= 1, "no read before 8192 markers were held");
    CHECK(fc->used <= 8192, "%d markers held", fc->used);
    expect_op(w, "add", n, n * T_ADD, "wrapper limit");
    rlvr_profile_totals t;
    rlvr_profile_get_totals(w, &t);
    CHECK(t.untimed == 0 && !fc->bad_read, "untimed %ld", t.untimed);
    w->destroy(w);
}

/* Markers that always fail: calls counted, no time, no crash. */
static void test_failing_marks(void) {
    char err[256];
    rlvr_backend *inner = fake_create(16, 1);
    rlvr_backend *w = rlvr_profile_wrap_mode(inner, 2, err, sizeof err);
    if (!w) {
        CHECK(0, "wrap: %s", err);
        return;
    }
    F(inner)->fail_marks = 1;
    step(w);
    expect_op(w, "matmul_forward", 3, 0, "failing marks");
    rlvr_profile_totals t;
    rlvr_profile_get_totals(w, &t);
    CHECK(t.untimed == 10, "failing marks: untimed %ld, expected 10", t.untimed);
    w->destroy(w);
}

/* No timer ops: mode 2 runs as mode 1 (host clock, synchronised), and says so. */
static void test_fallback(void) {
    char err[256];
    rlvr_backend *w = rlvr_profile_wrap_mode(fake_create(16, 0), 2, err, sizeof err);
    if (!w) {
        CHECK(0, "wrap: %s", err);
        return;
    }
    CHECK(rlvr_profile_mode(w) == RLVR_PROFILE_SYNC, "fallback: mode %d",
          rlvr_profile_mode(w));
    step(w);
    long calls = 0;
    double ms = -1;
    CHECK(rlvr_profile_op(w, "add", &calls, &ms) == 0 && calls == 3 && ms >= 0,
          "fallback: add %ld calls %.3f ms", calls, ms);
    CHECK(rlvr_profile_op(w, "no_such_op", &calls, &ms) == -1, "unknown op accepted");
    FILE *f = tmpfile();
    if (f) {
        rlvr_profile_report(w, f);
        rewind(f);
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        CHECK(strstr(buf, "(fake backend, synchronised per op)") != NULL,
              "fallback header:\n%s", buf);
    }
    w->destroy(w);
    rlvr_backend *inner = fake_create(4, 1);
    CHECK(rlvr_profile_wrap_mode(inner, 3, err, sizeof err) == NULL &&
              strstr(err, "profile mode 3") != NULL,
          "mode 3 accepted or unclear message: %s", err);
    inner->destroy(inner);
}

int main(void) {
    test_steps(1000, 0); /* one read per step (after sumsq) */
    test_steps(6, 1);    /* full before a start marker */
    test_steps(7, 1);    /* full between a start and an end marker */
    test_steps(3, 1);    /* smallest pool that holds a pair and a dangling start */
    test_wrapper_limit();
    test_failing_marks();
    test_fallback();
    if (check_failures) {
        fprintf(stderr, "test_profile_timeline: %d failure(s)\n", check_failures);
        return 1;
    }
    printf("test_profile_timeline: all checks passed\n");
    return 0;
}
