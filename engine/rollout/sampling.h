/*
 * engine/rollout/sampling.h — one sampling decision from one row of logits: the
 * repetition penalty, temperature, top-k, top-p, min-p, then a draw with a given
 * uniform number — plus the log-probability the trainer will recompute. Pure host code
 * over fp32; the order of the filters follows Hugging Face's generate (penalty,
 * temperature, top-k, top-p, min-p).
 *
 * Determinism: the candidates are ranked by probability, ties broken by the lower
 * token id, and the draw walks that ranking, so the result depends only on the logits
 * and u — never on thread count or batch composition.
 */
#ifndef RLVR_ROLLOUT_SAMPLING_H
#define RLVR_ROLLOUT_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float temperature; /* 0 = greedy */
    int top_k;         /* 0 = off */
    float top_p;       /* >= 1 = off */
    float min_p;       /* <= 0 = off */
    float repetition_penalty; /* 1 = off */
} sampling_controls;

/* Scratch reused across calls (grown on demand). */
typedef struct {
    float *work;       /* [V] */
    int32_t *cand;     /* [V] */
    size_t cap;
} sampling_scratch;

void sampling_scratch_free(sampling_scratch *s);

/* Picks a token from logits[V] (not modified). `seen` lists the ids the repetition
 * penalty applies to (prompt + generated; duplicates allowed). u ∈ [0, 1). Writes the
 * token's log-probability under softmax(logits / T) over the full vocabulary (T = 1
 * when greedy) to *logprob. Returns the token id, or -1 when out of memory. */
int32_t sampling_pick(const float *logits, int V, const sampling_controls *c,
                      const int32_t *seen, int n_seen, double u, sampling_scratch *s,
                      float *logprob);

/* log softmax(logits / T)[id] over V (stable, double accumulation). */
float sampling_logprob(const float *logits, int V, float temperature, int32_t id);

#endif
