/*
 * engine/runlog/tfevents.c — see tfevents.h. Protocol buffer wire format by hand:
 * a field key is varint((field << 3) | wire type); wire types used: 0 varint, 1 64-bit,
 * 2 length-delimited, 5 32-bit; fixed-width values are little-endian.
 *   Event:      1 wall_time (double), 2 step (int64), 3 file_version (string),
 *               5 summary (Summary), 7 session_log (SessionLog)
 *   Summary:    1 value (repeated Value)
 *   Value:      1 tag (string), 2 simple_value (float)
 *   SessionLog: 1 status (enum, START = 1)
 */
#include "engine/runlog/tfevents.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/runlog/crc32c.h"
#include "engine/runlog/jbuf.h"

struct tfevents {
    FILE *f;
    char *path;
    jbuf ev, sub; /* the event being encoded, a nested message */
};

// ---------------------------------------------------------------------------------------
// protobuf encoding

static void pb_varint(jbuf *b, uint64_t v) {
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    jbuf_put(b, (const char *)tmp, n);
}

static void pb_key(jbuf *b, unsigned field, unsigned wire) { pb_varint(b, (uint64_t)field << 3 | wire); }

static void pb_fixed(jbuf *b, uint64_t v, int bytes) {
    unsigned char tmp[8];
    for (int i = 0; i < bytes; i++) tmp[i] = (unsigned char)(v >> (8 * i));
    jbuf_put(b, (const char *)tmp, (size_t)bytes);
}

static void pb_double(jbuf *b, unsigned field, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    pb_key(b, field, 1);
    pb_fixed(b, u, 8);
}

static void pb_float(jbuf *b, unsigned field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    pb_key(b, field, 5);
    pb_fixed(b, u, 4);
}

static void pb_bytes(jbuf *b, unsigned field, const void *p, size_t n) {
    pb_key(b, field, 2);
    pb_varint(b, n);
    jbuf_put(b, p, n);
}

/* Event header: wall_time and step. */
static void ev_begin(jbuf *ev, double wall_time, long step) {
    jbuf_reset(ev);
    pb_double(ev, 1, wall_time);
    pb_key(ev, 2, 0);
    pb_varint(ev, (uint64_t)(int64_t)step); /* int64: negatives as 10-byte two's complement */
}

/* Appends Summary.Value {tag, simple_value} to sub. */
static void summary_value(jbuf *sub, jbuf *tmp, const char *tag, float v) {
    jbuf_reset(tmp);
    pb_bytes(tmp, 1, tag, strlen(tag));
    pb_float(tmp, 2, v);
    pb_bytes(sub, 1, tmp->p, tmp->n);
}

// ---------------------------------------------------------------------------------------
// TFRecord framing and the file

void tfevents_frame(const void *data, size_t n, unsigned char *out) {
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)n >> (8 * i));
    uint32_t lc = crc32c_mask(crc32c(out, 8));
    for (int i = 0; i < 4; i++) out[8 + i] = (unsigned char)(lc >> (8 * i));
    if (n) memcpy(out + 12, data, n);
    uint32_t dc = crc32c_mask(crc32c(data, n));
    for (int i = 0; i < 4; i++) out[12 + n + i] = (unsigned char)(dc >> (8 * i));
}

static int write_event(tfevents *t, char *err, size_t errlen) {
    unsigned char *tmp = malloc(t->ev.n + 16);
    if (!jbuf_ok(&t->ev) || !jbuf_ok(&t->sub) || !tmp) {
        free(tmp);
        snprintf(err, errlen, "%s: out of memory encoding an event", t->path);
        return -1;
    }
    tfevents_frame(t->ev.p, t->ev.n, tmp);
    size_t n = t->ev.n + 16;
    int ok = fwrite(tmp, 1, n, t->f) == n && fflush(t->f) == 0;
    free(tmp);
    if (!ok) {
        snprintf(err, errlen, "%s: write failed: %s", t->path, strerror(errno));
        return -1;
    }
    return 0;
}

int tfevents_open(tfevents **out, const char *dir, long resume_step, char *err, size_t errlen) {
    *out = NULL;
    tfevents *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    jbuf_init(&t->ev);
    jbuf_init(&t->sub);
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '/') *c = '_';
    const double now = runlog_wall_time();
    size_t cap = strlen(dir) + strlen(host) + 80;
    t->path = malloc(cap);
    if (!t->path) {
        snprintf(err, errlen, "%s: out of memory", dir);
        tfevents_close(t);
        return -1;
    }
    /* O_EXCL so two writers in the same second never share a file. */
    for (int k = 0; k < 1000 && !t->f; k++) {
        if (k == 0) snprintf(t->path, cap, "%s/events.out.tfevents.%ld.%s", dir, (long)now, host);
        else snprintf(t->path, cap, "%s/events.out.tfevents.%ld.%s.%d", dir, (long)now, host, k);
        t->f = fopen(t->path, "wbx");
        if (!t->f && errno != EEXIST) break;
    }
    if (!t->f) {
        snprintf(err, errlen, "%s: cannot create an event file: %s", t->path, strerror(errno));
        tfevents_close(t);
        return -1;
    }
    ev_begin(&t->ev, now, 0);
    pb_bytes(&t->ev, 3, "brain.Event:2", 13);
    if (write_event(t, err, errlen)) {
        tfevents_close(t);
        return -1;
    }
    if (resume_step >= 0) {
        ev_begin(&t->ev, now, resume_step + 1);
        jbuf_reset(&t->sub);
        pb_key(&t->sub, 1, 0);
        pb_varint(&t->sub, 1); /* SessionLog.START */
        pb_bytes(&t->ev, 7, t->sub.p, t->sub.n);
        if (write_event(t, err, errlen)) {
            tfevents_close(t);
            return -1;
        }
    }
    *out = t;
    return 0;
}

const char *tfevents_path(const tfevents *t) { return t->path; }

int tfevents_write(tfevents *t, const metrics_rec *r, char *err, size_t errlen) {
    if (r->err[0]) {
        snprintf(err, errlen, "%s: %s", t->path, r->err);
        return -1;
    }
    jbuf sum, tmp;
    jbuf_init(&sum);
    jbuf_init(&tmp);
    for (int i = 0; i < r->n; i++) summary_value(&sum, &tmp, r->kv[i].name, (float)r->kv[i].value);
    ev_begin(&t->ev, r->wall_time, r->step);
    pb_bytes(&t->ev, 5, sum.p ? sum.p : "", sum.n);
    int oom = !jbuf_ok(&sum) || !jbuf_ok(&tmp);
    jbuf_free(&sum);
    jbuf_free(&tmp);
    if (oom) {
        snprintf(err, errlen, "%s: out of memory encoding step %ld", t->path, r->step);
        return -1;
    }
    return write_event(t, err, errlen);
}

int tfevents_scalar(tfevents *t, const char *tag, long step, double wall_time, float value,
                    char *err, size_t errlen) {
    jbuf tmp;
    jbuf_init(&tmp);
    jbuf_reset(&t->sub);
    summary_value(&t->sub, &tmp, tag, value);
    int oom = !jbuf_ok(&tmp);
    jbuf_free(&tmp);
    if (oom) {
        snprintf(err, errlen, "%s: out of memory encoding %s", t->path, tag);
        return -1;
    }
    ev_begin(&t->ev, wall_time, step);
    pb_bytes(&t->ev, 5, t->sub.p, t->sub.n);
    return write_event(t, err, errlen);
}

int tfevents_sync(tfevents *t, char *err, size_t errlen) {
    if (fflush(t->f) != 0 || fsync(fileno(t->f)) != 0) {
        snprintf(err, errlen, "%s: fsync failed: %s", t->path, strerror(errno));
        return -1;
    }
    return 0;
}

void tfevents_close(tfevents *t) {
    if (!t) return;
    if (t->f) fclose(t->f);
    jbuf_free(&t->ev);
    jbuf_free(&t->sub);
    free(t->path);
    free(t);
}
