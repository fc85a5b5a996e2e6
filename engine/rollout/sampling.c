/*
 * engine/rollout/sampling.c — see sampling.h.
 *
 * Top-p without sorting the whole vocabulary: the nucleus (the smallest set of the
 * most probable tokens whose mass reaches p) is contained in {i : p_i >= t} as soon
 * as that set's mass reaches p, so t is lowered geometrically from p_max until it
 * does, and only that set is sorted.
 */
#include "engine/rollout/sampling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sampling_scratch_free(sampling_scratch *s) {
    free(s->work);
    free(s->cand);
    s->work = NULL;
    s->cand = NULL;
    s->cap = 0;
}

float sampling_logprob(const float *logits, int V, float temperature, int32_t id) {
    const double inv = temperature > 0 ? 1.0 / temperature : 1.0;
    double mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx) mx = logits[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp(((double)logits[i] - mx) * inv);
    return (float)(((double)logits[id] - mx) * inv - log(s));
}

/* Ranking: higher probability first, then lower id. */
static const float *g_rank_p;
static int rank_cmp(const void *a, const void *b) {
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    const float px = g_rank_p[x], py = g_rank_p[y];
    if (px != py) return px > py ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void rank(int32_t *ids, int n, const float *p) {
    g_rank_p = p; /* the sampler is single-threaded (sampler.h) */
    qsort(ids, (size_t)n, sizeof *ids, rank_cmp);
}

int32_t sampling_pick(const float *logits, int V, const sampling_controls *c,
                      const int32_t *seen, int n_seen, double u, sampling_scratch *s,
                      float *logprob) {
    if (s->cap < (size_t)V) {
        float *w = realloc(s->work, (size_t)V * sizeof(float));
        int32_t *cd = w ? realloc(s->cand, (size_t)V * sizeof(int32_t)) : NULL;
        if (!w || !cd) {
            if (w) s->work = w;
            return -1;
        }
        s->work = w;
        s->cand = cd;
        s->cap = (size_t)V;
    }
    float *z = s->work;
    memcpy(z, logits, (size_t)V * sizeof(float));
    if (c->repetition_penalty != 1.0f)
        for (int i = 0; i < n_seen; i++) {
            const int32_t id = seen[i];
            if (id < 0 || id >= V) continue;
            const float o = logits[id]; /* from the original: duplicates apply once */
            z[id] = o > 0 ? o / c->repetition_penalty : o * c->repetition_penalty;
        }
    if (c->temperature <= 0.0f) { /* greedy */
        int32_t best = 0;
        for (int i = 1; i < V; i++)
            if (z[i] > z[best]) best = i;
        *logprob = sampling_logprob(logits, V, 1.0f, best);
        return best;
    }
    /* probabilities (unnormalised, max = 1) of the penalised, tempered logits */
    const float inv = 1.0f / c->temperature;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (z[i] > mx) mx = z[i];
    double zsum = 0;
    for (int i = 0; i < V; i++) zsum += (z[i] = expf((z[i] - mx) * inv));
    /* The reported log-prob is over the unpenalised logits: without a repetition
     * penalty, z already holds exp((l − max)/T) for them, so no second pass is needed. */
    const int plain = c->repetition_penalty == 1.0f;
#define PICK_LOGPROB(pick)                                                                   \
    (plain ? (float)(((double)logits[pick] - mx) * inv - log(zsum))                         \
           : sampling_logprob(logits, V, c->temperature, pick))
    int32_t *cand = s->cand;
    int n = 0;
    double nucleus_total = 0; /* mass the top-p fraction refers to */
    const int filtering = c->top_k > 0 || c->top_p < 1.0f || c->min_p > 0.0f;
    if (!filtering) {
        /* the full distribution, walked in id order */
        const double target = u * zsum;
        double acc = 0;
        int32_t pick = V - 1;
        for (int i = 0; i < V; i++) {
            acc += z[i];
            if (acc > target) {
                pick = i;
                break;
            }
        }
        while (z[pick] == 0.0f && pick > 0) pick--; /* never land on a zero-mass token */
        *logprob = PICK_LOGPROB(pick);
        return pick;
    }
    if (c->top_k > 0 && c->top_k < V) {
        /* the k-th largest value as threshold: candidates above it, then rank and cut */
        for (int i = 0; i < V; i++) cand[i] = i;
        n = V;
        /* partial selection: repeatedly halve the candidate set around a pivot */
        int lo = 0, hi = V - 1, k = c->top_k;
        while (lo < hi) {
            const float pivot = z[cand[(lo + hi) / 2]];
            int i = lo, j = hi;
            while (i <= j) {
                while (z[cand[i]] > pivot) i++;
                while (z[cand[j]] < pivot) j--;
                if (i <= j) {
                    int32_t t = cand[i];
                    cand[i++] = cand[j];
                    cand[j--] = t;
                }
            }
            if (k - 1 <= j) hi = j;
            else if (k - 1 >= i) lo = i;
            else break;
        }
        const float kth = z[cand[k - 1]];
        n = 0;
        for (int i = 0; i < V; i++)
            if (z[i] >= kth) cand[n++] = i; /* ties at the threshold: rank decides below */
        rank(cand, n, z);
        if (n > c->top_k) n = c->top_k;
        for (int i = 0; i < n; i++) nucleus_total += z[cand[i]]; /* HF: top-p renormalises */
    } else if (c->top_p < 1.0f) {
        const double total = zsum;
        nucleus_total = total;
        float t = 1.0f; /* z is scaled so that its max is 1 */
        for (;;) {
            t *= 0.25f;
            double mass = 0;
            for (int i = 0; i < V; i++)
                if (z[i] >= t) mass += z[i];
            if (mass >= c->top_p * total || t < 1e-30f) break;
        }
        for (int i = 0; i < V; i++)
            if (z[i] >= t || t < 1e-30f) cand[n++] = i;
        rank(cand, n, z);
    } else {
        for (int i = 0; i < V; i++) cand[n++] = i;
        rank(cand, n, z);
    }
    if (c->top_p < 1.0f) { /* nucleus of the (top-k) candidates */
        const double total = nucleus_total;
        double acc = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            acc += z[cand[i]];
            if (acc >= c->top_p * total) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (c->min_p > 0.0f) { /* keep p_i >= min_p · p_max (p_max = the first candidate) */
        const float floor = c->min_p * z[cand[0]];
        int keep = 1;
        while (keep < n && z[cand[keep]] >= floor) keep++;
        n = keep;
    }
    double total = 0;
    for (int i = 0; i < n; i++) total += z[cand[i]];
    const double target = u * total;
    double acc = 0;
    int32_t pick = cand[n - 1];
    for (int i = 0; i < n; i++) {
        acc += z[cand[i]];
        if (acc > target) {
            pick = cand[i];
            break;
        }
    }
    *logprob = PICK_LOGPROB(pick);
    return pick;
#undef PICK_LOGPROB
}
