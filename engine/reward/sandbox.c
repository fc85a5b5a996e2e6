/*
 * engine/reward/sandbox.c — rlvr_host.exec: runs a program through rlvr-sandbox with a
 * libuv loop private to the calling thread: pipes for stdin/stdout/stderr (byte caps)
 * and the launcher's report (fd 3), a uv_timer wall-clock deadline, SIGKILL to the
 * whole process group on deadline/cap/exit, a fresh temp dir removed afterwards.
 */
#define _GNU_SOURCE
#include "engine/reward/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* Each run gets its own unprivileged uid in [UID_BASE, UID_BASE + UID_SPAN): RLIMIT_NPROC
 * is per uid, so runs must not share one. */
#define UID_BASE 200000u
#define UID_SPAN 60000u
static _Atomic unsigned g_run_counter;

typedef struct {
    char *p;
    size_t len, cap, limit;
    int over;
} cap_buf;

typedef struct {
    uv_loop_t loop;
    uv_process_t proc;
    uv_pipe_t pin, pout, perr, prep;
    uv_timer_t timer, drain;
    cap_buf out, err, rep;
    int exited, timed_out, output_over, open_handles, eofs;
    int64_t exit_status;
    int term_signal;
    pid_t pid;
    uv_write_t wreq;
    uv_shutdown_t sreq;
} sbx;

static void kill_group(sbx *s) {
    if (s->pid > 0) kill(-s->pid, SIGKILL);
}

static void on_close(uv_handle_t *h) { ((sbx *)h->data)->open_handles--; }
static void close_h(sbx *s, uv_handle_t *h) {
    (void)s;
    if (h->data && !uv_is_closing(h)) uv_close(h, on_close);
}

static void on_alloc(uv_handle_t *h, size_t sugg, uv_buf_t *buf) {
    static __thread char scratch[65536];
    (void)h;
    (void)sugg;
    buf->base = scratch;
    buf->len = sizeof scratch;
}

static void append(cap_buf *b, const char *src, size_t n, int *over) {
    if (b->len + n > b->limit) {
        n = b->limit > b->len ? b->limit - b->len : 0;
        b->over = 1;
        *over = 1;
    }
    if (!n) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->over = 1;
            *over = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* Every handle's data points at the sbx; the buffer is found by the handle address. */
static cap_buf *buf_for(sbx *s, uv_stream_t *st) {
    if (st == (uv_stream_t *)&s->pout) return &s->out;
    if (st == (uv_stream_t *)&s->perr) return &s->err;
    return &s->rep;
}

static void on_read2(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    sbx *s = st->data;
    if (nread > 0) {
        int over = 0;
        cap_buf *b = buf_for(s, st);
        append(b, buf->base, (size_t)nread, &over);
        if (over && b != &s->rep && !s->output_over) {
            s->output_over = 1;
            kill_group(s);
        }
    } else if (nread < 0) {
        uv_read_stop(st);
        s->eofs++;
        close_h(s, (uv_handle_t *)st);
    }
}

static void on_timer(uv_timer_t *t) {
    sbx *s = t->data;
    if (!s->exited) s->timed_out = 1;
    kill_group(s);
}

static void on_drain(uv_timer_t *t) {
    sbx *s = t->data;
    /* The launcher is gone; stop waiting for pipes held open by leftovers. */
    kill_group(s);
    close_h(s, (uv_handle_t *)&s->pout);
    close_h(s, (uv_handle_t *)&s->perr);
    close_h(s, (uv_handle_t *)&s->prep);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
    sbx *s = p->data;
    s->exited = 1;
    s->exit_status = status;
    s->term_signal = sig;
    kill_group(s);
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->drain, on_drain, 200, 0);
    close_h(s, (uv_handle_t *)&s->pin);
}

static void on_shutdown(uv_shutdown_t *r, int status) {
    (void)status;
    sbx *s = r->handle->data;
    close_h(s, (uv_handle_t *)&s->pin);
}

static void on_write(uv_write_t *r, int status) {
    sbx *s = r->handle->data;
    if (status == 0 && !uv_is_closing((uv_handle_t *)&s->pin))
        uv_shutdown(&s->sreq, (uv_stream_t *)&s->pin, on_shutdown);
    else
        close_h(s, (uv_handle_t *)&s->pin);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int chmod_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)ftw;
    if (flag == FTW_D || flag == FTW_DNR) chmod(path, (sb->st_mode & 07777) | 0700);
    return 0;
}

static void remove_tree(const char *dir) {
    nftw(dir, chmod_entry, 16, FTW_PHYS);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int valid_name(const char *n) {
    return n && n[0] && !strchr(n, '/') && strcmp(n, ".") && strcmp(n, "..");
}

static void set_error(rlvr_exec_result *res, const char *fmt, const char *a) {
    res->outcome = RLVR_EXEC_SANDBOX_ERROR;
    snprintf(res->message, sizeof res->message, fmt, a);
}

int sandbox_exec(const char *launcher, const rlvr_exec_request *req, rlvr_exec_result *res) {
    uint32_t rs = res->struct_size ? res->struct_size : sizeof *res;
    memset(res, 0, sizeof *res);
    res->struct_size = rs;
    signal(SIGPIPE, SIG_IGN);
    if (!req || !req->argv || !req->argv[0]) {
        set_error(res, "%s", "sandbox: request without argv");
        return -1;
    }
    if (!launcher || access(launcher, X_OK) != 0) {
        set_error(res, "sandbox: launcher rlvr-sandbox not found at '%s' (set RLVR_SANDBOX)",
                  launcher ? launcher : "");
        return -1;
    }
    char dir[] = "/tmp/rlvr-sbx-XXXXXX";
    if (!mkdtemp(dir)) {
        set_error(res, "sandbox: cannot create a temp dir: %s", strerror(errno));
        return -1;
    }
    const int root = geteuid() == 0;
    unsigned run_uid = UID_BASE + ((unsigned)getpid() * 7919u + g_run_counter++) % UID_SPAN;
    for (size_t f = 0; f < req->n_files; f++) {
        if (!valid_name(req->file_names[f])) {
            set_error(res, "sandbox: bad file name '%s' (expected a plain name)",
                      req->file_names[f] ? req->file_names[f] : "(null)");
            remove_tree(dir);
            return -1;
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, req->file_names[f]);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        size_t len = req->file_lens ? req->file_lens[f] : strlen(req->file_data[f]);
        if (fd < 0 || write(fd, req->file_data[f], len) != (ssize_t)len) {
            if (fd >= 0) close(fd);
            set_error(res, "sandbox: cannot write the file '%.200s' into the work dir",
                      req->file_names[f]);
            remove_tree(dir);
            return -1;
        }
        close(fd);
    }
    if (root && chown(dir, run_uid, run_uid) != 0) {
        set_error(res, "sandbox: cannot chown %s", dir);
        remove_tree(dir);
        return -1;
    }

    sbx *s = calloc(1, sizeof *s);
    if (!s) {
        remove_tree(dir);
        set_error(res, "%s", "sandbox: out of memory");
        return -1;
    }
    uint64_t cap = req->output_bytes ? req->output_bytes : (1u << 20);
    s->out.limit = cap;
    s->err.limit = cap;
    s->rep.limit = 4096;
    uv_loop_init(&s->loop);
    uv_pipe_init(&s->loop, &s->pin, 0);
    uv_pipe_init(&s->loop, &s->pout, 0);
    uv_pipe_init(&s->loop, &s->perr, 0);
    uv_pipe_init(&s->loop, &s->prep, 0);
    uv_timer_init(&s->loop, &s->timer);
    uv_timer_init(&s->loop, &s->drain);
    s->pin.data = s->pout.data = s->perr.data = s->prep.data = s->timer.data = s->drain.data = s;
    s->open_handles = 6;

    char a_uid[32], a_cpu[32], a_mem[32], a_fsize[32], a_nproc[32], a_nofile[32];
    double cpu = req->cpu_s > 0 ? req->cpu_s : (req->wall_s > 0 ? req->wall_s : 10);
    snprintf(a_uid, sizeof a_uid, "%u", run_uid);
    snprintf(a_cpu, sizeof a_cpu, "%llu", (unsigned long long)(cpu + 0.999));
    snprintf(a_mem, sizeof a_mem, "%llu",
             (unsigned long long)(req->mem_bytes ? req->mem_bytes : (1ull << 30)));
    snprintf(a_fsize, sizeof a_fsize, "%llu",
             (unsigned long long)(req->fsize_bytes ? req->fsize_bytes : (16ull << 20)));
    snprintf(a_nproc, sizeof a_nproc, "%u", req->max_procs ? req->max_procs : 32u);
    snprintf(a_nofile, sizeof a_nofile, "%u", req->max_files ? req->max_files : 64u);
    size_t nargv = 0;
    while (req->argv[nargv]) nargv++;
    char **args = calloc(nargv + 24, sizeof *args); /* 16 launcher args + argv + NULL */
    if (!args) {
        set_error(res, "%s", "sandbox: out of memory");
        nargv = 0;
    }
    int k = 0;
    if (args) {
        args[k++] = (char *)launcher;
        args[k++] = "--dir";
        args[k++] = dir;
        args[k++] = "--uid";
        args[k++] = a_uid;
        args[k++] = "--cpu";
        args[k++] = a_cpu;
        args[k++] = "--mem";
        args[k++] = a_mem;
        args[k++] = "--fsize";
        args[k++] = a_fsize;
        args[k++] = "--nproc";
        args[k++] = a_nproc;
        args[k++] = "--nofile";
        args[k++] = a_nofile;
        args[k++] = "--";
        for (size_t a = 0; a < nargv; a++) args[k++] = (char *)req->argv[a];
        args[k] = NULL;
    }
    uv_stdio_container_t stdio[4];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&s->pin;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&s->pout;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&s->perr;
    stdio[3].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[3].data.stream = (uv_stream_t *)&s->prep;
    uv_process_options_t po = {0};
    po.file = launcher;
    po.args = args;
    po.exit_cb = on_exit_cb;
    po.stdio = stdio;
    po.stdio_count = 4;
    po.flags = UV_PROCESS_DETACHED;
    const char *env0[] = {"PATH=/usr/bin:/bin", NULL};
    po.env = (char **)env0;
    s->proc.data = s;
    uint64_t t0 = uv_hrtime();
    int rc = args ? uv_spawn(&s->loop, &s->proc, &po) : UV_ENOMEM;
    int ret = 0;
    if (rc != 0) {
        if (args) set_error(res, "sandbox: cannot start the launcher: %s", uv_strerror(rc));
        s->proc.data = NULL;
        close_h(s, (uv_handle_t *)&s->pin);
        close_h(s, (uv_handle_t *)&s->pout);
        close_h(s, (uv_handle_t *)&s->perr);
        close_h(s, (uv_handle_t *)&s->prep);
        close_h(s, (uv_handle_t *)&s->timer);
        close_h(s, (uv_handle_t *)&s->drain);
        while (s->open_handles > 0) uv_run(&s->loop, UV_RUN_ONCE);
        ret = -1;
    } else {
        s->open_handles++;
        s->pid = s->proc.pid;
        uv_read_start((uv_stream_t *)&s->pout, on_alloc, on_read2);
        uv_read_start((uv_stream_t *)&s->perr, on_alloc, on_read2);
        uv_read_start((uv_stream_t *)&s->prep, on_alloc, on_read2);
        if (req->stdin_data && req->stdin_len) {
            uv_buf_t b = uv_buf_init((char *)req->stdin_data, (unsigned)req->stdin_len);
            if (uv_write(&s->wreq, (uv_stream_t *)&s->pin, &b, 1, on_write) != 0)
                close_h(s, (uv_handle_t *)&s->pin);
        } else {
            close_h(s, (uv_handle_t *)&s->pin);
        }
        double wall = req->wall_s > 0 ? req->wall_s : 10.0;
        uv_timer_start(&s->timer, on_timer, (uint64_t)(wall * 1000.0 + 0.5), 0);
        /* Run until the launcher exited and every pipe is closed. */
        while (!(s->exited && s->open_handles <= 3)) {
            uv_run(&s->loop, UV_RUN_ONCE);
            if (s->exited && uv_is_closing((uv_handle_t *)&s->pout) &&
                uv_is_closing((uv_handle_t *)&s->perr) && uv_is_closing((uv_handle_t *)&s->prep))
                break;
        }
        kill_group(s);
        close_h(s, (uv_handle_t *)&s->pin);
        close_h(s, (uv_handle_t *)&s->pout);
        close_h(s, (uv_handle_t *)&s->perr);
        close_h(s, (uv_handle_t *)&s->prep);
        close_h(s, (uv_handle_t *)&s->timer);
        close_h(s, (uv_handle_t *)&s->drain);
        close_h(s, (uv_handle_t *)&s->proc);
        while (s->open_handles > 0) uv_run(&s->loop, UV_RUN_ONCE);
    }
    uv_loop_close(&s->loop);
    free(args);
    res->wall_s = (double)(uv_hrtime() - t0) * 1e-9;
    remove_tree(dir);
    if (ret == 0) {
        /* Parse the launcher's report. */
        const char *rep = s->rep.p ? s->rep.p : "";
        const char *iso = strstr(rep, "iso=");
        if (iso) {
            size_t n = strcspn(iso + 4, "\n");
            snprintf(res->isolation, sizeof res->isolation, "%.*s", (int)n, iso + 4);
        }
        const char *ex = strstr(rep, "exit="), *sg = strstr(rep, "signal="),
                   *er = strstr(rep, "error=");
        const char *errtxt = s->err.p ? s->err.p : "";
        if (s->timed_out) {
            res->outcome = RLVR_EXEC_TIMEOUT;
        } else if (s->output_over) {
            res->outcome = RLVR_EXEC_OUTPUT;
        } else if (er) {
            size_t n = strcspn(er + 6, "\n");
            res->outcome = RLVR_EXEC_SANDBOX_ERROR;
            snprintf(res->message, sizeof res->message, "%.*s", (int)n, er + 6);
            ret = -1;
        } else if (sg) {
            int sig = atoi(sg + 7);
            res->signal = sig;
            if (sig == SIGXCPU) res->outcome = RLVR_EXEC_TIMEOUT;
            else if (sig == SIGXFSZ) res->outcome = RLVR_EXEC_OUTPUT;
            else res->outcome = RLVR_EXEC_SIGNALED;
        } else if (ex) {
            res->exit_code = atoi(ex + 5);
            res->outcome = RLVR_EXEC_EXITED;
            if (res->exit_code != 0) {
                if (strstr(errtxt, "MemoryError") || strstr(errtxt, "Cannot allocate memory") ||
                    strstr(errtxt, "std::bad_alloc") || strstr(errtxt, "out of memory"))
                    res->outcome = RLVR_EXEC_MEMORY;
                else if (strstr(errtxt, "File too large"))
                    res->outcome = RLVR_EXEC_OUTPUT;
            }
        } else {
            res->outcome = RLVR_EXEC_SANDBOX_ERROR;
            snprintf(res->message, sizeof res->message,
                     "sandbox: the launcher ended without a report (status %lld, signal %d)",
                     (long long)s->exit_status, s->term_signal);
            ret = -1;
        }
    }
    res->out = s->out.p ? s->out.p : calloc(1, 1);
    res->out_len = s->out.len;
    res->err = s->err.p ? s->err.p : calloc(1, 1);
    res->err_len = s->err.len;
    free(s->rep.p);
    free(s);
    return ret;
}

void sandbox_exec_free(rlvr_exec_result *res) {
    if (!res) return;
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
    res->out_len = res->err_len = 0;
}
