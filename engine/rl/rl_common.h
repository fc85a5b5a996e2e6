/*
 * engine/rl/rl_common.h — what every part of the host-side RL math shares: error codes,
 * the group structure of a batch of completions, and the per-token layout of a packed
 * batch (which entries of a per-token array belong to which completion).
 *
 * All of engine/rl is pure functions over caller-owned plain arrays: no hidden state, no
 * global state, deterministic (fixed summation order, double accumulators). Functions
 * return RL_OK (0) or a negative rl_status and write a one-line message naming the
 * argument, the index and the value into err (errlen bytes; err may be NULL).
 * Formulas and the published recipe each option reproduces: docs/algorithms.md.
 */
#ifndef RLVR_RL_COMMON_H
#define RLVR_RL_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RL_OK = 0,
    RL_EARG = -1,   /* an argument is out of its range (negative G, γ > 1, NULL array, ...) */
    RL_ESHAPE = -2, /* sizes disagree (n not a multiple of G, span outside the array, ...) */
    RL_EVALUE = -3, /* an input value is not finite (NaN / Inf reward, value, log-prob) */
    RL_ENOMEM = -4  /* a scratch allocation failed */
} rl_status;

/* "ok", "bad argument", "mismatched sizes", "non-finite value", "out of memory". */
const char *rl_strerror(int status);

/* How n completions form groups (one group = the G completions of one prompt).
 * Either contiguous groups of group_size (completions [g·G, (g+1)·G) form group g;
 * n must be a multiple of G), or, when group_id != NULL, an explicit group of each
 * completion: group_id[i] in [0, n), any order, ids need not be dense (group_size is
 * then ignored). Group slots are numbered 0 .. rl_group_slots()−1; with explicit ids a
 * slot may be empty. */
typedef struct {
    int n;                   /* completions */
    int group_size;          /* G ≥ 1 for contiguous groups */
    const int32_t *group_id; /* [n] or NULL */
} rl_groups;

/* Checks g (n ≥ 0, G ≥ 1 dividing n, ids in range). */
int rl_groups_check(const rl_groups *g, char *err, size_t errlen);
/* Number of group slots: n / G, or n for explicit ids (0 when n = 0). */
int rl_group_slots(const rl_groups *g);
/* The slot of completion i. */
int rl_group_of(const rl_groups *g, int i);

/* Per-token layout of a packed batch of B completions over per-token arrays of length T
 * (losses, advantages, log-probs, weights ...). Completion i owns the entries
 * [start[i], start[i] + len[i]); len[i] = |o_i| may be 0. Spans are disjoint and in
 * increasing order; entries outside every span (prompt tokens) are never scored. */
typedef struct {
    int T;                /* per-token array length */
    int B;                /* completions */
    const int32_t *start; /* [B] */
    const int32_t *len;   /* [B] */
} rl_spans;

/* Checks sp (T, B ≥ 0, spans inside [0, T), disjoint, increasing). */
int rl_spans_check(const rl_spans *sp, char *err, size_t errlen);

/* Spans of a packed batch as engine/model lays it out: sequence i (prompt then
 * completion) occupies tokens [offsets[i], offsets[i+1]) and its first prompt_len[i]
 * tokens are the prompt. Because logp[t] (model.h) is the log-probability of token t+1,
 * completion i's scored entries are [offsets[i] + prompt_len[i] − 1, offsets[i+1] − 1):
 * start[i] = offsets[i] + prompt_len[i] − 1, len[i] = offsets[i+1] − offsets[i] −
 * prompt_len[i]. Needs prompt_len[i] ≥ 1. start/len: caller arrays [B]. */
int rl_spans_from_packed(int32_t *start, int32_t *len, const int32_t *offsets,
                         const int32_t *prompt_len, int B, char *err, size_t errlen);

/* Writes seq[i] to every entry of span i, 0 to entries outside all spans: per-completion
 * advantages → per-token advantages. tok [sp->T], seq [sp->B]. */
int rl_broadcast(float *tok, const float *seq, const rl_spans *sp, char *err, size_t errlen);

/* Marks the scored entries: valid[t] = 1 inside a span (times mask[t] when mask != NULL,
 * e.g. truncated completions masked out), 0 elsewhere. valid [sp->T], mask [sp->T]. */
int rl_valid_mask(float *valid, const float *mask, const rl_spans *sp, char *err,
                  size_t errlen);

#endif
