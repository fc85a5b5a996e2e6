/*
 * engine/train/sft.c — supervised fine-tuning over the model API (see sft.h): a seeded
 * example order, greedy packing into batches of at most batch_tokens tokens, the
 * completion-only loss and its gradient d(loss)/d(logp[t]) = −1/N at every target
 * position, AdamW with warm-up + cosine.
 */
#include "engine/train/sft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

sft_config sft_default_config(void) {
    sft_config c;
    memset(&c, 0, sizeof c);
    c.steps = 0;
    c.epochs = 1;
    c.batch_tokens = 4096;
    c.lr = 1e-3f;
    c.min_lr_ratio = 0.1f;
    c.warmup_steps = 10;
    c.seed = 0;
    c.report_every = 10;
    c.optim = optim_default_config();
    c.optim.weight_decay = 0.01f;
    return c;
}

float sft_lr_at(const sft_config *cfg, int step, int total) {
    if (step < cfg->warmup_steps) return cfg->lr * (float)(step + 1) / (float)cfg->warmup_steps;
    int span = total - cfg->warmup_steps - 1;
    double p = span > 0 ? (double)(step - cfg->warmup_steps) / span : 1.0;
    if (p > 1.0) p = 1.0;
    double r = cfg->min_lr_ratio + (1.0 - cfg->min_lr_ratio) * 0.5 * (1.0 + cos(M_PI * p));
    return (float)(cfg->lr * r);
}

/* ---------------------------------------------------------------------------------- */
/* Example order and packing                                                           */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    const sft_example *ex;
    int n, batch_tokens;
    uint64_t seed;
    int *order; /* [n] the current epoch's order */
    int epoch, pos;
} sft_packer;

static void packer_shuffle(sft_packer *p) {
    uint64_t s = p->seed * 0x9E3779B97F4A7C15ull + (uint64_t)p->epoch;
    for (int i = 0; i < p->n; i++)
        p->order[i] = i;
    for (int i = p->n - 1; i > 0; i--) {
        int j = (int)(splitmix64(&s) % (uint64_t)(i + 1));
        int t = p->order[i];
        p->order[i] = p->order[j];
        p->order[j] = t;
    }
}

static int packer_init(sft_packer *p, const sft_example *ex, int n, int batch_tokens,
                       uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->ex = ex;
    p->n = n;
    p->batch_tokens = batch_tokens;
    p->seed = seed;
    p->order = malloc((size_t)n * sizeof *p->order);
    if (!p->order) return -1;
    packer_shuffle(p);
    return 0;
}

/* The next batch: example indices into idx[] (capacity n), their count returned.
 * Examples are taken while they fit; an epoch ends a batch only when the data ends
 * (max_epochs > 0 and reached: returns what is there, 0 when nothing is left). */
static int packer_next(sft_packer *p, int max_epochs, int *idx) {
    int k = 0, T = 0;
    for (;;) {
        if (p->pos == p->n) {
            if (max_epochs > 0 && p->epoch + 1 >= max_epochs) {
                p->pos = p->n;
                if (k == 0) p->epoch = max_epochs; /* exhausted */
                return k;
            }
            p->epoch++;
            p->pos = 0;
            packer_shuffle(p);
        }
        const sft_example *e = &p->ex[p->order[p->pos]];
        if (k > 0 && T + e->n > p->batch_tokens) return k;
        idx[k++] = p->order[p->pos++];
        T += e->n;
        if (k == p->n) return k; /* every example once per batch at most */
    }
}

/* ---------------------------------------------------------------------------------- */

int sft_plan(const model *m, const sft_example *ex, int n, const sft_config *cfg,
             int *total_steps, char *err, size_t errlen) {
    if (n < 1) {
        snprintf(err, errlen, "sft: no examples");
        return -1;
    }
    if (cfg->batch_tokens < 2 || cfg->steps < 0 || (cfg->steps == 0 && cfg->epochs < 1) ||
        !(cfg->lr > 0) || cfg->warmup_steps < 0 || cfg->min_lr_ratio < 0 ||
        cfg->min_lr_ratio > 1) {
        snprintf(err, errlen,
                 "sft: bad configuration (batch_tokens %d >= 2, steps %d >= 0, epochs %d >= 1 "
                 "when steps is 0, lr %g > 0, warmup_steps %d >= 0, min_lr_ratio %g in [0, 1] "
                 "expected)",
                 cfg->batch_tokens, cfg->steps, cfg->epochs, (double)cfg->lr, cfg->warmup_steps,
                 (double)cfg->min_lr_ratio);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const sft_example *e = &ex[i];
        if (!e->ids || e->n < 2 || e->n_prompt < 1 || e->n_prompt >= e->n) {
            snprintf(err, errlen,
                     "sft: example %d has %d tokens with %d prompt tokens; expected at least "
                     "one prompt token and at least one completion token",
                     i, e->n, e->n_prompt);
            return -1;
        }
        if (e->n > cfg->batch_tokens) {
            snprintf(err, errlen,
                     "sft: example %d has %d tokens, more than batch_tokens %d; raise "
                     "batch_tokens or shorten the example",
                     i, e->n, cfg->batch_tokens);
            return -1;
        }
        for (int t = 0; t < e->n; t++)
            if (e->ids[t] < 0 || e->ids[t] >= m->cfg.vocab_size) {
                snprintf(err, errlen,
                         "sft: example %d token %d is id %d; the model's vocabulary is 0..%d",
                         i, t, e->ids[t], m->cfg.vocab_size - 1);
                return -1;
            }
    }
    if (cfg->steps > 0) {
        *total_steps = cfg->steps;
        return 0;
    }
    sft_packer p;
    int *idx = malloc((size_t)n * sizeof *idx);
    if (!idx || packer_init(&p, ex, n, cfg->batch_tokens, cfg->seed)) {
        free(idx);
        snprintf(err, errlen, "sft: out of memory");
        return -1;
    }
    int steps = 0;
    while (packer_next(&p, cfg->epochs, idx) > 0)
        steps++;
    free(p.order);
    free(idx);
    *total_steps = steps;
    return 0;
}

/* Fills the packed batch for examples idx[0..k) and the loss weights w[T] (−1/N at
 * target positions, 0 elsewhere). Returns T; *n_targets gets N. */
static int build_batch(const sft_example *ex, const int *idx, int k, int32_t *ids,
                       int32_t *offs, float *w, int *n_targets) {
    int T = 0, N = 0;
    offs[0] = 0;
    for (int b = 0; b < k; b++) {
        const sft_example *e = &ex[idx[b]];
        memcpy(ids + T, e->ids, (size_t)e->n * sizeof *ids);
        /* logp[t] = log p(ids[t+1] | ids[..t]): targets ids[n_prompt..n) sit at
         * positions n_prompt-1 .. n-2 */
        for (int t = 0; t < e->n; t++)
            w[T + t] = (t >= e->n_prompt - 1 && t < e->n - 1);
        N += e->n - e->n_prompt;
        T += e->n;
        offs[b + 1] = T;
    }
    for (int t = 0; t < T; t++)
        w[t] = w[t] != 0.0f ? -1.0f / (float)N : 0.0f;
    *n_targets = N;
    return T;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    int32_t *ids, *offs;
    float *w, *lp;
    float *dlogp; /* backend memory [batch_tokens] */
    int *idx;
} sft_bufs;

static void bufs_free(sft_bufs *b, rlvr_backend *be) {
    free(b->ids);
    free(b->offs);
    free(b->w);
    free(b->lp);
    free(b->idx);
    if (b->dlogp) be->free(be, b->dlogp);
}

static int bufs_alloc(sft_bufs *b, rlvr_backend *be, int n, int batch_tokens, int want_grad) {
    memset(b, 0, sizeof *b);
    b->ids = malloc((size_t)batch_tokens * sizeof *b->ids);
    b->offs = malloc(((size_t)n + 1) * sizeof *b->offs);
    b->w = malloc((size_t)batch_tokens * sizeof *b->w);
    b->lp = malloc((size_t)batch_tokens * sizeof *b->lp);
    b->idx = malloc((size_t)n * sizeof *b->idx);
    if (want_grad) b->dlogp = be->alloc(be, (size_t)batch_tokens * sizeof(float));
    return b->ids && b->offs && b->w && b->lp && b->idx && (!want_grad || b->dlogp) ? 0 : -1;
}

/* Forward over examples idx[0..k); the batch loss in *loss. */
static int batch_forward(model *m, const sft_example *ex, sft_bufs *b, int k, int with_backward,
                         double *loss, int *T_out, char *err, size_t errlen) {
    int N;
    int T = build_batch(ex, b->idx, k, b->ids, b->offs, b->w, &N);
    model_batch mb = {.T = T, .B = k, .ids = b->ids, .offsets = b->offs};
    if (model_forward(m, &mb, 1.0f, with_backward, err, errlen)) return -1;
    m->be->to_host(m->be, b->lp, model_logp(m), (size_t)T * sizeof(float));
    double s = 0;
    for (int t = 0; t < T; t++)
        s += (double)b->w[t] * b->lp[t];
    *loss = s;
    *T_out = T;
    return 0;
}

int sft_train(model *m, const sft_example *ex, int n, const sft_config *cfg,
              sft_report_fn report, void *ctx, sft_result *res, char *err, size_t errlen) {
    int total;
    memset(res, 0, sizeof *res);
    if (sft_plan(m, ex, n, cfg, &total, err, errlen)) return -1;
    if (!m->grads && model_enable_grads(m, err, errlen)) return -1;
    rlvr_backend *be = m->be;
    optimizer opt;
    if (optim_create(&opt, m, &cfg->optim, err, errlen)) return -1;
    sft_bufs b;
    sft_packer p;
    int rc = -1;
    p.order = NULL;
    if (bufs_alloc(&b, be, n, cfg->batch_tokens, 1) ||
        packer_init(&p, ex, n, cfg->batch_tokens, cfg->seed)) {
        snprintf(err, errlen, "sft: out of memory for batches of %d tokens", cfg->batch_tokens);
        goto done;
    }
    double t0 = now_s(), loss_sum = 0;
    int since = 0;
    int max_epochs = cfg->steps > 0 ? 0 : cfg->epochs;
    for (int step = 0; step < total; step++) {
        int k = packer_next(&p, max_epochs, b.idx);
        if (k <= 0) break;
        double loss, gnorm;
        int T;
        float lr = sft_lr_at(cfg, step, total);
        model_zero_grads(m);
        if (batch_forward(m, ex, &b, k, 1, &loss, &T, err, errlen)) goto done;
        be->to_device(be, b.dlogp, b.w, (size_t)T * sizeof(float));
        if (model_backward(m, b.dlogp, NULL, err, errlen) ||
            optim_step(&opt, m, lr, 1.0f, &gnorm, err, errlen)) {
            char inner[1024];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, errlen, "sft: step %d: %s", step + 1, inner);
            goto done;
        }
        if (step == 0) res->first_loss = loss;
        res->last_loss = loss;
        res->steps = step + 1;
        res->tokens += T;
        loss_sum += loss;
        since++;
        if (report && (since == cfg->report_every || step + 1 == total)) {
            sft_progress pr = {.step = step + 1,
                               .total_steps = total,
                               .epoch = p.epoch,
                               .loss = loss,
                               .loss_avg = loss_sum / since,
                               .grad_norm = gnorm,
                               .lr = lr,
                               .tokens = res->tokens,
                               .elapsed_s = now_s() - t0};
            loss_sum = 0;
            since = 0;
            if (report(ctx, &pr)) break;
        }
    }
    res->elapsed_s = now_s() - t0;
    rc = 0;
done:
    free(p.order);
    bufs_free(&b, be);
    optim_free(&opt, m);
    return rc;
}

int sft_eval_loss(model *m, const sft_example *ex, int n, int batch_tokens, double *loss,
                  char *err, size_t errlen) {
    sft_config cfg = sft_default_config();
    cfg.batch_tokens = batch_tokens;
    cfg.steps = 1; /* skip the epoch plan; only the example checks matter here */
    int total;
    if (sft_plan(m, ex, n, &cfg, &total, err, errlen)) return -1;
    sft_bufs b;
    if (bufs_alloc(&b, m->be, n, batch_tokens, 0)) {
        bufs_free(&b, m->be);
        snprintf(err, errlen, "sft: out of memory for batches of %d tokens", batch_tokens);
        return -1;
    }
    double sum = 0;
    long targets = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0;) {
        int k = 0, T = 0, N = 0;
        while (i < n && (k == 0 || T + ex[i].n <= batch_tokens)) {
            b.idx[k++] = i;
            T += ex[i].n;
            N += ex[i].n - ex[i].n_prompt;
            i++;
        }
        double l;
        rc = batch_forward(m, ex, &b, k, 0, &l, &T, err, errlen);
        sum += l * N;
        targets += N;
    }
    bufs_free(&b, m->be);
    if (rc == 0) *loss = sum / (double)targets;
    return rc;
}
