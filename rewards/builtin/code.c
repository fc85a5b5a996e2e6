/*
 * rewards/builtin/code.c — the `code` reward: runs the completion's program (the last
 * fenced ``` block, else the whole completion) in the host's sandbox (rlvr_host.exec)
 * against the row's tests and scores the fraction passed (or all-or-nothing).
 *
 * Tests (extra JSON of the row), both kinds users bring:
 *  - stdin/stdout: "tests": [{"input": "...", "output": "..."}], or APPS/TACO style
 *    "input_output": {"inputs": [...], "outputs": [...]} (object or JSON string). One run
 *    per test; outputs compared in the parent, line by line with trailing whitespace and
 *    trailing blank lines ignored.
 *  - assert style (Python): "test_list": ["assert f(1) == 2", ...] (MBPP), "test_code":
 *    "...", or "test" + "entry_point" (HumanEval: check(entry_point) is appended). The
 *    program and a harness are fed to `python3 -I -` on stdin (so no file holds the
 *    secret); after the program, the harness runs each test and prints a line carrying a
 *    random 128-bit token per test passed. Passing is read from those token lines only —
 *    never from the exit code, and never from text such as "PASSED" the program prints.
 *    The harness keeps private references to exec/compile taken before the program runs.
 * No tests in the row → ABSTAIN. A sandbox failure → ERROR (infrastructure, not wrong).
 *
 * Config: {"interpreter": "/usr/bin/python3", "mode": "fraction"|"all", "timeout_s": 5,
 *          "mem_mb": 1024, "max_output_kb": 1024, "max_procs": 32}
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rewards/builtin/builtin_util.h"
#include "rewards/builtin/builtins.h"

typedef struct {
    const rlvr_host *host;
    char interpreter[512];
    int all_or_nothing;
    double timeout_s;
    double mem_mb, max_output_kb, max_procs;
} code_state;

static const char *k_verdicts[] = {"passed",       "wrong answer", "runtime error",
                                   "time limit",   "memory limit", "output limit",
                                   "sandbox error"};
enum { V_PASS, V_WRONG, V_RE, V_TLE, V_MLE, V_OLE, V_SBX };

static int code_init(const rlvr_host *host, const char *config, void **state, char *err,
                     size_t errlen) {
    cJSON *cfg = bu_config("code", config, err, errlen);
    if (!cfg) return -1;
    static const char *const keys[] = {"interpreter", "mode",      "timeout_s", "mem_mb",
                                       "max_output_kb", "max_procs", NULL};
    code_state *st = calloc(1, sizeof *st);
    const char *interp = NULL, *mode = NULL;
    int rc = -1;
    if (st && !bu_known_keys("code", cfg, keys, err, errlen) &&
        !bu_get_str("code", cfg, "interpreter", "/usr/bin/python3", &interp, err, errlen) &&
        !bu_get_str("code", cfg, "mode", "fraction", &mode, err, errlen) &&
        !bu_get_num("code", cfg, "timeout_s", 5, 0.05, 3600, &st->timeout_s, err, errlen) &&
        !bu_get_num("code", cfg, "mem_mb", 1024, 16, 1 << 20, &st->mem_mb, err, errlen) &&
        !bu_get_num("code", cfg, "max_output_kb", 1024, 1, 1 << 20, &st->max_output_kb, err,
                    errlen) &&
        !bu_get_num("code", cfg, "max_procs", 32, 1, 4096, &st->max_procs, err, errlen)) {
        rc = 0;
        if (!strcmp(mode, "all")) st->all_or_nothing = 1;
        else if (strcmp(mode, "fraction")) {
            snprintf(err, errlen, "code: config field 'mode' = \"%s\": expected \"fraction\" "
                     "or \"all\"", mode);
            rc = -1;
        }
        if (!rc && (interp[0] != '/' || access(interp, X_OK) != 0)) {
            snprintf(err, errlen, "code: config field 'interpreter' = \"%s\": expected an "
                     "absolute path of an executable", interp);
            rc = -1;
        }
        if (!rc && (!host || host->struct_size < sizeof(rlvr_host) || !host->exec)) {
            snprintf(err, errlen, "code: the host offers no sandbox (rlvr_host.exec)");
            rc = -1;
        }
        if (!rc) snprintf(st->interpreter, sizeof st->interpreter, "%s", interp);
    }
    cJSON_Delete(cfg);
    if (rc) {
        free(st);
        return -1;
    }
    st->host = host;
    *state = st;
    return 0;
}

static void code_destroy(void *s) { free(s); }

/* The program: the last complete ``` fence, else the whole completion. */
static void extract_program(const char *s, size_t n, size_t *st, size_t *len) {
    size_t opens[2] = {0, 0};
    int have = 0;
    const char *p = s, *end = s + n;
    size_t last_b = 0, last_e = 0;
    while (p < end) {
        const char *q = memmem(p, (size_t)(end - p), "```", 3);
        if (!q) break;
        if (!have) {
            opens[0] = (size_t)(q - s);
            have = 1;
        } else {
            /* body starts after the language tag line */
            const char *b = s + opens[0] + 3;
            const char *nl = memchr(b, '\n', (size_t)(q - b));
            b = nl ? nl + 1 : b;
            last_b = (size_t)(b - s);
            last_e = (size_t)(q - s);
            have = 0;
        }
        p = q + 3;
    }
    (void)opens[1];
    if (last_e > last_b || (last_e == last_b && last_e != 0)) {
        *st = last_b;
        *len = last_e - last_b;
    } else {
        *st = 0;
        *len = n;
    }
}

/* Output equality: per line, trailing whitespace ignored; trailing blank lines too. */
static size_t trimmed_len(const char *s, size_t n) {
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}
static int same_output(const char *a, size_t an, const char *b, size_t bn) {
    an = trimmed_len(a, an);
    bn = trimmed_len(b, bn);
    size_t i = 0, j = 0;
    while (i <= an && j <= bn) {
        size_t ie = i, je = j;
        while (ie < an && a[ie] != '\n') ie++;
        while (je < bn && b[je] != '\n') je++;
        size_t il = ie - i, jl = je - j;
        while (il && (a[i + il - 1] == ' ' || a[i + il - 1] == '\t' || a[i + il - 1] == '\r'))
            il--;
        while (jl && (b[j + jl - 1] == ' ' || b[j + jl - 1] == '\t' || b[j + jl - 1] == '\r'))
            jl--;
        if (il != jl || memcmp(a + i, b + j, il)) return 0;
        if (ie >= an || je >= bn) return ie >= an && je >= bn;
        i = ie + 1;
        j = je + 1;
    }
    return 0;
}

/* First stderr excerpt of a failed run, reported in the item's info. */
static _Thread_local char t_stderr[301];

static void keep_stderr(const rlvr_exec_result *r) {
    if (t_stderr[0] || !r->err || !r->err_len) return;
    size_t n = r->err_len > 300 ? 300 : r->err_len;
    /* the tail says what went wrong */
    memcpy(t_stderr, r->err + r->err_len - n, n);
    t_stderr[n] = 0;
}

static int outcome_verdict(const rlvr_exec_result *r) {
    switch (r->outcome) {
    case RLVR_EXEC_TIMEOUT: return V_TLE;
    case RLVR_EXEC_MEMORY: return V_MLE;
    case RLVR_EXEC_OUTPUT: return V_OLE;
    case RLVR_EXEC_SIGNALED: return V_RE;
    case RLVR_EXEC_SANDBOX_ERROR: return V_SBX;
    default: return r->exit_code == 0 ? V_PASS : V_RE;
    }
}

static void fill_request(const code_state *st, rlvr_exec_request *rq) {
    memset(rq, 0, sizeof *rq);
    rq->struct_size = sizeof *rq;
    rq->wall_s = st->timeout_s;
    rq->cpu_s = st->timeout_s;
    rq->mem_bytes = (uint64_t)(st->mem_mb * 1048576.0);
    rq->fsize_bytes = 16u << 20;
    rq->output_bytes = (uint64_t)(st->max_output_kb * 1024.0);
    rq->max_procs = (uint32_t)st->max_procs;
    rq->max_files = 64;
}

static void random_token(char out[33]) {
    unsigned char b[16] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, b, sizeof b);
        (void)r;
        close(fd);
    }
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

typedef struct {
    char *p;
    size_t len, cap;
} dstr;
static void ds_put(dstr *d, const char *s, size_t n) {
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < d->len + n + 1) cap *= 2;
        char *q = realloc(d->p, cap);
        if (!q) return;
        d->p = q;
        d->cap = cap;
    }
    memcpy(d->p + d->len, s, n);
    d->len += n;
    d->p[d->len] = 0;
}
static void ds_puts(dstr *d, const char *s) { ds_put(d, s, strlen(s)); }
static void ds_hex(dstr *d, const char *s) {
    char h[3];
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        snprintf(h, sizeof h, "%02x", *p);
        ds_put(d, h, 2);
    }
}

/* Runs assert-style tests; fills verdicts[n_tests]. Returns -1 on sandbox error. */
static int run_asserts(const code_state *st, const char *prog, size_t plen,
                       const char *const *tests, int n_tests, int *verdicts, char *iso,
                       size_t isolen, char *msg, size_t msglen) {
    char tok[33], nonce[33];
    random_token(tok);
    random_token(nonce);
    dstr s = {0};
    /* prelude: private references taken before the program can touch builtins */
    ds_puts(&s, "import os as _rlvr_os_");
    ds_puts(&s, nonce);
    ds_puts(&s, "\n_rlvr_exec_");
    ds_puts(&s, nonce);
    ds_puts(&s, " = exec\n_rlvr_compile_");
    ds_puts(&s, nonce);
    ds_puts(&s, " = compile\n_rlvr_write_");
    ds_puts(&s, nonce);
    ds_puts(&s, " = _rlvr_os_");
    ds_puts(&s, nonce);
    ds_puts(&s, ".write\n_rlvr_BaseException_");
    ds_puts(&s, nonce);
    ds_puts(&s, " = BaseException\n_rlvr_fromhex_");
    ds_puts(&s, nonce);
    ds_puts(&s, " = bytes.fromhex\n");
    ds_put(&s, prog, plen);
    ds_puts(&s, "\n\n");
    for (int t = 0; t < n_tests; t++) {
        /* each test in its own try, so one failure does not hide the others */
        char line[1024];
        ds_puts(&s, "try:\n    _rlvr_exec_");
        ds_puts(&s, nonce);
        ds_puts(&s, "(_rlvr_compile_");
        ds_puts(&s, nonce);
        ds_puts(&s, "(_rlvr_fromhex_");
        ds_puts(&s, nonce);
        ds_puts(&s, "('");
        ds_hex(&s, tests[t]);
        snprintf(line, sizeof line, "').decode('utf-8'), '<test %d>', 'exec'), globals())\n"
                 "    _rlvr_write_%s(1, b'\\n%s:%d:ok\\n')\n"
                 "except _rlvr_BaseException_%s:\n"
                 "    _rlvr_write_%s(1, b'\\n%s:%d:fail\\n')\n",
                 t, nonce, tok, t, nonce, nonce, tok, t);
        ds_puts(&s, line);
    }
    if (!s.p) return -1;
    rlvr_exec_request rq;
    fill_request(st, &rq);
    const char *argv[] = {st->interpreter, "-I", "-", NULL};
    rq.argv = argv;
    rq.stdin_data = s.p;
    rq.stdin_len = s.len;
    rlvr_exec_result r = {0};
    r.struct_size = sizeof r;
    int rc = st->host->exec(st->host->ctx, &rq, &r);
    free(s.p);
    snprintf(iso, isolen, "%s", r.isolation);
    if (rc != 0) {
        snprintf(msg, msglen, "%s", r.message);
        st->host->exec_free(st->host->ctx, &r);
        return -1;
    }
    int whole = outcome_verdict(&r);
    if (whole != V_PASS || r.exit_code != 0) keep_stderr(&r);
    for (int t = 0; t < n_tests; t++) {
        char key[64];
        snprintf(key, sizeof key, "\n%s:%d:ok\n", tok, t);
        if (r.out && memmem(r.out, r.out_len, key, strlen(key))) {
            verdicts[t] = V_PASS;
            continue;
        }
        snprintf(key, sizeof key, "\n%s:%d:fail\n", tok, t);
        if (r.out && memmem(r.out, r.out_len, key, strlen(key))) verdicts[t] = V_WRONG;
        else verdicts[t] = whole == V_PASS ? V_WRONG : whole; /* died or exited early */
    }
    st->host->exec_free(st->host->ctx, &r);
    return 0;
}

static int run_stdio(const code_state *st, const char *prog, size_t plen, const char *in,
                     const char *want, int *verdict, char *iso, size_t isolen, char *msg,
                     size_t msglen) {
    rlvr_exec_request rq;
    fill_request(st, &rq);
    const char *names[] = {"main.py"};
    const char *data[] = {prog};
    size_t lens[] = {plen};
    rq.file_names = names;
    rq.file_data = data;
    rq.file_lens = lens;
    rq.n_files = 1;
    int py = strstr(st->interpreter, "python") != NULL;
    const char *argv_py[] = {st->interpreter, "-I", "main.py", NULL};
    const char *argv_other[] = {st->interpreter, "main.py", NULL};
    rq.argv = py ? argv_py : argv_other;
    rq.stdin_data = in;
    rq.stdin_len = strlen(in);
    rlvr_exec_result r = {0};
    r.struct_size = sizeof r;
    int rc = st->host->exec(st->host->ctx, &rq, &r);
    snprintf(iso, isolen, "%s", r.isolation);
    if (rc != 0) {
        snprintf(msg, msglen, "%s", r.message);
        st->host->exec_free(st->host->ctx, &r);
        return -1;
    }
    int v = outcome_verdict(&r);
    if (v == V_PASS && !same_output(r.out, r.out_len, want, strlen(want))) v = V_WRONG;
    if (v != V_PASS) keep_stderr(&r);
    *verdict = v;
    st->host->exec_free(st->host->ctx, &r);
    return 0;
}

#define MAX_TESTS 256

static int code_one(const void *state, const rlvr_item *it, double *score, cJSON *info) {
    const code_state *st = state;
    *score = 0.0;
    cJSON *ex = cJSON_Parse(it->extra_json);
    const char *ins[MAX_TESTS], *outs[MAX_TESTS], *asserts[MAX_TESTS];
    int n_io = 0, n_as = 0;
    cJSON *io_parsed = NULL;
    char *he = NULL;
    if (ex) {
        const cJSON *tests = cJSON_GetObjectItemCaseSensitive(ex, "tests");
        for (const cJSON *t = cJSON_IsArray(tests) ? tests->child : NULL; t && n_io < MAX_TESTS;
             t = t->next) {
            const cJSON *i = cJSON_GetObjectItemCaseSensitive(t, "input");
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(t, "output");
            if (cJSON_IsString(i) && cJSON_IsString(o)) {
                ins[n_io] = i->valuestring;
                outs[n_io++] = o->valuestring;
            }
        }
        const cJSON *io = cJSON_GetObjectItemCaseSensitive(ex, "input_output");
        if (cJSON_IsString(io)) io = io_parsed = cJSON_Parse(io->valuestring);
        if (cJSON_IsObject(io)) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(io, "inputs");
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(io, "outputs");
            const cJSON *x = cJSON_IsArray(a) ? a->child : NULL;
            const cJSON *y = cJSON_IsArray(b) ? b->child : NULL;
            for (; x && y && n_io < MAX_TESTS; x = x->next, y = y->next) {
                if (cJSON_IsString(x) && cJSON_IsString(y)) {
                    ins[n_io] = x->valuestring;
                    outs[n_io++] = y->valuestring;
                }
            }
        }
        const cJSON *tl = cJSON_GetObjectItemCaseSensitive(ex, "test_list");
        for (const cJSON *t = cJSON_IsArray(tl) ? tl->child : NULL; t && n_as < MAX_TESTS;
             t = t->next)
            if (cJSON_IsString(t)) asserts[n_as++] = t->valuestring;
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(ex, "test_code");
        if (cJSON_IsString(tc) && n_as < MAX_TESTS) asserts[n_as++] = tc->valuestring;
        const cJSON *ht = cJSON_GetObjectItemCaseSensitive(ex, "test");
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(ex, "entry_point");
        if (cJSON_IsString(ht) && cJSON_IsString(ep) && n_as < MAX_TESTS) {
            size_t l = strlen(ht->valuestring) + strlen(ep->valuestring) + 16;
            he = malloc(l);
            if (he) {
                snprintf(he, l, "%s\ncheck(%s)\n", ht->valuestring, ep->valuestring);
                asserts[n_as++] = he;
            }
        }
    }
    int status = RLVR_STATUS_OK;
    if (n_io + n_as == 0) {
        cJSON_AddStringToObject(info, "reason", "row has no tests (expected 'tests', "
                                                "'input_output', 'test_list', 'test_code' or "
                                                "'test'+'entry_point')");
        status = RLVR_STATUS_ABSTAIN;
        goto done;
    }
    if (n_as && !strstr(st->interpreter, "python")) {
        cJSON_AddStringToObject(info, "reason", "assert-style tests need a Python interpreter");
        status = RLVR_STATUS_ERROR;
        goto done;
    }
    size_t ps, pl;
    extract_program(it->completion, it->completion_len, &ps, &pl);
    char *prog = malloc(pl + 1);
    if (!prog) {
        status = RLVR_STATUS_ERROR;
        goto done;
    }
    memcpy(prog, it->completion + ps, pl);
    prog[pl] = 0;
    int verdicts[2 * MAX_TESTS];
    t_stderr[0] = 0;
    char iso[128] = "", msg[256] = "";
    int sbx = 0;
    for (int t = 0; t < n_io && !sbx; t++)
        if (run_stdio(st, prog, pl, ins[t], outs[t], &verdicts[t], iso, sizeof iso, msg,
                      sizeof msg))
            sbx = 1;
    if (!sbx && n_as &&
        run_asserts(st, prog, pl, asserts, n_as, verdicts + n_io, iso, sizeof iso, msg,
                    sizeof msg))
        sbx = 1;
    free(prog);
    cJSON_AddStringToObject(info, "isolation", iso);
    if (sbx) {
        cJSON_AddStringToObject(info, "reason", msg);
        status = RLVR_STATUS_ERROR;
        goto done;
    }
    if (t_stderr[0]) bu_add_str(info, "stderr", t_stderr, strlen(t_stderr), 300);
    int n = n_io + n_as, passed = 0;
    cJSON *arr = cJSON_AddArrayToObject(info, "verdicts");
    for (int t = 0; t < n; t++) {
        if (verdicts[t] == V_PASS) passed++;
        cJSON_AddItemToArray(arr, cJSON_CreateString(k_verdicts[verdicts[t]]));
    }
    *score = st->all_or_nothing ? (passed == n ? 1.0 : 0.0) : (double)passed / n;
done:
    free(he);
    cJSON_Delete(io_parsed);
    cJSON_Delete(ex);
    return status;
}

static int code_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    return bu_score_each(state, b, out, code_one);
}

const rlvr_reward_desc *rlvr_builtin_code(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "code",
        .version = "1.0",
        .description = "runs the program against stdin/stdout or assert tests in a sandbox",
        .flags = RLVR_REWARD_THREAD_SAFE,
        .init = code_init,
        .score = code_score,
        .destroy = code_destroy,
    };
    return &d;
}
