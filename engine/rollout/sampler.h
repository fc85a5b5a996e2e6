/*
 * engine/rollout/sampler.h — grouped generation over a paged KV cache: G completions
 * per prompt, each prompt prefilled once and its cached keys/values shared by its
 * group; decode steps over the batch of still-active sequences (finished ones leave
 * the batch); every sampling control users expect; reproducible by seed.
 *
 * Reproducibility: the random number for the token at position `pos` of sample `s` of
 * prompt `p` at training step `step` comes from a counter-based generator (Philox
 * 4x32-10) keyed by (seed) with counter (step, p, s, pos), so a completion depends
 * neither on batch size, nor batch order, nor how many ranks share the work. Prompt
 * indices are the caller's (global) indices, not positions in this call's array.
 *
 * Log-probabilities: logprobs[t] is log softmax(logits / temperature)[token] over the
 * full vocabulary — what the trainer recomputes at the same temperature. Top-k,
 * top-p, min-p and the repetition penalty change which token is drawn but are not
 * folded into the reported log-probability. Temperature 0 means greedy (argmax); its
 * log-probabilities are reported at temperature 1.
 *
 * Stop strings: generation stops when the decoded completion contains a stop string.
 * The returned text ends just before the stop string; the returned ids keep every
 * token whose text begins before the stop string (a token straddling the boundary is
 * kept, tokens wholly inside or after it are dropped), so the trained completion does
 * not contain the stop string except possibly a prefix of it inside that one token.
 * EOS and stop ids are kept as the last token (finish "eos" / "stop").
 *
 * Threading: a sampler is used by one thread at a time.
 */
#ifndef RLVR_ROLLOUT_SAMPLER_H
#define RLVR_ROLLOUT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/model.h"

struct tok_tokenizer; /* engine/text/tokenizer.h; optional */

typedef enum { FINISH_EOS = 0, FINISH_STOP = 1, FINISH_LENGTH = 2 } finish_reason;
const char *finish_reason_name(finish_reason r); /* "eos", "stop", "length" */

typedef struct {
    float temperature;        /* 0 = greedy; default 1 */
    int top_k;                /* 0 = off */
    float top_p;              /* 1 = off */
    float min_p;              /* 0 = off */
    float repetition_penalty; /* 1 = off (HF: logit>0 ? logit/r : logit*r over seen ids) */
    int max_new_tokens;       /* default 256 */
    const int32_t *stop_ids;  /* end generation (finish "eos" for eos_ids, "stop" else) */
    int n_stop_ids;
    const int32_t *eos_ids;   /* EOS ids (finish "eos"); default: none */
    int n_eos_ids;
    const char *const *stop_strings; /* need a tokenizer */
    int n_stop_strings;
    uint64_t seed;
    uint64_t step;            /* training step, part of the RNG counter */
    /* Optional per-prompt length limits [n], by position in sampler_generate's prompts
     * array: entry i > 0 replaces max_new_tokens for prompt i; NULL or 0 = max_new_tokens. */
    const int *max_new_tokens_each;
} sampling_params;

/* Defaults: temperature 1, top_k 0, top_p 1, min_p 0, penalty 1, 256 new tokens. */
sampling_params sampling_params_default(void);

typedef struct {
    int prompt_index;      /* the caller's index for the prompt */
    int sample_index;      /* 0..G-1 within its group */
    int32_t *ids;          /* completion token ids [n] */
    float *logprobs;       /* [n], see above */
    int n;
    char *text;            /* decoded completion (NULL without a tokenizer) */
    finish_reason finish;
} completion;

typedef struct {
    const int32_t *ids;    /* prompt token ids (after the chat template), n >= 1 */
    int n;
    int index;             /* global prompt index (RNG key, reported back) */
} prompt_ref;

typedef struct {
    double prefill_s, decode_s, total_s;
    long prompt_tokens, generated_tokens;
    size_t kv_bytes_budget, kv_bytes_peak; /* KV cache memory: budget and high-water mark */
    int max_active;        /* largest decode batch */
    long share_units;      /* shared-prefix units the decode steps' attention took, summed
                            * over steps (kv_share.h: a group's samples reading their
                            * prompt's keys once) */
    long share_rows;       /* the rows (samples) in them, summed over steps */
} sampler_stats;

typedef struct sampler sampler;

/* kv_budget_bytes: memory for the paged cache (0 = 1 GiB); the tokenizer is optional
 * (needed for text and stop strings). */
int sampler_create(model *m, const struct tok_tokenizer *tok, size_t kv_budget_bytes,
                   sampler **out, char *err, size_t errlen);
void sampler_free(sampler *s);

/* Generates G completions for each of n prompts. *out receives n·G completions,
 * ordered by (prompt, sample); free with completions_free. A prompt longer than the
 * model's context, or one that cannot fit the cache budget with one sample, is an
 * error naming the prompt. */
int sampler_generate(sampler *s, const prompt_ref *prompts, int n, int G,
                     const sampling_params *p, completion **out, sampler_stats *stats,
                     char *err, size_t errlen);
void completions_free(completion *c, int n);

#endif
