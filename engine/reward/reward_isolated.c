/*
 * engine/reward/reward_isolated.c — the host side of `isolation: process`: spawns
 * rlvr-reward-worker through libuv (stdin/stdout pipes, stderr inherited), sends INIT and
 * SCORE frames and reads the replies, with a uv_timer deadline that SIGKILLs the
 * subprocess. Each reward_iso has its own uv loop and is used by one thread at a time.
 */
#include "engine/reward/reward_isolated.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine/reward/reward_wire.h"

struct reward_iso {
    reward_iso_opts o;
    char *plugin, *config, *exe, *sandbox;
    uv_loop_t loop;
    int loop_ok;
    uv_process_t proc;
    uv_pipe_t in, out;  /* child's stdin (we write), child's stdout (we read) */
    uv_timer_t timer;
    int running;        /* subprocess alive and initialised */
    int ever_started;
    int exited;         /* exit callback seen */
    int64_t exit_status;
    int term_signal;
    int timed_out;
    int eof;
    int open_handles;
    rw_buf rbuf;        /* bytes read so far */
    uint64_t flags;
    char name[128];
};

static void on_close(uv_handle_t *hd) {
    reward_iso *w = hd->data;
    w->open_handles--;
}

static void close_all(reward_iso *w) {
    uv_handle_t *hs[] = {(uv_handle_t *)&w->proc, (uv_handle_t *)&w->in,
                         (uv_handle_t *)&w->out, (uv_handle_t *)&w->timer};
    for (int i = 0; i < 4; i++)
        if (hs[i]->data && !uv_is_closing(hs[i])) uv_close(hs[i], on_close);
    while (w->open_handles > 0) uv_run(&w->loop, UV_RUN_ONCE);
    memset(&w->proc, 0, sizeof w->proc);
    memset(&w->in, 0, sizeof w->in);
    memset(&w->out, 0, sizeof w->out);
    memset(&w->timer, 0, sizeof w->timer);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
    reward_iso *w = p->data;
    w->exited = 1;
    w->exit_status = status;
    w->term_signal = sig;
}

static void on_alloc(uv_handle_t *hd, size_t sugg, uv_buf_t *buf) {
    reward_iso *w = hd->data;
    (void)sugg;
    rw_buf *b = &w->rbuf;
    if (b->cap - b->len < 65536) {
        size_t cap = b->cap ? b->cap * 2 : 131072;
        char *p = realloc(b->p, cap);
        if (!p) {
            buf->base = NULL;
            buf->len = 0;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    buf->base = b->p + b->len;
    buf->len = b->cap - b->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    reward_iso *w = s->data;
    (void)buf;
    if (nread > 0) w->rbuf.len += (size_t)nread;
    else if (nread < 0) {
        w->eof = 1;
        uv_read_stop(s);
    }
}

static void on_timer(uv_timer_t *t) {
    reward_iso *w = t->data;
    w->timed_out = 1;
    if (!w->exited) uv_process_kill(&w->proc, SIGKILL);
}

static void on_write(uv_write_t *req, int status) {
    (void)status;
    free(req);
}

reward_iso *reward_iso_new(const reward_iso_opts *o) {
    reward_iso *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->plugin = strdup(o->plugin);
    w->config = strdup(o->config_json ? o->config_json : "{}");
    w->exe = strdup(o->worker_exe);
    w->sandbox = strdup(o->sandbox_exe ? o->sandbox_exe : "");
    if (!w->plugin || !w->config || !w->exe || !w->sandbox || uv_loop_init(&w->loop) != 0) {
        free(w->plugin);
        free(w->config);
        free(w->exe);
        free(w->sandbox);
        free(w);
        return NULL;
    }
    w->loop_ok = 1;
    w->o = *o;
    return w;
}

/* Kills (if needed) and reaps the subprocess, closes the handles. */
static void iso_stop(reward_iso *w) {
    if (!w->proc.data) return;
    if (!w->exited) uv_process_kill(&w->proc, SIGKILL);
    uint64_t until = uv_hrtime() + 5000000000ull;
    while (!w->exited && uv_hrtime() < until) uv_run(&w->loop, UV_RUN_ONCE);
    close_all(w);
    w->running = 0;
}

void reward_iso_free(reward_iso *w) {
    if (!w) return;
    iso_stop(w);
    if (w->loop_ok) {
        uv_run(&w->loop, UV_RUN_NOWAIT);
        uv_loop_close(&w->loop);
    }
    rw_free(&w->rbuf);
    free(w->plugin);
    free(w->config);
    free(w->exe);
    free(w->sandbox);
    free(w);
}

static int iso_write(reward_iso *w, rw_buf *b) {
    uv_write_t *req = malloc(sizeof *req);
    if (!req) return -1;
    uv_buf_t ub = uv_buf_init(b->p, (unsigned)b->len);
    if (uv_write(req, (uv_stream_t *)&w->in, &ub, 1, on_write) != 0) {
        free(req);
        return -1;
    }
    return 0;
}

/* Runs the loop until a whole reply frame is buffered, the child died, or the deadline.
 * Returns 0 with the frame in rbuf (payload at +4), 1 timeout, 2 death/EOF. */
static int iso_wait_reply(reward_iso *w, uint64_t deadline_ns) {
    uint64_t now = uv_hrtime();
    uint64_t ms = deadline_ns > now ? (deadline_ns - now + 999999) / 1000000 : 0;
    w->timed_out = 0;
    uv_timer_start(&w->timer, on_timer, ms, 0);
    for (;;) {
        if (w->rbuf.len >= 4) {
            uint32_t flen;
            memcpy(&flen, w->rbuf.p, 4);
            if (flen > RW_MAX_FRAME) {
                uv_timer_stop(&w->timer);
                return 2;
            }
            if (w->rbuf.len >= 4 + (size_t)flen) {
                uv_timer_stop(&w->timer);
                return 0;
            }
        }
        if (w->timed_out) return 1;
        if (w->exited || w->eof) {
            uv_timer_stop(&w->timer);
            return 2;
        }
        uv_run(&w->loop, UV_RUN_ONCE);
    }
}

static void describe_death(reward_iso *w, const char *what, char *err, size_t errlen) {
    /* Give the exit callback a moment so the message can say how it died. */
    uint64_t until = uv_hrtime() + 2000000000ull;
    if (!w->exited) uv_process_kill(&w->proc, SIGKILL);
    while (!w->exited && uv_hrtime() < until) uv_run(&w->loop, UV_RUN_ONCE);
    if (w->term_signal)
        snprintf(err, errlen, "reward worker for %s %s: killed by signal %d (%s)", w->plugin,
                 what, w->term_signal, strsignal(w->term_signal));
    else
        snprintf(err, errlen, "reward worker for %s %s: exited with status %lld", w->plugin,
                 what, (long long)w->exit_status);
}

int reward_iso_start(reward_iso *w, uint64_t deadline_ns, uint64_t *flags, char *name,
                     size_t namelen, int *restarted, char *err, size_t errlen) {
    *restarted = 0;
    if (w->running) {
        *flags = w->flags;
        snprintf(name, namelen, "%s", w->name);
        return 0;
    }
    iso_stop(w);
    if (w->ever_started) *restarted = 1;
    w->ever_started = 1;
    w->exited = w->eof = w->timed_out = 0;
    w->exit_status = 0;
    w->term_signal = 0;
    w->rbuf.len = 0;
    uv_pipe_init(&w->loop, &w->in, 0);
    uv_pipe_init(&w->loop, &w->out, 0);
    uv_timer_init(&w->loop, &w->timer);
    w->in.data = w->out.data = w->timer.data = w;
    w->open_handles = 3;
    char mem[32];
    snprintf(mem, sizeof mem, "%llu", (unsigned long long)w->o.mem_bytes);
    char *args[] = {w->exe, "--mem", mem, "--sandbox", w->sandbox, NULL};
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&w->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&w->out;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;
    uv_process_options_t po = {0};
    po.file = w->exe;
    po.args = args;
    po.exit_cb = on_exit_cb;
    po.stdio = stdio;
    po.stdio_count = 3;
    w->proc.data = w;
    int rc = uv_spawn(&w->loop, &w->proc, &po);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start reward worker %s: %s", w->exe, uv_strerror(rc));
        w->proc.data = NULL;
        close_all(w);
        return -1;
    }
    w->open_handles++;
    uv_read_start((uv_stream_t *)&w->out, on_alloc, on_read);
    rw_buf b;
    rw_init(&b);
    rw_u32(&b, 0);
    rw_u32(&b, RW_MSG_INIT);
    rw_str(&b, w->plugin, strlen(w->plugin));
    rw_str(&b, w->config, strlen(w->config));
    rw_finish_frame(&b);
    if (b.oom || iso_write(w, &b) != 0) {
        rw_free(&b);
        snprintf(err, errlen, "reward worker for %s: cannot send init", w->plugin);
        iso_stop(w);
        return -1;
    }
    int r = iso_wait_reply(w, deadline_ns);
    rw_free(&b);
    if (r == 1) {
        snprintf(err, errlen, "reward worker for %s: init did not answer before the deadline",
                 w->plugin);
        iso_stop(w);
        return -1;
    }
    if (r == 2) {
        describe_death(w, "died during init", err, errlen);
        iso_stop(w);
        return -1;
    }
    uint32_t flen;
    memcpy(&flen, w->rbuf.p, 4);
    rw_reader rd = {w->rbuf.p + 4, flen, 0, 0};
    int32_t ok = (int32_t)rr_u32(&rd);
    uint64_t fl = rr_u64(&rd);
    size_t nl, el;
    const char *nm = rr_str(&rd, &nl);
    const char *em = rr_str(&rd, &el);
    size_t consumed = 4 + (size_t)flen;
    memmove(w->rbuf.p, w->rbuf.p + consumed, w->rbuf.len - consumed);
    w->rbuf.len -= consumed;
    if (rd.bad) {
        snprintf(err, errlen, "reward worker for %s: garbled init reply", w->plugin);
        iso_stop(w);
        return -1;
    }
    if (ok != 0) {
        snprintf(err, errlen, "%.*s", (int)el, em);
        iso_stop(w);
        return -1;
    }
    w->flags = fl;
    snprintf(w->name, sizeof w->name, "%.*s", (int)nl, nm);
    w->running = 1;
    *flags = fl;
    snprintf(name, namelen, "%s", w->name);
    return 0;
}

int reward_iso_score(reward_iso *w, const rlvr_batch *bt, uint64_t deadline_ns,
                     double *scores, int32_t *status, char **info, uint64_t *nonfinite,
                     int *restarted, char *err, size_t errlen) {
    const size_t n = bt->n_items;
    *nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        scores[i] = 0.0;
        status[i] = RLVR_STATUS_ERROR;
        info[i] = NULL;
    }
    uint64_t flags;
    char name[128];
    if (reward_iso_start(w, deadline_ns, &flags, name, sizeof name, restarted, err, errlen))
        return -1;
    rw_buf b;
    rw_init(&b);
    rw_u32(&b, 0);
    rw_u32(&b, RW_MSG_SCORE);
    rw_u64(&b, (uint64_t)bt->step);
    rw_u64(&b, bt->seed);
    rw_f64(&b, bt->time_budget_s);
    rw_u64(&b, n);
    for (size_t i = 0; i < n; i++) {
        const rlvr_item *it = &bt->items[i];
        rw_u64(&b, (uint64_t)it->group_id);
        rw_str(&b, it->prompt, it->prompt_len);
        rw_str(&b, it->completion, it->completion_len);
        rw_str(&b, it->answer, it->answer_len);
        rw_str(&b, it->extra_json, strlen(it->extra_json));
    }
    rw_finish_frame(&b);
    if (b.oom || b.len > RW_MAX_FRAME || iso_write(w, &b) != 0) {
        rw_free(&b);
        snprintf(err, errlen, "reward worker for %s: cannot send a batch of %zu items",
                 w->plugin, n);
        return -1;
    }
    int r = iso_wait_reply(w, deadline_ns);
    rw_free(&b);
    if (r == 1) {
        for (size_t i = 0; i < n; i++) status[i] = RLVR_STATUS_TIMEOUT;
        snprintf(err, errlen,
                 "reward worker for %s: batch of %zu items not scored before the deadline; "
                 "worker killed (restarted for the next batch)",
                 w->plugin, n);
        iso_stop(w);
        return -1;
    }
    if (r == 2) {
        describe_death(w, "died while scoring a batch (restarted for the next batch)", err,
                       errlen);
        iso_stop(w);
        return -1;
    }
    uint32_t flen;
    memcpy(&flen, w->rbuf.p, 4);
    rw_reader rd = {w->rbuf.p + 4, flen, 0, 0};
    int32_t rc = (int32_t)rr_u32(&rd);
    size_t el;
    const char *em = rr_str(&rd, &el);
    uint64_t nn = rr_u64(&rd);
    *nonfinite = rr_u64(&rd);
    int ret = 0;
    if (rd.bad || nn != n) {
        snprintf(err, errlen, "reward worker for %s: garbled reply", w->plugin);
        ret = -1;
    } else {
        for (size_t i = 0; i < n && !rd.bad; i++) {
            scores[i] = rr_f64(&rd);
            status[i] = (int32_t)rr_u32(&rd);
            size_t il;
            const char *is = rr_str(&rd, &il);
            if (il) {
                info[i] = malloc(il + 1);
                if (info[i]) {
                    memcpy(info[i], is, il);
                    info[i][il] = 0;
                }
            }
        }
        if (rd.bad) {
            for (size_t i = 0; i < n; i++) status[i] = RLVR_STATUS_ERROR;
            snprintf(err, errlen, "reward worker for %s: garbled reply", w->plugin);
            ret = -1;
        } else if (rc != 0) {
            snprintf(err, errlen, "%.*s", (int)el, em);
            ret = -1;
        }
    }
    size_t consumed = 4 + (size_t)flen;
    memmove(w->rbuf.p, w->rbuf.p + consumed, w->rbuf.len - consumed);
    w->rbuf.len -= consumed;
    if (ret != 0 && rd.bad) iso_stop(w);
    return ret;
}
