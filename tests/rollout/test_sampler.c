/*
 * tests/rollout/test_sampler.c — the sampler's promises:
 *   1. the Philox generator matches the Random123 known-answer vectors;
 *   2. sampling distributions on a small vocabulary (temperature, top-k, top-p, min-p,
 *      repetition penalty) match the expected frequencies (chi-square, fixed seed);
 *   3. greedy and seeded sampling give the same completion for a prompt whatever the
 *      batch size, the batch order, the decode rows' order (longest context first or
 *      admission order, RLVR_DECODE_ORDER) and G; a different seed changes sampled output;
 *   4. the reported log-probabilities equal a full forward at the same temperature;
 *   5. EOS ids, stop ids, max length and per-prompt length limits end generation with
 *      the right finish reason;
 *   6. stop strings across token boundaries (with a real byte-level BPE tokenizer);
 *   7. empty prompts, prompts longer than the context, bad G: clear errors.
 * usage: test_sampler TOKENIZER_DIR (a GPT-2-style tokenizer.json, vocab ~2.3k)
 */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/builtin.h"
#include "engine/rollout/philox.h"
#include "engine/rollout/sampler.h"
#include "engine/rollout/sampling.h"
#include "engine/text/tokenizer.h"
#include "tests/common/check.h"

static void test_philox(void) {
    static const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                       {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                                       {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}};
    static const uint32_t key[3][2] = {{0, 0}, {0xffffffff, 0xffffffff}, {0xa4093822, 0x299f31d0}};
    static const uint32_t want[3][4] = {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                                        {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                                        {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        philox4x32(ctr[i], key[i], out);
        CHECK(!memcmp(out, want[i], sizeof out), "philox KAT %d: %08x %08x %08x %08x", i, out[0],
              out[1], out[2], out[3]);
    }
}

/* Draws n samples with controls c from logits[V] and compares with expected probs. */
static void chi_square(const char *name, const float *logits, int V, sampling_controls c,
                       const double *expect, const int32_t *seen, int n_seen) {
    enum { DRAWS = 40000 };
    int counts[16] = {0};
    sampling_scratch s = {0};
    for (int i = 0; i < DRAWS; i++) {
        float lp;
        int32_t t = sampling_pick(logits, V, &c, seen, n_seen, philox_uniform(99, 0, 0, 0, i), &s,
                                  &lp);
        counts[t]++;
    }
    sampling_scratch_free(&s);
    double chi = 0;
    int df = -1;
    for (int i = 0; i < V; i++) {
        if (expect[i] == 0) {
            CHECK(counts[i] == 0, "%s: token %d has probability 0 but was drawn %d times", name, i,
                  counts[i]);
            continue;
        }
        const double e = expect[i] * DRAWS;
        chi += (counts[i] - e) * (counts[i] - e) / e;
        df++;
    }
    /* 99.9% critical values of chi-square for df = 1..7 */
    static const double crit[8] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32};
    CHECK(df >= 1 && df <= 7 && chi < crit[df], "%s: chi-square %.2f with %d dof", name, chi, df);
    printf("distribution %-22s chi2 = %6.2f (df %d)\n", name, chi, df);
}

static void test_distributions(void) {
    const int V = 8;
    const float logits[8] = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -3.0f};
    double p[8], q[8];
    /* temperature 0.7: softmax(logits / 0.7) */
    double z = 0;
    for (int i = 0; i < V; i++) z += (p[i] = exp(logits[i] / 0.7));
    for (int i = 0; i < V; i++) p[i] /= z;
    chi_square("temperature 0.7", logits, V, (sampling_controls){0.7f, 0, 1.0f, 0.0f, 1.0f}, p,
               NULL, 0);
    /* top-k 3 at T=1 */
    z = 0;
    for (int i = 0; i < V; i++) z += (q[i] = i < 3 ? exp(logits[i]) : 0);
    for (int i = 0; i < V; i++) q[i] /= z;
    chi_square("top-k 3", logits, V, (sampling_controls){1.0f, 3, 1.0f, 0.0f, 1.0f}, q, NULL, 0);
    /* top-p 0.8 at T=1: cumulative of sorted probs reaches 0.8 at some k */
    z = 0;
    for (int i = 0; i < V; i++) z += (p[i] = exp(logits[i]));
    double acc = 0;
    int keep = 0;
    while (keep < V) {
        acc += p[keep] / z;
        keep++;
        if (acc >= 0.8) break;
    }
    z = 0;
    for (int i = 0; i < V; i++) z += (q[i] = i < keep ? p[i] : 0);
    for (int i = 0; i < V; i++) q[i] /= z;
    chi_square("top-p 0.8", logits, V, (sampling_controls){1.0f, 0, 0.8f, 0.0f, 1.0f}, q, NULL, 0);
    /* min-p 0.2: keep p_i >= 0.2 p_max, i.e. logit >= 2 + ln 0.2 = 0.39 */
    z = 0;
    for (int i = 0; i < V; i++) z += (q[i] = logits[i] >= 2.0f + logf(0.2f) ? exp(logits[i]) : 0);
    for (int i = 0; i < V; i++) q[i] /= z;
    chi_square("min-p 0.2", logits, V, (sampling_controls){1.0f, 0, 1.0f, 0.2f, 1.0f}, q, NULL, 0);
    /* repetition penalty 2 on tokens 0 (positive logit: /2) and 6 (negative: ×2) */
    float pen[8];
    memcpy(pen, logits, sizeof pen);
    pen[0] /= 2.0f;
    pen[6] *= 2.0f;
    z = 0;
    for (int i = 0; i < V; i++) z += (q[i] = exp(pen[i]));
    for (int i = 0; i < V; i++) q[i] /= z;
    const int32_t seen[3] = {0, 6, 0};
    chi_square("repetition penalty 2", logits, V, (sampling_controls){1.0f, 0, 1.0f, 0.0f, 2.0f}, q,
               seen, 3);
    /* greedy picks the argmax and reports log p at T=1 */
    sampling_scratch s = {0};
    float lp;
    int32_t g = sampling_pick(logits, V, &(sampling_controls){0, 0, 1, 0, 1}, NULL, 0, 0.5, &s, &lp);
    CHECK(g == 0 && fabsf(lp - sampling_logprob(logits, V, 1.0f, 0)) < 1e-7f, "greedy pick %d", g);
    sampling_scratch_free(&s);
}

/* Same tokens and finish; log-probs within 1e-5 (a different batch size changes the
 * BLAS blocking, hence the last bits, not the tokens). */
static int same_completion(const completion *a, const completion *b) {
    if (a->n != b->n || a->finish != b->finish || memcmp(a->ids, b->ids, a->n * sizeof(int32_t)))
        return 0;
    for (int i = 0; i < a->n; i++)
        if (fabsf(a->logprobs[i] - b->logprobs[i]) > 1e-5f) return 0;
    return 1;
}

static void test_invariance(model *m, sampler *s) {
    char err[1024];
    /* pc: long enough (40 tokens, two full cache blocks) that its G samples form a
     * shared-prefix unit in every decode step (kv_share.h; the CPU backend checks each
     * unit against the block tables) */
    enum { NC = 40 };
    int32_t pa[5] = {3, 14, 15, 92, 65}, pb[1] = {35}, pc[NC];
    for (int i = 0; i < NC; i++) pc[i] = (i * 37 + 11) % m->cfg.vocab_size;
    prompt_ref all[3] = {{pa, 5, 0}, {pb, 1, 1}, {pc, NC, 2}};
    prompt_ref rev[2] = {{pc, NC, 2}, {pa, 5, 0}};
    for (int greedy = 1; greedy >= 0; greedy--) {
        sampling_params p = sampling_params_default();
        p.temperature = greedy ? 0.0f : 0.9f;
        p.top_k = greedy ? 0 : 50;
        p.max_new_tokens = 24;
        p.seed = 42;
        completion *c1 = NULL, *c2 = NULL, *c3 = NULL, *c0 = NULL;
        sampler_stats st1;
        CHECK(sampler_generate(s, all, 3, 3, &p, &c1, &st1, err, sizeof err) == 0, "%s", err);
        CHECK(st1.share_units >= p.max_new_tokens - 1,
              "%s: %ld shared-prefix units over the decode steps (expected one per step)",
              greedy ? "greedy" : "sampled", st1.share_units);
        /* all three samples in it, every step (the decode order keeps an odd group whole
         * unless RLVR_DECODE_ATTN_PAIR=1) */
        CHECK(st1.share_rows == 3 * st1.share_units, "%s: %ld rows in %ld units (expected 3 "
              "each)", greedy ? "greedy" : "sampled", st1.share_rows, st1.share_units);
        /* without the units (RLVR_DECODE_SHARE=0): the same completions */
        completion *cn = NULL;
        setenv("RLVR_DECODE_SHARE", "0", 1);
        sampler *sn = NULL;
        CHECK(sampler_create(m, NULL, 0, &sn, err, sizeof err) == 0, "%s", err);
        sampler_stats stn;
        CHECK(sn && sampler_generate(sn, all, 3, 3, &p, &cn, &stn, err, sizeof err) == 0, "%s",
              err);
        unsetenv("RLVR_DECODE_SHARE");
        CHECK(stn.share_units == 0, "RLVR_DECODE_SHARE=0: %ld units", stn.share_units);
        for (int i = 0; cn && c1 && i < 9; i++)
            CHECK(same_completion(&cn[i], &c1[i]), "%s: completion %d differs without the "
                  "shared-prefix units", greedy ? "greedy" : "sampled", i);
        completions_free(cn, 9);
        sampler_free(sn);
        /* decode rows in admission order instead of longest context first: the same */
        setenv("RLVR_DECODE_ORDER", "admission", 1);
        CHECK(sampler_generate(s, all, 3, 3, &p, &c0, NULL, err, sizeof err) == 0, "%s", err);
        unsetenv("RLVR_DECODE_ORDER");
        for (int i = 0; c0 && c1 && i < 9; i++)
            CHECK(same_completion(&c0[i], &c1[i]), "%s: completion %d differs with the decode "
                  "rows in admission order", greedy ? "greedy" : "sampled", i);
        completions_free(c0, 9);
        CHECK(sampler_generate(s, rev, 2, 3, &p, &c2, NULL, err, sizeof err) == 0, "%s", err);
        CHECK(sampler_generate(s, &all[2], 1, 1, &p, &c3, NULL, err, sizeof err) == 0, "%s", err);
        if (c1 && c2 && c3) {
            for (int g = 0; g < 3; g++) {
                CHECK(same_completion(&c1[2 * 3 + g], &c2[0 * 3 + g]), "%s: prompt 2 sample %d differs with batch order",
                      greedy ? "greedy" : "sampled", g);
                CHECK(same_completion(&c1[0 * 3 + g], &c2[1 * 3 + g]), "%s: prompt 0 sample %d differs with batch order",
                      greedy ? "greedy" : "sampled", g);
                CHECK(c1[3 * 0 + g].prompt_index == 0 && c1[3 * 0 + g].sample_index == g, "indices");
            }
            CHECK(same_completion(&c1[2 * 3], &c3[0]), "%s: sample 0 differs between G=3 and G=1",
                  greedy ? "greedy" : "sampled");
            if (greedy)
                CHECK(same_completion(&c1[0], &c1[1]), "greedy samples of one prompt differ");
            else
                CHECK(!same_completion(&c1[0], &c1[1]) || !same_completion(&c1[1], &c1[2]),
                      "sampled completions of a group are all identical");
        }
        /* a different seed changes sampled output */
        if (!greedy) {
            completion *c4 = NULL;
            p.seed = 43;
            CHECK(sampler_generate(s, all, 3, 3, &p, &c4, NULL, err, sizeof err) == 0, "%s", err);
            int differ = 0;
            for (int i = 0; c4 && c1 && i < 9; i++) differ += !same_completion(&c1[i], &c4[i]);
            CHECK(differ > 0, "seed 43 gave the same completions as seed 42");
            completions_free(c4, 9);
        }
        /* reported log-probs = full forward at the sampling temperature */
        if (c1) {
            const completion *c = &c1[2 * 3 + 1];
            int T = NC + c->n;
            int32_t *seq = malloc(T * sizeof *seq), offs[2] = {0, T};
            memcpy(seq, pc, NC * sizeof *seq);
            memcpy(seq + NC, c->ids, c->n * sizeof *seq);
            model_batch b = {.T = T, .B = 1, .ids = seq, .offsets = offs};
            float *lp = malloc(T * sizeof(float));
            CHECK(model_forward(m, &b, greedy ? 1.0f : 1.0f / 0.9f, 0, err, sizeof err) == 0, "%s", err);
            m->be->to_host(m->be, lp, model_logp(m), T * sizeof(float));
            double worst = 0;
            for (int t = 0; t < c->n; t++) worst = fmax(worst, fabs(lp[NC - 1 + t] - c->logprobs[t]));
            CHECK(worst <= 1e-5, "sampler vs trainer log-prob mismatch %.3g", worst);
            printf("%s: sampler vs full-forward log-prob mismatch %.3g over %d tokens\n",
                   greedy ? "greedy" : "sampled T=0.9", worst, c->n);
            free(seq);
            free(lp);
        }
        completions_free(c1, 9);
        completions_free(c2, 6);
        completions_free(c3, 1);
    }
}

static void test_stops(model *m, sampler *s, const tok_tokenizer *tok) {
    char err[1024];
    int32_t *pid = NULL;
    size_t np = 0;
    const char *ptxt = "The quick brown fox";
    CHECK(tok_encode(tok, ptxt, strlen(ptxt), &pid, &np, err, sizeof err) == 0, "%s", err);
    prompt_ref pr = {pid, (int)np, 7};
    sampling_params p = sampling_params_default(); /* seeded sampling: reruns are identical */
    p.seed = 5;
    p.max_new_tokens = 40;
    completion *base = NULL;
    CHECK(sampler_generate(s, &pr, 1, 1, &p, &base, NULL, err, sizeof err) == 0, "%s", err);
    if (!base) return;
    CHECK(base[0].finish == FINISH_LENGTH && base[0].n == 40, "max length: finish %s n %d",
          finish_reason_name(base[0].finish), base[0].n);
    /* Per-prompt limits: entry 7 cuts the same seeded completion to its first 7 tokens,
     * entry 0 keeps the params' 40; a negative entry is an error naming it. */
    {
        prompt_ref two[2] = {pr, pr};
        int lims[2] = {7, 0};
        p.max_new_tokens_each = lims;
        completion *cl = NULL;
        CHECK(sampler_generate(s, two, 2, 1, &p, &cl, NULL, err, sizeof err) == 0, "%s", err);
        CHECK(cl && cl[0].n == 7 && cl[0].finish == FINISH_LENGTH &&
                  !memcmp(cl[0].ids, base[0].ids, 7 * sizeof(int32_t)),
              "per-prompt limit 7: n %d", cl ? cl[0].n : -1);
        CHECK(cl && cl[1].n == 40 && !memcmp(cl[1].ids, base[0].ids, 40 * sizeof(int32_t)),
              "per-prompt limit 0 (default 40): n %d", cl ? cl[1].n : -1);
        completions_free(cl, 2);
        lims[0] = -1;
        CHECK(sampler_generate(s, two, 2, 1, &p, &cl, NULL, err, sizeof err) != 0 &&
                  strstr(err, "max_new_tokens_each[0] = -1"),
              "negative per-prompt limit: %s", err);
        p.max_new_tokens_each = NULL;
    }
    /* EOS: declare the 6th generated token an EOS id → stops there, token kept */
    int32_t eos = base[0].ids[5];
    int first = 0;
    while (base[0].ids[first] != eos) first++;
    p.eos_ids = &eos;
    p.n_eos_ids = 1;
    completion *c = NULL;
    CHECK(sampler_generate(s, &pr, 1, 1, &p, &c, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(c && c[0].finish == FINISH_EOS && c[0].n == first + 1 && c[0].ids[first] == eos,
          "eos: finish %s n %d (want %d)", c ? finish_reason_name(c[0].finish) : "?", c ? c[0].n : -1,
          first + 1);
    completions_free(c, 1);
    p.eos_ids = NULL;
    p.n_eos_ids = 0;
    p.stop_ids = &eos;
    p.n_stop_ids = 1;
    CHECK(sampler_generate(s, &pr, 1, 1, &p, &c, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(c && c[0].finish == FINISH_STOP && c[0].n == first + 1, "stop id");
    completions_free(c, 1);
    p.stop_ids = NULL;
    p.n_stop_ids = 0;
    /* Stop string spanning a token boundary: the last 2 characters of token 3's text and
     * the first character of token 4's text (skipping tokens with short text). */
    const char *text = base[0].text;
    size_t starts[42];
    for (int i = 0; i <= base[0].n; i++) {
        char *piece = NULL;
        size_t len = 0;
        tok_decode(tok, base[0].ids, i, 1, &piece, &len, err, sizeof err);
        starts[i] = len;
        free(piece);
    }
    printf("completion text: \"%s\"\n", text);
    int k = 0;
    while (k + 1 < base[0].n && (starts[k + 1] - starts[k] < 2 || starts[k + 2] - starts[k + 1] < 1)) k++;
    if (k + 1 < base[0].n) {
        const size_t at = starts[k + 1] - 2; /* stop string starts inside token k */
        char stop[4] = {text[at], text[at + 1], text[at + 2], 0};
        /* the first occurrence of stop in the completion decides */
        const char *hit = strstr(text, stop);
        const size_t hit_at = (size_t)(hit - text);
        int keep = 0;
        while (keep < base[0].n && starts[keep] < hit_at) keep++;
        const char *stops[1] = {stop};
        p.stop_strings = stops;
        p.n_stop_strings = 1;
        CHECK(sampler_generate(s, &pr, 1, 1, &p, &c, NULL, err, sizeof err) == 0, "%s", err);
        if (c) {
            CHECK(c[0].finish == FINISH_STOP, "stop string: finish %s", finish_reason_name(c[0].finish));
            CHECK(strlen(c[0].text) == hit_at && !strncmp(c[0].text, text, hit_at),
                  "stop string: text '%s' should be the first %zu bytes of '%s'", c[0].text, hit_at, text);
            CHECK(c[0].n == keep, "stop string '%s': kept %d tokens, want %d", stop, c[0].n, keep);
            printf("stop string \"%s\" across tokens: text cut at byte %zu, %d tokens kept\n", stop,
                   hit_at, c[0].n);
        }
        completions_free(c, 1);
        p.stop_strings = NULL;
        p.n_stop_strings = 0;
    } else {
        CHECK(0, "could not find a token boundary for the stop-string test");
    }
    completions_free(base, 1);
    free(pid);
    /* errors */
    prompt_ref empty = {pid, 0, 3};
    CHECK(sampler_generate(s, &empty, 1, 1, &p, &c, NULL, err, sizeof err) != 0 &&
              strstr(err, "prompt 3 is empty"), "empty prompt: %s", err);
    int32_t *longp = calloc(70000, sizeof *longp);
    prompt_ref lp = {longp, 70000, 4};
    CHECK(sampler_generate(s, &lp, 1, 1, &p, &c, NULL, err, sizeof err) != 0 &&
              strstr(err, "prompt 4 has 70000 tokens"), "long prompt: %s", err);
    free(longp);
    CHECK(sampler_generate(s, &pr, 1, 0, &p, &c, NULL, err, sizeof err) != 0 && strstr(err, "G >= 1"),
          "G = 0: %s", err);
    (void)m;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_sampler TOKENIZER_DIR\n");
        return 2;
    }
    char err[1024];
    test_philox();
    test_distributions();
    tok_tokenizer *tok = NULL;
    if (tok_load(argv[1], &tok, err, sizeof err)) {
        printf("FAIL tokenizer: %s\n", err);
        return 1;
    }
    model_config cfg;
    model_builtin_config("tiny-qwen3", &cfg, err, sizeof err);
    cfg.vocab_size = tok_vocab_size(tok);
    rlvr_backend *be = rlvr_cpu_backend_create(0);
    model *m = NULL;
    sampler *s = NULL;
    if (model_create(&cfg, be, &m, err, sizeof err) ||
        (model_init_random(m, 77), sampler_create(m, tok, 8 << 20, &s, err, sizeof err))) {
        printf("FAIL setup: %s\n", err);
        return 1;
    }
    test_invariance(m, s);
    test_stops(m, s, tok);
    sampler_free(s);
    model_free(m);
    be->destroy(be);
    tok_free(tok);
    printf(check_failures ? "%d failure(s)\n" : "all sampler checks passed\n", check_failures);
    return check_failures != 0;
}
