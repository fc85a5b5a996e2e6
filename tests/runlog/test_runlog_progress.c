/*
 * tests/runlog/test_runlog_progress.c — the progress line: its text (step, percent,
 * rate, ETA, chosen figures in order, missing ones left out), in-place redraw on a
 * terminal (carriage return, clear-to-end, cut to the width, newline at the end), and
 * one plain line every N steps (or nothing) when the output is not a terminal.
 * usage: test_runlog_progress SCRATCH_DIR
 */
#include <string.h>

#include "engine/io/fileio.h"
#include "engine/runlog/progress.h"
#include "test_util.h"

static char *slurp(FILE *f) {
    long n = ftell(f);
    char *s = calloc((size_t)n + 1, 1);
    rewind(f);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) s[0] = '\0';
    return s;
}

static int count(const char *s, const char *sub) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub)) n++;
    return n;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    test_fresh_dir(argv[1]);
    char d[32];
    progress_fmt_duration(41.2, d, sizeof d);
    CHECK(!strcmp(d, "41s"), "%s", d);
    progress_fmt_duration(346, d, sizeof d);
    CHECK(!strcmp(d, "5m46s"), "%s", d);
    progress_fmt_duration(7380, d, sizeof d);
    CHECK(!strcmp(d, "2h03m"), "%s", d);

    metrics_rec r;
    metrics_rec_init(&r);
    metrics_rec_begin(&r, 12);
    metrics_rec_add(&r, "kl", 0.0031);
    metrics_rec_add(&r, "reward/mean", 0.41234);
    metrics_rec_add_int(&r, "tokens", 5120);
    const char *keys[] = {"reward/mean", "absent", "kl", "tokens"};
    progress p;
    progress_init(&p, NULL, PROGRESS_LINES, 2, 200, 1, keys, 4);
    char line[512];
    progress_format(&p, 12, &r, 18.4, line, sizeof line);
    CHECK(!strcmp(line, "step 12/200   6%  1.84 s/step  ETA 5m46s | reward/mean 0.4123  kl 0.0031  tokens 5120"),
          "line: '%s'", line);
    progress_format(&p, 12, &r, 2.0, line, sizeof line);
    CHECK(strstr(line, "5.00 step/s") && strstr(line, "ETA 38s"), "fast: '%s'", line);
    progress_format(&p, 200, NULL, 100.0, line, sizeof line);
    CHECK(!strcmp(line, "step 200/200 100%  1.98 step/s  in 1m40s"), "end: '%s'", line);
    progress_format(&p, 2, NULL, 0.0, line, sizeof line);
    CHECK(!strcmp(line, "step 2/200   1%"), "no rate yet: '%s'", line);
    char small[16];
    progress_format(&p, 12, &r, 18.4, small, sizeof small);
    CHECK(strlen(small) == 15, "truncated to the buffer");

    /* Not a terminal: a line every 5 steps, plus the last step. */
    FILE *f = tmpfile();
    progress_init(&p, f, PROGRESS_AUTO, 0, 12, 5, keys, 4);
    CHECK(!p.tty, "a file is not a terminal");
    for (long s = 1; s <= 12; s++) progress_update(&p, s, &r);
    progress_finish(&p);
    char *out = slurp(f);
    CHECK(count(out, "\n") == 3 && strstr(out, "step 5/12") && strstr(out, "step 10/12") &&
              strstr(out, "step 12/12") && !strchr(out, '\r'),
          "lines mode: '%s'", out);
    free(out);
    fclose(f);
    /* every = 0: silent */
    f = tmpfile();
    progress_init(&p, f, PROGRESS_LINES, 0, 12, 0, keys, 4);
    for (long s = 1; s <= 12; s++) progress_update(&p, s, &r);
    progress_finish(&p);
    CHECK(ftell(f) == 0, "silent");
    fclose(f);

    /* Terminal mode: redrawn in place, cut to the width, one newline at the end. */
    f = tmpfile();
    progress_init(&p, f, PROGRESS_TTY, 0, 3, 0, keys, 4);
    p.width = 30;
    for (long s = 1; s <= 3; s++) progress_update(&p, s, &r);
    progress_finish(&p);
    out = slurp(f);
    CHECK(count(out, "\r") == 3 && count(out, "\033[K") == 3 && count(out, "\n") == 1 &&
              out[strlen(out) - 1] == '\n',
          "tty mode: '%s'", out);
    for (char *q = out; (q = strchr(q, '\r')); q++) {
        char *e = strstr(q, "\033[K");
        CHECK(e && e - q - 1 <= 29, "drawn line longer than the width: %d", (int)(e - q - 1));
    }
    free(out);
    fclose(f);
    metrics_rec_free(&r);
    if (check_failures) fprintf(stderr, "%d failures\n", check_failures);
    else printf("runlog progress: ok\n");
    return check_failures ? 1 : 0;
}
