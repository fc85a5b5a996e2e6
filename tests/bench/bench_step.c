/*
 * tests/bench/bench_step.c — times rlvr's training pass (forward + backward of the
 * summed next-token log-probabilities of a packed batch), the quantity the PyTorch peer
 * scripts time. A benchmark tool, not a test.
 *
 * usage: bench_step --model SPEC [--device cpu|cuda] [--threads N] [--seqs B]
 *                   [--seq-len L] [--warmup W] [--iters K] [--seed S] [--profile 1|2]
 * --profile 1 also runs one extra step with every op synchronised and timed and prints
 * the per-op breakdown to stderr (after the timed steps, so it does not affect them).
 * --profile 2 times each op on the GPU timeline instead (markers on the stream, no
 * synchronisation per op; kernels/profile.h); a backend without timer ops (cpu) falls
 * back to 1 and says so. The profiler is paused during the warm-up and timed steps, so
 * tokens_per_s is the same with and without --profile.
 * Prints one JSON line: {"engine": "rlvr", "device", "tokens_per_s", "median_s",
 *   "params", "tokens_per_step", "flops_per_step", "tflops"} where flops count
 * 6·N·tokens for the matmuls (N excludes the input embedding lookup when untied,
 * includes the LM head) plus causal attention 6·L·Hq·D·Σ len² (forward 2 matmuls of
 * half the square, backward twice that).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/model/builtin.h"
#include "kernels/profile.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const char *spec = "builtin:bench-50m", *device = "cpu";
    int threads = 0, B = 4, L = 256, warmup = 1, iters = 5;
    unsigned seed = 1;
    int profile = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) spec = argv[i + 1];
        else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seqs")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seq-len")) L = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed")) seed = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--profile")) {
            char *end;
            long v = strtol(argv[i + 1], &end, 10);
            if (*end || end == argv[i + 1] || v < 0 || v > 2) {
                fprintf(stderr, "bench_step: --profile '%s': expected 0 (off), 1 (synchronised "
                                "per op) or 2 (GPU timeline)\n", argv[i + 1]);
                return 2;
            }
            profile = (int)v;
        }
        else {
            fprintf(stderr, "bench_step: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (B < 1 || L < 2 || iters < 1 || iters > 1000) {
        fprintf(stderr, "bench_step: bad sizes\n");
        return 2;
    }
    char err[2048];
    rlvr_backend *be = rlvr_backend_create(device, threads, err, sizeof err);
    if (!be) {
        fprintf(stderr, "bench_step: %s\n", err);
        return 1;
    }
    if (profile) {
        rlvr_backend *w = rlvr_profile_wrap_mode(be, profile, err, sizeof err);
        if (!w) {
            fprintf(stderr, "bench_step: --profile %d: %s\n", profile, err);
            return 1;
        }
        if (rlvr_profile_mode(w) != profile)
            fprintf(stderr, "bench_step: --profile %d: the %s backend has no timer ops; "
                            "falling back to --profile 1 (synchronised per op)\n",
                    profile, be->name);
        rlvr_profile_pause(w, 1); /* until the extra step */
        be = w;
    }
    model *m = NULL;
    if (model_open(spec, be, &m, err, sizeof err) || model_enable_grads(m, err, sizeof err)) {
        fprintf(stderr, "bench_step: %s\n", err);
        return 1;
    }
    const model_config *c = &m->cfg;
    const int T = B * L;
    int32_t *ids = malloc(T * sizeof *ids), *offs = malloc((B + 1) * sizeof *offs);
    float *ones = malloc(T * sizeof(float));
    srand(seed);
    for (int t = 0; t < T; t++) {
        ids[t] = rand() % c->vocab_size;
        ones[t] = 1.0f;
    }
    for (int b = 0; b <= B; b++) offs[b] = b * L;
    float *dlogp = be->alloc(be, T * sizeof(float));
    be->to_device(be, dlogp, ones, T * sizeof(float));
    model_batch batch = {.T = T, .B = B, .ids = ids, .offsets = offs};
    double *times = malloc(iters * sizeof(double));
    for (int it = 0; it < warmup + iters; it++) {
        be->sync(be);
        double t0 = now();
        if (model_forward(m, &batch, 1.0f, 1, err, sizeof err) ||
            model_backward(m, dlogp, NULL, err, sizeof err)) {
            fprintf(stderr, "bench_step: %s\n", err);
            return 1;
        }
        be->sync(be);
        if (it >= warmup) times[it - warmup] = now() - t0;
    }
    if (profile) { /* one more step, every op timed (synchronised, or on the timeline) */
        rlvr_profile_reset(be);
        rlvr_profile_pause(be, 0);
        if (model_forward(m, &batch, 1.0f, 1, err, sizeof err) ||
            model_backward(m, dlogp, NULL, err, sizeof err)) {
            fprintf(stderr, "bench_step: %s\n", err);
            return 1;
        }
        rlvr_profile_report(be, stderr);
    }
    qsort(times, iters, sizeof(double), cmp_double);
    const double med = times[iters / 2];
    size_t n = model_config_num_params(c);
    if (!c->tie_word_embeddings) n -= (size_t)c->vocab_size * c->hidden_size; /* lookup only */
    const double attn = 6.0 * c->num_layers * c->num_heads * c->head_dim * (double)L * L * B;
    const double flops = 6.0 * (double)n * T + attn;
    printf("{\"engine\": \"rlvr\", \"device\": \"%s\", \"model\": \"%s\", \"tokens_per_s\": %.1f, "
           "\"median_s\": %.5f, \"params\": %zu, \"tokens_per_step\": %d, \"flops_per_step\": %.4g, "
           "\"tflops\": %.3f, \"threads\": %d}\n",
           be->name, spec, T / med, med, model_config_num_params(c), T, flops,
           flops / med / 1e12, threads);
    be->free(be, dlogp);
    free(ids);
    free(offs);
    free(ones);
    free(times);
    model_free(m);
    be->destroy(be);
    return 0;
}
