/*
 * engine/rollout/sampler.c — grouped generation (see sampler.h).
 *
 * The loop: admit whole groups while the cache can hold them at their longest (so a
 * running sequence never runs out of blocks), prefill the admitted prompts in one
 * cached forward, draw each group's G first tokens from its prompt's logits, fork the
 * prompt's cache G−1 times (full blocks shared), then run decode steps over every
 * active sequence, longest context first with each group's samples in aligned pairs
 * (decode_order.h), until each finishes (EOS, stop id, stop string, length). Finished
 * sequences free their blocks at once and the next groups are admitted.
 */
#include "engine/rollout/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/model/kv_cache.h"
#include "engine/rollout/decode_order.h"
#include "engine/rollout/philox.h"
#include "engine/rollout/sampling.h"
#ifdef RLVR_HAVE_TEXT
#include "engine/text/tokenizer.h"
#endif

enum { BLOCK_SIZE = 16, MAX_SEQS = 512, MAX_DECODE_ROWS = 128, MAX_PREFILL_TOKENS = 4096 };

struct sampler {
    model *m;
    const struct tok_tokenizer *tok;
    kv_cache *kv;
    sampling_scratch scratch;
    float *logits;         /* host [rows, V] */
    int logits_rows;
    int32_t *seen;         /* prompt + generated ids of one sequence (host draw), or of
                              every draw of a step, concatenated (backend draw) */
    size_t seen_cap;
    /* sampling on the backend (lmhead_sample; every backend but the CPU reference):
     * host staging of one step's draws */
    int on_device;
    float *du;             /* [draws] Philox uniforms */
    int *drow, *doff;      /* [draws] gathered row read; [draws + 1] offsets into seen */
    int32_t *dtok;         /* [draws] drawn ids */
    float *dlp;            /* [draws] their log-probabilities */
    int draws_cap;
};

typedef struct {
    int kv_seq, prompt, sample;    /* prompt: position in the caller's array */
    int32_t *ids;
    float *lps;
    int n, cap;
    size_t *text_start;            /* text length before token i's text */
    char *text;
    size_t text_len, text_cap;
#ifdef RLVR_HAVE_TEXT
    tok_stream *stream;
#endif
    int done, keep;
    finish_reason finish;
} seq_state;

typedef struct {
    int need_blocks, live;         /* committed cache blocks; sequences still running */
} group_state;

const char *finish_reason_name(finish_reason r) {
    return r == FINISH_EOS ? "eos" : r == FINISH_STOP ? "stop" : "length";
}

sampling_params sampling_params_default(void) {
    sampling_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    p.max_new_tokens = 256;
    return p;
}

/* The length limit of the prompt at position i of the call's array. */
static int max_new_of(const sampling_params *p, int i) {
    return p->max_new_tokens_each && p->max_new_tokens_each[i] > 0 ? p->max_new_tokens_each[i]
                                                                   : p->max_new_tokens;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* RLVR_DECODE_ORDER=admission (read at each sampler_generate call) keeps the decode rows in
 * admission order instead of longest context first (decode_order.h; for A/B runs). */
static int decode_order_admission(void) {
    const char *e = getenv("RLVR_DECODE_ORDER");
    return e && strcmp(e, "admission") == 0;
}

/* Each group's samples in aligned pairs of rows only for the CUDA kernel's paired rows
 * (RLVR_DECODE_ATTN_PAIR=1, opt-in): otherwise an odd group's last sample would leave its
 * siblings and the shared-prefix unit they form (engine/model/kv_share.h). */
static int decode_order_pairs(void) {
    const char *e = getenv("RLVR_DECODE_ATTN_PAIR");
    return e && strcmp(e, "1") == 0;
}

int sampler_create(model *m, const struct tok_tokenizer *tok, size_t kv_budget_bytes,
                   sampler **out, char *err, size_t errlen) {
    *out = NULL;
    sampler *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "sampler: out of host memory");
        return -1;
    }
    s->m = m;
    s->tok = tok;
    s->on_device = strcmp(m->be->name, "cpu") != 0 && m->be->lmhead_sample != NULL;
    int max_ctx = m->cfg.max_position_embeddings < 32768 ? m->cfg.max_position_embeddings : 32768;
    if (kv_cache_create(m, kv_budget_bytes ? kv_budget_bytes : (size_t)1 << 30, BLOCK_SIZE,
                        MAX_SEQS, max_ctx, &s->kv, err, errlen)) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void sampler_free(sampler *s) {
    if (!s) return;
    kv_cache_free(s->kv);
    sampling_scratch_free(&s->scratch);
    free(s->logits);
    free(s->seen);
    free(s->du);
    free(s->drow);
    free(s->doff);
    free(s->dtok);
    free(s->dlp);
    free(s);
}

void completions_free(completion *c, int n) {
    if (!c) return;
    for (int i = 0; i < n; i++) {
        free(c[i].ids);
        free(c[i].logprobs);
        free(c[i].text);
    }
    free(c);
}

static int grow_logits(sampler *s, int rows) {
    if (rows <= s->logits_rows) return 0;
    float *l = realloc(s->logits, (size_t)rows * s->m->cfg.vocab_size * sizeof(float));
    if (!l) return -1;
    s->logits = l;
    s->logits_rows = rows;
    return 0;
}

static int contains(const int32_t *set, int n, int32_t id) {
    for (int i = 0; i < n; i++)
        if (set[i] == id) return 1;
    return 0;
}

#ifdef RLVR_HAVE_TEXT
/* Appends a decoded token's text and looks for stop strings in the new tail. Returns 1
 * when a stop string was found (text truncated before it, keep = tokens to keep). */
static int append_text(seq_state *q, const char *txt, size_t len, const sampling_params *p) {
    if (q->text_len + len + 1 > q->text_cap) {
        size_t cap = (q->text_len + len + 1) * 2;
        char *t = realloc(q->text, cap);
        if (!t) return -1;
        q->text = t;
        q->text_cap = cap;
    }
    const size_t old = q->text_len;
    memcpy(q->text + q->text_len, txt, len);
    q->text_len += len;
    q->text[q->text_len] = 0;
    for (int k = 0; k < p->n_stop_strings; k++) {
        const size_t sl = strlen(p->stop_strings[k]);
        if (sl == 0 || q->text_len < sl) continue;
        size_t from = old >= sl - 1 ? old - (sl - 1) : 0; /* a match must end in the new text */
        const char *hit = NULL;
        for (const char *c = q->text + from; (size_t)(c - q->text) + sl <= q->text_len; c++)
            if (memcmp(c, p->stop_strings[k], sl) == 0) {
                hit = c;
                break;
            }
        if (hit) {
            const size_t at = (size_t)(hit - q->text);
            q->text_len = at;
            q->text[at] = 0;
            int keep = 0;
            while (keep < q->n && q->text_start[keep] < at) keep++;
            q->keep = keep;
            return 1;
        }
    }
    return 0;
}
#endif

/* Records token t for sequence q and decides whether it finished. */
static int push_token(seq_state *q, int32_t t, float lp, int plen, int max_ctx,
                      const sampling_params *p, char *err, size_t errlen) {
    if (q->n == q->cap) {
        int cap = q->cap ? q->cap * 2 : 64;
        int32_t *ids = realloc(q->ids, (size_t)cap * sizeof *ids);
        if (ids) q->ids = ids;
        float *lps = realloc(q->lps, (size_t)cap * sizeof *lps);
        if (lps) q->lps = lps;
        size_t *ts = realloc(q->text_start, (size_t)cap * sizeof *ts);
        if (ts) q->text_start = ts;
        if (!ids || !lps || !ts) {
            snprintf(err, errlen, "sampler: out of host memory");
            return -1;
        }
        q->cap = cap;
    }
    q->ids[q->n] = t;
    q->lps[q->n] = lp;
    q->text_start[q->n] = q->text_len;
    q->n++;
    q->keep = q->n;
    if (contains(p->eos_ids, p->n_eos_ids, t)) {
        q->done = 1;
        q->finish = FINISH_EOS;
    } else if (contains(p->stop_ids, p->n_stop_ids, t)) {
        q->done = 1;
        q->finish = FINISH_STOP;
    }
#ifdef RLVR_HAVE_TEXT
    if (q->stream) {
        const char *txt;
        size_t len;
        if (tok_stream_push(q->stream, t, &txt, &len, err, errlen)) return -1;
        int r = append_text(q, txt, len, p);
        if (r < 0) {
            snprintf(err, errlen, "sampler: out of host memory");
            return -1;
        }
        if (r == 1) {
            q->done = 1;
            q->finish = FINISH_STOP;
        }
    }
#endif
    if (!q->done && (q->n >= max_new_of(p, q->prompt) || plen + q->n >= max_ctx)) {
        q->done = 1;
        q->finish = FINISH_LENGTH;
    }
    return 0;
}

/* Draws the next token of q from one logits row. */
static int draw(sampler *s, seq_state *q, const prompt_ref *pr, const float *row,
                const sampling_params *p, int32_t *tok, float *lp) {
    const int plen = pr->n;
    size_t need = (size_t)plen + q->n;
    if (p->repetition_penalty != 1.0f) {
        if (need > s->seen_cap) {
            int32_t *sn = realloc(s->seen, need * 2 * sizeof *sn);
            if (!sn) return -1;
            s->seen = sn;
            s->seen_cap = need * 2;
        }
        memcpy(s->seen, pr->ids, (size_t)plen * sizeof(int32_t));
        memcpy(s->seen + plen, q->ids, (size_t)q->n * sizeof(int32_t));
    }
    const sampling_controls c = {p->temperature, p->top_k, p->top_p, p->min_p,
                                 p->repetition_penalty};
    const double u = philox_uniform(p->seed, p->step, (uint32_t)pr->index, (uint32_t)q->sample,
                                    (uint32_t)q->n);
    *tok = sampling_pick(row, s->m->cfg.vocab_size, &c, s->seen,
                         p->repetition_penalty != 1.0f ? (int)need : 0, u, &s->scratch, lp);
    return *tok < 0 ? -1 : 0;
}

/* ---- drawing on the backend: only ids and log-probabilities come back ------------ */

/* Stages draw d: the uniform of (prompt, sample, position n_gen) — the same key the
 * host draw uses — and, with a repetition penalty, the ids it applies to (prompt +
 * the n_gen generated ids), appended to the step's concatenated list. */
static int stage_draw(sampler *s, int d, const prompt_ref *pr, int sample, const int32_t *gen,
                      int n_gen, const sampling_params *p) {
    if (d + 1 > s->draws_cap) {
        const int cap = (d + 1) * 2;
        float *du = realloc(s->du, (size_t)cap * sizeof *du);
        if (du) s->du = du;
        int *drow = realloc(s->drow, (size_t)cap * sizeof *drow);
        if (drow) s->drow = drow;
        int *doff = realloc(s->doff, ((size_t)cap + 1) * sizeof *doff);
        if (doff) s->doff = doff;
        int32_t *dtok = realloc(s->dtok, (size_t)cap * sizeof *dtok);
        if (dtok) s->dtok = dtok;
        float *dlp = realloc(s->dlp, (size_t)cap * sizeof *dlp);
        if (dlp) s->dlp = dlp;
        if (!du || !drow || !doff || !dtok || !dlp) return -1;
        s->draws_cap = cap;
    }
    const double u = philox_uniform(p->seed, p->step, (uint32_t)pr->index, (uint32_t)sample,
                                    (uint32_t)n_gen);
    const float uf = (float)u;
    s->du[d] = uf < 1.0f ? uf : 0x1.fffffep-1f; /* float rounding can reach 1 */
    if (d == 0) s->doff[0] = 0;
    s->doff[d + 1] = s->doff[d];
    if (p->repetition_penalty != 1.0f) {
        const size_t at = (size_t)s->doff[d], need = at + (size_t)pr->n + (size_t)n_gen;
        if (need > s->seen_cap) {
            int32_t *sn = realloc(s->seen, need * 2 * sizeof *sn);
            if (!sn) return -1;
            s->seen = sn;
            s->seen_cap = need * 2;
        }
        memcpy(s->seen + at, pr->ids, (size_t)pr->n * sizeof(int32_t));
        if (n_gen) memcpy(s->seen + at + pr->n, gen, (size_t)n_gen * sizeof(int32_t));
        s->doff[d + 1] = (int)need;
    }
    return 0;
}

/* The cached forward + D staged draws on the backend (draw_rows NULL: D = R). */
static int device_draws(sampler *s, const int32_t *ids, const int *sq, const int *ps, int N,
                        const int *rows, int R, const int *draw_rows, int D,
                        const sampling_params *p, char *err, size_t errlen) {
    const rlvr_sample_params sp = {p->temperature, p->top_k, p->top_p, p->min_p,
                                   p->repetition_penalty};
    const int pen = p->repetition_penalty != 1.0f;
    return model_decode_sample(s->m, s->kv, ids, sq, ps, N, rows, R, draw_rows, D, &sp, s->du,
                               pen ? s->seen : NULL, pen ? s->doff : NULL, s->dtok, s->dlp, err,
                               errlen);
}

/* Stages the G first draws of each admitted prompt (all read that prompt's last row). */
static int stage_prefill(sampler *s, const prompt_ref *prompts, const int *admitted, int n_adm,
                         int G, const sampling_params *p, char *err, size_t errlen) {
    for (int a = 0; a < n_adm; a++)
        for (int g = 0; g < G; g++) {
            if (stage_draw(s, a * G + g, &prompts[admitted[a]], g, NULL, 0, p)) {
                snprintf(err, errlen, "sampler: out of host memory");
                return -1;
            }
            s->drow[a * G + g] = a;
        }
    return 0;
}

/* The result of staged draw d. */
static int take_draw(sampler *s, int d, int32_t *tok, float *lp, char *err, size_t errlen) {
    *tok = s->dtok[d];
    *lp = s->dlp[d];
    if (*tok < 0 || *tok >= s->m->cfg.vocab_size) {
        snprintf(err, errlen, "sampler: the %s backend drew token %d (vocabulary %d)",
                 s->m->be->name, *tok, s->m->cfg.vocab_size);
        return -1;
    }
    return 0;
}

static int finalize(sampler *s, seq_state *q, completion *c, char *err, size_t errlen) {
#ifdef RLVR_HAVE_TEXT
    if (q->stream) {
        if (q->finish != FINISH_STOP || q->keep == q->n) { /* nothing cut: flush held bytes */
            const char *txt;
            size_t len;
            if (tok_stream_flush(q->stream, &txt, &len, err, errlen)) return -1;
            if (len && append_text(q, txt, len, &(sampling_params){0}) < 0) return -1;
        }
        tok_stream_free(q->stream);
        q->stream = NULL;
    }
#else
    (void)err;
    (void)errlen;
#endif
    kv_seq_free(s->kv, q->kv_seq);
    c->ids = q->ids;
    c->logprobs = q->lps;
    c->n = q->keep;
    c->text = q->text;
    c->finish = q->finish;
    if (s->tok && !c->text) c->text = calloc(1, 1);
    q->ids = NULL;
    q->lps = NULL;
    q->text = NULL;
    free(q->text_start);
    q->text_start = NULL;
    return 0;
}

int sampler_generate(sampler *s, const prompt_ref *prompts, int n, int G,
                     const sampling_params *p, completion **out, sampler_stats *stats,
                     char *err, size_t errlen) {
    *out = NULL;
    model *m = s->m;
    kv_cache *kv = s->kv;
    const int V = m->cfg.vocab_size;
    const int max_ctx = kv->max_blocks * kv->block_size;
    sampler_stats st = {0};
    st.kv_bytes_budget = kv_cache_bytes(kv);
    const long share_units0 = kv->share_units, share_rows0 = kv->share_rows;
    const double t_start = now();
    if (G < 1 || n < 0 || p->max_new_tokens < 1) {
        snprintf(err, errlen, "sampler: need G >= 1 (got %d) and max_new_tokens >= 1 (got %d)", G,
                 p->max_new_tokens);
        return -1;
    }
    if (p->n_stop_strings > 0 && !s->tok) {
        snprintf(err, errlen, "sampler: stop strings need a tokenizer");
        return -1;
    }
    if (G > kv->max_seqs) {
        snprintf(err, errlen, "sampler: G = %d exceeds the %d sequences the cache tracks", G,
                 kv->max_seqs);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (prompts[i].n < 1) {
            snprintf(err, errlen, "sampler: prompt %d is empty (a prompt needs at least one token)",
                     prompts[i].index);
            return -1;
        }
        if (p->max_new_tokens_each && p->max_new_tokens_each[i] < 0) {
            snprintf(err, errlen,
                     "sampler: prompt %d: max_new_tokens_each[%d] = %d (expected >= 0; 0 = the "
                     "default %d)",
                     prompts[i].index, i, p->max_new_tokens_each[i], p->max_new_tokens);
            return -1;
        }
        if (prompts[i].n >= max_ctx) {
            snprintf(err, errlen,
                     "sampler: prompt %d has %d tokens; the model's context is %d positions",
                     prompts[i].index, prompts[i].n, max_ctx);
            return -1;
        }
        for (int t = 0; t < prompts[i].n; t++)
            if (prompts[i].ids[t] < 0 || prompts[i].ids[t] >= V) {
                snprintf(err, errlen, "sampler: prompt %d: token id %d at %d is outside [0, %d)",
                         prompts[i].index, prompts[i].ids[t], t, V);
                return -1;
            }
    }
    completion *res = calloc((size_t)n * G + 1, sizeof *res);
    seq_state *seqs = calloc((size_t)n * G + 1, sizeof *seqs);
    group_state *groups = calloc((size_t)n + 1, sizeof *groups);
    int *active = malloc(((size_t)n * G + 1) * sizeof(int));
    /* per sequence id: context length and group, and scratch, for the row order */
    int *ord = malloc(((size_t)n * G + 1) * 3 * sizeof(int));
    int32_t *ids = malloc((size_t)MAX_PREFILL_TOKENS * sizeof(int32_t) + 64);
    int *sq = malloc(((size_t)MAX_PREFILL_TOKENS + MAX_SEQS) * sizeof(int) * 3 + 64);
    int rc = -1;
    if (!res || !seqs || !groups || !active || !ord || !ids || !sq) {
        snprintf(err, errlen, "sampler: out of host memory");
        goto done;
    }
    int *ps = sq + MAX_PREFILL_TOKENS + MAX_SEQS;
    int *rows = ps + MAX_PREFILL_TOKENS + MAX_SEQS;
    /* Rows per decode forward: host logits bound it on the CPU path (128 × V floats);
     * sampling on the device keeps every active sequence in one forward (the weights
     * are read once per step). */
    const int drows = s->on_device ? MAX_SEQS : MAX_DECODE_ROWS;
    const int admission_order = decode_order_admission(), pair_rows = decode_order_pairs();
    int next = 0, n_active = 0, committed = 0, finished = 0;
    while (finished < n * G) {
        /* ---- admit and prefill whole groups --------------------------------------- */
        int admitted[MAX_PREFILL_TOKENS], n_adm = 0, N = 0;
        while (next < n) {
            const prompt_ref *pr = &prompts[next];
            const int lim = max_new_of(p, next);
            int max_new = lim < max_ctx - pr->n ? lim : max_ctx - pr->n;
            const int need = pr->n / kv->block_size +
                             G * ((pr->n % kv->block_size + max_new + kv->block_size - 1) /
                                  kv->block_size);
            if (need > kv->n_blocks) {
                snprintf(err, errlen,
                         "sampler: prompt %d (%d tokens, %d samples of up to %d tokens) needs %d "
                         "cache blocks; the budget holds %d (raise the KV cache budget)",
                         pr->index, pr->n, G, max_new, need, kv->n_blocks);
                goto done;
            }
            if (committed + need > kv->n_blocks || n_active + (n_adm + 1) * G > kv->max_seqs ||
                (N > 0 && N + pr->n > MAX_PREFILL_TOKENS) || n_adm >= MAX_DECODE_ROWS)
                break;
            const int s0 = kv_seq_new(kv);
            if (s0 < 0 || kv_seq_reserve(kv, s0, pr->n)) break; /* cannot happen given need */
            groups[next].need_blocks = need;
            groups[next].live = G;
            committed += need;
            seqs[(size_t)next * G].kv_seq = s0;
            for (int t = 0; t < pr->n && N < MAX_PREFILL_TOKENS; t++, N++) {
                ids[N] = pr->ids[t];
                sq[N] = s0;
                ps[N] = t;
            }
            rows[n_adm] = N - 1;
            admitted[n_adm++] = next++;
            if (N >= MAX_PREFILL_TOKENS) break;
        }
        if (n_adm > 0) {
            double t0 = now();
            if (s->on_device
                    ? stage_prefill(s, prompts, admitted, n_adm, G, p, err, errlen) ||
                          device_draws(s, ids, sq, ps, N, rows, n_adm, s->drow, n_adm * G, p,
                                       err, errlen)
                    : grow_logits(s, n_adm) ||
                          model_decode(m, kv, ids, sq, ps, N, rows, n_adm, s->logits, err,
                                       errlen))
                goto done;
            st.prefill_s += now() - t0;
            st.prompt_tokens += N;
            for (int a = 0; a < n_adm; a++) {
                const int pi = admitted[a];
                const prompt_ref *pr = &prompts[pi];
                const int s0 = seqs[(size_t)pi * G].kv_seq;
                for (int g = 0; g < G; g++) {
                    seq_state *q = &seqs[(size_t)pi * G + g];
                    q->prompt = pi;
                    q->sample = g;
                    q->kv_seq = g == 0 ? s0 : kv_seq_fork(kv, s0);
                    if (q->kv_seq < 0) {
                        snprintf(err, errlen, "sampler: cache exhausted forking prompt %d", pr->index);
                        goto done;
                    }
#ifdef RLVR_HAVE_TEXT
                    if (s->tok && tok_stream_create((const tok_tokenizer *)s->tok, 1, &q->stream,
                                                    err, errlen))
                        goto done;
#endif
                    int32_t tok;
                    float lp;
                    if ((s->on_device ? take_draw(s, a * G + g, &tok, &lp, err, errlen)
                                      : draw(s, q, pr, s->logits + (size_t)a * V, p, &tok, &lp)) ||
                        push_token(q, tok, lp, pr->n, max_ctx, p, err, errlen))
                        goto done;
                    active[n_active++] = pi * G + g;
                }
            }
        }
        /* ---- one decode step over the active sequences (chunks of rows) ----------- */
        if (!admission_order) {
            int *len = ord, *grp = ord + (size_t)n * G + 1, *tmp = grp + (size_t)n * G + 1;
            for (int i = 0; i < n_active; i++) {
                const seq_state *q = &seqs[active[i]];
                len[active[i]] = prompts[q->prompt].n + q->n;
                grp[active[i]] = q->prompt;
            }
            decode_order_longest_first(active, n_active, len);
            if (pair_rows) decode_order_pair_groups(active, n_active, grp, tmp);
        }
        for (int c0 = 0; c0 < n_active; c0 += drows) {
            int R = 0;
            for (int i = c0; i < n_active && i < c0 + drows; i++) {
                seq_state *q = &seqs[active[i]];
                if (q->done) continue;
                const int pos = prompts[q->prompt].n + q->n - 1;
                if (kv_seq_reserve(kv, q->kv_seq, pos + 1)) {
                    snprintf(err, errlen, "sampler: cache exhausted (internal accounting error)");
                    goto done;
                }
                ids[R] = q->ids[q->n - 1];
                sq[R] = q->kv_seq;
                ps[R] = pos;
                rows[R] = R;
                if (s->on_device &&
                    stage_draw(s, R, &prompts[q->prompt], q->sample, q->ids, q->n, p)) {
                    snprintf(err, errlen, "sampler: out of host memory");
                    goto done;
                }
                R++;
            }
            if (R == 0) continue;
            double t0 = now();
            if (s->on_device ? device_draws(s, ids, sq, ps, R, rows, R, NULL, R, p, err, errlen)
                             : grow_logits(s, R) || model_decode(m, kv, ids, sq, ps, R, rows, R,
                                                                 s->logits, err, errlen))
                goto done;
            st.decode_s += now() - t0;
            if (R > st.max_active) st.max_active = R;
            int r = 0;
            for (int i = c0; i < n_active && i < c0 + drows; i++) {
                seq_state *q = &seqs[active[i]];
                if (q->done) continue;
                int32_t tok;
                float lp;
                const prompt_ref *pr = &prompts[q->prompt];
                const int rr = r++;
                if ((s->on_device ? take_draw(s, rr, &tok, &lp, err, errlen)
                                  : draw(s, q, pr, s->logits + (size_t)rr * V, p, &tok, &lp)) ||
                    push_token(q, tok, lp, pr->n, max_ctx, p, err, errlen))
                    goto done;
            }
        }
        /* ---- retire finished sequences -------------------------------------------- */
        size_t used = (size_t)kv_blocks_used(kv) * kv->block_bytes * 2 * m->cfg.num_layers;
        if (used > st.kv_bytes_peak) st.kv_bytes_peak = used;
        int w = 0;
        for (int i = 0; i < n_active; i++) {
            seq_state *q = &seqs[active[i]];
            if (!q->done) {
                active[w++] = active[i];
                continue;
            }
            completion *c = &res[active[i]];
            c->prompt_index = prompts[q->prompt].index;
            c->sample_index = q->sample;
            st.generated_tokens += q->n;
            if (finalize(s, q, c, err, errlen)) goto done;
            finished++;
            if (--groups[q->prompt].live == 0) committed -= groups[q->prompt].need_blocks;
        }
        n_active = w;
    }
    rc = 0;
    *out = res;
    res = NULL;
done:
    if (rc != 0 && seqs) { /* release what a failed call holds */
        for (int i = 0; i < n * G; i++) {
            free(seqs[i].ids);
            free(seqs[i].lps);
            free(seqs[i].text);
            free(seqs[i].text_start);
#ifdef RLVR_HAVE_TEXT
            if (seqs[i].stream) tok_stream_free(seqs[i].stream);
#endif
        }
        for (int q = 0; q < kv->max_seqs; q++)
            if (kv->seq_len[q] >= 0) kv_seq_free(kv, q);
    }
    completions_free(res, rc == 0 ? 0 : n * G);
    free(seqs);
    free(groups);
    free(active);
    free(ord);
    free(ids);
    free(sq);
    st.total_s = now() - t_start;
    st.share_units = kv->share_units - share_units0;
    st.share_rows = kv->share_rows - share_rows0;
    if (stats) *stats = st;
    return rc;
}
