/*
 * engine/rl/eval_metrics.c — pass@k and maj@k (eval_metrics.h).
 */
#include <stdio.h>
#include <string.h>

#include "engine/rl/eval_metrics.h"
#include "engine/rl/rl_internal.h"

int rl_pass_at_k(double *out, int n, int c, int k, char *err, size_t errlen) {
    if (!out) return rl_fail(err, errlen, RL_EARG, "rl_pass_at_k: NULL output");
    if (n < 1 || k < 1 || k > n || c < 0 || c > n)
        return rl_fail(
            err, errlen, RL_EARG,
            "rl_pass_at_k: n = %d, c = %d, k = %d (expected 1 <= k <= n, 0 <= c <= n)", n, c,
            k);
    if (n - c < k) {
        *out = 1.0;
        return RL_OK;
    }
    /* C(n−c, k)/C(n, k) = Π_{i=n−c+1}^{n} (i − k)/i: c factors, each in (0, 1). */
    double prod = 1.0;
    for (int i = n - c + 1; i <= n; i++)
        prod *= 1.0 - (double)k / i;
    *out = 1.0 - prod;
    return RL_OK;
}

int rl_pass_at_k_mean(double *out, const int *n, const int *c, int P, int k, char *err,
                      size_t errlen) {
    const char *fn = "rl_pass_at_k_mean";
    if (!out) return rl_fail(err, errlen, RL_EARG, "%s: NULL output", fn);
    if (P < 1)
        return rl_fail(err, errlen, RL_EARG, "%s: P = %d problems (expected >= 1)", fn, P);
    int rc;
    if ((rc = rl_need(n, P, fn, "n", err, errlen)) ||
        (rc = rl_need(c, P, fn, "c", err, errlen)))
        return rc;
    double s = 0;
    for (int p = 0; p < P; p++) {
        double v;
        if ((rc = rl_pass_at_k(&v, n[p], c[p], k, err, errlen))) {
            char inner[256];
            snprintf(inner, sizeof inner, "%s", err ? err : "");
            return rl_fail(err, errlen, rc, "%s: problem %d: %s", fn, p, inner);
        }
        s += v;
    }
    *out = s / P;
    return RL_OK;
}

int rl_majority_vote(int *winner, int *votes, const char *const *answers, int k, char *err,
                     size_t errlen) {
    const char *fn = "rl_majority_vote";
    if (!winner) return rl_fail(err, errlen, RL_EARG, "%s: NULL output", fn);
    if (k < 1) return rl_fail(err, errlen, RL_EARG, "%s: k = %d (expected >= 1)", fn, k);
    int rc = rl_need(answers, k, fn, "answers", err, errlen);
    if (rc) return rc;
    int best = -1, best_votes = 0;
    /* O(k²) over first occurrences: k is a handful to a few hundred samples. Visiting
     * first occurrences in sample order and replacing only on a strictly larger count
     * gives the earliest-first-occurrence tie rule. */
    for (int i = 0; i < k; i++) {
        if (!answers[i] || !answers[i][0]) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = answers[j] && !strcmp(answers[j], answers[i]);
        if (seen) continue;
        int v = 0;
        for (int j = i; j < k; j++)
            v += answers[j] && !strcmp(answers[j], answers[i]);
        if (v > best_votes) best = i, best_votes = v;
    }
    *winner = best;
    if (votes) *votes = best_votes;
    return RL_OK;
}

int rl_maj_at_k(int *out, const char *const *answers, const int *correct, int k, char *err,
                size_t errlen) {
    if (!out) return rl_fail(err, errlen, RL_EARG, "rl_maj_at_k: NULL output");
    int rc = rl_need(correct, k, "rl_maj_at_k", "correct", err, errlen), w;
    if (rc || (rc = rl_majority_vote(&w, NULL, answers, k, err, errlen))) return rc;
    *out = w >= 0 && correct[w] != 0;
    return RL_OK;
}
