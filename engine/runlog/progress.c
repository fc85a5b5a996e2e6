/*
 * engine/runlog/progress.c — see progress.h.
 */
#include "engine/runlog/progress.h"

#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

void progress_init(progress *p, FILE *out, progress_mode mode, long start_step, long total,
                   long every, const char *const *keys, int n_keys) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = mode == PROGRESS_TTY || (mode == PROGRESS_AUTO && out && isatty(fileno(out)));
    p->every = every;
    p->total = total;
    p->start_step = start_step;
    p->t0 = runlog_mono_time();
    p->width = 80;
    struct winsize ws;
    if (p->tty && out && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        p->width = ws.ws_col;
    for (int i = 0; keys && i < n_keys && p->n_keys < PROGRESS_MAX_KEYS; i++)
        if (keys[i]) snprintf(p->keys[p->n_keys++], METRICS_NAME_MAX, "%s", keys[i]);
}

void progress_fmt_duration(double s, char *buf, size_t len) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, len, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t < 60) snprintf(buf, len, "%lds", t);
    else if (t < 3600) snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
    else if (t < 100 * 3600) snprintf(buf, len, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else snprintf(buf, len, "%ldh", t / 3600);
}

void progress_format(const progress *p, long step, const metrics_rec *r, double elapsed, char *buf,
                     size_t len) {
    size_t o = 0;
#define PUT(...)                                                                               \
    do {                                                                                       \
        if (o < len) {                                                                         \
            int k_ = snprintf(buf + o, len - o, __VA_ARGS__);                                  \
            if (k_ > 0) o += (size_t)k_;                                                       \
        }                                                                                      \
    } while (0)
    if (len == 0) return;
    buf[0] = '\0';
    if (p->total > 0) PUT("step %ld/%ld %3.0f%%", step, p->total, 100.0 * step / p->total);
    else PUT("step %ld", step);
    const long done = step - p->start_step;
    if (done > 0 && elapsed > 0) {
        const double per = elapsed / done;
        if (per >= 1.0) PUT("  %.2f s/step", per);
        else PUT("  %.2f step/s", 1.0 / per);
        if (p->total > 0 && step < p->total) {
            char eta[32];
            progress_fmt_duration(per * (double)(p->total - step), eta, sizeof eta);
            PUT("  ETA %s", eta);
        } else {
            char tot[32];
            progress_fmt_duration(elapsed, tot, sizeof tot);
            PUT("  in %s", tot);
        }
    }
    int sep = 0;
    for (int i = 0; r && i < p->n_keys; i++) {
        const metrics_kv *kv = metrics_rec_find(r, p->keys[i]);
        if (!kv) continue;
        PUT("%s%s ", sep++ ? "  " : " | ", kv->name);
        if (kv->is_int) PUT("%lld", (long long)kv->value);
        else PUT("%.4g", kv->value);
    }
#undef PUT
    if (o >= len) buf[len - 1] = '\0';
}

void progress_update(progress *p, long step, const metrics_rec *r) {
    if (!p->out) return;
    const int last = p->total > 0 && step >= p->total;
    if (!p->tty && (p->every <= 0 || (step % p->every != 0 && !last))) return;
    char line[512];
    progress_format(p, step, r, runlog_mono_time() - p->t0, line, sizeof line);
    if (p->tty) {
        /* Cut to the width (never wrap: \r only returns to the start of the last row),
         * then clear whatever the previous, longer line left behind. */
        if ((int)strlen(line) > p->width - 1) line[p->width - 1] = '\0';
        fprintf(p->out, "\r%s\033[K", line);
        p->drawn = 1;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
}

void progress_finish(progress *p) {
    if (p->out && p->tty && p->drawn) {
        fputc('\n', p->out);
        fflush(p->out);
    }
    p->drawn = 0;
}
