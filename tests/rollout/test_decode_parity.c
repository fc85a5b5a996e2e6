/*
 * tests/rollout/test_decode_parity.c — the cached forward (paged KV cache, prefill then
 * one token at a time, forked sequences sharing their prompt's blocks) gives the same
 * next-token log-probabilities as a full forward over the final sequence, within 1e-5
 * on the CPU, for every architecture (GQA, q/k norm, biases, llama3 rope), across
 * prompt lengths around the block size (1, 7, 15, 16, 17, 40); then again with the decode
 * layers leaving the q|k|v split and cache store to qkv_attention_cached (the backend's
 * qkv_store_fused_rows 0, as CUDA above 8 rows) instead of add_rmsnorm_qkv_store. The
 * 40-token prompt's two branches form a shared-prefix unit (the CPU checks it).
 *
 * usage: test_decode_parity [MODEL_DIR...]  (built-in tiny models when none given)
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/builtin.h"
#include "engine/model/kv_cache.h"
#include "engine/rollout/sampling.h"

static int failures;

/* logprob of every next token of ids[0..n) by one full forward. */
static void full_logprobs(model *m, const int32_t *ids, int n, float *out) {
    char err[512];
    int32_t offs[2] = {0, n};
    model_batch b = {.T = n, .B = 1, .ids = ids, .offsets = offs};
    if (model_forward(m, &b, 1.0f, 0, err, sizeof err)) {
        printf("FAIL forward: %s\n", err);
        failures++;
        return;
    }
    m->be->to_host(m->be, out, model_logp(m), (size_t)n * sizeof(float));
}

static void check_model(const char *spec, int fused_rows) {
    char err[1024];
    rlvr_backend *be = rlvr_cpu_backend_create(0);
    be->qkv_store_fused_rows = fused_rows;
    model *m = NULL;
    if (model_open(spec, be, &m, err, sizeof err)) {
        printf("FAIL %s: %s\n", spec, err);
        failures++;
        be->destroy(be);
        return;
    }
    const int V = m->cfg.vocab_size;
    kv_cache *kv = NULL;
    if (kv_cache_create(m, 4 << 20, 16, 8, 256, &kv, err, sizeof err)) {
        printf("FAIL kv: %s\n", err);
        failures++;
        goto out;
    }
    const int plens[] = {1, 7, 15, 16, 17, 40}, gen = 12;
    float *logits = malloc((size_t)2 * V * sizeof(float));
    int32_t seqs[2][64];
    float got[2][64], ref[64];
    double worst = 0;
    srand(5);
    for (size_t pi = 0; pi < sizeof plens / sizeof plens[0]; pi++) {
        const int pl = plens[pi];
        for (int t = 0; t < pl + gen; t++) seqs[0][t] = seqs[1][t] = rand() % V;
        for (int t = pl; t < pl + gen; t++) seqs[1][t] = rand() % V; /* a different branch */
        /* prefill the prompt in one call, fork, then feed both continuations together */
        int s0 = kv_seq_new(kv);
        kv_seq_reserve(kv, s0, pl);
        int *sq = malloc(pl * sizeof(int)), *ps = malloc(pl * sizeof(int)), row = pl - 1;
        for (int t = 0; t < pl; t++) {
            sq[t] = s0;
            ps[t] = t;
        }
        if (model_decode(m, kv, seqs[0], sq, ps, pl, &row, 1, logits, err, sizeof err)) {
            printf("FAIL %s prefill: %s\n", spec, err);
            failures++;
            break;
        }
        free(sq);
        free(ps);
        got[0][pl - 1] = got[1][pl - 1] = sampling_logprob(logits, V, 1.0f, seqs[0][pl]);
        got[1][pl - 1] = sampling_logprob(logits, V, 1.0f, seqs[1][pl]);
        int s1 = kv_seq_fork(kv, s0);
        for (int t = pl; t < pl + gen - 1; t++) {
            int32_t ids[2] = {seqs[0][t], seqs[1][t]};
            int sqs[2] = {s0, s1}, pos[2] = {t, t}, rows[2] = {0, 1};
            kv_seq_reserve(kv, s0, t + 1);
            kv_seq_reserve(kv, s1, t + 1);
            if (model_decode(m, kv, ids, sqs, pos, 2, rows, 2, logits, err, sizeof err)) {
                printf("FAIL %s decode: %s\n", spec, err);
                failures++;
                break;
            }
            for (int k = 0; k < 2; k++)
                got[k][t] = sampling_logprob(logits + (size_t)k * V, V, 1.0f, seqs[k][t + 1]);
        }
        for (int k = 0; k < 2; k++) {
            full_logprobs(m, seqs[k], pl + gen, ref);
            for (int t = pl - 1; t < pl + gen - 1; t++) {
                double d = fabs((double)got[k][t] - ref[t]);
                if (d > worst) worst = d;
                if (d > 1e-5) {
                    printf("FAIL %s prompt %d branch %d pos %d: cached %.7f full %.7f\n", spec, pl,
                           k, t, got[k][t], ref[t]);
                    failures++;
                }
            }
        }
        kv_seq_free(kv, s0);
        kv_seq_free(kv, s1);
        if (kv_blocks_used(kv) != 0) {
            printf("FAIL %s: %d cache blocks leaked\n", spec, kv_blocks_used(kv));
            failures++;
        }
    }
    printf("%s%s: cached vs full forward, worst |Δ logprob| = %.3g\n", spec,
           fused_rows ? "" : " (split in the attention)", worst);
    free(logits);
    kv_cache_free(kv);
out:
    model_free(m);
    be->destroy(be);
}

int main(int argc, char **argv) {
    static const char *const builtin[] = {"builtin:tiny-llama", "builtin:tiny-qwen2",
                                          "builtin:tiny-qwen3"};
    for (int f = 0; f < 2; f++) {
        const int fused_rows = f ? 0 : INT_MAX;
        if (argc > 1)
            for (int i = 1; i < argc; i++) check_model(argv[i], fused_rows);
        else
            for (int i = 0; i < 3; i++) check_model(builtin[i], fused_rows);
    }
    printf(failures ? "%d failure(s)\n" : "all decode parity checks passed\n", failures);
    return failures != 0;
}
