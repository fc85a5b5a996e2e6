/*
 * tests/rollout/test_lmhead_sample.c — the CPU backend's fused LM head + sampling op
 * (backend.h: lmhead_sample) against distributions computed here independently (sort,
 * cut, renormalise, in double), for every control and their combinations:
 *   - a grid of N uniforms u_j = (j + ½)/N is an exact quantile sweep, so each token's
 *     frequency must equal its target probability within 1/N (tolerance 2/N + 1e-5);
 *   - N pseudo-random uniforms: every frequency within 5 binomial sigmas + 5/N (the
 *     5/N bounds the Poisson tail of thousands of tokens with N·p << 1);
 *   - sampling_pick (the CPU sampler's draw) on the same grid gives the same
 *     distribution (same tolerance), so the GPU path samples what the CPU path samples;
 *   - logprob = log softmax(z/T)[token] over the full unpenalised row (T = 1 greedy);
 *   - greedy = argmax, lowest id on ties; ties at a top-k threshold are all kept;
 *   - V = 151,936 (Qwen's vocabulary) for the radix-select thresholds;
 *   - model_decode_sample (the cached forward ending in the op, draws reading repeated
 *     rows, per-draw penalty lists) draws what the op draws on model_decode's logits.
 * The logits enter exactly: C = 1, x = 1, w[:, 0] = logits, so z = x·wᵀ = logits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/builtin.h"
#include "engine/model/kv_cache.h"
#include "engine/rollout/sampling.h"
#include "kernels/backend.h"
#include "tests/common/check.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double rnd(void) { /* splitmix64 → [0, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static const double *g_val;
static int cmp_desc(const void *a, const void *b) {
    const int x = *(const int *)a, y = *(const int *)b;
    if (g_val[x] != g_val[y]) return g_val[x] > g_val[y] ? -1 : 1;
    return x - y;
}

/* The target distribution, HF order: penalty, temperature, top-k, top-p, min-p. */
static void reference(const float *l, int V, const rlvr_sample_params *p, const int *seen,
                      int ns, double *prob) {
    double *z = malloc((size_t)V * sizeof(double));
    int *ord = malloc((size_t)V * sizeof(int));
    for (int i = 0; i < V; i++) z[i] = l[i];
    if (p->repetition_penalty != 1.0f)
        for (int j = 0; j < ns; j++) {
            const int id = seen[j];
            if (id < 0 || id >= V) continue;
            z[id] = l[id] > 0 ? l[id] / p->repetition_penalty : l[id] * p->repetition_penalty;
        }
    for (int i = 0; i < V; i++) ord[i] = i, prob[i] = 0;
    g_val = z;
    qsort(ord, (size_t)V, sizeof(int), cmp_desc);
    if (!(p->temperature > 0)) {
        prob[ord[0]] = 1;
        free(z);
        free(ord);
        return;
    }
    int n = V;
    if (p->top_k > 0 && p->top_k < V) {
        n = p->top_k;
        while (n < V && z[ord[n]] == z[ord[n - 1]]) n++; /* ties at the threshold kept */
    }
    double tot = 0;
    for (int i = 0; i < n; i++) tot += prob[ord[i]] = exp((z[ord[i]] - z[ord[0]]) / p->temperature);
    if (p->top_p < 1) {
        double acc = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            acc += prob[ord[i]];
            if (acc >= p->top_p * tot) {
                keep = i + 1;
                break;
            }
        }
        for (int i = keep; i < n; i++) prob[ord[i]] = 0;
        n = keep;
    }
    if (p->min_p > 0)
        for (int i = 0; i < n; i++)
            if (prob[ord[i]] < p->min_p) prob[ord[i]] = 0; /* prob[ord[0]] = 1 = p_max */
    tot = 0;
    for (int i = 0; i < V; i++) tot += prob[i];
    for (int i = 0; i < V; i++) prob[i] /= tot;
    free(z);
    free(ord);
}

/* log softmax(l/T)[tok]; the row's max and log-sum-exp are cached per row pointer. */
static double logprob_ref(const float *l, int V, float T, int tok) {
    static const float *row;
    static float row_T;
    static double mx, lse;
    const double inv = T > 0 ? 1.0 / T : 1.0;
    if (row != l || row_T != T) {
        double s = 0;
        mx = -INFINITY;
        for (int i = 0; i < V; i++) mx = fmax(mx, l[i]);
        for (int i = 0; i < V; i++) s += exp((l[i] - mx) * inv);
        lse = log(s);
        row = l;
        row_T = T;
    }
    return (l[tok] - mx) * inv - lse;
}

/* Draws N tokens from one row of logits with the op (grid and random u) and with
 * sampling_pick (grid), and compares all three with the reference distribution. */
static void run_case(rlvr_backend *be, const char *name, const float *l, int V,
                     rlvr_sample_params p, const int *seen, int ns, int N) {
    double *ref = malloc((size_t)V * sizeof(double));
    double *freq = malloc((size_t)V * sizeof(double));
    float *x = malloc((size_t)N * sizeof(float)), *u = malloc((size_t)N * sizeof(float));
    float *lps = malloc((size_t)N * sizeof(float));
    int *tok = malloc((size_t)N * sizeof(int)), *off = malloc(((size_t)N + 1) * sizeof(int));
    int *sn = malloc(((size_t)N * ns + 1) * sizeof(int));
    for (int j = 0; j < N; j++) {
        x[j] = 1.0f;
        off[j] = j * ns;
        memcpy(sn + (size_t)j * ns, seen, (size_t)ns * sizeof(int));
    }
    off[N] = N * ns;
    reference(l, V, &p, seen, ns, ref);
    double worst[3] = {0, 0, 0}, worst_lp = 0;
    for (int mode = 0; mode < 3; mode++) { /* 0 grid, 1 random, 2 sampling_pick grid */
        for (int j = 0; j < N; j++) {
            u[j] = mode == 1 ? (float)rnd() : (float)((j + 0.5) / N);
            if (u[j] >= 1.0f) u[j] = 0.99999994f; /* float rounding of a double near 1 */
        }
        if (mode < 2) {
            be->lmhead_sample(be, tok, lps, x, l, N, 1, V, &p, u, sn, off);
            if (be->error(be)) {
                printf("FAIL %s: backend error %s\n", name, be->error(be));
                check_failures++;
                goto out;
            }
        } else {
            const sampling_controls c = {p.temperature, p.top_k, p.top_p, p.min_p,
                                         p.repetition_penalty};
            sampling_scratch s = {0};
            for (int j = 0; j < N; j++)
                tok[j] = sampling_pick(l, V, &c, seen, ns, u[j], &s, &lps[j]);
            sampling_scratch_free(&s);
        }
        memset(freq, 0, (size_t)V * sizeof(double));
        for (int j = 0; j < N; j++) {
            if (tok[j] < 0 || tok[j] >= V) {
                printf("FAIL %s: token %d outside [0, %d)\n", name, tok[j], V);
                check_failures++;
                goto out;
            }
            freq[tok[j]] += 1.0 / N;
            worst_lp = fmax(worst_lp, fabs(lps[j] - logprob_ref(l, V, p.temperature, tok[j])));
        }
        for (int i = 0; i < V; i++) {
            const double d = fabs(freq[i] - ref[i]);
            const double tol = mode == 1 ? 5 * sqrt(ref[i] * (1 - ref[i]) / N) + 5.0 / N
                                         : 2.0 / N + 1e-5;
            if (d > tol) {
                printf("FAIL %s (%s): token %d frequency %.5f, target %.5f (tolerance %.5f)\n",
                       name, mode == 0 ? "op, grid u" : mode == 1 ? "op, random u"
                                                                   : "sampling_pick, grid u",
                       i, freq[i], ref[i], tol);
                check_failures++;
                goto out;
            }
            worst[mode] = fmax(worst[mode], d);
        }
    }
    if (worst_lp > 2e-5) {
        printf("FAIL %s: logprob differs from log softmax(z/T)[token] by %.3g\n", name, worst_lp);
        check_failures++;
        goto out;
    }
    printf("ok   %-34s V=%-6d N=%d max|freq-target| grid %.2e random %.2e sampling_pick %.2e\n",
           name, V, N, worst[0], worst[1], worst[2]);
out:
    free(ref);
    free(freq);
    free(x);
    free(u);
    free(lps);
    free(tok);
    free(off);
    free(sn);
}

static rlvr_sample_params ctl(float T, int k, float top_p, float min_p, float rp) {
    return (rlvr_sample_params){T, k, top_p, min_p, rp};
}

/* Greedy picks the lowest id among equal maxima; top-k keeps every tie at the cut. */
static void ties(rlvr_backend *be) {
    float l[8] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 2.0f, 0.0f, -3.0f};
    float one = 1.0f, u = 0.999f, lp;
    int tok;
    rlvr_sample_params g = ctl(0, 0, 1, 0, 1);
    be->lmhead_sample(be, &tok, &lp, &one, l, 1, 1, 8, &g, NULL, NULL, NULL);
    CHECK_OR_RETURN(tok == 1, "greedy picked %d among the tied maxima 1, 3, 5 (want 1)", tok);
    CHECK_OR_RETURN(fabs(lp - logprob_ref(l, 8, 1, 1)) < 1e-6, "greedy logprob %g", lp);
    rlvr_sample_params k1 = ctl(1, 1, 1, 0, 1);
    be->lmhead_sample(be, &tok, &lp, &one, l, 1, 1, 8, &k1, &u, NULL, NULL);
    CHECK_OR_RETURN(tok == 5,
                    "top_k=1 with a 3-way tie at the top and u=0.999 picked %d (want 5)", tok);
    u = 0.5f;
    be->lmhead_sample(be, &tok, &lp, &one, l, 1, 1, 8, &k1, &u, NULL, NULL);
    CHECK_OR_RETURN(tok == 3, "top_k=1 with a 3-way tie and u=0.5 picked %d (want 3)", tok);
    printf("ok   ties (greedy lowest id; top-k keeps ties)\n");
}

/* model_decode_sample (kv_cache.h) on the CPU backend: D draws that all read one prompt
 * row (crossing the gather chunk), each with its own uniform and penalty list, against
 * the op applied to that row's logits from model_decode. */
static void decode_sample_plumbing(rlvr_backend *be) {
    const char *name = "model_decode_sample";
    char err[512];
    model *m = NULL;
    kv_cache *kv = NULL;
    if (model_open("builtin:tiny-qwen3", be, &m, err, sizeof err) ||
        kv_cache_create(m, 8 << 20, 16, 4, 256, &kv, err, sizeof err)) {
        printf("FAIL %s: setup: %s\n", name, err);
        check_failures++;
        model_free(m);
        return;
    }
    const int V = m->cfg.vocab_size, P = 7, D = 700;
    int32_t ids[7];
    int seq[7], pos[7], row = P - 1;
    const int s0 = kv_seq_new(kv);
    kv_seq_reserve(kv, s0, P);
    for (int t = 0; t < P; t++) ids[t] = (int32_t)((13 * t + 5) % V), seq[t] = s0, pos[t] = t;
    float *logits = malloc((size_t)V * sizeof(float)), *u = malloc(D * sizeof(float));
    float *lp = malloc(D * sizeof(float)), one = 1.0f;
    int32_t *tok = malloc(D * sizeof(int32_t)), *seen = malloc(3 * D * sizeof(int32_t));
    int *rows0 = calloc(D, sizeof(int)), *off = malloc((D + 1) * sizeof(int));
    const rlvr_sample_params sp = {0.9f, 20, 0.95f, 0.0f, 1.3f};
    off[0] = 0;
    for (int d = 0; d < D; d++) {
        u[d] = (float)((d + 0.5) / D);
        const int n = d % 4; /* 0..3 penalty ids, different per draw */
        for (int j = 0; j < n; j++) seen[off[d] + j] = (int32_t)((d * 7 + j * 31) % V);
        off[d + 1] = off[d] + n;
    }
    int same = 0;
    double worst = 0;
    if (model_decode(m, kv, ids, seq, pos, P, &row, 1, logits, err, sizeof err) ||
        model_decode_sample(m, kv, ids, seq, pos, P, &row, 1, rows0, D, &sp, u, seen, off, tok,
                            lp, err, sizeof err)) {
        printf("FAIL %s: %s\n", name, err);
        check_failures++;
        goto out;
    }
    for (int d = 0; d < D; d++) {
        int t1;
        float l1;
        be->lmhead_sample(be, &t1, &l1, &one, logits, 1, 1, V, &sp, &u[d], seen + off[d],
                          (int[]){0, off[d + 1] - off[d]});
        same += t1 == tok[d];
        if (t1 == tok[d]) worst = fmax(worst, fabs(l1 - lp[d]));
    }
    if (same < D * 99 / 100 || worst > 1e-4) {
        printf("FAIL %s: %d/%d draws agree with the op on model_decode's logits (need 99%%), "
               "worst |dlogprob| %.3g (need <= 1e-4)\n", name, same, D, worst);
        check_failures++;
        goto out;
    }
    printf("ok   %-34s %d/%d draws as the op on model_decode's logits, |dlogprob| <= %.2g\n",
           name, same, D, worst);
out:
    free(logits);
    free(u);
    free(lp);
    free(tok);
    free(seen);
    free(rows0);
    free(off);
    kv_cache_free(kv);
    model_free(m);
}

int main(void) {
    char err[256];
    rlvr_backend *be = rlvr_backend_create("cpu", 1, err, sizeof err);
    if (!be) {
        fprintf(stderr, "cpu backend: %s\n", err);
        return 1;
    }
    if (!be->lmhead_sample) {
        fprintf(stderr, "FAIL: the cpu backend has no lmhead_sample op\n");
        return 1;
    }
    enum { V = 50, N = 20000 };
    float l[V];
    for (int i = 0; i < V; i++) l[i] = (float)(rnd() * 8 - 4);
    const int seen[] = {3, 7, 7, 11, 3, 42, -1, V + 5, 0}; /* duplicates and junk ids */
    const int ns = (int)(sizeof seen / sizeof seen[0]);
    run_case(be, "plain T=1", l, V, ctl(1, 0, 1, 0, 1), NULL, 0, N);
    run_case(be, "temperature 0.7", l, V, ctl(0.7f, 0, 1, 0, 1), NULL, 0, N);
    run_case(be, "temperature 1.5", l, V, ctl(1.5f, 0, 1, 0, 1), NULL, 0, N);
    run_case(be, "top-k 5", l, V, ctl(1, 5, 1, 0, 1), NULL, 0, N);
    run_case(be, "top-p 0.8", l, V, ctl(1, 0, 0.8f, 0, 1), NULL, 0, N);
    run_case(be, "min-p 0.1", l, V, ctl(1, 0, 1, 0.1f, 1), NULL, 0, N);
    run_case(be, "penalty 1.3", l, V, ctl(1, 0, 1, 0, 1.3f), seen, ns, N);
    run_case(be, "penalty 0.7", l, V, ctl(1, 0, 1, 0, 0.7f), seen, ns, N);
    run_case(be, "top-k 10 + top-p 0.7", l, V, ctl(1, 10, 0.7f, 0, 1), NULL, 0, N);
    run_case(be, "T 0.8 + top-k 8 + top-p 0.9 + min-p 0.05", l, V, ctl(0.8f, 8, 0.9f, 0.05f, 1),
             NULL, 0, N);
    run_case(be, "all five", l, V, ctl(1.2f, 12, 0.85f, 0.02f, 1.2f), seen, ns, N);
    run_case(be, "greedy", l, V, ctl(0, 0, 1, 0, 1), NULL, 0, 200);
    run_case(be, "greedy + penalty", l, V, ctl(0, 0, 1, 0, 1.5f), seen, ns, 200);
    ties(be);
    decode_sample_plumbing(be);
    /* Qwen's vocabulary: the radix-select thresholds over 151,936 entries */
    enum { VQ = 151936 };
    float *lq = malloc(VQ * sizeof(float));
    for (int i = 0; i < VQ; i++) lq[i] = (float)(rnd() * 16 - 8);
    run_case(be, "V=151936 top-k 40 + top-p 0.9", lq, VQ, ctl(0.6f, 40, 0.9f, 0, 1), NULL, 0,
             1000);
    run_case(be, "V=151936 top-p 0.3 + min-p 0.9", lq, VQ, ctl(1, 0, 0.3f, 0.9f, 1), NULL, 0,
             1000);
    free(lq);
    be->destroy(be);
    if (check_failures) {
        printf("%d case(s) FAILED\n", check_failures);
        return 1;
    }
    printf("all lmhead_sample cases passed\n");
    return 0;
}
