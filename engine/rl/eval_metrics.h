/*
 * engine/rl/eval_metrics.h — the numbers of `rlvr eval`: pass@1, the unbiased pass@k
 * estimator of Chen et al. 2021 (Codex), and maj@k (majority vote over extracted
 * answers). Per problem: n samples, c of them correct.
 */
#ifndef RLVR_RL_EVAL_METRICS_H
#define RLVR_RL_EVAL_METRICS_H

#include "engine/rl/rl_common.h"

/* Unbiased pass@k = 1 − C(n−c, k)/C(n, k), computed as 1 − Π_{i=n−c+1..n} (1 − k/i)
 * (no large binomials; exactly 1 when n − c < k). Needs 1 ≤ k ≤ n, 0 ≤ c ≤ n.
 * pass@1 is the k = 1 case, c/n. */
int rl_pass_at_k(double *out, int n, int c, int k, char *err, size_t errlen);

/* Mean of pass@k over P problems with n[p] samples, c[p] correct (each n[p] ≥ k). */
int rl_pass_at_k_mean(double *out, const int *n, const int *c, int P, int k, char *err,
                      size_t errlen);

/* Majority vote over the first k of answers [k] (extracted final answers as
 * NUL-terminated strings, compared byte for byte after the caller's normalisation;
 * NULL or "" = no answer, which never wins). The answer with the most votes wins; a tie
 * goes to the answer whose first occurrence comes earliest in sample order (so the
 * result is deterministic and does not depend on string order). *winner = index of the
 * winning answer's first occurrence, or −1 when no sample has an answer; *votes = its
 * count (nullable). */
int rl_majority_vote(int *winner, int *votes, const char *const *answers, int k, char *err,
                     size_t errlen);

/* maj@k for one problem: 1 when the winning answer is correct (correct[winner] != 0;
 * correctness per sample as judged by the reward), 0 otherwise or when nobody answered. */
int rl_maj_at_k(int *out, const char *const *answers, const int *correct, int k, char *err,
                size_t errlen);

#endif
