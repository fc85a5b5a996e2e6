/*
 * tests/runlog/test_runlog_jsonl.c — metrics.jsonl and samples.jsonl: every line parses
 * as JSON with the values and key order given, ints stay ints, floats read back exactly,
 * NaN/inf become null, invalid UTF-8 becomes U+FFFD, bad metric names are refused with
 * a message, and resuming drops the lines after the checkpoint step and a partial tail.
 * usage: test_runlog_jsonl SCRATCH_DIR
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "engine/io/fileio.h"
#include "engine/runlog/metrics.h"
#include "engine/runlog/samples.h"
#include "test_util.h"

/* Parses every line of path into lines[]; returns the count (-1 when one fails). */
static int read_lines(const char *path, cJSON **lines, int max) {
    char *text = NULL, err[512];
    size_t len = 0;
    if (fio_read_file(path, &text, &len, err, sizeof err)) return -1;
    int n = 0;
    for (char *p = text; *p && n < max;) {
        char *nl = strchr(p, '\n');
        if (!nl) break;
        lines[n] = cJSON_ParseWithLength(p, (size_t)(nl - p));
        if (!lines[n]) {
            free(text);
            return -1;
        }
        n++;
        p = nl + 1;
    }
    free(text);
    return n;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345.0;
}

static void write_steps(metrics_log *l, metrics_rec *r, long from, long to) {
    char err[512];
    for (long s = from; s <= to; s++) {
        metrics_rec_begin(r, s);
        metrics_rec_add(r, "reward/mean", 0.1 * (double)s);
        metrics_rec_add_int(r, "tokens", 1000 + s);
        CHECK(metrics_log_write(l, r, err, sizeof err) == 0, "%s", err);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    test_fresh_dir(argv[1]);
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", argv[1]);

    /* ---- values, order, types ---- */
    metrics_rec r;
    metrics_rec_init(&r);
    metrics_log *l;
    CHECK(metrics_log_open(&l, path, -1, err, sizeof err) == 0, "%s", err);
    metrics_rec_begin(&r, 7);
    const double third = 1.0 / 3.0, tiny = 1.25e-300;
    metrics_rec_add(&r, "z_first", third);
    metrics_rec_add_int(&r, "tokens", 123456789012LL);
    metrics_rec_add(&r, "a_second", tiny);
    metrics_rec_add(&r, "nan", NAN);
    metrics_rec_add(&r, "inf", -INFINITY);
    CHECK(metrics_log_write(l, &r, err, sizeof err) == 0, "%s", err);
    cJSON *lines[16];
    int n = read_lines(path, lines, 16);
    CHECK(n == 1, "lines %d", n);
    if (n == 1) {
        CHECK(num(lines[0], "step") == 7, "step");
        CHECK(fabs(num(lines[0], "time") - runlog_wall_time()) < 60, "time");
        CHECK(num(lines[0], "z_first") == third, "1/3 not exact: %.17g", num(lines[0], "z_first"));
        CHECK(num(lines[0], "a_second") == tiny, "tiny");
        CHECK(num(lines[0], "tokens") == 123456789012.0, "int");
        CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(lines[0], "nan")), "nan -> null");
        CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(lines[0], "inf")), "inf -> null");
        const char *order[] = {"step", "time", "z_first", "tokens", "a_second", "nan", "inf"};
        int k = 0;
        for (cJSON *c = lines[0]->child; c; c = c->next, k++)
            CHECK(k < 7 && !strcmp(c->string, order[k]), "key %d is %s", k, c->string);
        CHECK(k == 7, "keys %d", k);
        cJSON_Delete(lines[0]);
    }
    char *text = NULL;
    size_t len = 0;
    fio_read_file(path, &text, &len, err, sizeof err);
    CHECK(text && strstr(text, "\"tokens\": 123456789012,") != NULL, "int printed as int: %s", text);
    free(text);

    /* ---- bad names ---- */
    const char *bad[] = {"", "with space", "quo\"te", "step", "dup"};
    for (int i = 0; i < 5; i++) {
        metrics_rec_begin(&r, 8);
        metrics_rec_add(&r, "dup", 1);
        metrics_rec_add(&r, bad[i], 2);
        int rc = metrics_log_write(l, &r, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "metric name") && strstr(err, "step 8"),
              "bad name '%s': rc %d err %s", bad[i], rc, err);
    }
    metrics_rec_begin(&r, 8);
    char longname[80];
    memset(longname, 'x', 70);
    longname[70] = '\0';
    metrics_rec_add(&r, longname, 1);
    CHECK(metrics_log_write(l, &r, err, sizeof err) == -1 && strstr(err, "1..63"), "%s", err);
    metrics_log_close(l);

    /* ---- resume: keep steps <= 3, drop later ones and a partial last line ---- */
    CHECK(metrics_log_open(&l, path, -1, err, sizeof err) == 0, "%s", err);
    write_steps(l, &r, 0, 5);
    metrics_log_close(l);
    FILE *f = fopen(path, "a");
    fputs("{\"step\": 6, \"reward/me", f); /* a crash mid-line */
    fclose(f);
    CHECK(metrics_log_open(&l, path, 3, err, sizeof err) == 0, "%s", err);
    write_steps(l, &r, 4, 6);
    CHECK(metrics_log_sync(l, err, sizeof err) == 0, "%s", err);
    metrics_log_close(l);
    n = read_lines(path, lines, 16);
    CHECK(n == 7, "after resume %d lines", n);
    for (int i = 0; i < n; i++) {
        CHECK(num(lines[i], "step") == i, "line %d has step %g", i, num(lines[i], "step"));
        CHECK(num(lines[i], "reward/mean") == 0.1 * i, "line %d value", i);
        cJSON_Delete(lines[i]);
    }
    /* A missing file is fine to resume. */
    snprintf(path, sizeof path, "%s/none.jsonl", argv[1]);
    CHECK(metrics_log_open(&l, path, 10, err, sizeof err) == 0, "%s", err);
    metrics_log_close(l);
    /* An unwritable path names the file. */
    snprintf(path, sizeof path, "%s/no/such/dir/metrics.jsonl", argv[1]);
    CHECK(metrics_log_open(&l, path, -1, err, sizeof err) == -1 && strstr(err, path), "%s", err);
    metrics_rec_free(&r);

    /* ---- samples.jsonl ---- */
    snprintf(path, sizeof path, "%s/samples.jsonl", argv[1]);
    samples_log *s;
    CHECK(samples_log_open(&s, path, 5, -1, err, sizeof err) == 0, "%s", err);
    CHECK(samples_log_due(s, 10) && !samples_log_due(s, 11) && samples_log_due(s, 0), "due");
    const char *names[] = {"math", "format"};
    const double rw[] = {1.0, 0.5};
    samples_entry e[2] = {
        {"What is 2+2?\n", "It is \"4\".\t\xff\xc3(", 2, names, rw, 1.5, 0.7071},
        {"caf\xc3\xa9 \xe2\x82\xac", "\xed\xa0\x80 x", 2, names, rw, NAN, -1.0},
    };
    CHECK(samples_log_write(s, 10, e, 2, err, sizeof err) == 0, "%s", err);
    samples_log_close(s);
    n = read_lines(path, lines, 16);
    CHECK(n == 2, "samples lines %d", n);
    if (n == 2) {
        const cJSON *c0 = cJSON_GetObjectItemCaseSensitive(lines[0], "completion");
        CHECK(cJSON_IsString(c0) && !strcmp(c0->valuestring, "It is \"4\".\t\xef\xbf\xbd\xef\xbf\xbd("),
              "completion: %s", cJSON_IsString(c0) ? c0->valuestring : "?");
        const cJSON *p1 = cJSON_GetObjectItemCaseSensitive(lines[1], "prompt");
        CHECK(cJSON_IsString(p1) && !strcmp(p1->valuestring, "caf\xc3\xa9 \xe2\x82\xac"), "valid UTF-8 kept");
        const cJSON *c1 = cJSON_GetObjectItemCaseSensitive(lines[1], "completion");
        CHECK(cJSON_IsString(c1) && !strcmp(c1->valuestring,
                                            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd x"),
              "surrogate bytes replaced");
        const cJSON *rws = cJSON_GetObjectItemCaseSensitive(lines[0], "rewards");
        CHECK(num(rws, "math") == 1.0 && num(rws, "format") == 0.5, "rewards");
        CHECK(num(lines[0], "reward") == 1.5 && num(lines[0], "advantage") == 0.7071, "totals");
        CHECK(num(lines[1], "index") == 1 && num(lines[1], "step") == 10, "index/step");
        CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(lines[1], "reward")), "NaN reward");
        for (int i = 0; i < n; i++) cJSON_Delete(lines[i]);
    }
    /* resume before step 10 drops those samples */
    CHECK(samples_log_open(&s, path, 5, 9, err, sizeof err) == 0, "%s", err);
    samples_log_close(s);
    n = read_lines(path, lines, 16);
    CHECK(n == 0, "samples after trim %d", n);
    CHECK(samples_log_open(&s, path, -1, 0, err, sizeof err) == -1 && strstr(err, "-1"), "%s", err);

    if (check_failures) fprintf(stderr, "%d failures\n", check_failures);
    else printf("runlog jsonl: ok\n");
    return check_failures ? 1 : 0;
}
