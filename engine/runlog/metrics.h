/*
 * engine/runlog/metrics.h — one record of named numbers per training step, and the
 * metrics.jsonl writer.
 *
 * A metrics_rec collects a step's figures by name, in the order they are added; the
 * same record feeds metrics.jsonl (metrics_log_write), TensorBoard (tfevents.h) and
 * the progress line (progress.h).
 *
 * metrics.jsonl holds one JSON object per line:
 *   {"step": 12, "time": 1732731234.512, "reward/mean": 0.41, "tokens": 5120, ...}
 * "time" is the wall-clock time in seconds since the Unix epoch when the record was
 * begun. Floats are written in their shortest exact form; NaN and ±inf (which JSON
 * cannot hold) are written as null.
 *
 * Crash behaviour: the file is opened for appending and each line is handed to the OS
 * with one write and a flush, so a crash of the process loses at most the line being
 * written (which may be left partial). Appends are not rename-atomic, so a machine
 * crash can lose whatever the OS had not yet written to disk; metrics_log_sync()
 * (called when a checkpoint is saved) makes every line so far durable. On resume,
 * metrics_log_open(path, keep_through_step) first rewrites the file atomically without
 * the lines of steps after the checkpoint and without a partial last line, so the
 * resumed run's lines follow on exactly.
 */
#ifndef RLVR_RUNLOG_METRICS_H
#define RLVR_RUNLOG_METRICS_H

#include <stddef.h>

#include "engine/runlog/jbuf.h"

#define METRICS_NAME_MAX 64 /* bytes of a metric name, NUL included */

typedef struct {
    char name[METRICS_NAME_MAX];
    double value;
    int is_int; /* written without a fraction (counts, token totals) */
} metrics_kv;

typedef struct {
    long step;
    double wall_time; /* seconds since the Unix epoch */
    metrics_kv *kv;   /* [n], in the order added */
    int n, cap;
    char err[256];    /* first error while adding (bad or repeated name, no memory) */
} metrics_rec;

void metrics_rec_init(metrics_rec *r);
void metrics_rec_free(metrics_rec *r);
/* Starts the record of a step: clears the values and stamps the wall time. */
void metrics_rec_begin(metrics_rec *r, long step);
/* Adds a value. A name is 1..63 bytes of printable ASCII other than '"' and '\\' and
 * appears once per record; "step" and "time" are reserved. A bad name is remembered in
 * r->err and makes the write fail (the caller's bug, reported once, not silently lost). */
void metrics_rec_add(metrics_rec *r, const char *name, double value);
void metrics_rec_add_int(metrics_rec *r, const char *name, long long value);
/* Pointer to the value named name, or NULL. */
const metrics_kv *metrics_rec_find(const metrics_rec *r, const char *name);
/* The record as one JSON object (no newline) appended to b. */
void metrics_rec_to_json(const metrics_rec *r, jbuf *b);

/* ---- metrics.jsonl ---------------------------------------------------------------- */
typedef struct metrics_log metrics_log;

/* Opens path for appending. keep_through_step < 0: start a new file (an existing one is
 * replaced). keep_through_step >= 0 (resume): keep the existing lines whose "step" is
 * <= keep_through_step, drop the rest and any partial or unparsable line. */
int metrics_log_open(metrics_log **out, const char *path, long keep_through_step, char *err,
                     size_t errlen);
/* Appends the record as one line and flushes it to the OS. */
int metrics_log_write(metrics_log *l, const metrics_rec *r, char *err, size_t errlen);
/* fsync: every line written so far survives a machine crash. */
int metrics_log_sync(metrics_log *l, char *err, size_t errlen);
void metrics_log_close(metrics_log *l);

/* Rewrites a JSONL file atomically, keeping the complete lines that parse as a JSON
 * object whose numeric "step" is <= max_step (lines without "step" are dropped too).
 * A missing file is not an error. Shared by the metrics and samples logs. */
int runlog_jsonl_trim(const char *path, long max_step, char *err, size_t errlen);

/* Seconds since the Unix epoch (CLOCK_REALTIME). */
double runlog_wall_time(void);
/* Seconds on a monotonic clock (for rates and ETAs). */
double runlog_mono_time(void);

#endif
