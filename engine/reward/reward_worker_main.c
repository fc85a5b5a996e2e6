/*
 * engine/reward/reward_worker_main.c — rlvr-reward-worker: the subprocess that runs one
 * reward plugin for `isolation: process`. Reads frames on stdin (INIT, then SCORE...),
 * answers on the original stdout; the plugin's own stdout is redirected to stderr so it
 * cannot corrupt the protocol. Its address space is capped with RLIMIT_AS (--mem) so a
 * runaway allocation fails here instead of on the machine. Exits when stdin closes.
 *
 * usage: rlvr-reward-worker [--mem BYTES] [--sandbox LAUNCHER]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engine/reward/reward_plugin.h"
#include "engine/reward/reward_wire.h"
#include "engine/reward/sandbox.h"

static const char *g_sandbox = "";

static void w_log(void *ctx, int level, const char *msg) {
    (void)ctx;
    static const char *lv[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "rlvr reward worker %s: %s\n", lv[level < 0 || level > 3 ? 3 : level], msg);
}
static int w_exec(void *ctx, const rlvr_exec_request *req, rlvr_exec_result *res) {
    (void)ctx;
    return sandbox_exec(g_sandbox, req, res);
}
static void w_exec_free(void *ctx, rlvr_exec_result *res) {
    (void)ctx;
    sandbox_exec_free(res);
}

static int read_full(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static char *dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

int main(int argc, char **argv) {
    unsigned long long mem = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mem")) mem = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--sandbox")) g_sandbox = argv[i + 1];
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGPIPE, SIG_IGN);
    if (getppid() == 1) return 1; /* parent already gone */
#if !defined(__SANITIZE_ADDRESS__)
    /* (AddressSanitizer reserves terabytes of address space: no cap in such builds.) */
    if (mem) {
        struct rlimit rl = {(rlim_t)mem, (rlim_t)mem};
        setrlimit(RLIMIT_AS, &rl);
    }
#else
    (void)mem;
#endif
    struct rlimit core = {0, 0};
    setrlimit(RLIMIT_CORE, &core);
    int out = dup(1);
    if (out < 0 || dup2(2, 1) < 0) return 1;

    reward_plugin plugin;
    void *state = NULL;
    int loaded = 0;
    rlvr_host host = {0};
    host.struct_size = sizeof host;
    host.abi_major = RLVR_REWARD_ABI_MAJOR;
    host.abi_minor = RLVR_REWARD_ABI_MINOR;
    host.log = w_log;
    host.exec = w_exec;
    host.exec_free = w_exec_free;

    for (;;) {
        uint32_t flen;
        if (read_full(0, &flen, 4)) break;
        if (flen > RW_MAX_FRAME) break;
        char *frame = malloc(flen ? flen : 1);
        if (!frame || read_full(0, frame, flen)) break;
        rw_reader rd = {frame, flen, 0, 0};
        uint32_t type = rr_u32(&rd);
        rw_buf b;
        rw_init(&b);
        rw_u32(&b, 0);
        if (type == RW_MSG_INIT && !loaded) {
            size_t nl, cl;
            const char *nm = rr_str(&rd, &nl);
            const char *cf = rr_str(&rd, &cl);
            char *name = dupn(nm, nl), *cfg = dupn(cf, cl);
            char err[2048] = "";
            int rc = -1;
            if (rd.bad || !name || !cfg) {
                snprintf(err, sizeof err, "reward worker: garbled init frame");
            } else if (reward_plugin_load(name, &plugin, err, sizeof err) == 0) {
                loaded = 1;
                char perr[1024] = "";
                rc = plugin.desc.init(&host, cfg, &state, perr, sizeof perr);
                if (rc != 0) {
                    perr[sizeof perr - 1] = 0;
                    snprintf(err, sizeof err, "reward '%.100s' (%.400s): init failed: %.1000s",
                             plugin.desc.name, name, perr[0] ? perr : "(no message)");
                    state = NULL;
                }
            }
            rw_u32(&b, (uint32_t)rc);
            rw_u64(&b, loaded ? plugin.desc.flags : 0);
            const char *dn = loaded ? plugin.desc.name : "";
            rw_str(&b, dn, strlen(dn));
            rw_str(&b, err, strlen(err));
            free(name);
            free(cfg);
            if (rc != 0) {
                rw_finish_frame(&b);
                write_full(out, b.p, b.len);
                return 1;
            }
        } else if (type == RW_MSG_SCORE && loaded) {
            rlvr_batch bt = {0};
            bt.struct_size = sizeof bt;
            bt.step = (int64_t)rr_u64(&rd);
            bt.seed = rr_u64(&rd);
            bt.time_budget_s = rr_f64(&rd);
            uint64_t n = rr_u64(&rd);
            if (n > flen) rd.bad = 1;
            rlvr_item *items = calloc(n ? n : 1, sizeof *items);
            char **strs = calloc(n * 4 + 1, sizeof *strs);
            for (uint64_t i = 0; i < n && !rd.bad && items && strs; i++) {
                items[i].group_id = (int64_t)rr_u64(&rd);
                size_t l[4];
                const char *s[4];
                for (int k = 0; k < 4; k++) {
                    s[k] = rr_str(&rd, &l[k]);
                    strs[i * 4 + k] = dupn(s[k], l[k]);
                    if (!strs[i * 4 + k]) rd.bad = 1;
                }
                if (rd.bad) break;
                items[i].prompt = strs[i * 4];
                items[i].prompt_len = l[0];
                items[i].completion = strs[i * 4 + 1];
                items[i].completion_len = l[1];
                items[i].answer = strs[i * 4 + 2];
                items[i].answer_len = l[2];
                items[i].extra_json = strs[i * 4 + 3];
            }
            if (rd.bad || !items || !strs) return 1;
            bt.items = items;
            bt.n_items = n;
            double *scores = calloc(n + 1, sizeof *scores);
            int32_t *status = calloc(n + 1, sizeof *status);
            char **info = calloc(n + 1, sizeof *info);
            if (!scores || !status || !info) return 1;
            char err[1024] = "";
            uint64_t nonfinite = 0;
            int rc = reward_plugin_run(&plugin, state, &bt, scores, status, info, &nonfinite,
                                       err, sizeof err);
            rw_u32(&b, (uint32_t)rc);
            rw_str(&b, err, rc ? strlen(err) : 0);
            rw_u64(&b, n);
            rw_u64(&b, nonfinite);
            for (uint64_t i = 0; i < n; i++) {
                rw_f64(&b, scores[i]);
                rw_u32(&b, (uint32_t)status[i]);
                rw_str(&b, info[i] ? info[i] : "", info[i] ? strlen(info[i]) : 0);
                free(info[i]);
            }
            for (uint64_t i = 0; i < n * 4; i++) free(strs[i]);
            free(strs);
            free(items);
            free(scores);
            free(status);
            free(info);
        } else {
            return 1;
        }
        free(frame);
        rw_finish_frame(&b);
        if (b.oom || write_full(out, b.p, b.len)) return 1;
        rw_free(&b);
    }
    if (loaded) {
        if (state && plugin.desc.destroy) plugin.desc.destroy(state);
        reward_plugin_unload(&plugin);
    }
    return 0;
}
