/*
 * tests/gpu/bench_decode.c — generation speed of the rollout sampler (issue 9, "Speed"):
 * a random-initialised model of a built-in shape, the sampler's own sampler_generate,
 * timed on the workload and at batch 1, each against its memory-bandwidth bound.
 *
 * (a) Workload: N sequences (default 256) whose prompt and output lengths are drawn
 *     uniformly from [min-len, max-len] (default 100..1024), random prompt ids, no EOS
 *     (every sequence runs exactly its output length, through the per-prompt limits
 *     sampling_params.max_new_tokens_each), temperature-1 sampling, one sampler_generate
 *     call with G = 1. Optionally a second run with G = --groups samples per prompt
 *     (N / G prompts, the group's prompt cache shared), skipped when the G = 1 run took
 *     longer than --groups-max-s seconds. --subset K adds a G = 1 run over the first K
 *     sequences only: the subset tests/gpu/hf_generate_bench.py runs, for the ratio.
 * (b) Batch 1: one prompt of --b1-prompt tokens, --b1-new new tokens; the time per
 *     decoded token is (total − prefill) / (new − 1).
 *
 * The workload generator (identical in tests/gpu/hf_generate_bench.py): a 64-bit LCG
 *     x ← x · 6364136223846793005 + 1442695040888963407 (mod 2^64), x₀ = seed,
 *     draw(lo, hi) = lo + (x >> 33) mod (hi − lo + 1), x advanced before each draw;
 * for sequence i in order: prompt length, output length, then the prompt's ids, each
 * drawn from [0, V). The first k sequences of a workload of N > k are therefore the
 * workload of N = k: a smaller --n is a deterministic subsample of the same stream.
 *
 * The bandwidth bound (a lower bound on time; "fraction" = bound / measured):
 *     W   = bytes of the weights read per forward: every parameter once, in the backend's
 *           activation dtype (bf16 on CUDA), the untied embedding table excepted (only
 *           its gathered rows are read); a tied table is read once, as the LM head;
 *     K   = KV bytes per position = L · 2 · Hkv · D · bytes(act);
 *     the most favourable schedule runs every sequence at once: max_i(out_i) forwards
 *     (the prefill counted as the first), each reading W; output token t ≥ 1 of a
 *     sequence reads its prompt plus t generated positions; a group of G samples reads
 *     its prompt once per step:  KV = Σ_groups Σ_{t=1}^{out−1} (prompt + G·t) · K;
 *     bound_s = (max(out) · W + KV) / bandwidth.
 *     Batch 1, per decoded token: bound = (W + (prompt + new/2) · K) / bandwidth.
 * Compute (prefill FLOPs), KV writes and the sampling pass are not in the bound.
 *
 * usage: bench_decode [--device cuda|cpu] [--shape qwen2.5-0.5b] [--n 256] [--seed 1]
 *          [--min-len 100] [--max-len 1024] [--groups 8] [--groups-max-s 30]
 *          [--b1-prompt 512] [--b1-new 256] [--bw-gbs 3350] [--kv-gib 0] [--threads 0]
 *          [--subset 0] [--max-s 0] [--profile 0|1|2] [--ablate OPS] [--sample-probe R]
 *          [--json FILE]
 * Before anything is timed, a warm-up generation takes every decode row count from
 * min(N, 256) down to 1 once (each bucket's CUDA graph recorded; GEMMs tuned when
 * RLVR_GEMM_TUNE is set). Until session 20 it ran 2 sequences, and the timed runs
 * recorded most buckets' graphs.
 * --sample-probe R (after the runs, not with --profile/--ablate): lmhead_sample timed
 * alone at R rows on the model's final-norm rows and on random rows (sample_probe).
 * --profile 1 prints the time of every backend op (each synchronised: no graphs).
 * --ablate OPS (comma-separated op names as the profile prints them) runs with those ops
 * skipped (kernels/profile.h: rlvr_profile_ablate; decode graphs kept): the drop in wall
 * time against a plain run is their cost inside the graphs. Tokens are garbage then (a
 * skipped lmhead_sample writes token 0); the counts, and so the steps, stay the same.
 * --profile 2 the same on the GPU timeline: markers around each op on the stream, no
 * synchronisation per op, still no graphs (kernels/profile.h); the cpu backend falls
 * back to 1 and says so.
 * --groups 0 / --b1-new 0 skip those runs; --bw-gbs 0 leaves the bound out (null);
 * --kv-gib 0 sizes the cache to hold the whole workload at once. --max-s S > 0: a probe
 * (every sequence, 16 output tokens) predicts the G = 1 run's time from its prefill time
 * and decode rate; the run keeps the longest prefix of the workload predicted to fit S
 * seconds (JSON: workload.n_run, time_budget), and --subset is capped to it. Exit 0 when every
 * run produced exactly its requested tokens, 1 on a failure, 2 on a bad argument.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/io/fileio.h"
#include "engine/model/acts.h" /* sample_probe reads the final-norm rows */
#include "engine/model/builtin.h"
#include "engine/model/kv_cache.h"
#include "engine/rollout/sampler.h"
#include "kernels/profile.h"

enum { KV_BLOCK = 16 }; /* the sampler's block size, for sizing the cache */

static const char *BOUND_FORMULA =
    "bound_s = (max(out) * W + sum_groups sum_{t=1}^{out-1} (prompt + G*t) * K) / bandwidth; "
    "W = weight bytes read per forward (act dtype, untied embedding table excluded), "
    "K = KV bytes per position = L*2*Hkv*D*bytes(act); batch 1 per token: "
    "(W + (prompt + new/2) * K) / bandwidth; fraction = bound / measured";

/* ---- workload ------------------------------------------------------------------------ */

typedef struct {
    uint64_t x;
} lcg;

static int lcg_draw(lcg *g, int lo, int hi) {
    g->x = g->x * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (int)((g->x >> 33) % (uint64_t)(hi - lo + 1));
}

typedef struct {
    int n;
    int *plen, *olen;
    int32_t **ids;
} workload;

static int workload_make(workload *w, int n, uint64_t seed, int lo, int hi, int V) {
    lcg g = {seed};
    w->n = n;
    w->plen = calloc((size_t)n, sizeof(int));
    w->olen = calloc((size_t)n, sizeof(int));
    w->ids = calloc((size_t)n, sizeof(int32_t *));
    if (!w->plen || !w->olen || !w->ids) return -1;
    for (int i = 0; i < n; i++) {
        w->plen[i] = lcg_draw(&g, lo, hi);
        w->olen[i] = lcg_draw(&g, lo, hi);
        w->ids[i] = malloc((size_t)w->plen[i] * sizeof(int32_t));
        if (!w->ids[i]) return -1;
        for (int t = 0; t < w->plen[i]; t++)
            w->ids[i][t] = lcg_draw(&g, 0, V - 1);
    }
    return 0;
}

static void workload_free(workload *w) {
    for (int i = 0; i < w->n && w->ids; i++)
        free(w->ids[i]);
    free(w->ids);
    free(w->plen);
    free(w->olen);
}

/* ---- bytes and bounds ---------------------------------------------------------------- */

static double weight_bytes(const model *m) {
    const double eb = m->be->act_dtype == RLVR_DTYPE_BF16 ? 2.0 : 4.0;
    size_t n = m->n_weights;
    if (!m->cfg.tie_word_embeddings) n -= m->params[m->embed].numel;
    return (double)n * eb;
}

static double kv_bytes_per_pos(const model *m) {
    const double eb = m->be->act_dtype == RLVR_DTYPE_BF16 ? 2.0 : 4.0;
    return (double)m->cfg.num_layers * 2 * m->cfg.num_kv_heads * m->cfg.head_dim * eb;
}

/* Bytes of the most favourable schedule for n_prompts prompts × G samples (see header). */
static double bound_bytes(const int *plen, const int *olen, int n_prompts, int G, double W,
                          double K) {
    int max_out = 0;
    double kv = 0;
    for (int i = 0; i < n_prompts; i++) {
        const double O = olen[i];
        if (olen[i] > max_out) max_out = olen[i];
        kv += ((O - 1) * plen[i] + G * (O - 1) * O / 2) * K;
    }
    return max_out * W + kv;
}

/* ---- one timed run ------------------------------------------------------------------- */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    long want_tokens, got_tokens, prompt_tokens;
    double wall_s;
    sampler_stats st;
} run_result;

/* Generates G samples for prompts [0, n) of w, each exactly olen[i] tokens long; checks
 * every completion's length and finish reason. */
static int run_workload(sampler *s, model *m, const workload *w, const int *olen, int n, int G,
                        uint64_t seed, run_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    prompt_ref *refs = calloc((size_t)n, sizeof *refs);
    if (!refs) {
        snprintf(err, errlen, "out of host memory");
        return -1;
    }
    int max_out = 1;
    for (int i = 0; i < n; i++) {
        refs[i].ids = w->ids[i];
        refs[i].n = w->plen[i];
        refs[i].index = i;
        r->want_tokens += (long)G * olen[i];
        r->prompt_tokens += w->plen[i];
        if (olen[i] > max_out) max_out = olen[i];
    }
    sampling_params p = sampling_params_default(); /* temperature 1, no top-k/p, no EOS */
    p.seed = seed;
    p.max_new_tokens = max_out;
    p.max_new_tokens_each = olen;
    completion *c = NULL;
    const double t0 = now();
    int rc = sampler_generate(s, refs, n, G, &p, &c, &r->st, err, errlen);
    m->be->sync(m->be);
    r->wall_s = now() - t0;
    free(refs);
    if (rc) return -1;
    for (int i = 0; i < n * G; i++) {
        const int want = olen[c[i].prompt_index];
        r->got_tokens += c[i].n;
        if (rc == 0 && (c[i].n != want || c[i].finish != FINISH_LENGTH)) {
            snprintf(
                err, errlen,
                "completion %d (prompt %d, sample %d): %d tokens, finish %s; expected exactly "
                "%d tokens, finish length",
                i, c[i].prompt_index, c[i].sample_index, c[i].n,
                finish_reason_name(c[i].finish), want);
            rc = -1;
        }
    }
    completions_free(c, n * G);
    return rc;
}

/* ---- report -------------------------------------------------------------------------- */

/* --sample-probe R: lmhead_sample timed alone (sync, 20 calls, sync; after 3 warm-up
 * calls) on this model's own buffers — the final-norm rows the last forward left, the
 * LM head weights — then on fresh random rows of the same shape, temperature 1. Inside
 * the decode runs the op measured ~3x sampler_check's isolated time at the same R: this
 * tells whether the rows or the surroundings make the difference. 0, or -1 (err). */
static int sample_probe(rlvr_backend *be, model *m, int R, char *err, size_t errlen) {
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size, iters = 20;
    if (R > m->acts->T_cap) R = m->acts->T_cap;
    if (R <= 0 || !be->lmhead_sample) {
        snprintf(err, errlen, "sample probe: no rows or no lmhead_sample on %s", be->name);
        return -1;
    }
    float *h = malloc((size_t)R * C * sizeof(float)), *u = malloc((size_t)R * sizeof(float));
    void *xr = be->alloc(be, (size_t)R * C * be->act_size);
    int *tok = be->alloc(be, (size_t)R * sizeof(int));
    float *lp = be->alloc(be, (size_t)R * sizeof(float)), *ud = be->alloc(be, R * sizeof(float));
    int rc = -1;
    if (h && u && xr && tok && lp && ud) {
        lcg g = {12345};
        for (size_t i = 0; i < (size_t)R * C; i++) /* about N(0, 1): what a norm leaves */
            h[i] = (float)(lcg_draw(&g, 0, 2000) + lcg_draw(&g, 0, 2000) - 2000) / 816.0f;
        for (int r = 0; r < R; r++) u[r] = (float)(r + 1) / (float)(R + 2);
        be->act_from_f32(be, xr, h, (size_t)R * C);
        be->to_device(be, ud, u, (size_t)R * sizeof(float));
        const rlvr_sample_params sp = {1.0f, 0, 1.0f, 0.0f, 1.0f};
        const void *w = model_w(m, m->lm_head);
        const void *xs[2] = {m->acts->lnf, xr};
        double ms[2];
        for (int k = 0; k < 2; k++) {
            for (int i = 0; i < 3; i++)
                be->lmhead_sample(be, tok, lp, xs[k], w, R, C, V, &sp, ud, NULL, NULL);
            be->sync(be);
            const double t0 = now();
            for (int i = 0; i < iters; i++)
                be->lmhead_sample(be, tok, lp, xs[k], w, R, C, V, &sp, ud, NULL, NULL);
            be->sync(be);
            ms[k] = (now() - t0) * 1e3 / iters;
        }
        if (be->error(be)) {
            snprintf(err, errlen, "sample probe: %s", be->error(be));
        } else {
            printf("sample probe: lmhead_sample R=%d V=%d C=%d, temperature 1: %.3f ms/call on "
                   "the model's final-norm rows, %.3f ms/call on random rows\n",
                   R, V, C, ms[0], ms[1]);
            rc = 0;
        }
    } else {
        snprintf(err, errlen, "sample probe: out of memory");
    }
    free(h);
    free(u);
    if (xr) be->free(be, xr);
    if (tok) be->free(be, tok);
    if (lp) be->free(be, lp);
    if (ud) be->free(be, ud);
    return rc;
}

static cJSON *num_or_null(double v, int ok) {
    return ok ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *run_json(const run_result *r, int n, int G, double bound_s, int have_bound) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompts", n);
    cJSON_AddNumberToObject(o, "G", G);
    cJSON_AddNumberToObject(o, "sequences", (double)n * G);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)r->prompt_tokens);
    cJSON_AddNumberToObject(o, "output_tokens", (double)r->got_tokens);
    cJSON_AddNumberToObject(o, "wall_s", r->wall_s);
    cJSON_AddNumberToObject(o, "prefill_s", r->st.prefill_s);
    cJSON_AddNumberToObject(o, "decode_forward_s", r->st.decode_s);
    cJSON_AddNumberToObject(o, "output_tok_s", r->got_tokens / r->wall_s);
    cJSON_AddNumberToObject(o, "max_active", r->st.max_active);
    cJSON_AddNumberToObject(o, "share_units", (double)r->st.share_units);
    cJSON_AddNumberToObject(o, "share_rows", (double)r->st.share_rows);
    cJSON_AddNumberToObject(o, "kv_bytes_budget", (double)r->st.kv_bytes_budget);
    cJSON_AddNumberToObject(o, "kv_bytes_peak", (double)r->st.kv_bytes_peak);
    cJSON_AddItemToObject(o, "bound_s", num_or_null(bound_s, have_bound));
    cJSON_AddItemToObject(o, "bound_fraction", num_or_null(bound_s / r->wall_s, have_bound));
    return o;
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_decode [--device cuda|cpu] [--shape qwen2.5-0.5b] [--n 256] "
               "[--seed 1]\n"
               "         [--min-len 100] [--max-len 1024] [--groups 8] [--groups-max-s 30]\n"
               "         [--b1-prompt 512] [--b1-new 256] [--bw-gbs 3350] [--kv-gib 0] "
               "[--threads 0]\n"
               "         [--subset 0] [--max-s 0] [--profile 0|1|2] [--ablate OPS] "
               "[--sample-probe R] [--json FILE]\n"
               "--profile 1: per-op times, every op synchronised; 2: per-op times on the\n"
               "GPU timeline, not synchronised (both without decode graphs)\n"
               "--ablate OPS: skip these ops (comma-separated, e.g. attention_cached), for\n"
               "their cost with decode graphs on (the tokens are then meaningless)\n");
}

static int parse_int(const char *opt, const char *v, int lo, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == 0 || *end != 0 || x < lo || x > 1000000000L) {
        fprintf(stderr, "bench_decode: %s '%s': expected an integer >= %d\n", opt, v, lo);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_num(const char *opt, const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (*v == 0 || *end != 0 || !(x >= 0) || isinf(x)) {
        fprintf(stderr, "bench_decode: %s '%s': expected a number >= 0\n", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}

int main(int argc, char **argv) {
    const char *device = "cuda", *shape = "qwen2.5-0.5b", *json = NULL, *ablate = NULL;
    int n = 256, seed = 1, lo = 100, hi = 1024, groups = 8, b1_prompt = 512, b1_new = 256;
    int threads = 0, subset = 0, profile = 0, probe_rows = 0;
    double groups_max_s = 30, bw_gbs = 0, kv_gib = 0, max_s = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_decode: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        int bad = 0;
        if (!strcmp(a, "--device"))
            device = v;
        else if (!strcmp(a, "--shape"))
            shape = v;
        else if (!strcmp(a, "--json"))
            json = v;
        else if (!strcmp(a, "--ablate"))
            ablate = v;
        else if (!strcmp(a, "--sample-probe"))
            bad = parse_int(a, v, 0, &probe_rows);
        else if (!strcmp(a, "--n"))
            bad = parse_int(a, v, 1, &n);
        else if (!strcmp(a, "--seed"))
            bad = parse_int(a, v, 0, &seed);
        else if (!strcmp(a, "--min-len"))
            bad = parse_int(a, v, 1, &lo);
        else if (!strcmp(a, "--max-len"))
            bad = parse_int(a, v, 1, &hi);
        else if (!strcmp(a, "--groups"))
            bad = parse_int(a, v, 0, &groups);
        else if (!strcmp(a, "--groups-max-s"))
            bad = parse_num(a, v, &groups_max_s);
        else if (!strcmp(a, "--b1-prompt"))
            bad = parse_int(a, v, 1, &b1_prompt);
        else if (!strcmp(a, "--b1-new"))
            bad = parse_int(a, v, 0, &b1_new);
        else if (!strcmp(a, "--bw-gbs"))
            bad = parse_num(a, v, &bw_gbs);
        else if (!strcmp(a, "--kv-gib"))
            bad = parse_num(a, v, &kv_gib);
        else if (!strcmp(a, "--threads"))
            bad = parse_int(a, v, 0, &threads);
        else if (!strcmp(a, "--subset"))
            bad = parse_int(a, v, 0, &subset);
        else if (!strcmp(a, "--profile")) {
            bad = parse_int(a, v, 0, &profile);
            if (!bad && profile > 2) {
                fprintf(stderr, "bench_decode: --profile %d: expected 0 (off), 1 "
                                "(synchronised per op) or 2 (GPU timeline)\n", profile);
                bad = 1;
            }
        }
        else if (!strcmp(a, "--max-s"))
            bad = parse_num(a, v, &max_s);
        else {
            fprintf(stderr, "bench_decode: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) return 2;
    }
    if (lo > hi) {
        fprintf(stderr, "bench_decode: --min-len %d > --max-len %d\n", lo, hi);
        return 2;
    }
    if (groups == 1 || (groups > 1 && n / groups < 1)) {
        fprintf(stderr, "bench_decode: --groups %d: expected 0 (off) or 2..%d (--n %d)\n",
                groups, n, n);
        return 2;
    }
    if (subset > n) {
        fprintf(stderr, "bench_decode: --subset %d: expected 0 (off) or 1..%d (--n)\n", subset,
                n);
        return 2;
    }
    if (b1_new == 1) {
        fprintf(stderr,
                "bench_decode: --b1-new 1: expected 0 (off) or >= 2 (one decode step)\n");
        return 2;
    }

    char err[2048];
    char spec[160];
    snprintf(spec, sizeof spec, "builtin:%s", shape);
    rlvr_backend *be = rlvr_backend_create(device, threads, err, sizeof err);
    if (!be) {
        fprintf(stderr, "bench_decode: --device %s: %s\n", device, err);
        return 1;
    }
    if (ablate && profile) {
        fprintf(stderr, "bench_decode: --ablate and --profile exclude each other\n");
        be->destroy(be);
        return 2;
    }
    if (ablate) { /* the named ops skipped, graphs kept */
        rlvr_backend *wrapped = rlvr_profile_ablate(be, ablate, err, sizeof err);
        if (!wrapped) {
            fprintf(stderr, "bench_decode: --ablate %s: %s\n", ablate, err);
            be->destroy(be);
            return 2;
        }
        be = wrapped;
    }
    if (profile) { /* per-op times (1: synchronised, 2: GPU timeline); no decode graphs */
        rlvr_backend *wrapped = rlvr_profile_wrap_mode(be, profile, err, sizeof err);
        if (!wrapped) {
            fprintf(stderr, "bench_decode: --profile %d: %s\n", profile, err);
            be->destroy(be);
            return 1;
        }
        if (rlvr_profile_mode(wrapped) != profile)
            fprintf(stderr, "bench_decode: --profile %d: the %s backend has no timer ops; "
                            "falling back to --profile 1 (synchronised per op)\n",
                    profile, be->name);
        be = wrapped;
    }
    model *m = NULL;
    if (model_open(spec, be, &m, err, sizeof err)) {
        fprintf(stderr, "bench_decode: --shape %s: %s\n", shape, err);
        be->destroy(be);
        return 1;
    }
    const int V = m->cfg.vocab_size;
    const double W = weight_bytes(m), K = kv_bytes_per_pos(m), BW = bw_gbs * 1e9;
    const int have_bound = bw_gbs > 0;

    workload w = {0};
    int b1_olen = b1_new;
    workload b1 = {0};
    if (workload_make(&w, n, (uint64_t)seed, lo, hi, V) ||
        (b1_new > 0 && workload_make(&b1, 1, (uint64_t)seed + 1, b1_prompt, b1_prompt, V))) {
        fprintf(stderr, "bench_decode: out of host memory for the workload\n");
        return 1;
    }
    if (b1_new > 0) b1.olen[0] = b1_olen;

    /* Cache: every G = 1 sequence at its longest, block-rounded as the sampler reserves. */
    double need = 0;
    for (int i = 0; i < n; i++)
        need += ceil((double)(w.plen[i] + w.olen[i]) / KV_BLOCK + 1) * KV_BLOCK * K;
    if (b1_new > 0)
        need = fmax(need, ceil((double)(b1_prompt + b1_new) / KV_BLOCK + 1) * KV_BLOCK * K);
    const size_t kv_budget = kv_gib > 0 ? (size_t)(kv_gib * 1073741824.0)
                                        : (size_t)(need * 1.05) + ((size_t)64 << 20);
    sampler *s = NULL;
    if (sampler_create(m, NULL, kv_budget, &s, err, sizeof err)) {
        fprintf(stderr, "bench_decode: sampler (KV budget %zu bytes): %s\n", kv_budget, err);
        return 1;
    }
    printf(
        "bench_decode: %s on %s: %zu weights (%.1f MB read per forward), KV %.0f B/position, "
        "cache budget %.2f GiB\n",
        shape, be->name, m->n_weights, W / 1e6, K, kv_budget / 1073741824.0);
    printf("workload: %d sequences, prompt and output lengths uniform in [%d, %d], seed %d\n",
           n, lo, hi, seed);
    fflush(stdout);

    int rc = 0;
    run_result r1, rg, rb, rs;
    int did_g = 0, did_b1 = 0, did_sub = 0;
    const char *g_skip = groups == 0 ? "--groups 0" : NULL;
    char g_skip_buf[160];
    /* warm-up: library handles, kernels, the first cache allocations, and a decode step
     * at every row count from min(n, 256) down to 1 (sequence i asks for i + 1 tokens), so
     * every decode bucket's graph is recorded, and its GEMMs tuned when RLVR_GEMM_TUNE is
     * set, before anything is timed: the steady state of an RL run's later steps */
    {
        workload wu = {0};
        const int nw = n < 256 ? n : 256;
        int ok = workload_make(&wu, nw, 99, 16, 32, V) == 0;
        for (int i = 0; ok && i < nw; i++) wu.olen[i] = i + 1;
        if (!ok || run_workload(s, m, &wu, wu.olen, nw, 1, 5, &r1, err, sizeof err)) {
            fprintf(stderr, "bench_decode: warm-up: %s\n", err);
            rc = 1;
        }
        workload_free(&wu);
    }
    /* Time budget: a probe runs the whole batch for PROBE tokens per sequence; from its
     * prefill time and decode rate, the G = 1 run keeps the longest prefix of the
     * workload that is predicted to fit --max-s (reported as n_run). */
    int nr = n;
    run_result rp;
    double est_full = 0;
    int did_probe = 0;
    if (!rc && max_s > 0) {
        enum { PROBE = 16 };
        int *cap = malloc((size_t)n * sizeof(int));
        if (!cap) {
            fprintf(stderr, "bench_decode: out of host memory\n");
            rc = 1;
        } else {
            for (int i = 0; i < n; i++)
                cap[i] = w.olen[i] < PROBE ? w.olen[i] : PROBE;
            if (run_workload(s, m, &w, cap, n, 1, 10, &rp, err, sizeof err)) {
                fprintf(stderr, "bench_decode: probe run: %s\n", err);
                rc = 1;
            }
            free(cap);
        }
        if (!rc) {
            did_probe = 1;
            const double rate = (rp.got_tokens - n) / fmax(rp.wall_s - rp.st.prefill_s, 1e-9);
            long ptok = 0, otok = 0;
            for (int k = 1; k <= n; k++) {
                ptok += w.plen[k - 1];
                otok += w.olen[k - 1] - 1;
                const double est = rp.st.prefill_s * ptok / rp.prompt_tokens + otok / rate;
                if (k == n) est_full = est;
                if (est <= max_s || k == 1) nr = k;
            }
            printf("probe: %ld tokens in %.3f s (prefill %.3f s); full run predicted %.3g s; "
                   "--max-s %g: running %d of %d sequences\n",
                   rp.got_tokens, rp.wall_s, rp.st.prefill_s, est_full, max_s, nr, n);
        }
    }
    if (subset > nr) subset = nr;
    if (!rc && run_workload(s, m, &w, w.olen, nr, 1, 11, &r1, err, sizeof err)) {
        fprintf(stderr, "bench_decode: G = 1 run: %s\n", err);
        rc = 1;
    }
    if (!rc && groups > 1) {
        if (nr / groups < 1) {
            snprintf(g_skip_buf, sizeof g_skip_buf, "n_run %d < --groups %d", nr, groups);
            g_skip = g_skip_buf;
        } else if (r1.wall_s > groups_max_s) {
            snprintf(g_skip_buf, sizeof g_skip_buf,
                     "the G = 1 run took %.1f s > --groups-max-s %.1f", r1.wall_s,
                     groups_max_s);
            g_skip = g_skip_buf;
        } else if (run_workload(s, m, &w, w.olen, nr / groups, groups, 12, &rg, err,
                                sizeof err)) {
            fprintf(stderr, "bench_decode: G = %d run: %s\n", groups, err);
            rc = 1;
        } else {
            did_g = 1;
        }
    }
    if (!rc && subset > 0 && subset == nr) { /* the G = 1 run is that subset */
        rs = r1;
        did_sub = 1;
    } else if (!rc && subset > 0) {
        if (run_workload(s, m, &w, w.olen, subset, 1, 14, &rs, err, sizeof err)) {
            fprintf(stderr, "bench_decode: --subset %d run: %s\n", subset, err);
            rc = 1;
        } else {
            did_sub = 1;
        }
    }
    if (!rc && b1_new > 0) {
        if (run_workload(s, m, &b1, b1.olen, 1, 1, 13, &rb, err, sizeof err)) {
            fprintf(stderr, "bench_decode: batch-1 run: %s\n", err);
            rc = 1;
        } else {
            did_b1 = 1;
        }
    }
    if (rc) goto out;
    if (probe_rows > 0 && !profile && !ablate && sample_probe(be, m, probe_rows, err, sizeof err)) {
        fprintf(stderr, "bench_decode: %s\n", err);
        rc = 1;
        goto out;
    }

    /* ---- bounds and the report ---- */
    const double bound1 = bound_bytes(w.plen, w.olen, nr, 1, W, K) / (BW > 0 ? BW : 1);
    const double boundg =
        did_g ? bound_bytes(w.plen, w.olen, nr / groups, groups, W, K) / (BW > 0 ? BW : 1) : 0;
    const double bounds =
        did_sub ? bound_bytes(w.plen, w.olen, subset, 1, W, K) / (BW > 0 ? BW : 1) : 0;
    double b1_ms = 0, b1_fwd_ms = 0, b1_bound_ms = 0;
    if (did_b1) {
        b1_ms = (rb.st.total_s - rb.st.prefill_s) / (b1_new - 1) * 1e3;
        b1_fwd_ms = rb.st.decode_s / (b1_new - 1) * 1e3;
        b1_bound_ms = (W + (b1_prompt + b1_new / 2.0) * K) / (BW > 0 ? BW : 1) * 1e3;
    }

    printf("\n%-26s %10s %10s %12s %10s %10s\n", "run", "out tokens", "wall s", "out tok/s",
           "bound s", "fraction");
    char g1name[40];
    snprintf(g1name, sizeof g1name, nr == n ? "G=1 (%d sequences)" : "G=1 (%d of %d seqs)", nr,
             n);
    printf("%-26s %10ld %10.3f %12.0f ", g1name, r1.got_tokens, r1.wall_s,
           r1.got_tokens / r1.wall_s);
    if (have_bound)
        printf("%10.3f %9.1f%%\n", bound1, 100 * bound1 / r1.wall_s);
    else
        printf("%10s %10s\n", "-", "-");
    if (did_g) {
        char name[40];
        snprintf(name, sizeof name, "G=%d (%d prompts)", groups, nr / groups);
        printf("%-26s %10ld %10.3f %12.0f ", name, rg.got_tokens, rg.wall_s,
               rg.got_tokens / rg.wall_s);
        if (have_bound)
            printf("%10.3f %9.1f%%\n", boundg, 100 * boundg / rg.wall_s);
        else
            printf("%10s %10s\n", "-", "-");
    } else {
        printf("%-26s skipped: %s\n", "grouped", g_skip ? g_skip : "-");
    }
    if (did_sub) {
        char name[40];
        snprintf(name, sizeof name, "G=1, first %d sequences", subset);
        printf("%-26s %10ld %10.3f %12.0f ", name, rs.got_tokens, rs.wall_s,
               rs.got_tokens / rs.wall_s);
        if (have_bound)
            printf("%10.3f %9.1f%%\n", bounds, 100 * bounds / rs.wall_s);
        else
            printf("%10s %10s\n", "-", "-");
    }
    if (did_b1) {
        printf("batch 1: prompt %d, %d new: %.3f ms/token (forward only %.3f)", b1_prompt,
               b1_new, b1_ms, b1_fwd_ms);
        if (have_bound)
            printf(", bound %.4f ms/token, fraction %.1f%%", b1_bound_ms,
                   100 * b1_bound_ms / b1_ms);
        printf("\n");
    }
    printf("G=1 split: prefill forwards %.3f s, decode forwards %.3f s, rest (sampling, "
           "bookkeeping) %.3f s; largest decode batch %d\n",
           r1.st.prefill_s, r1.st.decode_s, r1.wall_s - r1.st.prefill_s - r1.st.decode_s,
           r1.st.max_active);
    if (did_g)
        printf("grouped split: prefill forwards %.3f s, decode forwards %.3f s; shared-prefix "
               "units over the decode steps %ld (%ld rows)\n",
               rg.st.prefill_s, rg.st.decode_s, rg.st.share_units, rg.st.share_rows);

    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "benchmark", "bench_decode");
        cJSON_AddStringToObject(o, "device", be->name);
        cJSON_AddStringToObject(o, "shape", shape);
        cJSON_AddNumberToObject(o, "weights", (double)m->n_weights);
        cJSON_AddNumberToObject(o, "weight_bytes_per_forward", W);
        cJSON_AddNumberToObject(o, "kv_bytes_per_position", K);
        cJSON_AddItemToObject(o, "bandwidth_gbs", num_or_null(bw_gbs, have_bound));
        cJSON_AddStringToObject(o, "bound_formula", BOUND_FORMULA);
        cJSON *wl = cJSON_AddObjectToObject(o, "workload");
        cJSON_AddNumberToObject(wl, "n", n);
        cJSON_AddNumberToObject(wl, "seed", seed);
        cJSON_AddNumberToObject(wl, "min_len", lo);
        cJSON_AddNumberToObject(wl, "max_len", hi);
        cJSON_AddStringToObject(wl, "generator",
                                "LCG x = x*6364136223846793005 + 1442695040888963407 mod 2^64, "
                                "x0 = seed, draw(lo,hi) = lo + (x>>33) % (hi-lo+1); per "
                                "sequence: prompt len, output len, prompt ids in [0,V)");
        cJSON_AddStringToObject(wl, "sampling", "temperature 1, no top-k/top-p, EOS disabled");
        if (ablate) cJSON_AddStringToObject(wl, "ablated_ops", ablate);
        cJSON_AddItemToObject(wl, "prompt_lens", int_array(w.plen, n));
        cJSON_AddItemToObject(wl, "output_lens", int_array(w.olen, n));
        cJSON_AddNumberToObject(wl, "n_run", nr);
        cJSON *bud = cJSON_AddObjectToObject(o, "time_budget");
        cJSON_AddItemToObject(bud, "max_s", num_or_null(max_s, max_s > 0));
        if (did_probe) {
            cJSON_AddNumberToObject(bud, "probe_tokens_per_sequence", 16);
            cJSON_AddNumberToObject(bud, "probe_wall_s", rp.wall_s);
            cJSON_AddNumberToObject(bud, "probe_prefill_s", rp.st.prefill_s);
            cJSON_AddNumberToObject(bud, "predicted_full_run_s", est_full);
        }
        cJSON_AddBoolToObject(bud, "reduced", nr < n);
        cJSON_AddItemToObject(o, "g1", run_json(&r1, nr, 1, bound1, have_bound));
        if (did_g) {
            cJSON_AddItemToObject(o, "grouped",
                                  run_json(&rg, nr / groups, groups, boundg, have_bound));
        } else {
            cJSON *g = cJSON_AddObjectToObject(o, "grouped");
            cJSON_AddStringToObject(g, "skipped", g_skip ? g_skip : "");
        }
        if (did_sub)
            cJSON_AddItemToObject(o, "subset", run_json(&rs, subset, 1, bounds, have_bound));
        if (did_b1) {
            cJSON *b = cJSON_AddObjectToObject(o, "batch1");
            cJSON_AddNumberToObject(b, "prompt_len", b1_prompt);
            cJSON_AddNumberToObject(b, "new_tokens", b1_new);
            cJSON_AddNumberToObject(b, "wall_s", rb.wall_s);
            cJSON_AddNumberToObject(b, "ms_per_token", b1_ms);
            cJSON_AddNumberToObject(b, "forward_ms_per_token", b1_fwd_ms);
            cJSON_AddItemToObject(b, "bound_ms_per_token",
                                  num_or_null(b1_bound_ms, have_bound));
            cJSON_AddItemToObject(b, "bound_fraction",
                                  num_or_null(b1_bound_ms / b1_ms, have_bound));
        }
        char *txt = cJSON_Print(o);
        cJSON_Delete(o);
        if (!txt || fio_write_file(json, txt, strlen(txt), err, sizeof err)) {
            fprintf(stderr, "bench_decode: --json %s: %s\n", json, txt ? err : "out of memory");
            rc = 1;
        }
        free(txt);
    }
out:
    sampler_free(s);
    workload_free(&w);
    workload_free(&b1);
    model_free(m);
    if (profile || ablate) rlvr_profile_report(be, stdout);
    be->destroy(be);
    return rc;
}
