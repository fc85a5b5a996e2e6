/*
 * engine/runlog/progress.h — the terminal progress line:
 *   step 12/200  6%  1.84 s/step  ETA 5m46s | reward/mean 0.412 kl 0.0031 loss -0.021
 * On a terminal it is redrawn in place (carriage return, cleared tail, cut to the
 * terminal width so it never wraps); when the output is not a terminal (a log file, a
 * pipe, CI) it prints one plain line every `every` steps, or nothing when every is 0.
 * The rate and ETA count only the steps taken since progress_init (a resumed run does
 * not count the steps it skipped).
 */
#ifndef RLVR_RUNLOG_PROGRESS_H
#define RLVR_RUNLOG_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

#include "engine/runlog/metrics.h"

typedef enum { PROGRESS_AUTO, PROGRESS_TTY, PROGRESS_LINES } progress_mode;

#define PROGRESS_MAX_KEYS 8

typedef struct {
    FILE *out;
    int tty;          /* redraw in place */
    long every;       /* non-terminal: a line every N steps (0 = silent) */
    long total;       /* last step number (the run ends at step == total) */
    long start_step;  /* step at progress_init */
    double t0;        /* monotonic seconds at progress_init */
    int width;        /* terminal columns (80 when unknown) */
    int drawn;        /* a line is on screen without its newline */
    int n_keys;
    char keys[PROGRESS_MAX_KEYS][METRICS_NAME_MAX]; /* figures shown, in this order */
} progress;

/* mode AUTO picks TTY when isatty(fileno(out)). keys: names of metrics to show (those
 * absent from a record are left out), at most PROGRESS_MAX_KEYS, may be NULL. */
void progress_init(progress *p, FILE *out, progress_mode mode, long start_step, long total,
                   long every, const char *const *keys, int n_keys);
/* The line for a step taken, in buf (no \r or \n); elapsed = seconds since init. */
void progress_format(const progress *p, long step, const metrics_rec *r, double elapsed,
                     char *buf, size_t len);
/* Shows the line for step (after step has been taken). */
void progress_update(progress *p, long step, const metrics_rec *r);
/* Ends the in-place line with a newline (call before other output and at the end). */
void progress_finish(progress *p);
/* "5m46s", "2h03m", "41s" */
void progress_fmt_duration(double seconds, char *buf, size_t len);

#endif
