/*
 * engine/reward/reward_host.c — the reward host: components (plugin + config + weight +
 * states), a libuv worker-thread pool fed from a FIFO of tasks (one task = one component
 * on a run of whole groups), jobs with deadlines, weighted combination and counters.
 *
 * Locking: one mutex (h->mu) guards the task queue, every job's result and the
 * counters. Workers run plugins without the lock, into task-private buffers, and merge
 * under the lock only if the job is not yet final; a job is freed when its owner has
 * released it and no task (queued or running) refers to it.
 */
#include "engine/reward/reward_host.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "engine/reward/reward_isolated.h"
#include "engine/reward/reward_paths.h"
#include "engine/reward/reward_plugin.h"
#include "engine/reward/sandbox.h"

typedef struct {
    reward_plugin plugin;   /* in-process plugins; for isolated ones only the name */
    char *spec_name;        /* as given (name or path) */
    char *name;             /* descriptor name */
    char *config;           /* config JSON without host keys */
    double weight;
    int isolated;
    uint64_t flags;
    void **states;          /* [n_states]; NULL when isolated */
    int n_states;           /* 1 if thread-safe, else n_workers */
    reward_iso **iso;       /* [n_workers] when isolated */
    reward_counters cnt;
} component;

typedef struct task {
    struct task *next;
    reward_job *job;
    int comp;
    size_t lo, hi;          /* item range [lo, hi) */
} task;

struct reward_job {
    reward_host *h;
    rlvr_item *items;       /* [n] copies */
    char *arena;            /* the copied strings */
    size_t n;
    int64_t step;
    uint64_t seed;
    uint64_t deadline_ns;   /* uv_hrtime clock */
    uv_cond_t cv;
    int pending;            /* tasks queued or running */
    int final;
    int released;           /* owner called reward_job_free */
    uint8_t *filled;        /* [n * n_comp] */
    reward_result res;
};

struct reward_host {
    int n_workers;
    int n_comp;
    component *comp;
    uv_thread_t *threads;
    int n_threads;
    uv_mutex_t mu;
    uv_cond_t cv_task;
    task *q_head, *q_tail;
    int stopping;
    reward_log_fn log;
    void *log_ctx;
    char worker_exe[4096];
    char sandbox_exe[4096];
    uint64_t worker_mem;
    rlvr_host api;
};

typedef struct {
    reward_host *h;
    int idx;
} worker_arg;

/* ---- logging & the plugin-facing host services ---------------------------------- */

static void host_logf(reward_host *h, int level, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (h->log) {
        h->log(h->log_ctx, level, msg);
    } else {
        static const char *lv[] = {"debug", "info", "warning", "error"};
        fprintf(stderr, "rlvr reward %s: %s\n", lv[level < 0 || level > 3 ? 3 : level], msg);
    }
}

static void api_log(void *ctx, int level, const char *msg) {
    host_logf((reward_host *)ctx, level, "%s", msg);
}

static int api_exec(void *ctx, const rlvr_exec_request *req, rlvr_exec_result *res) {
    reward_host *h = ctx;
    return sandbox_exec(h->sandbox_exe, req, res);
}

static void api_exec_free(void *ctx, rlvr_exec_result *res) {
    (void)ctx;
    sandbox_exec_free(res);
}

const char *reward_status_name(int s) {
    switch (s) {
    case RLVR_STATUS_OK: return "ok";
    case RLVR_STATUS_ABSTAIN: return "abstain";
    case RLVR_STATUS_TIMEOUT: return "timeout";
    default: return "error";
    }
}

/* ---- spec parsing --------------------------------------------------------------- */

int reward_spec_parse(const char *text, reward_spec *spec, char **buf, char *err,
                      size_t errlen) {
    memset(spec, 0, sizeof *spec);
    spec->weight = NAN;
    *buf = strdup(text ? text : "");
    if (!*buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *s = *buf;
    char *colon = strstr(s, ":{");
    if (colon) {
        *colon = 0;
        spec->config_json = colon + 1;
    }
    spec->name = s;
    if (!s[0]) {
        snprintf(err, errlen,
                 "reward spec '%s': empty name (expected a built-in name or a .so path, "
                 "optionally followed by ':{json config}')",
                 text ? text : "");
        free(*buf);
        *buf = NULL;
        return -1;
    }
    if (spec->config_json) {
        cJSON *c = cJSON_Parse(spec->config_json);
        int ok = c && cJSON_IsObject(c);
        cJSON_Delete(c);
        if (!ok) {
            snprintf(err, errlen, "reward spec '%s': config '%s' is not a JSON object", text,
                     spec->config_json);
            free(*buf);
            *buf = NULL;
            return -1;
        }
    }
    return 0;
}

/* Splits the host keys (weight, isolation) out of a config. */
static int config_split(const char *who, const reward_spec *sp, component *c, char *err,
                        size_t errlen) {
    cJSON *cfg = cJSON_Parse(sp->config_json ? sp->config_json : "{}");
    if (!cfg || !cJSON_IsObject(cfg)) {
        snprintf(err, errlen, "reward '%s': config '%s' is not a JSON object", who,
                 sp->config_json);
        cJSON_Delete(cfg);
        return -1;
    }
    c->weight = isnan(sp->weight) ? 1.0 : sp->weight;
    cJSON *w = cJSON_GetObjectItemCaseSensitive(cfg, "weight");
    if (w) {
        if (!cJSON_IsNumber(w) || !isfinite(w->valuedouble)) {
            char *t = cJSON_PrintUnformatted(w);
            snprintf(err, errlen, "reward '%s': config field 'weight' = %s: expected a finite "
                     "number", who, t ? t : "?");
            free(t);
            cJSON_Delete(cfg);
            return -1;
        }
        c->weight = w->valuedouble;
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "weight");
    }
    cJSON *iso = cJSON_GetObjectItemCaseSensitive(cfg, "isolation");
    if (iso) {
        const char *v = cJSON_IsString(iso) ? iso->valuestring : NULL;
        if (v && !strcmp(v, "process")) {
            c->isolated = 1;
        } else if (v && !strcmp(v, "thread")) {
            c->isolated = 0;
        } else {
            char *t = cJSON_PrintUnformatted(iso);
            snprintf(err, errlen, "reward '%s': config field 'isolation' = %s: expected "
                     "\"thread\" or \"process\"", who, t ? t : "?");
            free(t);
            cJSON_Delete(cfg);
            return -1;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "isolation");
    }
    c->config = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    if (!c->config) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- workers -------------------------------------------------------------------- */

static void job_finalize(reward_job *j, char *warn, size_t warnlen);
static void job_destroy(reward_job *j);

static void run_task(reward_host *h, int widx, task *t) {
    reward_job *j = t->job;
    component *c = &h->comp[t->comp];
    const size_t n = t->hi - t->lo;
    double *scores = calloc(n ? n : 1, sizeof *scores);
    int32_t *status = calloc(n ? n : 1, sizeof *status);
    char **info = calloc(n ? n : 1, sizeof *info);
    rlvr_batch b = {0};
    b.struct_size = sizeof b;
    b.items = j->items + t->lo;
    b.n_items = n;
    b.step = j->step;
    b.seed = j->seed;
    uint64_t now = uv_hrtime();
    b.time_budget_s = j->deadline_ns > now ? (double)(j->deadline_ns - now) * 1e-9 : 0.0;
    char err[1024] = "";
    uint64_t nonfinite = 0;
    int rc = -1, restarted = 0;
    if (!scores || !status || !info) {
        snprintf(err, sizeof err, "out of memory");
    } else if (c->isolated) {
        rc = reward_iso_score(c->iso[widx], &b, j->deadline_ns, scores, status, info,
                              &nonfinite, &restarted, err, sizeof err);
    } else {
        void *st = c->states[c->n_states == 1 ? 0 : widx];
        rc = reward_plugin_run(&c->plugin, st, &b, scores, status, info, &nonfinite, err,
                               sizeof err);
    }
    double busy = (double)(uv_hrtime() - now) * 1e-9;
    if (rc != 0 && err[0]) host_logf(h, RLVR_LOG_ERROR, "%s", err);

    char warn[512] = "";
    int destroy = 0;
    uv_mutex_lock(&h->mu);
    c->cnt.batches++;
    c->cnt.busy_s += busy;
    c->cnt.nonfinite += nonfinite;
    if (rc != 0) c->cnt.batch_failures++;
    if (restarted) c->cnt.worker_restarts++;
    if (!j->final && scores && status && info) {
        const size_t nc = (size_t)h->n_comp;
        for (size_t i = 0; i < n; i++) {
            size_t k = (t->lo + i) * nc + (size_t)t->comp;
            j->res.scores[k] = scores[i];
            j->res.status[k] = status[i];
            j->res.info[k] = info[i];
            info[i] = NULL;
            j->filled[k] = 1;
        }
    }
    j->pending--;
    if (j->pending == 0 && !j->final) {
        job_finalize(j, warn, sizeof warn);
        /* log before waking the waiters, so a caller that returns from the job has
         * seen its warning (the log callback runs under the host lock) */
        if (warn[0]) host_logf(h, RLVR_LOG_WARN, "%s", warn);
        warn[0] = 0;
        uv_cond_broadcast(&j->cv);
    }
    if (j->pending == 0 && j->released) destroy = 1;
    uv_mutex_unlock(&h->mu);
    if (warn[0]) host_logf(h, RLVR_LOG_WARN, "%s", warn);
    if (info)
        for (size_t i = 0; i < n; i++) free(info[i]);
    free(scores);
    free(status);
    free(info);
    if (destroy) job_destroy(j);
}

static void worker_main(void *arg) {
    worker_arg *wa = arg;
    reward_host *h = wa->h;
    const int idx = wa->idx;
    free(wa);
    for (;;) {
        uv_mutex_lock(&h->mu);
        while (!h->stopping && !h->q_head) uv_cond_wait(&h->cv_task, &h->mu);
        if (!h->q_head) { /* stopping and nothing left */
            uv_mutex_unlock(&h->mu);
            return;
        }
        task *t = h->q_head;
        h->q_head = t->next;
        if (!h->q_head) h->q_tail = NULL;
        reward_job *j = t->job;
        if (j->final || uv_hrtime() >= j->deadline_ns) {
            /* Too late: leave the items as timeouts. */
            char warn[512] = "";
            int destroy = 0;
            j->pending--;
            if (!j->final && j->pending == 0) {
                job_finalize(j, warn, sizeof warn);
                if (warn[0]) host_logf(h, RLVR_LOG_WARN, "%s", warn); /* before the wake-up */
                warn[0] = 0;
                uv_cond_broadcast(&j->cv);
            }
            if (j->pending == 0 && j->released) destroy = 1;
            uv_mutex_unlock(&h->mu);
            if (warn[0]) host_logf(h, RLVR_LOG_WARN, "%s", warn);
            if (destroy) job_destroy(j);
            free(t);
            continue;
        }
        uv_mutex_unlock(&h->mu);
        run_task(h, idx, t);
        free(t);
    }
}

/* ---- host lifecycle ------------------------------------------------------------- */

static void component_free(component *c, int n_workers) {
    if (c->states) {
        for (int i = 0; i < c->n_states; i++)
            if (c->states[i] && c->plugin.desc.destroy) c->plugin.desc.destroy(c->states[i]);
        free(c->states);
    }
    if (c->iso) {
        for (int i = 0; i < n_workers; i++) reward_iso_free(c->iso[i]);
        free(c->iso);
    }
    reward_plugin_unload(&c->plugin);
    free(c->spec_name);
    free(c->name);
    free(c->config);
}

static int component_init(reward_host *h, component *c, const reward_spec *sp, char *err,
                          size_t errlen) {
    c->spec_name = strdup(sp->name);
    if (!c->spec_name) return -1;
    if (config_split(sp->name, sp, c, err, errlen)) return -1;
    if (c->isolated) {
        if (!h->worker_exe[0] || access(h->worker_exe, X_OK) != 0) {
            snprintf(err, errlen,
                     "reward '%s': isolation \"process\" needs the worker executable "
                     "rlvr-reward-worker, not found (tried %s; set RLVR_REWARD_WORKER)",
                     sp->name, h->worker_exe);
            return -1;
        }
        /* Probe: start one subprocess now so a bad plugin or config fails here. */
        c->iso = calloc((size_t)h->n_workers, sizeof *c->iso);
        if (!c->iso) return -1;
        reward_iso_opts o = {h->worker_exe, h->sandbox_exe, sp->name, c->config,
                             h->worker_mem};
        for (int i = 0; i < h->n_workers; i++) {
            c->iso[i] = reward_iso_new(&o);
            if (!c->iso[i]) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
        }
        char name[128] = "";
        int restarted = 0;
        if (reward_iso_start(c->iso[0], uv_hrtime() + 30ull * 1000000000ull, &c->flags, name,
                             sizeof name, &restarted, err, errlen))
            return -1;
        c->name = strdup(name);
        return c->name ? 0 : -1;
    }
    if (reward_plugin_load(sp->name, &c->plugin, err, errlen)) return -1;
    c->flags = c->plugin.desc.flags;
    c->name = strdup(c->plugin.desc.name);
    if (!c->name) return -1;
    c->n_states = (c->flags & RLVR_REWARD_THREAD_SAFE) ? 1 : h->n_workers;
    c->states = calloc((size_t)c->n_states, sizeof *c->states);
    if (!c->states) return -1;
    for (int i = 0; i < c->n_states; i++) {
        char perr[1024] = "";
        if (c->plugin.desc.init(&h->api, c->config, &c->states[i], perr, sizeof perr) != 0) {
            perr[sizeof perr - 1] = 0;
            snprintf(err, errlen, "reward '%s' (%s): init failed: %s", c->name, sp->name,
                     perr[0] ? perr : "(no message)");
            c->states[i] = NULL;
            return -1;
        }
    }
    return 0;
}

reward_host *reward_host_create(const reward_spec *specs, int n_specs,
                                const reward_host_opts *opts, char *err, size_t errlen) {
    if (n_specs <= 0) {
        snprintf(err, errlen, "no reward given (expected at least one reward spec)");
        return NULL;
    }
    reward_host *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    reward_host_opts o = {0};
    if (opts) o = *opts;
    h->n_workers = o.n_workers > 0 ? o.n_workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (h->n_workers < 1) h->n_workers = 1;
    h->log = o.log;
    h->log_ctx = o.log_ctx;
    h->worker_mem = o.worker_mem_bytes ? o.worker_mem_bytes : (8ull << 30);
    if (o.worker_exe)
        snprintf(h->worker_exe, sizeof h->worker_exe, "%s", o.worker_exe);
    else
        reward_find_helper("rlvr-reward-worker", h->worker_exe, sizeof h->worker_exe);
    if (o.sandbox_exe)
        snprintf(h->sandbox_exe, sizeof h->sandbox_exe, "%s", o.sandbox_exe);
    else
        reward_find_helper("rlvr-sandbox", h->sandbox_exe, sizeof h->sandbox_exe);
    h->api.struct_size = sizeof h->api;
    h->api.abi_major = RLVR_REWARD_ABI_MAJOR;
    h->api.abi_minor = RLVR_REWARD_ABI_MINOR;
    h->api.ctx = h;
    h->api.log = api_log;
    h->api.exec = api_exec;
    h->api.exec_free = api_exec_free;
    uv_mutex_init(&h->mu);
    uv_cond_init(&h->cv_task);
    h->comp = calloc((size_t)n_specs, sizeof *h->comp);
    if (!h->comp) {
        snprintf(err, errlen, "out of memory");
        reward_host_free(h);
        return NULL;
    }
    for (int i = 0; i < n_specs; i++) {
        h->n_comp = i + 1;
        if (!specs[i].name) {
            snprintf(err, errlen, "reward spec %d has no name", i);
            reward_host_free(h);
            return NULL;
        }
        if (component_init(h, &h->comp[i], &specs[i], err, errlen)) {
            if (!err[0]) snprintf(err, errlen, "reward '%s': out of memory", specs[i].name);
            reward_host_free(h);
            return NULL;
        }
    }
    h->threads = calloc((size_t)h->n_workers, sizeof *h->threads);
    if (!h->threads) {
        reward_host_free(h);
        return NULL;
    }
    for (int i = 0; i < h->n_workers; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->h = h;
        wa->idx = i;
        if (uv_thread_create(&h->threads[i], worker_main, wa) != 0) {
            free(wa);
            snprintf(err, errlen, "cannot start reward worker thread %d", i);
            reward_host_free(h);
            return NULL;
        }
        h->n_threads = i + 1;
    }
    return h;
}

void reward_host_free(reward_host *h) {
    if (!h) return;
    uv_mutex_lock(&h->mu);
    h->stopping = 1;
    uv_cond_broadcast(&h->cv_task);
    uv_mutex_unlock(&h->mu);
    for (int i = 0; i < h->n_threads; i++) uv_thread_join(&h->threads[i]);
    free(h->threads);
    for (int i = 0; i < h->n_comp; i++) component_free(&h->comp[i], h->n_workers);
    free(h->comp);
    uv_cond_destroy(&h->cv_task);
    uv_mutex_destroy(&h->mu);
    free(h);
}

int reward_host_n_rewards(const reward_host *h) { return h->n_comp; }
const char *reward_host_reward_name(const reward_host *h, int r) {
    return r >= 0 && r < h->n_comp ? h->comp[r].name : NULL;
}
double reward_host_reward_weight(const reward_host *h, int r) {
    return r >= 0 && r < h->n_comp ? h->comp[r].weight : NAN;
}

void reward_host_counters(reward_host *h, int r, reward_counters *out) {
    memset(out, 0, sizeof *out);
    if (r < 0 || r >= h->n_comp) return;
    uv_mutex_lock(&h->mu);
    *out = h->comp[r].cnt;
    uv_mutex_unlock(&h->mu);
}

/* ---- jobs ----------------------------------------------------------------------- */

/* Called with h->mu held. Marks unscored items as timeouts, combines, counts. */
static void job_finalize(reward_job *j, char *warn, size_t warnlen) {
    reward_host *h = j->h;
    const size_t nc = (size_t)h->n_comp;
    reward_result *r = &j->res;
    for (size_t k = 0; k < j->n * nc; k++) {
        if (!j->filled[k]) {
            r->status[k] = RLVR_STATUS_TIMEOUT;
            r->scores[k] = 0.0;
        }
    }
    for (size_t i = 0; i < j->n; i++) {
        double tot = 0.0;
        int worst = RLVR_STATUS_OK;
        for (size_t c = 0; c < nc; c++) {
            int s = r->status[i * nc + c];
            if (s == RLVR_STATUS_OK) tot += h->comp[c].weight * r->scores[i * nc + c];
            if (s > worst) worst = s;
        }
        r->total[i] = tot;
        r->item_status[i] = worst;
    }
    size_t used = 0;
    for (size_t c = 0; c < nc; c++) {
        reward_counters *k = &h->comp[c].cnt;
        size_t n_ok = 0;
        int constant = 1;
        double first = 0.0;
        for (size_t i = 0; i < j->n; i++) {
            int s = r->status[i * nc + c];
            k->items++;
            if (s == RLVR_STATUS_OK) {
                k->ok++;
                double v = r->scores[i * nc + c];
                if (n_ok == 0) first = v;
                else if (v != first) constant = 0;
                n_ok++;
            } else if (s == RLVR_STATUS_ABSTAIN) {
                k->abstain++;
            } else if (s == RLVR_STATUS_TIMEOUT) {
                k->timeout++;
            } else {
                k->error++;
            }
        }
        if (n_ok >= 2 && constant) {
            k->constant_batches++;
            if (used < warnlen) {
                int w = snprintf(warn + used, warnlen - used,
                                 "%sreward '%s' gave the same score %g to all %zu scored "
                                 "items of the batch (zero advantage: nothing to learn)",
                                 used ? "; " : "", h->comp[c].name, first, n_ok);
                if (w > 0) used += (size_t)w;
            }
        }
    }
    j->final = 1;
}

static void job_destroy(reward_job *j) {
    if (!j) return;
    if (j->res.info) {
        size_t m = j->n * j->res.n_rewards;
        for (size_t k = 0; k < m; k++) free(j->res.info[k]);
    }
    free(j->res.info);
    free(j->res.total);
    free(j->res.item_status);
    free(j->res.scores);
    free(j->res.status);
    free(j->filled);
    free(j->items);
    free(j->arena);
    uv_cond_destroy(&j->cv);
    free(j);
}

static char *arena_put(char **cur, const char *s, size_t n) {
    char *d = *cur;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    *cur += n + 1;
    return d;
}

reward_job *reward_host_submit(reward_host *h, const rlvr_item *items, size_t n,
                               int64_t step, uint64_t seed, double deadline_s, char *err,
                               size_t errlen) {
    /* Groups must be contiguous: a group id may not reappear after another one. */
    for (size_t i = 1; i < n; i++) {
        if (items[i].group_id == items[i - 1].group_id) continue;
        for (size_t k = 0; k + 1 < i; k++) {
            if (items[k].group_id == items[i].group_id) {
                snprintf(err, errlen,
                         "batch item %zu: group_id %lld also appears at item %zu, separated "
                         "by another group (expected the items of a group to be contiguous)",
                         i, (long long)items[i].group_id, k);
                return NULL;
            }
        }
        if (i > 4096) break; /* bounded check on huge batches */
    }
    if (!(deadline_s > 0)) {
        snprintf(err, errlen, "batch deadline %g s: expected a positive number of seconds",
                 deadline_s);
        return NULL;
    }
    reward_job *j = calloc(1, sizeof *j);
    if (!j) goto oom;
    j->h = h;
    j->n = n;
    j->step = step;
    j->seed = seed;
    j->deadline_ns = uv_hrtime() + (uint64_t)(deadline_s * 1e9);
    uv_cond_init(&j->cv);
    const size_t nc = (size_t)h->n_comp;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const rlvr_item *it = &items[i];
        bytes += it->prompt_len + it->completion_len + it->answer_len + 4 +
                 (it->extra_json ? strlen(it->extra_json) : 2);
    }
    j->items = calloc(n ? n : 1, sizeof *j->items);
    j->arena = malloc(bytes + 1);
    j->filled = calloc(n * nc + 1, 1);
    j->res.n_items = n;
    j->res.n_rewards = nc;
    j->res.total = calloc(n + 1, sizeof(double));
    j->res.item_status = calloc(n + 1, sizeof(int32_t));
    j->res.scores = calloc(n * nc + 1, sizeof(double));
    j->res.status = calloc(n * nc + 1, sizeof(int32_t));
    j->res.info = calloc(n * nc + 1, sizeof(char *));
    if (!j->items || !j->arena || !j->filled || !j->res.total || !j->res.item_status ||
        !j->res.scores || !j->res.status || !j->res.info)
        goto oom;
    char *cur = j->arena;
    for (size_t i = 0; i < n; i++) {
        const rlvr_item *it = &items[i];
        rlvr_item *d = &j->items[i];
        d->prompt = arena_put(&cur, it->prompt ? it->prompt : "", it->prompt ? it->prompt_len : 0);
        d->prompt_len = it->prompt ? it->prompt_len : 0;
        d->completion = arena_put(&cur, it->completion ? it->completion : "",
                                  it->completion ? it->completion_len : 0);
        d->completion_len = it->completion ? it->completion_len : 0;
        d->answer = arena_put(&cur, it->answer ? it->answer : "", it->answer ? it->answer_len : 0);
        d->answer_len = it->answer ? it->answer_len : 0;
        const char *ex = it->extra_json ? it->extra_json : "{}";
        d->extra_json = arena_put(&cur, ex, strlen(ex));
        d->group_id = it->group_id;
    }
    /* Tasks: per component, runs of whole groups of about n / (2 * workers) items. */
    size_t target = n / (size_t)(2 * h->n_workers);
    if (target < 1) target = 1;
    task *head = NULL, *tail = NULL;
    int n_tasks = 0;
    for (int c = 0; c < h->n_comp; c++) {
        size_t lo = 0;
        while (lo < n) {
            size_t hi = lo + target < n ? lo + target : n;
            while (hi < n && items[hi].group_id == items[hi - 1].group_id) hi++;
            task *t = calloc(1, sizeof *t);
            if (!t) {
                while (head) {
                    task *nx = head->next;
                    free(head);
                    head = nx;
                }
                goto oom;
            }
            t->job = j;
            t->comp = c;
            t->lo = lo;
            t->hi = hi;
            if (tail) tail->next = t;
            else head = t;
            tail = t;
            n_tasks++;
            lo = hi;
        }
    }
    uv_mutex_lock(&h->mu);
    j->pending = n_tasks;
    if (n_tasks == 0) {
        char warn[8];
        job_finalize(j, warn, 0);
    } else {
        if (h->q_tail) h->q_tail->next = head;
        else h->q_head = head;
        h->q_tail = tail;
        uv_cond_broadcast(&h->cv_task);
    }
    uv_mutex_unlock(&h->mu);
    return j;
oom:
    snprintf(err, errlen, "out of memory submitting a batch of %zu items", n);
    if (j) {
        j->res.n_rewards = nc;
        job_destroy(j);
    }
    return NULL;
}

int reward_job_done(reward_job *j) {
    reward_host *h = j->h;
    uv_mutex_lock(&h->mu);
    int done = j->final || uv_hrtime() >= j->deadline_ns;
    uv_mutex_unlock(&h->mu);
    return done;
}

const reward_result *reward_job_wait(reward_job *j) {
    reward_host *h = j->h;
    char warn[512] = "";
    uv_mutex_lock(&h->mu);
    while (!j->final) {
        uint64_t now = uv_hrtime();
        if (now >= j->deadline_ns) {
            job_finalize(j, warn, sizeof warn);
            break;
        }
        uv_cond_timedwait(&j->cv, &h->mu, j->deadline_ns - now);
    }
    uv_mutex_unlock(&h->mu);
    if (warn[0]) host_logf(h, RLVR_LOG_WARN, "%s", warn);
    return &j->res;
}

void reward_job_free(reward_job *j) {
    if (!j) return;
    reward_host *h = j->h;
    uv_mutex_lock(&h->mu);
    j->released = 1;
    int destroy = j->pending == 0;
    uv_mutex_unlock(&h->mu);
    if (destroy) job_destroy(j);
}

int reward_host_score(reward_host *h, const rlvr_item *items, size_t n, int64_t step,
                      uint64_t seed, double deadline_s, double *total, int32_t *item_status,
                      char *err, size_t errlen) {
    reward_job *j = reward_host_submit(h, items, n, step, seed, deadline_s, err, errlen);
    if (!j) return -1;
    const reward_result *r = reward_job_wait(j);
    if (total) memcpy(total, r->total, n * sizeof *total);
    if (item_status) memcpy(item_status, r->item_status, n * sizeof *item_status);
    reward_job_free(j);
    return 0;
}
