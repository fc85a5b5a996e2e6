/*
 * engine/train/trainer_step.c — one RL step of the trainer (see trainer.h): rollouts
 * and rewards, advantages, the packed batch, reference/old log-probs, the μ epochs of
 * clipped-loss updates over mini-batches and micro-batches, and the step's metrics.
 *
 * Packed layout: the step's completions, sequence i = prompt_i ++ completion_i, end to
 * end (offsets[n+1]). Per-token arrays are indexed by the *predicting* position:
 * entry t belongs to ids[t+1], so completion i's tokens occupy the span
 * [offsets[i] + plen_i − 1, + len_i) (rl_spans_from_packed).
 *
 * Data-parallel (t->world > 1): every rank draws the same P prompts; the step's groups
 * form mini-batches (algorithm.mini_batch_size groups, or all of them) and each rank takes
 * a contiguous share of every mini-batch (dp_layout), so the global batch and its
 * mini-batches are those of one process. What is global by definition is computed on
 * global data: the rewards are all-gathered for the group/batch advantages, REINFORCE++
 * whitens with moments summed over ranks, the loss-aggregation denominators are summed,
 * the gradients are summed before every optimizer step, and the metrics are computed
 * from all-gathered per-completion records and summed per-token counts. PPO: values and
 * GAE per rank (per sequence), advantages whitened over every rank's tokens (dp_whiten),
 * the critic's gradients summed before its (replicated) AdamW step. DAPO dynamic
 * sampling: dp_fill applies the single-process fill to the all-gathered drop flags of
 * each round, so the kept groups are one process's; each rank keeps those it generated
 * (dp_layout_owned). samples.jsonl: log_samples gathers the first groups to rank 0.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rl/advantage.h"
#include "engine/rl/batch_stats.h"
#include "engine/rl/dapo.h"
#include "engine/rl/loss_agg.h"
#include "engine/rl/returns.h"
#include "engine/train/trainer_internal.h"

/* ---- rollouts + rewards for one round ------------------------------------------- */

typedef struct {
    int P, G, n, R;
    int *ex;            /* [P] example indices */
    completion *c;      /* [n] */
    double *scores;     /* [n * R] raw component scores */
    float *reward;      /* [n] weighted total (shaped later) */
    uint8_t *ok;        /* [n] every component OK */
    uint8_t *truncated; /* [n] finish == length */
} rollouts;

static void rollouts_free(rollouts *b) {
    completions_free(b->c, b->n);
    free(b->ex);
    free(b->scores);
    free(b->reward);
    free(b->ok);
    free(b->truncated);
    memset(b, 0, sizeof *b);
}

/* Renders and tokenizes example i once. */
static int prompt_of(trainer *t, int i, prompt_cache **out, char *err, size_t errlen) {
    prompt_cache *pc = &t->cache[i];
    *out = pc;
    if (pc->ids) return 0;
    const data_example *e = dataset_get(t->data, i);
    cJSON *j = cJSON_Parse(e->prompt_json);
    chat_message *msgs = NULL, *all = NULL;
    size_t nm = 0;
    char where[2200];
    snprintf(where, sizeof where, "%s:%ld", dataset_path(t->data), e->line);
    int rc = -1;
    if (!j || chat_messages_from_json(j, where, &msgs, &nm, err, errlen)) goto done;
    const char *sys = t->cfg.template_.system_prompt;
    size_t off = sys && (nm == 0 || strcmp(msgs[0].role, "system") != 0) ? 1 : 0;
    all = calloc(nm + off, sizeof *all);
    if (!all) goto done;
    if (off) all[0] = (chat_message){"system", sys, NULL};
    memcpy(all + off, msgs, nm * sizeof *msgs);
    chat_render_opts o = {.add_generation_prompt = 1,
                          .enable_thinking = t->cfg.template_.enable_thinking};
    size_t len = 0, n = 0;
    if (chat_template_render(t->tpl, all, nm + off, &o, &pc->text, &len, err, errlen) ||
        tok_encode(t->tok, pc->text, len, &pc->ids, &n, err, errlen))
        goto done;
    pc->n = (int)n;
    if (pc->n == 0) {
        snprintf(err, errlen, "%s: the rendered prompt is empty", where);
        goto done;
    }
    rc = 0;
done:
    if (rc) {
        free(pc->ids);
        free(pc->text);
        pc->ids = NULL;
        pc->text = NULL;
    }
    cJSON_Delete(j);
    free(msgs);
    free(all);
    return rc;
}

static sampling_params sampling_of(const trainer *t, long step) {
    const train_config *c = &t->cfg;
    sampling_params p = sampling_params_default();
    p.temperature = (float)c->rollout.temperature;
    p.top_k = c->rollout.top_k;
    p.top_p = (float)c->rollout.top_p;
    p.min_p = (float)c->rollout.min_p;
    p.repetition_penalty = (float)c->rollout.repetition_penalty;
    p.max_new_tokens = c->rollout.max_new_tokens;
    p.stop_ids = c->rollout.stop_ids;
    p.n_stop_ids = c->rollout.n_stop_ids;
    p.eos_ids = t->eos;
    p.n_eos_ids = t->n_eos;
    p.stop_strings = (const char *const *)c->rollout.stop;
    p.n_stop_strings = c->rollout.n_stop;
    p.seed = c->seed;
    p.step = (uint64_t)step;
    return p;
}

/* Generates G completions for P examples and scores them. */
static int rollout_round(trainer *t, const int *ex, int P, long step, rollouts *b,
                         double *t_gen, double *t_score, char *err, size_t errlen) {
    const int G = t->cfg.rollout.G, R = reward_host_n_rewards(t->rewards);
    memset(b, 0, sizeof *b);
    b->P = P;
    b->G = G;
    b->n = P * G;
    b->R = R;
    b->ex = malloc((size_t)P * sizeof(int));
    prompt_ref *refs = malloc((size_t)P * sizeof *refs);
    rlvr_item *items = calloc((size_t)b->n, sizeof *items);
    char **extras = NULL;
    b->scores = calloc((size_t)b->n * R, sizeof(double));
    b->reward = calloc((size_t)b->n, sizeof(float));
    b->ok = calloc((size_t)b->n, 1);
    b->truncated = calloc((size_t)b->n, 1);
    int rc = -1;
    if (!b->ex || !refs || !items || !b->scores || !b->reward || !b->ok || !b->truncated) {
        snprintf(err, errlen, "trainer: out of host memory");
        goto done;
    }
    for (int i = 0; i < P; i++) {
        prompt_cache *pc;
        if (prompt_of(t, ex[i], &pc, err, errlen)) goto done;
        b->ex[i] = ex[i];
        refs[i] = (prompt_ref){pc->ids, pc->n, ex[i]};
    }
    sampling_params sp = sampling_of(t, step);
    double t0 = runlog_mono_time();
    sampler_stats st;
    if (sampler_generate(t->smp, refs, P, G, &sp, &b->c, &st, err, errlen)) goto done;
    *t_gen += runlog_mono_time() - t0;
    t0 = runlog_mono_time();
    double deadline = 1.0;
    for (int r = 0; r < t->cfg.n_rewards; r++)
        if (t->cfg.rewards[r].timeout_s > deadline) deadline = t->cfg.rewards[r].timeout_s;
    extras = calloc((size_t)b->n, sizeof *extras);
    if (!extras) {
        snprintf(err, errlen, "trainer: out of host memory");
        goto done;
    }
    for (int i = 0; i < b->n; i++) {
        const data_example *e = dataset_get(t->data, ex[i / G]);
        const char *prompt = e->prompt ? e->prompt : e->prompt_json;
        const char *text = b->c[i].text ? b->c[i].text : "";
        /* the row's other fields, plus completion_tokens for token-length rewards */
        cJSON *x = cJSON_Parse(e->extra_json);
        if (x && cJSON_IsObject(x) && !cJSON_GetObjectItemCaseSensitive(x, "completion_tokens"))
            cJSON_AddNumberToObject(x, "completion_tokens", b->c[i].n);
        extras[i] = x ? cJSON_PrintUnformatted(x) : NULL;
        cJSON_Delete(x);
        items[i] = (rlvr_item){prompt, strlen(prompt), text, strlen(text), e->answer,
                               strlen(e->answer), extras[i] ? extras[i] : e->extra_json, i / G};
        b->truncated[i] = b->c[i].finish == FINISH_LENGTH;
    }
    reward_job *job = reward_host_submit(t->rewards, items, (size_t)b->n, step, t->cfg.seed,
                                         deadline, err, errlen);
    if (!job) goto done;
    const reward_result *res = reward_job_wait(job);
    for (int i = 0; i < b->n; i++) {
        b->reward[i] = (float)res->total[i];
        b->ok[i] = res->item_status[i] == RLVR_STATUS_OK;
        for (int r = 0; r < R; r++) b->scores[(size_t)i * R + r] = res->scores[(size_t)i * R + r];
    }
    reward_job_free(job);
    *t_score += runlog_mono_time() - t0;
    rc = 0;
done:
    for (int i = 0; extras && i < b->n; i++) cJSON_free(extras[i]);
    free(extras);
    free(refs);
    free(items);
    if (rc) rollouts_free(b);
    return rc;
}

/* Keeps the groups marked in take (append to dst). */
static int rollouts_take(rollouts *dst, rollouts *src, const uint8_t *take) {
    int keep = 0;
    for (int g = 0; g < src->P; g++) keep += take[g] != 0;
    const int G = src->G, R = src->R, n = dst->n + keep * G;
    completion *c = realloc(dst->c, (size_t)(n + 1) * sizeof *c);
    if (c) dst->c = c;
    int *ex = realloc(dst->ex, (size_t)(dst->P + keep + 1) * sizeof *ex);
    if (ex) dst->ex = ex;
    double *sc = realloc(dst->scores, ((size_t)n * R + 1) * sizeof *sc);
    if (sc) dst->scores = sc;
    float *rw = realloc(dst->reward, (size_t)(n + 1) * sizeof *rw);
    if (rw) dst->reward = rw;
    uint8_t *ok = realloc(dst->ok, (size_t)n + 1);
    if (ok) dst->ok = ok;
    uint8_t *tr = realloc(dst->truncated, (size_t)n + 1);
    if (tr) dst->truncated = tr;
    if (!c || !ex || !sc || !rw || !ok || !tr) return -1;
    dst->G = G;
    dst->R = R;
    for (int g = 0; g < src->P; g++) {
        if (!take[g]) continue;
        dst->ex[dst->P++] = src->ex[g];
        for (int k = 0; k < G; k++) {
            const int i = g * G + k, j = dst->n++;
            dst->c[j] = src->c[i];
            memset(&src->c[i], 0, sizeof src->c[i]); /* moved */
            memcpy(dst->scores + (size_t)j * R, src->scores + (size_t)i * R, R * sizeof(double));
            dst->reward[j] = src->reward[i];
            dst->ok[j] = src->ok[i];
            dst->truncated[j] = src->truncated[i];
        }
    }
    return 0;
}

/* ---- the packed training batch --------------------------------------------------- */

typedef struct {
    int n, T;
    int32_t *ids, *offsets, *plen, *start, *len;
    float *mask, *adv, *old_lp, *ref_lp, *smp_lp, *logp, *ent, *w, *loss, *kl, *clipped;
    float *values, *ret; /* PPO: critic values before the update, GAE returns */
} packed;

static void packed_free(packed *p) {
    free(p->values);
    free(p->ret);
    free(p->ids);
    free(p->offsets);
    free(p->plen);
    free(p->start);
    free(p->len);
    free(p->mask);
    free(p->adv);
    free(p->old_lp);
    free(p->ref_lp);
    free(p->smp_lp);
    free(p->logp);
    free(p->ent);
    free(p->w);
    free(p->loss);
    free(p->kl);
    free(p->clipped);
}

static int pack(trainer *t, const rollouts *b, packed *p, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    p->n = b->n;
    p->offsets = malloc(((size_t)b->n + 1) * sizeof(int32_t));
    p->plen = malloc(((size_t)b->n + 1) * sizeof(int32_t));
    p->start = malloc(((size_t)b->n + 1) * sizeof(int32_t));
    p->len = malloc(((size_t)b->n + 1) * sizeof(int32_t));
    if (!p->offsets || !p->plen || !p->start || !p->len) goto oom;
    p->offsets[0] = 0;
    for (int i = 0; i < b->n; i++) {
        p->plen[i] = t->cache[b->ex[i / b->G]].n;
        p->offsets[i + 1] = p->offsets[i] + p->plen[i] + b->c[i].n;
    }
    const int T = p->T = p->offsets[b->n];
    p->ids = malloc(((size_t)T + 1) * sizeof(int32_t));
    float **arrs[] = {&p->values, &p->ret, &p->mask, &p->adv, &p->old_lp, &p->ref_lp, &p->smp_lp, &p->logp,
                      &p->ent, &p->w, &p->loss, &p->kl, &p->clipped};
    for (size_t k = 0; k < sizeof arrs / sizeof arrs[0]; k++)
        if (!(*arrs[k] = calloc((size_t)T + 1, sizeof(float)))) goto oom;
    if (!p->ids) goto oom;
    for (int i = 0; i < b->n; i++) {
        const prompt_cache *pc = &t->cache[b->ex[i / b->G]];
        memcpy(p->ids + p->offsets[i], pc->ids, (size_t)pc->n * sizeof(int32_t));
        memcpy(p->ids + p->offsets[i] + pc->n, b->c[i].ids, (size_t)b->c[i].n * sizeof(int32_t));
    }
    if (rl_spans_from_packed(p->start, p->len, p->offsets, p->plen, b->n, err, errlen)) return -1;
    rl_spans sp = {T, b->n, p->start, p->len};
    if (rl_valid_mask(p->mask, NULL, &sp, err, errlen)) return -1;
    for (int i = 0; i < b->n; i++) {
        for (int k = 0; k < p->len[i]; k++) {
            p->smp_lp[p->start[i] + k] = b->c[i].logprobs[k];
            if (!b->ok[i]) p->mask[p->start[i] + k] = 0; /* reward error/timeout/abstain */
        }
    }
    if (t->cfg.algorithm.overlong.mode == TC_OVERLONG_MASK &&
        rl_mask_truncated(p->mask, b->truncated, &sp, err, errlen))
        return -1;
    return 0;
oom:
    snprintf(err, errlen, "trainer: out of host memory packing %d completions", b->n);
    return -1;
}

/* ---- micro-batches and forwards -------------------------------------------------- */

/* Sequences [s0, s1) of one micro-batch: whole sequences up to micro_batch_tokens. */
static int micro_end(const packed *p, int s0, int s1_max, int cap) {
    int s1 = s0 + 1;
    while (s1 < s1_max && p->offsets[s1 + 1] - p->offsets[s0] <= cap) s1++;
    return s1;
}

static int forward_micro(model *m, const packed *p, int s0, int s1, float inv_temp, int grad,
                         int32_t *offs, char *err, size_t errlen) {
    const int base = p->offsets[s0];
    for (int s = s0; s <= s1; s++) offs[s - s0] = p->offsets[s] - base;
    model_batch mb = {.T = p->offsets[s1] - base, .B = s1 - s0, .ids = p->ids + base,
                      .offsets = offs};
    return model_forward(m, &mb, inv_temp, grad, err, errlen);
}

/* logp of model m over the whole packed batch into out[T] (no gradients). */
static int logprobs_all(trainer *t, model *m, const packed *p, float *out, char *err,
                        size_t errlen) {
    const float inv_temp = 1.0f / (float)t->cfg.rollout.temperature;
    int32_t *offs = malloc(((size_t)p->n + 1) * sizeof(int32_t));
    if (!offs) return -1;
    for (int s0 = 0; s0 < p->n;) {
        const int s1 = micro_end(p, s0, p->n, t->cfg.schedule.micro_batch_tokens);
        if (forward_micro(m, p, s0, s1, inv_temp, 0, offs, err, errlen)) {
            free(offs);
            return -1;
        }
        const int base = p->offsets[s0];
        m->be->to_host(m->be, out + base, model_logp(m),
                       (size_t)(p->offsets[s1] - base) * sizeof(float));
        s0 = s1;
    }
    free(offs);
    return 0;
}

/* Critic values over the whole packed batch into out[T] (no gradients). */
static int critic_values_all(trainer *t, const packed *p, float *out, char *err, size_t errlen) {
    int32_t *offs = malloc(((size_t)p->n + 1) * sizeof(int32_t));
    if (!offs) return -1;
    for (int s0 = 0; s0 < p->n;) {
        const int s1 = micro_end(p, s0, p->n, t->cfg.schedule.micro_batch_tokens);
        const int base = p->offsets[s0];
        for (int s = s0; s <= s1; s++) offs[s - s0] = p->offsets[s] - base;
        model_batch mb = {.T = p->offsets[s1] - base, .B = s1 - s0, .ids = p->ids + base,
                          .offsets = offs};
        if (critic_values(&t->crit, &mb, 0, out + base, err, errlen)) {
            free(offs);
            return -1;
        }
        s0 = s1;
    }
    free(offs);
    return 0;
}

static int scratch_reserve(trainer *t, int T, char *err, size_t errlen) {
    loss_scratch *s = &t->ls;
    if (T <= s->cap) return 0;
    rlvr_backend *be = t->be;
    float **bufs[] = {&s->old_lp, &s->ref_lp, &s->adv, &s->w, &s->loss,
                      &s->kl, &s->clipped, &s->dlogp, &s->dent};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) {
        be->free(be, *bufs[k]);
        *bufs[k] = be->alloc(be, (size_t)T * sizeof(float));
        if (!*bufs[k]) {
            snprintf(err, errlen, "trainer: out of %s memory for %d tokens", be->name, T);
            s->cap = 0;
            return -1;
        }
    }
    s->cap = T;
    return 0;
}

/* ---- data-parallel layout --------------------------------------------------------- */

/* The step's `got` groups (global order) form mini-batches of mbg groups; rank r takes
 * groups [g0 + len·r/W, g0 + len·(r+1)/W) of every mini-batch [g0, g0 + len). One process
 * (W = 1) gets the identity. */
typedef struct {
    int got, W, n_mb;
    int *order;    /* [got] global group indices, rank 0's local groups first, then rank 1's */
    int *first;    /* [W + 1] rank r's groups are order[first[r] .. first[r+1]) */
    int *mb_local; /* [n_mb + 1] mini-batch k = this rank's local groups [mb_local[k], [k+1]) */
} dp_layout;

static void dp_layout_free(dp_layout *L) {
    free(L->order);
    free(L->first);
    free(L->mb_local);
    memset(L, 0, sizeof *L);
}

/* The sizes and arrays of a layout of `got` groups in mini-batches of mbg over W ranks. */
static int dp_layout_alloc(dp_layout *L, int got, int mbg, int W) {
    L->got = got;
    L->W = W;
    L->n_mb = got > 0 ? (got + mbg - 1) / mbg : 0;
    L->order = malloc(((size_t)got + 1) * sizeof(int));
    L->first = malloc(((size_t)W + 1) * sizeof(int));
    L->mb_local = malloc(((size_t)L->n_mb + 1) * sizeof(int));
    return L->order && L->first && L->mb_local ? 0 : -1;
}

static int dp_layout_make(dp_layout *L, int got, int mbg, int W, int me) {
    if (dp_layout_alloc(L, got, mbg, W)) return -1;
    int j = 0;
    for (int r = 0; r < W; r++) {
        L->first[r] = j;
        int loc = 0;
        for (int k = 0; k < L->n_mb; k++) {
            const int g0 = k * mbg, len = got - g0 < mbg ? got - g0 : mbg;
            const int a = g0 + (int)((long)len * r / W), e = g0 + (int)((long)len * (r + 1) / W);
            if (r == me) L->mb_local[k] = loc;
            for (int g = a; g < e; g++) L->order[j++] = g;
            loc += e - a;
        }
        if (r == me) L->mb_local[L->n_mb] = loc;
    }
    L->first[W] = j;
    return 0;
}

/* The layout of `got` groups (global order) of which group g was generated by rank
 * owner[g] (DAPO dynamic sampling over ranks: a rank keeps the groups it generated, so
 * its share of a mini-batch may be uneven or empty). Mini-batches are the global groups
 * [k·mbg, (k+1)·mbg), as for one process; this rank's local groups are its own groups in
 * ascending global order. */
static int dp_layout_owned(dp_layout *L, int got, int mbg, int W, int me, const int *owner) {
    if (dp_layout_alloc(L, got, mbg, W)) return -1;
    int j = 0;
    for (int r = 0; r < W; r++) {
        L->first[r] = j;
        for (int g = 0; g < got; g++) {
            if (owner[g] != r) continue;
            L->order[j++] = g;
        }
    }
    L->first[W] = j;
    /* mini-batch k starts at the number of my groups below k·mbg */
    int loc = 0, g = 0;
    for (int k = 0; k <= L->n_mb; k++) {
        const int g0 = k * mbg < got ? k * mbg : got;
        for (; g < g0; g++) loc += owner[g] == me;
        L->mb_local[k] = loc;
    }
    return 0;
}

/* All-gathers per-group records of k doubles (mine [local groups · k], local order) into
 * out [got · k] in global group order (malloc'd). */
static int dp_gather(trainer *t, const dp_layout *L, const double *mine, int k, double **out,
                     char *err, size_t errlen) {
    const int W = L->W, me = t->rank;
    const size_t rec = (size_t)k * sizeof(double);
    size_t *lens = malloc((size_t)W * sizeof *lens), *offs = malloc((size_t)W * sizeof *offs);
    void *all = NULL;
    int rc = -1;
    *out = NULL;
    if (!lens || !offs) {
        snprintf(err, errlen, "trainer: out of host memory");
        goto done;
    }
    if (dist_allgatherv(t->comm, mine, (size_t)(L->first[me + 1] - L->first[me]) * rec, &all,
                        lens, offs, err, errlen))
        goto done;
    for (int r = 0; r < W; r++)
        if (lens[r] != (size_t)(L->first[r + 1] - L->first[r]) * rec) {
            snprintf(err, errlen, "trainer: rank %d sent %zu bytes of step records, expected %zu",
                     r, lens[r], (size_t)(L->first[r + 1] - L->first[r]) * rec);
            goto done;
        }
    *out = malloc((size_t)L->got * rec + 1);
    if (!*out) {
        snprintf(err, errlen, "trainer: out of host memory");
        goto done;
    }
    for (int j = 0; j < L->got; j++) /* rank-order concatenation = order[] */
        memcpy(*out + (size_t)L->order[j] * k, (const char *)all + (size_t)j * rec, rec);
    rc = 0;
done:
    free(all);
    free(lens);
    free(offs);
    return rc;
}

/* Sequence advantages of the whole step from every rank's rewards (group means and the
 * batch std over the global batch, in the order of one process), this rank's share into
 * adv_seq [b->n]. */
static int dp_group_advantages(trainer *t, const dp_layout *L, const rollouts *b,
                               float *adv_seq, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    const int G = b->G, n_all = L->got * G;
    double *mine = malloc(((size_t)b->n + 1) * sizeof(double)), *all = NULL;
    float *rw = malloc(((size_t)n_all + 1) * sizeof(float)),
          *adv = malloc(((size_t)n_all + 1) * sizeof(float));
    int rc = -1;
    if (!mine || !rw || !adv) {
        snprintf(err, errlen, "trainer: out of host memory");
        goto done;
    }
    for (int i = 0; i < b->n; i++) mine[i] = b->reward[i];
    if (dp_gather(t, L, mine, G, &all, err, errlen)) goto done;
    for (int i = 0; i < n_all; i++) rw[i] = (float)all[i];
    rl_groups g = {n_all, G, NULL};
    if (c->algorithm.advantage == TC_ADV_RLOO) {
        if (rl_rloo_advantages(adv, rw, &g, err, errlen)) goto done;
    } else {
        rl_grpo_params gp = {c->algorithm.std_scope == TC_STD_GROUP   ? RL_SCALE_GROUP
                             : c->algorithm.std_scope == TC_STD_BATCH ? RL_SCALE_BATCH
                                                                      : RL_SCALE_NONE,
                             1, (float)c->algorithm.eps};
        if (c->algorithm.advantage == TC_ADV_DRGRPO) gp.scale = RL_SCALE_NONE;
        if (rl_grpo_advantages(adv, NULL, NULL, rw, &g, &gp, err, errlen)) goto done;
    }
    const int f = L->first[t->rank];
    for (int i = 0; i < b->n; i++) adv_seq[i] = adv[(size_t)L->order[f + i / G] * G + i % G];
    rc = 0;
done:
    free(mine);
    free(all);
    free(rw);
    free(adv);
    return rc;
}

/* Whitens x[T] at the valid tokens with the mean and variance of every rank's valid
 * tokens (each rank's count, mean and centred sum of squares combined in double: the
 * batch moments one process would take). */
static int dp_whiten(trainer *t, float *x, const float *valid, int T, const rl_whiten_params *wp,
                     char *err, size_t errlen) {
    double cnt = 0, mean = 0, var = 0;
    if (rl_masked_moments(&cnt, &mean, &var, x, valid, T, wp, err, errlen)) return -1;
    /* Σ count, Σ x, Σ (x − mean_r)² + count·(mean_r − mean)² → global moments */
    const double dof = wp->unbiased ? cnt - 1 : cnt;
    const double ss = dof > 0 ? var * dof : 0;
    double m_sum[2] = {cnt, cnt * mean};
    if (dist_allreduce_f64(t->comm, m_sum, 2, DIST_SUM, err, errlen)) return -1;
    const double gmean = m_sum[0] > 0 ? m_sum[1] / m_sum[0] : 0;
    double m2 = ss + cnt * (mean - gmean) * (mean - gmean);
    if (dist_allreduce_f64(t->comm, &m2, 1, DIST_SUM, err, errlen)) return -1;
    const double gdof = wp->unbiased ? m_sum[0] - 1 : m_sum[0];
    const double gvar = gdof > 0 ? m2 / gdof : 0;
    return rl_whiten_with(x, valid, T, gmean, gvar, wp->eps, err, errlen) ? -1 : 0;
}

/* REINFORCE++ over ranks: returns per token as rl_reinforce_pp, whitened with the mean and
 * variance of every rank's valid tokens (dp_whiten). */
static int dp_reinforce_pp(trainer *t, float *adv, const float *tokr, const rollouts *b,
                           const packed *p, const rl_spans *sp, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    const int with_baseline = c->algorithm.advantage == TC_ADV_REINFORCEPP_BASELINE;
    float *R = malloc(((size_t)b->n + 1) * sizeof(float)), *r = malloc(((size_t)p->T + 1) * sizeof(float)),
          *valid = malloc(((size_t)p->T + 1) * sizeof(float));
    int rc = -1;
    if (!R || !r || !valid) {
        snprintf(err, errlen, "trainer: out of host memory");
        goto done;
    }
    memcpy(R, b->reward, (size_t)b->n * sizeof(float));
    if (with_baseline) {
        rl_groups g = {b->n, b->G, NULL};
        rl_grpo_params gp = {.scale = RL_SCALE_NONE, .unbiased_std = 1, .eps = 0.0f};
        if (rl_grpo_advantages(R, NULL, NULL, b->reward, &g, &gp, err, errlen)) goto done;
    }
    memcpy(r, tokr, (size_t)p->T * sizeof(float));
    rl_whiten_params wp = {1, 1e-8f};
    if (rl_place_seq_rewards(r, R, sp, err, errlen) ||
        rl_discounted_returns(adv, r, sp, (float)c->algorithm.gamma, err, errlen) ||
        rl_valid_mask(valid, p->mask, sp, err, errlen) ||
        dp_whiten(t, adv, valid, p->T, &wp, err, errlen))
        goto done;
    rc = 0;
done:
    free(R);
    free(r);
    free(valid);
    return rc;
}

/* DAPO dynamic sampling over ranks. Every round every rank draws the same prompts (as
 * one process does) and generates and scores a contiguous share of them: rank r the groups
 * [got·r/W, got·(r+1)/W) of the round. The drop flags of the round (equal rewards) are
 * all-gathered in rank order, which is the round's prompt order, and every rank runs the
 * same rl_fill_offer on them: the groups taken are the first non-dropped groups in global
 * prompt order up to the target, exactly those one process takes, so the global batch and
 * its mini-batches are one process's (the completions are a function of seed, step, prompt
 * and sample index). A rank keeps the taken groups it generated (dp_layout_owned), so its
 * share may be uneven, or empty in a mini-batch. Returns 0, 1 when the data is exhausted
 * before anything was kept (nothing done), -1 on error. */
static int dp_fill(trainer *t, rl_fill *fill, int *ex, long step, rollouts *b, dp_layout *L,
                   int *rounds, int *dropped, double *t_gen, double *t_score, char *err,
                   size_t errlen) {
    const train_config *c = &t->cfg;
    const int P = c->schedule.prompts_per_step, G = c->rollout.G, W = t->world, me = t->rank;
    const int max_kept = P; /* rl_fill never takes more than its target */
    int *owner = malloc(((size_t)max_kept + 1) * sizeof(int));
    uint8_t *drop = malloc((size_t)P + 1), *take = malloc((size_t)P + 1);
    size_t *lens = malloc((size_t)W * sizeof *lens), *offs = malloc((size_t)W * sizeof *offs);
    rollouts round = {0};
    int kept = 0, rc = -1;
    if (!owner || !drop || !take || !lens || !offs) goto oom;
    for (;;) {
        const int got = dataset_next_batch(t->data, P, ex, err, errlen);
        if (got < 0) goto done;
        if (got == 0) {
            if (kept > 0) break;
            rc = 1; /* data exhausted */
            goto done;
        }
        const int a = (int)((long)got * me / W), e = (int)((long)got * (me + 1) / W);
        if (e > a) {
            if (rollout_round(t, ex + a, e - a, step, &round, t_gen, t_score, err, errlen))
                goto done;
        } else { /* fewer prompts than ranks in this round: nothing to generate here */
            round.G = G;
            round.R = reward_host_n_rewards(t->rewards);
        }
        (*rounds)++;
        uint8_t *mine = drop + a;
        if (e > a) {
            rl_groups rg = {round.n, G, NULL};
            if (rl_equal_reward_groups(mine, NULL, NULL, NULL, round.reward, &rg, 0.0f, err,
                                       errlen))
                goto done;
        }
        void *all = NULL;
        if (dist_allgatherv(t->comm, mine, (size_t)(e - a), &all, lens, offs, err, errlen))
            goto done;
        if (offs[W - 1] + lens[W - 1] != (size_t)got) {
            snprintf(err, errlen, "trainer: dynamic sampling: the ranks sent %zu drop flags for "
                     "a round of %d groups", offs[W - 1] + lens[W - 1], got);
            free(all);
            goto done;
        }
        memcpy(drop, all, (size_t)got);
        free(all);
        const int status = rl_fill_offer(fill, drop, got, take, err, errlen);
        if (status < 0) goto done;
        for (int g = 0; g < got; g++) {
            *dropped += drop[g] != 0;
            if (!take[g]) continue;
            if (kept >= max_kept) {
                snprintf(err, errlen, "trainer: dynamic sampling kept more than %d groups", P);
                goto done;
            }
            int r = 0; /* the rank that generated group g: a(r) <= g < a(r + 1) */
            while (r + 1 < W && (long)got * (r + 1) / W <= g) r++;
            owner[kept++] = r;
        }
        if (rollouts_take(b, &round, take + a)) goto oom;
        rollouts_free(&round);
        if (status != RL_FILL_MORE || got < P) break;
    }
    if (kept > 0) {
        const int mbg = c->algorithm.mini_batch_size > 0 && c->algorithm.mini_batch_size < kept
                            ? c->algorithm.mini_batch_size
                            : kept;
        if (dp_layout_owned(L, kept, mbg, W, me, owner)) goto oom;
        if (L->first[me + 1] - L->first[me] != b->P) {
            snprintf(err, errlen, "trainer: dynamic sampling: rank %d holds %d groups, the "
                     "layout gives it %d", me, b->P, L->first[me + 1] - L->first[me]);
            goto done;
        }
    } else if (dp_layout_owned(L, 0, 1, W, me, owner)) {
        goto oom;
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "trainer: out of host memory");
done:
    rollouts_free(&round);
    free(owner);
    free(drop);
    free(take);
    free(lens);
    free(offs);
    return rc;
}

/* ---- samples.jsonl ----------------------------------------------------------------- */

/* One logged completion as it travels to rank 0: global group index, sample index, the
 * two text lengths, then R + 2 doubles (component scores, reward, advantage) and the
 * prompt and completion bytes. */
typedef struct {
    int32_t g, k;
    uint32_t plen, clen;
} sample_head;

static int sample_cmp(const void *a, const void *b) {
    const sample_head *x = *(const sample_head *const *)a, *y = *(const sample_head *const *)b;
    return x->g != y->g ? (x->g > y->g) - (x->g < y->g) : (x->k > y->k) - (x->k < y->k);
}

/* Writes the first logging.samples_count groups of the step's global batch (in global
 * prompt order, as one process logs them) to samples.jsonl: every rank packs its
 * completions of those groups, rank 0 all-gathers and writes them. Every rank calls it
 * on a logged step. */
static int log_samples(trainer *t, const dp_layout *L, const rollouts *b, const float *raw,
                       const float *adv, long step, char *err, size_t errlen) {
    const int G = b->G, R = b->R, W = t->world, me = t->rank;
    const int want = t->cfg.logging.samples_count;
    const size_t rec = sizeof(sample_head) + (size_t)(R + 2) * sizeof(double);
    char *buf = NULL, *all = NULL;
    size_t len = 0, cap = 0;
    size_t *lens = malloc((size_t)W * sizeof *lens), *offs = malloc((size_t)W * sizeof *offs);
    sample_head *hs = NULL;        /* [ns] parsed headers (rank 0) */
    const sample_head **heads = NULL; /* [ns] sorted by (group, sample) */
    char **texts = NULL;           /* [2 ns] prompt, completion */
    double *vals = NULL;           /* [ns, R + 2] */
    int ns = 0;
    samples_entry *se = NULL;
    const char **names = calloc((size_t)R + 1, sizeof *names);
    int rc = -1;
    if (!lens || !offs || !names) goto oom;
    for (int i = 0; i < b->n; i++) {
        const int g = L->order[L->first[me] + i / G];
        if (g >= want) continue;
        const char *pt = t->cache[b->ex[i / G]].text, *ct = b->c[i].text ? b->c[i].text : "";
        sample_head h = {g, i % G, (uint32_t)strlen(pt), (uint32_t)strlen(ct)};
        const size_t need = len + rec + h.plen + h.clen;
        if (need > cap) {
            char *nb = realloc(buf, need * 2);
            if (!nb) goto oom;
            buf = nb, cap = need * 2;
        }
        double v[2] = {raw[i], adv[i]};
        char *o = buf + len;
        memcpy(o, &h, sizeof h);
        memcpy(o + sizeof h, b->scores + (size_t)i * R, (size_t)R * sizeof(double));
        memcpy(o + sizeof h + (size_t)R * sizeof(double), v, sizeof v);
        memcpy(o + rec, pt, h.plen);
        memcpy(o + rec + h.plen, ct, h.clen);
        len = need;
    }
    size_t total = len;
    if (W > 1) {
        void *a = NULL;
        if (dist_allgatherv(t->comm, buf, len, &a, lens, offs, err, errlen)) goto done;
        all = a;
        total = offs[W - 1] + lens[W - 1];
    } else {
        all = buf, buf = NULL;
    }
    if (!t->samples) { /* ranks other than 0 */
        rc = 0;
        goto done;
    }
    /* parse the records (each rank's in its local order), then sort by (group, sample) */
    size_t o = 0;
    while (o < total) { /* count them; every record must be whole */
        sample_head h;
        if (total - o < rec) break;
        memcpy(&h, all + o, sizeof h); /* records sit unaligned: copy out */
        if ((size_t)h.plen + h.clen > total - o - rec) break;
        o += rec + h.plen + h.clen;
        ns++;
    }
    if (o != total) {
        snprintf(err, errlen, "trainer: samples.jsonl: the ranks' sample records are malformed "
                 "(%zu of %zu bytes whole)", o, total);
        ns = 0;
        goto done;
    }
    hs = malloc(((size_t)ns + 1) * sizeof *hs);
    heads = malloc(((size_t)ns + 1) * sizeof *heads);
    se = calloc((size_t)ns + 1, sizeof *se);
    texts = calloc((size_t)ns * 2 + 1, sizeof *texts);
    vals = malloc(((size_t)ns * (R + 2) + 1) * sizeof(double));
    if (!hs || !heads || !se || !texts || !vals) goto oom;
    o = 0;
    for (size_t j = 0; j < (size_t)ns; j++) {
        memcpy(&hs[j], all + o, sizeof hs[j]);
        memcpy(vals + j * (R + 2), all + o + sizeof(sample_head), (size_t)(R + 2) * sizeof(double));
        texts[2 * j] = strndup(all + o + rec, hs[j].plen);
        texts[2 * j + 1] = strndup(all + o + rec + hs[j].plen, hs[j].clen);
        if (!texts[2 * j] || !texts[2 * j + 1]) goto oom;
        heads[j] = &hs[j];
        o += rec + hs[j].plen + hs[j].clen;
    }
    qsort(heads, (size_t)ns, sizeof *heads, sample_cmp);
    for (int k = 0; k < R; k++) names[k] = reward_host_reward_name(t->rewards, k);
    for (int j = 0; j < ns; j++) {
        const size_t q = (size_t)(heads[j] - hs); /* the record's position before sorting */
        const double *v = vals + q * (R + 2);
        se[j] = (samples_entry){texts[2 * q], texts[2 * q + 1], R, names, v, v[R], v[R + 1]};
    }
    rc = samples_log_write(t->samples, step, se, ns, err, errlen);
    goto done;
oom:
    snprintf(err, errlen, "trainer: out of host memory");
done:
    for (int j = 0; texts && j < 2 * ns; j++) free(texts[j]);
    free(texts);
    free(vals);
    free(hs);
    free(buf);
    free(all);
    free(lens);
    free(offs);
    free(heads);
    free(se);
    free(names);
    return rc;
}

/* ---- the step -------------------------------------------------------------------- */

double trainer_lr(const train_config *c, long step) {
    const double lr = c->optimizer.lr;
    if (c->schedule.warmup_steps > 0 && step <= c->schedule.warmup_steps)
        return lr * (double)step / c->schedule.warmup_steps;
    if (c->schedule.kind == TC_SCHED_CONSTANT || c->schedule.steps <= c->schedule.warmup_steps)
        return lr;
    const double prog = (double)(step - c->schedule.warmup_steps) /
                        (double)(c->schedule.steps - c->schedule.warmup_steps);
    const double floor = c->schedule.min_lr_ratio;
    return lr * (floor + (1.0 - floor) * 0.5 * (1.0 + cos(M_PI * (prog > 1 ? 1 : prog))));
}

static int need_ref(const trainer *t) { return t->ref != NULL; }

/* Sequence- or token-level advantages into p->adv, from the (shaped) rewards. */
static int advantages(trainer *t, const dp_layout *L, rollouts *b, packed *p, float *adv_seq,
                      char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    rl_groups g = {b->n, b->G, NULL};
    rl_spans sp = {p->T, p->n, p->start, p->len};
    if (t->world > 1 && (c->algorithm.advantage == TC_ADV_GRPO ||
                         c->algorithm.advantage == TC_ADV_DRGRPO ||
                         c->algorithm.advantage == TC_ADV_RLOO)) {
        if (dp_group_advantages(t, L, b, adv_seq, err, errlen)) return -1;
        return rl_broadcast(p->adv, adv_seq, &sp, err, errlen);
    }
    switch (c->algorithm.advantage) {
    case TC_ADV_GRPO:
    case TC_ADV_DRGRPO: {
        rl_grpo_params gp = {c->algorithm.std_scope == TC_STD_GROUP   ? RL_SCALE_GROUP
                             : c->algorithm.std_scope == TC_STD_BATCH ? RL_SCALE_BATCH
                                                                      : RL_SCALE_NONE,
                             1, (float)c->algorithm.eps};
        if (c->algorithm.advantage == TC_ADV_DRGRPO) gp.scale = RL_SCALE_NONE;
        if (rl_grpo_advantages(adv_seq, NULL, NULL, b->reward, &g, &gp, err, errlen)) return -1;
        return rl_broadcast(p->adv, adv_seq, &sp, err, errlen);
    }
    case TC_ADV_RLOO:
        if (rl_rloo_advantages(adv_seq, b->reward, &g, err, errlen)) return -1;
        return rl_broadcast(p->adv, adv_seq, &sp, err, errlen);
    case TC_ADV_REINFORCEPP:
    case TC_ADV_REINFORCEPP_BASELINE: {
        float *tokr = calloc((size_t)p->T + 1, sizeof(float));
        if (!tokr) return -1;
        int rc = 0;
        if (c->algorithm.kl.in == TC_KL_IN_REWARD && need_ref(t))
            rc = rl_kl_shape_rewards(tokr, NULL, NULL, p->old_lp, p->ref_lp, p->mask, &sp,
                                     (rlvr_kl_estimator)(c->algorithm.kl.estimator + 1),
                                     (float)t->kl.beta, err, errlen);
        rl_whiten_params wp = {1, 1e-8f};
        if (!rc && t->world > 1)
            rc = dp_reinforce_pp(t, p->adv, tokr, b, p, &sp, err, errlen);
        else if (!rc)
            rc = rl_reinforce_pp(p->adv, tokr, b->reward, &sp,
                                 c->algorithm.advantage == TC_ADV_REINFORCEPP_BASELINE ? &g : NULL,
                                 p->mask, (float)c->algorithm.gamma, &wp, err, errlen);
        free(tokr);
        for (int i = 0; i < b->n; i++) adv_seq[i] = p->len[i] ? p->adv[p->start[i]] : 0.0f;
        return rc;
    }
    case TC_ADV_PPO: {
        /* GAE over the critic's values, reward on the last token (minus β·KL_t per token
         * when the KL is in the reward), advantages whitened over the valid tokens. */
        if (critic_values_all(t, p, p->values, err, errlen)) return -1;
        float *tokr = calloc((size_t)p->T + 1, sizeof(float));
        if (!tokr) return -1;
        int rc = rl_place_seq_rewards(tokr, b->reward, &sp, err, errlen);
        if (!rc && c->algorithm.kl.in == TC_KL_IN_REWARD && need_ref(t))
            rc = rl_kl_shape_rewards(tokr, NULL, NULL, p->old_lp, p->ref_lp, p->mask, &sp,
                                     (rlvr_kl_estimator)(c->algorithm.kl.estimator + 1),
                                     (float)t->kl.beta, err, errlen);
        if (!rc)
            rc = rl_gae(p->adv, p->ret, tokr, p->values, &sp, (float)c->algorithm.gamma,
                        (float)c->algorithm.lambda, err, errlen);
        rl_whiten_params wp = {1, 1e-8f}; /* over the global batch's valid tokens */
        if (!rc && t->world > 1) rc = dp_whiten(t, p->adv, p->mask, p->T, &wp, err, errlen);
        else if (!rc) rc = rl_whiten(p->adv, p->mask, p->T, &wp, err, errlen);
        free(tokr);
        for (int i = 0; i < b->n; i++) adv_seq[i] = p->len[i] ? p->adv[p->start[i]] : 0.0f;
        return rc;
    }
    }
    snprintf(err, errlen, "trainer: advantage %s is not supported by this trainer",
             tc_advantage_name(c->algorithm.advantage));
    return -1;
}

int trainer_do_step(trainer *t, metrics_rec *r, char *err, size_t errlen) {
    float *vbuf = NULL, *vloss = NULL, *vclip = NULL; /* PPO critic scratch */
    const train_config *c = &t->cfg;
    rlvr_backend *be = t->be;
    const long step = t->step + 1;
    const int P = c->schedule.prompts_per_step, G = c->rollout.G;
    const double t_step0 = runlog_mono_time(), comm0 = dist_comm_seconds(t->comm);
    double t_gen = 0, t_score = 0, t_ref = 0, t_train = 0;
    int rc = -1, rounds = 0, dropped = 0;
    rollouts b = {0}, round = {0};
    packed p = {0};
    float *adv_seq = NULL;
    int32_t *offs = NULL;
    const int W = t->world;
    dp_layout L = {0};
    int *lex = NULL;                /* this rank's example indices (W > 1) */
    double *rec = NULL, *grec = NULL; /* per-completion metric records, local / global */
    rl_agg_denoms *dens = NULL;
    int *ex = malloc((size_t)P * sizeof(int));
    uint8_t *drop = malloc((size_t)P + 1), *take = malloc((size_t)P + 1);
    if (!ex || !drop || !take) {
        snprintf(err, errlen, "trainer: out of host memory");
        goto done;
    }
    /* ---- rollouts (with DAPO dynamic sampling: drop equal-reward groups, refill) -- */
    rl_fill fill;
    const int dyn = c->algorithm.dynamic_sampling.enabled;
    if (dyn && rl_fill_init(&fill, P, c->algorithm.dynamic_sampling.max_tries, err, errlen))
        goto done;
    dist_test_fault_point(t->comm, step);
    if (W > 1 && !dyn) { /* every rank draws the same P prompts and generates its share */
        int got = dataset_next_batch(t->data, P, ex, err, errlen);
        if (got < 0) goto done;
        if (got < P) { /* the last, partial batch of finite data is dropped with W > 1 */
            rc = 1;
            goto done;
        }
        const int mbg = c->algorithm.mini_batch_size > 0 && c->algorithm.mini_batch_size < got
                            ? c->algorithm.mini_batch_size
                            : got;
        if (dp_layout_make(&L, got, mbg, W, t->rank)) goto oom;
        const int f = L.first[t->rank], nloc = L.first[t->rank + 1] - f;
        if (!(lex = malloc((size_t)nloc * sizeof(int)))) goto oom;
        for (int i = 0; i < nloc; i++) lex[i] = ex[L.order[f + i]];
        if (rollout_round(t, lex, nloc, step, &round, &t_gen, &t_score, err, errlen)) goto done;
        rounds++;
        memset(take, 1, (size_t)nloc);
        if (rollouts_take(&b, &round, take)) goto oom;
        rollouts_free(&round);
    } else if (W > 1) { /* dynamic sampling over ranks: dp_fill */
        const int s = dp_fill(t, &fill, ex, step, &b, &L, &rounds, &dropped, &t_gen, &t_score,
                              err, errlen);
        if (s) {
            rc = s > 0 ? 1 : -1;
            goto done;
        }
    }
    for (; W == 1;) {
        int got = dataset_next_batch(t->data, P, ex, err, errlen);
        if (got < 0) goto done;
        if (got == 0) {
            if (b.n > 0) break;
            rc = 1; /* data exhausted */
            goto done;
        }
        if (rollout_round(t, ex, got, step, &round, &t_gen, &t_score, err, errlen)) goto done;
        rounds++;
        if (!dyn) {
            memset(take, 1, (size_t)got);
            if (rollouts_take(&b, &round, take)) goto oom;
            rollouts_free(&round);
            break;
        }
        rl_groups rg = {round.n, G, NULL};
        int ng = 0, nd = 0;
        if (rl_equal_reward_groups(drop, NULL, &ng, &nd, round.reward, &rg, 0.0f, err, errlen))
            goto done;
        int status = rl_fill_offer(&fill, drop, got, take, err, errlen);
        if (status < 0) goto done;
        dropped += nd;
        if (rollouts_take(&b, &round, take)) goto oom;
        rollouts_free(&round);
        if (status != RL_FILL_MORE || got < P) break;
    }
    if (W > 1 ? L.got == 0 : b.n == 0) { /* every group dropped and no more rounds allowed */
        metrics_rec_add_int(r, "dyn/rounds", rounds);
        metrics_rec_add_int(r, "dyn/dropped_groups", dropped);
        metrics_rec_add(r, "time/step", runlog_mono_time() - t_step0);
        rc = 0;
        goto done;
    }
    if (W == 1) { /* one process: the identity layout over the groups it kept */
        const int mbg = c->algorithm.mini_batch_size > 0 && c->algorithm.mini_batch_size < b.P
                            ? c->algorithm.mini_batch_size
                            : b.P;
        if (dp_layout_make(&L, b.P, mbg, 1, 0)) goto oom;
    }
    /* ---- rewards → advantages ------------------------------------------------------ */
    if (pack(t, &b, &p, err, errlen)) goto done;
    const int n = b.n, R = b.R;
    int n_ok = 0;
    for (int i = 0; i < n; i++) n_ok += b.ok[i];
    /* a non-OK item takes its group's OK mean (advantage ~0) and is masked anyway */
    for (int gi = 0; gi < n / G; gi++) {
        double s = 0;
        int k = 0;
        for (int j = 0; j < G; j++)
            if (b.ok[gi * G + j]) s += b.reward[gi * G + j], k++;
        for (int j = 0; j < G; j++)
            if (!b.ok[gi * G + j]) b.reward[gi * G + j] = k ? (float)(s / k) : 0.0f;
    }
    float *raw_reward = malloc(((size_t)n + 1) * sizeof(float));
    if (!raw_reward) goto oom;
    memcpy(raw_reward, b.reward, (size_t)n * sizeof(float));
    if (c->algorithm.overlong.mode == TC_OVERLONG_PENALTY) {
        int32_t *lens = malloc((size_t)n * sizeof(int32_t));
        if (!lens) {
            free(raw_reward);
            goto oom;
        }
        for (int i = 0; i < n; i++) lens[i] = b.c[i].n;
        int e = rl_overlong_penalty(b.reward, NULL, lens, n, c->rollout.max_new_tokens,
                                    c->algorithm.overlong.buffer, 1.0f, err, errlen);
        free(lens);
        if (e) {
            free(raw_reward);
            goto done;
        }
    }
    /* reference (and old) log-probs */
    const int multi = c->algorithm.ppo_epochs > 1 ||
                      (c->algorithm.mini_batch_size > 0 && c->algorithm.mini_batch_size < L.got);
    const int kl_in_reward = c->algorithm.kl.in == TC_KL_IN_REWARD && need_ref(t);
    double t0 = runlog_mono_time();
    if (need_ref(t) && logprobs_all(t, t->ref, &p, p.ref_lp, err, errlen)) goto fail_rr;
    if ((multi || kl_in_reward) && logprobs_all(t, t->policy, &p, p.old_lp, err, errlen))
        goto fail_rr;
    t_ref = runlog_mono_time() - t0;
    rl_spans sp = {p.T, p.n, p.start, p.len};
    double kl_reward_mean = NAN;
    if (kl_in_reward && c->algorithm.advantage != TC_ADV_REINFORCEPP &&
        c->algorithm.advantage != TC_ADV_REINFORCEPP_BASELINE) {
        /* sequence-level shaping for the group estimators: R_i −= β Σ_t KL_t */
        float *tokr = calloc((size_t)p.T + 1, sizeof(float));
        if (!tokr) goto fail_rr_oom;
        if (rl_kl_shape_rewards(tokr, NULL, &kl_reward_mean, p.old_lp, p.ref_lp, p.mask, &sp,
                                (rlvr_kl_estimator)(c->algorithm.kl.estimator + 1),
                                (float)t->kl.beta, err, errlen)) {
            free(tokr);
            goto fail_rr;
        }
        for (int i = 0; i < n; i++)
            for (int k = 0; k < p.len[i]; k++) b.reward[i] += tokr[p.start[i] + k];
        free(tokr);
    }
    adv_seq = calloc((size_t)n + 1, sizeof(float));
    if (!adv_seq) goto fail_rr_oom;
    if (advantages(t, &L, &b, &p, adv_seq, err, errlen)) goto fail_rr;

    /* ---- μ epochs over mini-batches of micro-batches ------------------------------- */
    rl_agg_mode mode = c->algorithm.loss_agg == TC_AGG_TOKEN_MEAN ? RL_AGG_TOKEN_MEAN
                       : c->algorithm.loss_agg == TC_AGG_SEQ_MEAN_TOKEN_MEAN
                           ? RL_AGG_SEQ_MEAN_TOKEN_MEAN
                           : RL_AGG_SEQ_MEAN_TOKEN_SUM_NORM;
    /* weights per mini-batch: the denominator is global to its optimizer step (summed
     * over the ranks' shares of the mini-batch) */
    if (!(dens = calloc((size_t)L.n_mb + 1, sizeof *dens))) goto fail_rr_oom;
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < L.n_mb; k++) {
            const int s0 = L.mb_local[k] * G, s1 = L.mb_local[k + 1] * G;
            const int base = p.offsets[s0];
            int32_t *st = malloc((size_t)(s1 - s0 + 1) * sizeof(int32_t));
            if (!st) goto fail_rr_oom;
            for (int i = s0; i < s1; i++) st[i - s0] = p.start[i] - base;
            rl_spans msp = {p.offsets[s1] - base, s1 - s0, st, p.len + s0};
            rl_agg_denoms *den = &dens[k];
            den->max_len = c->rollout.max_new_tokens;
            int e = pass == 0
                        ? rl_agg_count(&den->n_tokens, &den->n_seqs, &msp, p.mask + base, err,
                                       errlen)
                        : rl_agg_weights(p.w + base, mode, &msp, p.mask + base, den, err, errlen);
            free(st);
            if (e) goto fail_rr;
        }
        if (pass == 0 && W > 1) { /* (n_tokens, n_seqs) of every mini-batch, summed */
            double *cnt = malloc(((size_t)L.n_mb * 2 + 1) * sizeof(double));
            if (!cnt) goto fail_rr_oom;
            for (int k = 0; k < L.n_mb; k++) cnt[2 * k] = dens[k].n_tokens, cnt[2 * k + 1] = dens[k].n_seqs;
            int e = dist_allreduce_f64(t->comm, cnt, (size_t)L.n_mb * 2, DIST_SUM, err, errlen);
            for (int k = 0; k < L.n_mb; k++) dens[k].n_tokens = cnt[2 * k], dens[k].n_seqs = cnt[2 * k + 1];
            free(cnt);
            if (e) goto fail_rr;
        }
    }
    offs = malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!offs || scratch_reserve(t, p.T, err, errlen)) goto fail_rr;
    const float inv_temp = 1.0f / (float)c->rollout.temperature;
    const int kl_in_loss = need_ref(t) && c->algorithm.kl.in == TC_KL_IN_LOSS;
    rlvr_policy_loss_params lp = {(float)c->algorithm.clip_low, (float)c->algorithm.clip_high,
                                  (float)c->algorithm.dual_clip,
                                  kl_in_loss ? (float)t->kl.beta : 0.0f,
                                  (int)c->algorithm.kl.estimator + 1};
    const double lr = trainer_lr(c, step);
    double grad_norm = 0, loss_total = 0, value_loss_total = 0, critic_norm = 0;
    int n_updates = 0;
    t0 = runlog_mono_time();
    if (t->crit.m) {
        vbuf = calloc((size_t)p.T * 2 + 1, sizeof(float));
        vloss = calloc((size_t)p.T + 1, sizeof(float));
        vclip = calloc((size_t)p.T + 1, sizeof(float));
        if (!vbuf || !vloss || !vclip) goto fail_rr_oom;
    }
    for (int epoch = 0; epoch < c->algorithm.ppo_epochs; epoch++) {
        for (int k = 0; k < L.n_mb; k++) {
            const int ms1 = L.mb_local[k + 1] * G;
            for (int s0 = L.mb_local[k] * G; s0 < ms1;) {
                const int s1 = micro_end(&p, s0, ms1, c->schedule.micro_batch_tokens);
                const int base = p.offsets[s0], Tm = p.offsets[s1] - base;
                if (forward_micro(t->policy, &p, s0, s1, inv_temp, 1, offs, err, errlen))
                    goto fail_rr;
                const float *logp = model_logp(t->policy);
                if (multi || kl_in_reward)
                    be->to_device(be, t->ls.old_lp, p.old_lp + base, (size_t)Tm * sizeof(float));
                else /* on-policy single pass: π_old = πθ detached */
                    be->copy(be, t->ls.old_lp, logp, (size_t)Tm * sizeof(float));
                if (kl_in_loss)
                    be->to_device(be, t->ls.ref_lp, p.ref_lp + base, (size_t)Tm * sizeof(float));
                be->to_device(be, t->ls.adv, p.adv + base, (size_t)Tm * sizeof(float));
                be->to_device(be, t->ls.w, p.w + base, (size_t)Tm * sizeof(float));
                be->policy_loss(be, t->ls.loss, t->ls.kl, t->ls.clipped, t->ls.dlogp, logp,
                                t->ls.old_lp, kl_in_loss ? t->ls.ref_lp : NULL, t->ls.adv,
                                t->ls.w, Tm, &lp);
                const float *dent = NULL;
                if (c->algorithm.entropy_coef != 0) { /* loss −= coef · H → dL/dH = −coef·w */
                    for (int k = 0; k < Tm; k++)
                        p.loss[base + k] = -(float)c->algorithm.entropy_coef * p.w[base + k];
                    be->to_device(be, t->ls.dent, p.loss + base, (size_t)Tm * sizeof(float));
                    dent = t->ls.dent;
                }
                if (model_backward(t->policy, t->ls.dlogp, dent, err, errlen)) goto fail_rr;
                if (epoch == 0) { /* metrics from the first pass */
                    be->to_host(be, p.logp + base, logp, (size_t)Tm * sizeof(float));
                    be->to_host(be, p.ent + base, model_entropy(t->policy), (size_t)Tm * sizeof(float));
                    be->to_host(be, p.kl + base, t->ls.kl, (size_t)Tm * sizeof(float));
                    be->to_host(be, p.clipped + base, t->ls.clipped, (size_t)Tm * sizeof(float));
                }
                be->to_host(be, p.loss + base, t->ls.loss, (size_t)Tm * sizeof(float));
                for (int k = 0; k < Tm; k++) loss_total += (double)p.w[base + k] * p.loss[base + k];
                if (t->crit.m) { /* PPO critic: clipped value loss, same weights */
                    model_batch vb = {.T = Tm, .B = s1 - s0, .ids = p.ids + base, .offsets = offs};
                    float *v = vbuf + base, *dv = vbuf + p.T + base;
                    if (critic_values(&t->crit, &vb, 1, v, err, errlen) ||
                        rl_value_loss(vloss + base, dv, vclip + base, v, p.values + base,
                                      p.ret + base, p.w + base, Tm, (float)c->algorithm.value_clip,
                                      err, errlen) ||
                        critic_backward(&t->crit, dv, err, errlen))
                        goto fail_rr;
                    for (int k = 0; k < Tm; k++)
                        value_loss_total += (double)p.w[base + k] * vloss[base + k];
                }
                s0 = s1;
            }
            if (t->crit.m) {
                const double clr = c->algorithm.critic_lr * lr / c->optimizer.lr;
                /* the critic's gradients (trunk and head) summed over ranks; its AdamW
                 * state is replicated (also with dist.zero1, which shards the policy's) */
                if (W > 1 &&
                    (dist_allreduce_backend_f32(t->comm, be, t->crit.m->grads,
                                                t->crit.m->n_weights, err, errlen) ||
                     dist_allreduce_backend_f32(t->comm, be, t->crit.g,
                                                (size_t)t->crit.m->cfg.hidden_size + 1, err,
                                                errlen)))
                    goto fail_rr;
                if (critic_step(&t->crit, (float)clr, &critic_norm, err, errlen)) goto fail_rr;
            }
            if (trainer_update(t, lr, &grad_norm, err, errlen)) goto fail_rr;
            model_zero_grads(t->policy);
            n_updates++;
        }
    }
    t_train = runlog_mono_time() - t0;
    if (!multi && !kl_in_reward) memcpy(p.old_lp, p.logp, (size_t)p.T * sizeof(float));

    /* ---- metrics ------------------------------------------------------------------- */
    {
        /* per-completion values of the whole step (all-gathered in global order when
         * W > 1): raw reward, shaped reward, advantage, length, ok, truncated, R scores */
        const int K = 6 + R;
        int nm = n, nm_ok = n_ok;
        const float *m_raw = raw_reward, *m_shaped = b.reward, *m_adv = adv_seq;
        const double *m_scores = b.scores;
        const uint8_t *m_trunc = b.truncated;
        float *g_raw = NULL, *g_shaped = NULL, *g_adv = NULL;
        double *g_scores = NULL;
        uint8_t *g_trunc = NULL;
        int32_t *lens = malloc(((size_t)L.got * G + 1) * sizeof(int32_t));
        if (!lens) goto fail_rr_oom;
        for (int i = 0; i < n; i++) lens[i] = b.c[i].n;
        if (W > 1) {
            if (!(rec = malloc(((size_t)n * K + 1) * sizeof(double)))) {
                free(lens);
                goto fail_rr_oom;
            }
            for (int i = 0; i < n; i++) {
                double *x = rec + (size_t)i * K;
                x[0] = raw_reward[i], x[1] = b.reward[i], x[2] = adv_seq[i], x[3] = b.c[i].n;
                x[4] = b.ok[i], x[5] = b.truncated[i];
                for (int k = 0; k < R; k++) x[6 + k] = b.scores[(size_t)i * R + k];
            }
            nm = L.got * G;
            g_raw = malloc(((size_t)nm + 1) * sizeof(float));
            g_shaped = malloc(((size_t)nm + 1) * sizeof(float));
            g_adv = malloc(((size_t)nm + 1) * sizeof(float));
            g_scores = malloc(((size_t)nm * R + 1) * sizeof(double));
            g_trunc = malloc((size_t)nm + 1);
            int e = !g_raw || !g_shaped || !g_adv || !g_scores || !g_trunc;
            if (e) snprintf(err, errlen, "trainer: out of host memory");
            if (!e) e = dp_gather(t, &L, rec, G * K, &grec, err, errlen);
            if (!e) {
                nm_ok = 0;
                for (int i = 0; i < nm; i++) {
                    const double *x = grec + (size_t)i * K;
                    g_raw[i] = (float)x[0], g_shaped[i] = (float)x[1], g_adv[i] = (float)x[2];
                    lens[i] = (int32_t)x[3];
                    nm_ok += x[4] != 0;
                    g_trunc[i] = (uint8_t)x[5];
                    for (int k = 0; k < R; k++) g_scores[(size_t)i * R + k] = x[6 + k];
                }
                m_raw = g_raw, m_shaped = g_shaped, m_adv = g_adv, m_scores = g_scores;
                m_trunc = g_trunc;
            }
            if (e) {
                free(g_raw), free(g_shaped), free(g_adv), free(g_scores), free(g_trunc);
                free(lens);
                goto fail_rr;
            }
        }
        double valid = 0, ent = 0, kl = 0, clip = 0, mm = 0, mx = 0;
        for (int k = 0; k < p.T; k++) {
            if (p.mask[k] == 0) continue;
            valid++;
            ent += p.ent[k];
            kl += p.kl[k];
            clip += p.clipped[k];
            const double d = fabs((double)p.smp_lp[k] - p.logp[k]);
            mm += d;
            if (d > mx) mx = d;
        }
        double lo = 0, hi = 0, du = 0;
        const int have_clip = !rl_clip_fractions(&lo, &hi, &du, p.logp, p.old_lp, p.adv, p.mask,
                                                 p.T, (float)c->algorithm.clip_low,
                                                 (float)c->algorithm.clip_high,
                                                 (float)c->algorithm.dual_clip, err, errlen);
        double tokens_trained = (double)p.T;
        if (W > 1) { /* token counts and sums over every rank */
            double v[10] = {valid,
                            ent,
                            kl,
                            clip,
                            mm,
                            loss_total,
                            lo * valid,
                            hi * valid,
                            tokens_trained,
                            isnan(kl_reward_mean) ? 0 : kl_reward_mean * valid};
            if (dist_allreduce_f64(t->comm, v, 10, DIST_SUM, err, errlen) ||
                dist_allreduce_f64(t->comm, &mx, 1, DIST_MAX, err, errlen)) {
                free(g_raw), free(g_shaped), free(g_adv), free(g_scores), free(g_trunc);
                free(lens);
                goto fail_rr;
            }
            valid = v[0], ent = v[1], kl = v[2], clip = v[3], mm = v[4], loss_total = v[5];
            lo = valid > 0 ? v[6] / valid : 0;
            hi = valid > 0 ? v[7] / valid : 0;
            tokens_trained = v[8];
            if (!isnan(kl_reward_mean)) kl_reward_mean = valid > 0 ? v[9] / valid : 0;
        }
        rl_summary s;
        rl_summarize(&s, m_raw, NULL, nm, err, errlen);
        metrics_rec_add(r, "reward/mean", s.mean);
        metrics_rec_add(r, "reward/std", s.std);
        double acc;
        int binary;
        if (!rl_binary_accuracy(&acc, &binary, m_raw, nm, err, errlen) && binary)
            metrics_rec_add(r, "reward/accuracy", acc);
        for (int k = 0; k < R; k++) {
            double m = 0;
            for (int i = 0; i < nm; i++) m += m_scores[(size_t)i * R + k];
            char name[128];
            snprintf(name, sizeof name, "reward/%s", reward_host_reward_name(t->rewards, k));
            metrics_rec_add(r, name, m / nm);
        }
        metrics_rec_add(r, "reward/ok_fraction", (double)nm_ok / nm);
        if (c->algorithm.overlong.mode == TC_OVERLONG_PENALTY || kl_in_reward) {
            rl_summarize(&s, m_shaped, NULL, nm, err, errlen);
            metrics_rec_add(r, "reward/shaped_mean", s.mean);
        }
        if (!isnan(kl_reward_mean)) metrics_rec_add(r, "kl/in_reward_mean", kl_reward_mean);
        rl_summarize(&s, m_adv, NULL, nm, err, errlen);
        metrics_rec_add(r, "adv/mean", s.mean);
        metrics_rec_add(r, "adv/std", s.std);
        metrics_rec_add(r, "adv/min", s.min);
        metrics_rec_add(r, "adv/max", s.max);
        rl_groups rg = {nm, G, NULL};
        double zv = 0;
        rl_zero_variance_fraction(&zv, m_raw, &rg, err, errlen);
        metrics_rec_add(r, "groups/zero_variance_fraction", zv);
        if (dyn) {
            metrics_rec_add_int(r, "dyn/rounds", rounds);
            metrics_rec_add_int(r, "dyn/dropped_groups", dropped);
        }
        valid = valid > 0 ? valid : 1;
        metrics_rec_add(r, "loss", loss_total / (n_updates ? n_updates : 1));
        if (need_ref(t)) {
            metrics_rec_add(r, "kl/mean", kl / valid);
            metrics_rec_add(r, "kl/beta", t->kl.beta);
        }
        if (have_clip) {
            metrics_rec_add(r, "clip/low", lo);
            metrics_rec_add(r, "clip/high", hi);
        }
        metrics_rec_add(r, "clip/fraction", clip / valid);
        metrics_rec_add(r, "entropy/mean", ent / valid);
        metrics_rec_add(r, "logprob_mismatch/mean_abs", mm / valid);
        metrics_rec_add(r, "logprob_mismatch/max_abs", mx);
        long gen_tokens = 0;
        for (int i = 0; i < nm; i++) gen_tokens += lens[i];
        rl_summarize_int(&s, lens, nm, err, errlen);
        metrics_rec_add(r, "len/mean", s.mean);
        metrics_rec_add(r, "len/min", s.min);
        metrics_rec_add(r, "len/max", s.max);
        free(lens);
        metrics_rec_add(r, "len/truncated_fraction", rl_truncation_rate(m_trunc, nm));
        free(g_raw), free(g_shaped), free(g_adv), free(g_scores), free(g_trunc);
        metrics_rec_add(r, "grad_norm", grad_norm);
        if (t->crit.m) { /* PPO critic: sums over every rank's valid tokens */
            double vs[5] = {0, 0, 0, 0, value_loss_total}; /* count, V, returns, clipped, loss */
            for (int k = 0; k < p.T; k++)
                if (p.mask[k] != 0) {
                    vs[0]++;
                    vs[1] += p.values[k];
                    vs[2] += p.ret[k];
                    vs[3] += vclip[k];
                }
            if (W > 1 && dist_allreduce_f64(t->comm, vs, 5, DIST_SUM, err, errlen)) goto fail_rr;
            const double nv = vs[0] > 0 ? vs[0] : 1, vv = vs[1], vr = vs[2], vc = vs[3];
            value_loss_total = vs[4];
            metrics_rec_add(r, "value/loss", value_loss_total / (n_updates ? n_updates : 1));
            metrics_rec_add(r, "value/mean", vv / nv);
            metrics_rec_add(r, "value/returns_mean", vr / nv);
            metrics_rec_add(r, "value/clip_fraction", vc / nv);
            metrics_rec_add(r, "value/grad_norm", critic_norm);
        }
        metrics_rec_add(r, "lr", lr);
        /* AdamW state held by this rank (rank 0 logs): 8 bytes per weight, / W with zero1 */
        metrics_rec_add(r, "memory/adamw_state_bytes", (double)optim_state_bytes(&t->opt));
        metrics_rec_add_int(r, "updates", n_updates);
        const double t_all = runlog_mono_time() - t_step0;
        metrics_rec_add(r, "tokens/generated", (double)gen_tokens);
        metrics_rec_add(r, "tokens/trained", tokens_trained * c->algorithm.ppo_epochs);
        metrics_rec_add(r, "throughput/gen_tokens_per_s", t_gen > 0 ? gen_tokens / t_gen : 0);
        metrics_rec_add(r, "throughput/train_tokens_per_s",
                        t_train > 0 ? tokens_trained * c->algorithm.ppo_epochs / t_train : 0);
        metrics_rec_add(r, "time/generate", t_gen);
        metrics_rec_add(r, "time/score", t_score);
        metrics_rec_add(r, "time/reference", t_ref);
        metrics_rec_add(r, "time/train", t_train);
        if (W > 1) metrics_rec_add(r, "time/comm", dist_comm_seconds(t->comm) - comm0);
        metrics_rec_add(r, "time/step", t_all);
        /* adaptive β sees the KL of this batch */
        if (need_ref(t) && t->kl.adaptive &&
            rl_kl_ctl_update(&t->kl, kl / valid, (double)nm, err, errlen))
            goto fail_rr;
    }
    /* ---- samples ----------------------------------------------------------------------- */
    if (c->logging.samples_every > 0 && step % c->logging.samples_every == 0 &&
        log_samples(t, &L, &b, raw_reward, adv_seq, step, err, errlen))
        goto fail_rr;
    free(raw_reward);
    rc = 0;
    goto done;
fail_rr_oom:
    snprintf(err, errlen, "trainer: out of host memory");
fail_rr:
    free(raw_reward);
    goto done;
oom:
    snprintf(err, errlen, "trainer: out of host memory");
done:
    free(vbuf);
    free(vloss);
    free(vclip);
    rollouts_free(&round);
    rollouts_free(&b);
    packed_free(&p);
    free(adv_seq);
    free(offs);
    free(ex);
    free(drop);
    free(take);
    free(lex);
    free(rec);
    free(grec);
    free(dens);
    dp_layout_free(&L);
    return rc;
}
