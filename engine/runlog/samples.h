/*
 * engine/runlog/samples.h — samples.jsonl: every N steps, a few prompts with their
 * completions, per-component rewards and advantages, one JSON object per completion:
 *   {"step": 40, "index": 0, "prompt": "...", "completion": "...",
 *    "rewards": {"math": 1, "format": 0.5}, "reward": 1.5, "advantage": 0.71}
 * Texts are written as JSON strings with invalid UTF-8 bytes replaced by U+FFFD.
 * Same crash behaviour and resume trimming as metrics.jsonl (see metrics.h).
 */
#ifndef RLVR_RUNLOG_SAMPLES_H
#define RLVR_RUNLOG_SAMPLES_H

#include <stddef.h>

typedef struct {
    const char *prompt;      /* rendered prompt text (NUL-terminated) */
    const char *completion;  /* decoded completion text (NUL-terminated) */
    int n_rewards;
    const char *const *reward_names; /* [n_rewards] */
    const double *rewards;           /* [n_rewards] */
    double reward;                   /* the combined reward */
    double advantage;
} samples_entry;

typedef struct samples_log samples_log;

/* every: write on steps that are multiples of every (0 = never). keep_through_step as
 * in metrics_log_open (< 0: new file; >= 0: resume, later lines dropped). */
int samples_log_open(samples_log **out, const char *path, long every, long keep_through_step,
                     char *err, size_t errlen);
/* 1 when step is one of the logged steps. */
int samples_log_due(const samples_log *l, long step);
/* Appends n entries of step (one line each) and flushes. */
int samples_log_write(samples_log *l, long step, const samples_entry *e, int n, char *err,
                      size_t errlen);
int samples_log_sync(samples_log *l, char *err, size_t errlen);
void samples_log_close(samples_log *l);

#endif
