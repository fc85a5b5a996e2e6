/*
 * engine/runlog/metrics.c — see metrics.h.
 */
#include "engine/runlog/metrics.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/io/fileio.h"

double runlog_wall_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double runlog_mono_time(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---------------------------------------------------------------------------------------
// records

void metrics_rec_init(metrics_rec *r) { memset(r, 0, sizeof *r); }

void metrics_rec_free(metrics_rec *r) {
    free(r->kv);
    memset(r, 0, sizeof *r);
}

void metrics_rec_begin(metrics_rec *r, long step) {
    r->step = step;
    r->wall_time = runlog_wall_time();
    r->n = 0;
    r->err[0] = '\0';
}

const metrics_kv *metrics_rec_find(const metrics_rec *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->kv[i].name, name)) return &r->kv[i];
    return NULL;
}

static void rec_add(metrics_rec *r, const char *name, double value, int is_int) {
    if (r->err[0]) return;
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len >= METRICS_NAME_MAX) {
        snprintf(r->err, sizeof r->err, "metric name \"%.80s\" at step %ld: expected 1..%d bytes",
                 name ? name : "(null)", r->step, METRICS_NAME_MAX - 1);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
            snprintf(r->err, sizeof r->err,
                     "metric name \"%.63s\" at step %ld: byte 0x%02x at %zu is not allowed "
                     "(printable ASCII; no spaces, quotes, backslashes)",
                     name, r->step, c, i);
            return;
        }
    }
    if (!strcmp(name, "step") || !strcmp(name, "time") || metrics_rec_find(r, name)) {
        snprintf(r->err, sizeof r->err, "metric name \"%s\" at step %ld is %s", name, r->step,
                 metrics_rec_find(r, name) ? "given twice" : "reserved");
        return;
    }
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 32;
        metrics_kv *kv = realloc(r->kv, (size_t)cap * sizeof *kv);
        if (!kv) {
            snprintf(r->err, sizeof r->err, "metrics: out of memory at step %ld", r->step);
            return;
        }
        r->kv = kv;
        r->cap = cap;
    }
    metrics_kv *e = &r->kv[r->n++];
    memcpy(e->name, name, len + 1);
    e->value = value;
    e->is_int = is_int;
}

void metrics_rec_add(metrics_rec *r, const char *name, double value) { rec_add(r, name, value, 0); }

void metrics_rec_add_int(metrics_rec *r, const char *name, long long value) {
    rec_add(r, name, (double)value, 1);
}

void metrics_rec_to_json(const metrics_rec *r, jbuf *b) {
    jbuf_puts(b, "{\"step\": ");
    jbuf_int(b, r->step);
    jbuf_puts(b, ", \"time\": ");
    char t[40];
    snprintf(t, sizeof t, "%.3f", r->wall_time); /* milliseconds are enough */
    jbuf_puts(b, t);
    for (int i = 0; i < r->n; i++) {
        jbuf_puts(b, ", ");
        jbuf_str(b, r->kv[i].name, strlen(r->kv[i].name));
        jbuf_puts(b, ": ");
        if (r->kv[i].is_int) jbuf_int(b, (long long)r->kv[i].value);
        else jbuf_num(b, r->kv[i].value);
    }
    jbuf_puts(b, "}");
}

// ---------------------------------------------------------------------------------------
// JSONL trimming (resume)

int runlog_jsonl_trim(const char *path, long max_step, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    if (fio_read_file(path, &text, &len, err, errlen)) return -1;
    jbuf out;
    jbuf_init(&out);
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) break; /* a partial last line (crash mid-write) */
        size_t n = (size_t)(nl - (text + pos));
        cJSON *o = cJSON_ParseWithLength(text + pos, n);
        const cJSON *s = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
        if (cJSON_IsNumber(s) && s->valuedouble <= (double)max_step) jbuf_put(&out, text + pos, n + 1);
        cJSON_Delete(o);
        pos += n + 1;
    }
    free(text);
    int rc = -1;
    if (!jbuf_ok(&out)) snprintf(err, errlen, "%s: out of memory trimming the log", path);
    else rc = fio_write_file(path, out.p ? out.p : "", out.n, err, errlen);
    jbuf_free(&out);
    return rc;
}

// ---------------------------------------------------------------------------------------
// metrics.jsonl

struct metrics_log {
    FILE *f;
    char *path;
    jbuf line;
};

int metrics_log_open(metrics_log **out, const char *path, long keep_through_step, char *err,
                     size_t errlen) {
    *out = NULL;
    if (keep_through_step >= 0 && runlog_jsonl_trim(path, keep_through_step, err, errlen)) return -1;
    metrics_log *l = calloc(1, sizeof *l);
    if (!l || !(l->path = strdup(path))) {
        free(l);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    l->f = fopen(path, keep_through_step >= 0 ? "a" : "w");
    if (!l->f) {
        snprintf(err, errlen, "%s: cannot open for writing: %s", path, strerror(errno));
        metrics_log_close(l);
        return -1;
    }
    jbuf_init(&l->line);
    *out = l;
    return 0;
}

int metrics_log_write(metrics_log *l, const metrics_rec *r, char *err, size_t errlen) {
    if (r->err[0]) {
        snprintf(err, errlen, "%s: %s", l->path, r->err);
        return -1;
    }
    jbuf_reset(&l->line);
    metrics_rec_to_json(r, &l->line);
    jbuf_put(&l->line, "\n", 1);
    if (!jbuf_ok(&l->line)) {
        snprintf(err, errlen, "%s: out of memory formatting step %ld", l->path, r->step);
        return -1;
    }
    if (fwrite(l->line.p, 1, l->line.n, l->f) != l->line.n || fflush(l->f) != 0) {
        snprintf(err, errlen, "%s: write failed at step %ld: %s", l->path, r->step,
                 strerror(errno));
        return -1;
    }
    return 0;
}

int metrics_log_sync(metrics_log *l, char *err, size_t errlen) {
    if (fflush(l->f) != 0 || fsync(fileno(l->f)) != 0) {
        snprintf(err, errlen, "%s: fsync failed: %s", l->path, strerror(errno));
        return -1;
    }
    return 0;
}

void metrics_log_close(metrics_log *l) {
    if (!l) return;
    if (l->f) fclose(l->f);
    jbuf_free(&l->line);
    free(l->path);
    free(l);
}
