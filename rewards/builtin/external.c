/*
 * rewards/builtin/external.c — the `external` reward: a long-lived subprocess, written
 * in any language, that scores items over JSON lines on its stdin/stdout.
 *
 * Config: {"command": ["python3", "my_reward.py"],   argv; argv[0] found on PATH
 *          "timeout_s": 30,        seconds the process may take to answer ONE item,
 *                                   counted from the previous answer (or batch start)
 *          "env": {"K": "V"},      added to (or replacing in) the inherited environment
 *          "max_reply_kb": 1024}   longest accepted reply line
 *
 * Protocol (one line per item, in batch order; the process answers each line with one
 * line, in the same order, and must flush after each):
 *   host → process: {"id":N,"index":i,"step":S,"seed":X,"group_id":G,"prompt":"...",
 *                    "completion":"...","answer":"...","extra":{...row's other fields}}
 *   process → host: {"score":1.0,"status":"ok","info":{...}}   (status ok|abstain|error;
 *                    default ok; "score" must be a finite number when ok; "id" may be
 *                    echoed and must then match; "info", an object, is logged)
 * Strings are sent as valid UTF-8 (invalid bytes become U+FFFD). The whole batch is
 * written while replies are read (poll), so the process may read ahead.
 *
 * Process life: started at the first batch of each state (the host keeps one state per
 * worker thread: external is not thread-safe), in its own session/process group, stderr
 * inherited, PYTHONUNBUFFERED=1 unless env sets it. It is restarted at the next batch after
 * it dies or is killed. A reply that is not a JSON object (or carries a wrong "id"), a
 * reply line over max_reply_kb or output nobody asked for makes that item ERROR and kills
 * the process (the stream is out of step): the rest of the batch is ERROR. Death → the
 * unanswered items are ERROR; no answer within timeout_s (or past the host's batch time
 * budget) → the process group is SIGKILLed and the unanswered items are TIMEOUT. destroy
 * closes stdin, waits up to 1 s for the process to exit, then SIGKILLs its group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rewards/builtin/builtin_util.h"
#include "rewards/builtin/builtins.h"

extern char **environ;

typedef struct {
    const rlvr_host *host;
    char **argv;      /* [argc + 1] */
    char **envp;      /* NULL-terminated */
    double timeout_s;
    size_t max_reply; /* bytes */
    pid_t pid;        /* 0: no process */
    int to_fd;        /* our end of the process's stdin (a socket: send never SIGPIPEs) */
    int from_fd;      /* read end of the process's stdout (a pipe) */
    uint64_t next_id;
    char *rbuf;
    size_t rlen, rcap;
} ext_state;

/* ---- small helpers ---------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void ext_log(const ext_state *st, int level, const char *msg) {
    if (st->host && st->host->struct_size >= offsetof(rlvr_host, log) + sizeof st->host->log &&
        st->host->log)
        st->host->log(st->host->ctx, level, msg);
    else
        fprintf(stderr, "rlvr reward external: %s\n", msg);
}

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t L = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!L || L > n || (L == 2 && c < 0xC2)) return 0;
    for (size_t k = 1; k < L; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    if (L == 3) {
        unsigned v = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    }
    if (L == 4) {
        unsigned v = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12);
        if (v < 0x10000 || v > 0x10FFFF) return 0;
    }
    return L;
}

/* Appends s[0..n) as a JSON string: escaped, invalid UTF-8 replaced by U+FFFD. */
static void sb_json_str(sbuf *b, const char *s, size_t n) {
    sb_put(b, "\"", 1);
    size_t i = 0, run = 0; /* run: start of the pending verbatim bytes */
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ub[8];
        size_t L = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20 || c == 0x7F) {
            snprintf(ub, sizeof ub, "\\u%04x", c);
            esc = ub;
        } else if (c >= 0x80) {
            L = utf8_len((const unsigned char *)s + i, n - i);
            if (!L) {
                esc = "\xEF\xBF\xBD";
                L = 1;
            }
        }
        if (esc) {
            sb_put(b, s + run, i - run);
            sb_str(b, esc);
            i += L;
            run = i;
        } else {
            i += L;
        }
    }
    sb_put(b, s + run, i - run);
    sb_put(b, "\"", 1);
}

/* ---- the process -------------------------------------------------------------------- */

/* Waits up to wait_s for the process to exit (without reaping), SIGKILLs its group,
 * reaps it. Fills *wstatus. */
static void ext_stop(ext_state *st, double wait_s, int *wstatus) {
    if (st->to_fd >= 0) close(st->to_fd);
    if (st->from_fd >= 0) close(st->from_fd);
    st->to_fd = st->from_fd = -1;
    st->rlen = 0;
    if (st->pid <= 0) return;
    double until = now_s() + wait_s;
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_PID, (id_t)st->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if (r == 0 && si.si_pid == st->pid) break;
        if (r != 0 && errno != EINTR) break;
        if (now_s() >= until) break;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    kill(-st->pid, SIGKILL); /* the group: grandchildren too */
    int ws = 0;
    while (waitpid(st->pid, &ws, 0) < 0 && errno == EINTR) {
    }
    if (wstatus) *wstatus = ws;
    st->pid = 0;
}

static void describe_status(int ws, char *buf, size_t n) {
    if (WIFSIGNALED(ws))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    else
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(ws));
}

static int ext_start(ext_state *st, char *err, size_t errlen) {
    int sv[2] = {-1, -1}, pp[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
        pipe2(pp, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "external: cannot create pipes: %s", strerror(errno));
        for (int k = 0; k < 2; k++) {
            if (sv[k] >= 0) close(sv[k]);
            if (pp[k] >= 0) close(pp[k]);
        }
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, pp[1], 1);
    posix_spawnattr_init(&at);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t k = 0; k < sizeof sigs / sizeof *sigs; k++) sigaddset(&dfl, sigs[k]);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, st->argv[0], &fa, &at, st->argv, st->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(sv[1]);
    close(pp[1]);
    if (rc != 0) {
        snprintf(err, errlen, "external: cannot start '%s': %s", st->argv[0], strerror(rc));
        close(sv[0]);
        close(pp[0]);
        return -1;
    }
    st->pid = pid;
    st->to_fd = sv[0];
    st->from_fd = pp[0];
    st->rlen = 0;
    fcntl(st->from_fd, F_SETFL, fcntl(st->from_fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

/* ---- replies ---------------------------------------------------------------------- */

/* Reads one reply line. Returns 0 (item scored: *score, *status, *info set) or -1 when
 * the line is not a reply at all (the stream is out of step; *reason says why). */
static int ext_reply(const char *line, size_t n, uint64_t id, double *score, int *status,
                     cJSON **info, const char **reason) {
    *score = 0.0;
    *status = RLVR_STATUS_ERROR;
    *info = NULL;
    cJSON *r = cJSON_ParseWithLength(line, n);
    if (!r || !cJSON_IsObject(r)) {
        cJSON_Delete(r);
        *reason = "reply is not a JSON object";
        return -1;
    }
    const cJSON *jid = cJSON_GetObjectItemCaseSensitive(r, "id");
    if (jid && !(cJSON_IsNumber(jid) && jid->valuedouble == (double)id)) {
        cJSON_Delete(r);
        *reason = "reply carries the wrong \"id\"";
        return -1;
    }
    const cJSON *ji = cJSON_GetObjectItemCaseSensitive(r, "info");
    *info = ji && cJSON_IsObject(ji) ? cJSON_Duplicate(ji, 1) : cJSON_CreateObject();
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(r, "status");
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(r, "score");
    const char *why = NULL;
    int s = RLVR_STATUS_OK;
    if (js && !cJSON_IsString(js)) why = "\"status\" is not a string";
    else if (js && !strcmp(js->valuestring, "abstain")) s = RLVR_STATUS_ABSTAIN;
    else if (js && !strcmp(js->valuestring, "error")) s = RLVR_STATUS_ERROR;
    else if (js && !strcmp(js->valuestring, "timeout")) s = RLVR_STATUS_TIMEOUT;
    else if (js && strcmp(js->valuestring, "ok"))
        why = "\"status\" is not one of \"ok\", \"abstain\", \"error\"";
    if (!why && s == RLVR_STATUS_OK) {
        if (!jv || !cJSON_IsNumber(jv) || !isfinite(jv->valuedouble))
            why = "\"score\" is missing or not a finite number";
        else
            *score = jv->valuedouble;
    }
    *status = why ? RLVR_STATUS_ERROR : s;
    if (why && *info) cJSON_AddStringToObject(*info, "reason", why);
    cJSON_Delete(r);
    return 0;
}

/* ---- init / destroy ------------------------------------------------------------- */

static int on_path(const char *name) {
    if (strchr(name, '/')) return access(name, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    char buf[4096];
    for (const char *p = path;;) {
        const char *c = strchr(p, ':');
        size_t L = c ? (size_t)(c - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)L, L ? p : ".", name);
        if (access(buf, X_OK) == 0) return 1;
        if (!c) return 0;
        p = c + 1;
    }
}

static void ext_destroy(void *s) {
    ext_state *st = s;
    if (!st) return;
    ext_stop(st, 1.0, NULL);
    for (char **a = st->argv; a && *a; a++) free(*a);
    free(st->argv);
    for (char **e = st->envp; e && *e; e++) free(*e);
    free(st->envp);
    free(st->rbuf);
    free(st);
}

static int ext_fail(ext_state *st, cJSON *cfg) {
    ext_destroy(st);
    cJSON_Delete(cfg);
    return -1;
}

static int ext_init(const rlvr_host *host, const char *config, void **state, char *err,
                    size_t errlen) {
    cJSON *cfg = bu_config("external", config, err, errlen);
    if (!cfg) return -1;
    static const char *const keys[] = {"command", "timeout_s", "env", "max_reply_kb", NULL};
    ext_state *st = calloc(1, sizeof *st);
    if (!st) return ext_fail(st, cfg);
    st->host = host;
    st->to_fd = st->from_fd = -1;
    double kb = 0;
    if (bu_known_keys("external", cfg, keys, err, errlen) ||
        bu_get_num("external", cfg, "timeout_s", 30, 0.01, 86400, &st->timeout_s, err,
                   errlen) ||
        bu_get_num("external", cfg, "max_reply_kb", 1024, 1, 1 << 20, &kb, err, errlen))
        return ext_fail(st, cfg);
    st->max_reply = (size_t)kb * 1024;
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(cfg, "command");
    int argc = cmd && cJSON_IsArray(cmd) ? cJSON_GetArraySize(cmd) : 0;
    int ok = argc > 0;
    for (const cJSON *a = ok ? cmd->child : NULL; a; a = a->next)
        if (!cJSON_IsString(a) || (a == cmd->child && !a->valuestring[0])) ok = 0;
    if (!ok) {
        char *t = cmd ? cJSON_PrintUnformatted(cmd) : NULL;
        snprintf(err, errlen, "external: config field 'command' = %s: expected a non-empty "
                              "array of strings, e.g. [\"python3\", \"my_reward.py\"]",
                 t ? t : "(missing)");
        free(t);
        return ext_fail(st, cfg);
    }
    st->argv = calloc((size_t)argc + 1, sizeof *st->argv);
    if (!st->argv) return ext_fail(st, cfg);
    int k = 0;
    for (const cJSON *a = cmd->child; a; a = a->next)
        if (!(st->argv[k++] = strdup(a->valuestring))) return ext_fail(st, cfg);
    if (!on_path(st->argv[0])) {
        snprintf(err, errlen, "external: config field 'command' [0] = \"%s\": not an "
                              "executable file (nor found on PATH)",
                 st->argv[0]);
        return ext_fail(st, cfg);
    }
    /* Environment: inherited, with env's keys replaced, plus PYTHONUNBUFFERED=1. */
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(cfg, "env");
    if (env && !cJSON_IsObject(env)) {
        snprintf(err, errlen, "external: config field 'env': expected an object of strings");
        return ext_fail(st, cfg);
    }
    for (const cJSON *e = env ? env->child : NULL; e; e = e->next)
        if (!cJSON_IsString(e) || !e->string[0] || strchr(e->string, '=')) {
            snprintf(err, errlen, "external: config field 'env' key '%s': expected a name "
                                  "without '=' and a string value", e->string);
            return ext_fail(st, cfg);
        }
    size_t n_env = 0;
    for (char **e = environ; e && *e; e++) n_env++;
    st->envp = calloc(n_env + (size_t)cJSON_GetArraySize(env) + 2, sizeof *st->envp);
    if (!st->envp) return ext_fail(st, cfg);
    size_t m = 0;
    int have_unbuf = 0;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t L = eq ? (size_t)(eq - *e) : strlen(*e);
        int replaced = 0;
        for (const cJSON *x = env ? env->child : NULL; x && !replaced; x = x->next)
            replaced = strlen(x->string) == L && !strncmp(x->string, *e, L);
        if (replaced) continue;
        if (L == 16 && !strncmp(*e, "PYTHONUNBUFFERED", 16)) have_unbuf = 1;
        if (!(st->envp[m++] = strdup(*e))) return ext_fail(st, cfg);
    }
    for (const cJSON *x = env ? env->child : NULL; x; x = x->next) {
        if (!strcmp(x->string, "PYTHONUNBUFFERED")) have_unbuf = 1;
        size_t L = strlen(x->string) + strlen(x->valuestring) + 2;
        if (!(st->envp[m] = malloc(L))) return ext_fail(st, cfg);
        snprintf(st->envp[m++], L, "%s=%s", x->string, x->valuestring);
    }
    if (!have_unbuf && !(st->envp[m++] = strdup("PYTHONUNBUFFERED=1")))
        return ext_fail(st, cfg);
    cJSON_Delete(cfg);
    *state = st;
    return 0;
}

/* ---- scoring ---------------------------------------------------------------------- */

/* The request lines of a batch; ids[i] the id of item i. */
static void build_requests(ext_state *st, const rlvr_batch *b, sbuf *req, uint64_t *ids) {
    char num[160];
    for (size_t i = 0; i < b->n_items; i++) {
        const rlvr_item *it = &b->items[i];
        ids[i] = st->next_id++;
        snprintf(num, sizeof num, "{\"id\":%llu,\"index\":%zu,\"step\":%lld,\"seed\":%llu,"
                                  "\"group_id\":%lld,\"prompt\":",
                 (unsigned long long)ids[i], i, (long long)b->step,
                 (unsigned long long)b->seed, (long long)it->group_id);
        sb_str(req, num);
        sb_json_str(req, it->prompt, it->prompt_len);
        sb_str(req, ",\"completion\":");
        sb_json_str(req, it->completion, it->completion_len);
        sb_str(req, ",\"answer\":");
        sb_json_str(req, it->answer, it->answer_len);
        sb_str(req, ",\"extra\":");
        /* The host's extra JSON, re-printed so the line is valid JSON whatever it holds. */
        cJSON *ex = it->extra_json ? cJSON_Parse(it->extra_json) : NULL;
        if (ex && cJSON_IsObject(ex)) {
            size_t at = req->len;
            char *t = cJSON_PrintUnformatted(ex);
            if (t) {
                /* cJSON prints string bytes verbatim: replace invalid UTF-8 with '?'. */
                sb_str(req, t);
                for (size_t k = at; !req->oom && k < req->len;) {
                    size_t L = utf8_len((unsigned char *)req->p + k, req->len - k);
                    if (!L) req->p[k++] = '?';
                    else k += L;
                }
                free(t);
            } else {
                req->oom = 1;
            }
        } else {
            sb_str(req, "{}");
        }
        cJSON_Delete(ex);
        sb_str(req, "}\n");
    }
}

static void mark_rest(rlvr_out *out, size_t from, size_t n, int status, const char *why) {
    for (size_t i = from; i < n; i++) {
        out->status[i] = status;
        out->scores[i] = 0.0;
        cJSON *info = cJSON_CreateObject();
        if (info) cJSON_AddStringToObject(info, "reason", why);
        bu_set_info(out, i, info);
    }
}

static int ext_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    ext_state *st = state;
    const size_t n = b->n_items;
    if (n == 0) return 0;
    /* Output nobody asked for since the last batch means the stream is out of step. */
    if (st->pid > 0) {
        char c;
        ssize_t r = read(st->from_fd, &c, 1);
        if (r >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            ext_stop(st, 0.0, NULL);
            ext_log(st, RLVR_LOG_WARN, "external: the process wrote unrequested output or "
                                       "exited between batches; restarted");
        }
    }
    if (st->pid <= 0 && ext_start(st, out->err, out->errlen)) return -1;
    uint64_t *ids = malloc(n * sizeof *ids);
    sbuf req = {0};
    if (!ids) return -1;
    build_requests(st, b, &req, ids);
    if (req.oom) {
        free(ids);
        free(req.p);
        snprintf(out->err, out->errlen, "external: out of memory building the requests");
        return -1;
    }
    const double t0 = now_s();
    const double hard = b->time_budget_s > 0 ? t0 + b->time_budget_s : INFINITY;
    double item_deadline = t0 + st->timeout_s;
    size_t wpos = 0, answered = 0;
    const char *fail = NULL; /* why the process was stopped */
    int fail_status = RLVR_STATUS_ERROR;
    while (answered < n && !fail) {
        double now = now_s(), until = item_deadline < hard ? item_deadline : hard;
        if (now >= until) {
            fail = "no answer before the deadline (timeout_s or the host's batch budget); "
                   "process killed";
            fail_status = RLVR_STATUS_TIMEOUT;
            break;
        }
        struct pollfd pf[2] = {{st->from_fd, POLLIN, 0}, {st->to_fd, POLLOUT, 0}};
        int nfd = wpos < req.len ? 2 : 1;
        double ms = (until - now) * 1000.0 + 1.0;
        int pr = poll(pf, (nfds_t)nfd, ms > 60000 ? 60000 : (int)ms);
        if (pr < 0 && errno != EINTR) {
            fail = "poll failed";
            break;
        }
        if (pr <= 0) continue;
        if (nfd == 2 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(st->to_fd, req.p + wpos, req.len - wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) wpos += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                wpos = req.len; /* stdin closed: read what it still says, then EOF */
        }
        if (pf[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            if (st->rcap - st->rlen < 65536) {
                size_t cap = st->rcap ? st->rcap * 2 : 131072;
                char *p = realloc(st->rbuf, cap);
                if (!p) {
                    fail = "out of memory reading replies";
                    break;
                }
                st->rbuf = p;
                st->rcap = cap;
            }
            ssize_t r = read(st->from_fd, st->rbuf + st->rlen, st->rcap - st->rlen);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                fail = "the process exited";
            } else if (r > 0) {
                st->rlen += (size_t)r;
            }
        }
        /* Whole lines → replies, in order. */
        size_t pos = 0;
        while (answered < n && pos < st->rlen) {
            char *nl = memchr(st->rbuf + pos, '\n', st->rlen - pos);
            if (!nl) break;
            size_t L = (size_t)(nl - (st->rbuf + pos));
            const char *line = st->rbuf + pos;
            pos += L + 1;
            size_t k = 0;
            while (k < L && (line[k] == ' ' || line[k] == '\t' || line[k] == '\r')) k++;
            if (k == L) continue; /* blank line */
            if (L > st->max_reply) {
                mark_rest(out, answered, answered + 1, RLVR_STATUS_ERROR,
                          "reply line longer than max_reply_kb");
                answered++;
                fail = "the process was stopped after an over-long reply";
                break;
            }
            double sc;
            int stt;
            cJSON *info = NULL;
            const char *why = NULL;
            if (ext_reply(line, L, ids[answered], &sc, &stt, &info, &why)) {
                cJSON *bi = cJSON_CreateObject();
                if (bi) {
                    cJSON_AddStringToObject(bi, "reason", why);
                    bu_add_str(bi, "reply", line, L, 200);
                }
                out->scores[answered] = 0.0;
                out->status[answered] = RLVR_STATUS_ERROR;
                bu_set_info(out, answered, bi);
                answered++;
                fail = "the process was stopped after a malformed reply";
                break;
            }
            out->scores[answered] = sc;
            out->status[answered] = stt;
            bu_set_info(out, answered, info);
            answered++;
            item_deadline = now_s() + st->timeout_s;
        }
        if (pos > 0) {
            memmove(st->rbuf, st->rbuf + pos, st->rlen - pos);
            st->rlen -= pos;
        }
        if (!fail && st->rlen > st->max_reply) {
            mark_rest(out, answered, answered + 1, RLVR_STATUS_ERROR,
                      "reply line longer than max_reply_kb");
            answered++;
            fail = "the process was stopped after an over-long reply";
        }
        if (!fail && answered == n && st->rlen > 0)
            fail = "the process wrote more lines than it was asked for; process stopped";
    }
    free(ids);
    free(req.p);
    if (fail) {
        int ws = 0, exited = !strcmp(fail, "the process exited");
        ext_stop(st, exited ? 1.0 : 0.0, &ws);
        char why[256], msg[512];
        if (exited) {
            char death[160];
            describe_status(ws, death, sizeof death);
            snprintf(why, sizeof why, "the process %s before answering", death);
        } else {
            snprintf(why, sizeof why, "%s", fail);
        }
        mark_rest(out, answered, n, exited ? RLVR_STATUS_ERROR : fail_status, why);
        snprintf(msg, sizeof msg, "external '%s': %s; %zu of %zu items answered (restarted "
                                  "at the next batch)",
                 st->argv[0], why, answered, n);
        ext_log(st, RLVR_LOG_ERROR, msg);
    }
    return 0;
}

const rlvr_reward_desc *rlvr_builtin_external(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "external",
        .version = "1.0",
        .description = "a long-lived subprocess scoring items over JSON lines (any language)",
        .flags = 0,
        .init = ext_init,
        .score = ext_score,
        .destroy = ext_destroy,
    };
    return &d;
}
