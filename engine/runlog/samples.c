/*
 * engine/runlog/samples.c — see samples.h.
 */
#include "engine/runlog/samples.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/runlog/jbuf.h"
#include "engine/runlog/metrics.h"

struct samples_log {
    FILE *f;
    char *path;
    long every;
    jbuf buf;
};

int samples_log_open(samples_log **out, const char *path, long every, long keep_through_step,
                     char *err, size_t errlen) {
    *out = NULL;
    if (every < 0) {
        snprintf(err, errlen, "%s: sample logging interval %ld (expected >= 0; 0 = never)", path,
                 every);
        return -1;
    }
    if (keep_through_step >= 0 && runlog_jsonl_trim(path, keep_through_step, err, errlen)) return -1;
    samples_log *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    l->every = every;
    jbuf_init(&l->buf);
    l->f = fopen(path, keep_through_step >= 0 ? "a" : "w");
    if (!l->f) {
        snprintf(err, errlen, "%s: cannot open for writing: %s", path, strerror(errno));
        samples_log_close(l);
        return -1;
    }
    *out = l;
    return 0;
}

int samples_log_due(const samples_log *l, long step) { return l->every > 0 && step % l->every == 0; }

static void put_text(jbuf *b, const char *s) {
    if (s) jbuf_str(b, s, strlen(s));
    else jbuf_puts(b, "null");
}

int samples_log_write(samples_log *l, long step, const samples_entry *e, int n, char *err,
                      size_t errlen) {
    jbuf *b = &l->buf;
    jbuf_reset(b);
    for (int i = 0; i < n; i++) {
        jbuf_puts(b, "{\"step\": ");
        jbuf_int(b, step);
        jbuf_puts(b, ", \"index\": ");
        jbuf_int(b, i);
        jbuf_puts(b, ", \"prompt\": ");
        put_text(b, e[i].prompt);
        jbuf_puts(b, ", \"completion\": ");
        put_text(b, e[i].completion);
        jbuf_puts(b, ", \"rewards\": {");
        for (int k = 0; k < e[i].n_rewards; k++) {
            const char *name = e[i].reward_names[k] ? e[i].reward_names[k] : "";
            if (k) jbuf_puts(b, ", ");
            jbuf_str(b, name, strlen(name));
            jbuf_puts(b, ": ");
            jbuf_num(b, e[i].rewards[k]);
        }
        jbuf_puts(b, "}, \"reward\": ");
        jbuf_num(b, e[i].reward);
        jbuf_puts(b, ", \"advantage\": ");
        jbuf_num(b, e[i].advantage);
        jbuf_puts(b, "}\n");
    }
    if (!jbuf_ok(b)) {
        snprintf(err, errlen, "%s: out of memory formatting the samples of step %ld", l->path, step);
        return -1;
    }
    if (fwrite(b->p ? b->p : "", 1, b->n, l->f) != b->n || fflush(l->f) != 0) {
        snprintf(err, errlen, "%s: write failed at step %ld: %s", l->path, step, strerror(errno));
        return -1;
    }
    return 0;
}

int samples_log_sync(samples_log *l, char *err, size_t errlen) {
    if (fflush(l->f) != 0 || fsync(fileno(l->f)) != 0) {
        snprintf(err, errlen, "%s: fsync failed: %s", l->path, strerror(errno));
        return -1;
    }
    return 0;
}

void samples_log_close(samples_log *l) {
    if (!l) return;
    if (l->f) fclose(l->f);
    jbuf_free(&l->buf);
    free(l->path);
    free(l);
}
