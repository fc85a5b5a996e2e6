/*
 * tests/gpu/bench_decode_attn.c — the cached attention of one decode step, op by op, on the
 * Qwen2.5-0.5B shape (14 query / 2 KV heads of 64), for the settings the decode A/B rows
 * change end to end (tests/gpu/decode_bench.sh), where a whole run's noise (±10% between
 * calls at 32 sequences in the sixth H200 run) hides a few per cent of one op.
 *
 * Workloads (paged cache of 16-slot blocks, random bf16 values, block ids shuffled):
 *   g1_256  256 sequences, contexts uniform in [100, 2000) (the issue-9 workload mid-run);
 *   g8_256  32 prompts × 8 samples: prompt uniform in [100, 1024), each group's samples
 *           sharing the prompt's full blocks, then 1..1000 own tokens (the same count
 *           within a group: samples decode in step; GRPO's shape);
 *   g1_32   32 sequences, contexts uniform in [100, 600);
 *   b1      one sequence of 768 keys;
 *   g8_early 32 prompts × 8 samples early in generation: 1..50 own tokens (the prompt is
 *           nearly the whole context: the units' prefix blocks carry most of the work).
 * Variants (each a setting the backend reads at every call):
 *   default   attention_cached, tensor-core split-K kernel (kernels/cuda/kvcache_mma.cu),
 *             with the workload's shared-prefix units (engine/model/kv_share.c: g8_256's
 *             samples read their prompt's blocks once) as the decode step passes them;
 *   noshare   the same without the units (each sample reads its prompt's keys);
 *   pair      RLVR_DECODE_ATTN_PAIR=1 (two neighbouring queries per block);
 *   stages4   RLVR_DECODE_ATTN_STAGES=4;  bps8  RLVR_DECODE_SPLIT_BPS=8;
 *   keys256, keys128, keys0  RLVR_DECODE_SPLIT_KEYS=256 / 128 / 0 (256-key splits are
 *             the default up to 32 queries, count-based ones above; keys0 count-based
 *             everywhere: with session 22's warp merge, more splits cost less to merge);
 *   split     the scalar split-K kernel;
 *   qkv       qkv_attention_cached from a stacked q|k|v (the default decode layer's op
 *             above 8 rows: split, rotation and cache store inside the attention);
 *   qkvapart  the same op with RLVR_DECODE_QKV_ATTN=0 (qkv_split_store, then
 *             attention_cached);  qkvpair  qkv with RLVR_DECODE_ATTN_PAIR=1.
 * (pair and qkvpair run without the units: paired rows and units exclude each other.)
 * Checks (exit 1 when one fails): pair's output and every qkv variant's output and cache
 * bytes are bit for bit those of default / qkvapart on the same inputs and units (the
 * kernels promise the same bits; test_cuda_ops checks them too); noshare's output within
 * bf16 tolerance of default's (another summation order: other bits).
 *
 * Timing: CALLS calls of the op recorded as one CUDA graph (as the decode step runs them:
 * no host launch cost; the backend's graph ops), replayed RUNS times after WARMUP, each
 * replay bracketed by be->sync() on the host monotonic clock; the median / CALLS is the
 * time per call (µs). Also the KV bytes one call reads (Σ contexts × 2·Hkv·D·2, a shared
 * prompt block counted once) over that time, GB/s.
 *
 * Usage: bench_decode_attn [report.json] [--quick] (--quick: small workloads, one run, for
 * the emulated smoke test). Exit 0; 1 on a failed check or a backend error; 77 when no GPU
 * is usable.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, fsync */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/model/kv_share.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"

enum { HQ = 14, HKV = 2, HD = 64, BS = 16, WARMUP = 2, RUNS = 9, CALLS = 20, MAXW = 5 };

/* The variants, in table order: their settings (NAME=VALUE, ";"-separated; NULL: none),
 * whether they call qkv_attention_cached, and the scalar split-K kernel (split). */
typedef struct {
    const char *name, *env;
    int qkv, scalar, noshare; /* noshare: the call without the shared-prefix units */
} variant;
static const variant VARIANTS[] = {
    {"default", NULL, 0, 0, 0},
    {"noshare", NULL, 0, 0, 1},
    {"pair", "RLVR_DECODE_ATTN_PAIR=1", 0, 0, 1},
    {"stages4", "RLVR_DECODE_ATTN_STAGES=4", 0, 0, 0},
    {"bps8", "RLVR_DECODE_SPLIT_BPS=8", 0, 0, 0},
    {"keys256", "RLVR_DECODE_SPLIT_KEYS=256", 0, 0, 0},
    {"keys128", "RLVR_DECODE_SPLIT_KEYS=128", 0, 0, 0},
    {"keys0", "RLVR_DECODE_SPLIT_KEYS=0", 0, 0, 0},
    {"split", NULL, 0, 1, 0},
    {"qkv", NULL, 1, 0, 0},
    {"qkvapart", "RLVR_DECODE_QKV_ATTN=0", 1, 0, 0},
    {"qkvpair", "RLVR_DECODE_ATTN_PAIR=1", 1, 0, 1},
};
enum {
    NV = sizeof VARIANTS / sizeof VARIANTS[0],
    V_DEFAULT = 0,
    V_NOSHARE = 1,
    V_PAIR = 2,
    V_QKVAPART = 10
};
static const char *const SETTINGS[] = {"RLVR_DECODE_ATTN_PAIR", "RLVR_DECODE_ATTN_STAGES",
                                       "RLVR_DECODE_SPLIT_BPS", "RLVR_DECODE_SPLIT_KEYS",
                                       "RLVR_DECODE_QKV_ATTN"};

static void apply(rlvr_backend *be, const variant *v) {
    for (size_t i = 0; i < sizeof SETTINGS / sizeof SETTINGS[0]; i++) unsetenv(SETTINGS[i]);
    if (v->env) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", v->env);
        char *eq = strchr(buf, '=');
        *eq = '\0';
        setenv(buf, eq + 1, 1);
    }
    rlvr_cuda_set_decode_attention(be, v->scalar ? 1 : 2); /* 1: split-K, 2: tensor cores */
}

/* ---- workloads ----------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int N, ctx_max, n_blocks, max_blocks;
    int *pos, *seq, *slots, *tables; /* host */
    int *share, units;               /* host [3·N]: kv_share_plan's units, and how many */
    double kv_bytes;                 /* read by one call (shared blocks once) */
} workload;

static uint64_t lcg = 1;
static int draw(int lo, int hi) { /* uniform in [lo, hi) */
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (int)((lcg >> 33) % (uint64_t)(hi - lo));
}

/* groups of G samples; prompt lengths in [p_lo, p_hi), own tokens in [t_lo, t_hi) (G = 1:
 * the whole context drawn as the prompt, t = 0 own tokens past it but the query's own). */
static int make_workload(workload *w, const char *name, int groups, int G, int p_lo, int p_hi,
                         int t_lo, int t_hi) {
    memset(w, 0, sizeof *w);
    w->name = name;
    w->N = groups * G;
    int *plen = malloc((size_t)groups * sizeof(int)), *len = malloc((size_t)w->N * sizeof(int));
    w->pos = malloc((size_t)w->N * sizeof(int));
    w->seq = malloc((size_t)w->N * sizeof(int));
    w->slots = malloc((size_t)w->N * sizeof(int));
    if (!plen || !len || !w->pos || !w->seq || !w->slots) return -1;
    const double per_pos = 2.0 * HKV * HD * 2; /* one layer's K and V bytes of a position */
    for (int g = 0; g < groups; g++) {
        plen[g] = draw(p_lo, p_hi);
        const int own = t_hi > t_lo ? draw(t_lo, t_hi) : 0;
        for (int s = 0; s < G; s++) len[g * G + s] = plen[g] + own + 1;
        w->kv_bytes += (double)(plen[g] / BS * BS) * per_pos; /* shared full blocks once */
        for (int s = 0; s < G; s++)
            w->kv_bytes += (double)(len[g * G + s] - plen[g] / BS * BS) * per_pos;
    }
    for (int n = 0; n < w->N; n++) {
        const int nb = (len[n] + BS - 1) / BS;
        if (nb > w->max_blocks) w->max_blocks = nb;
        if (len[n] > w->ctx_max) w->ctx_max = len[n];
    }
    w->tables = malloc((size_t)w->N * w->max_blocks * sizeof(int));
    if (!w->tables) return -1;
    int next = 0;
    for (int n = 0; n < w->N; n++) {
        const int g = n / G, nsh = plen[g] / BS, nb = (len[n] + BS - 1) / BS;
        int *tb = w->tables + (size_t)n * w->max_blocks;
        for (int b = 0; b < w->max_blocks; b++) tb[b] = 0;
        for (int b = 0; b < nb; b++)
            tb[b] = (b < nsh && n % G != 0) ? w->tables[(size_t)(n - n % G) * w->max_blocks + b]
                                            : next++;
        w->seq[n] = n;
        w->pos[n] = len[n] - 1;
    }
    w->n_blocks = next;
    /* shuffle the block ids (a real pool hands them out in no order) */
    int *perm = malloc((size_t)next * sizeof(int));
    if (!perm) return -1;
    for (int i = 0; i < next; i++) perm[i] = i;
    for (int i = next - 1; i > 0; i--) {
        const int j = draw(0, i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < (size_t)w->N * w->max_blocks; i++) w->tables[i] = perm[w->tables[i]];
    for (int n = 0; n < w->N; n++)
        w->slots[n] = w->tables[(size_t)n * w->max_blocks + w->pos[n] / BS] * BS + w->pos[n] % BS;
    w->share = malloc((size_t)3 * w->N * sizeof(int));
    if (!w->share) return -1;
    w->units = kv_share_plan(w->tables, w->max_blocks, BS, w->seq, w->pos, w->N, HQ / HKV,
                             w->share);
    free(perm);
    free(plen);
    free(len);
    return 0;
}

static void free_workload(workload *w) {
    free(w->pos);
    free(w->seq);
    free(w->slots);
    free(w->tables);
    free(w->share);
}

/* ---- device buffers and one call -------------------------------------------------------- */

typedef struct {
    void *kc, *vc, *q, *qkv, *out, *qs, *ks, *vs;
    int *tables, *seq, *pos, *slots;
    int *share; /* the workload's units, NULL without any */
    float *inv_freq;
    size_t cache_bytes, out_bytes;
} dev;

static void *up(rlvr_backend *be, const void *h, size_t bytes) {
    void *d = be->alloc(be, bytes);
    if (d) be->to_device(be, d, h, bytes);
    return d;
}

static void fill(rlvr_backend *be, void *d, size_t n, uint64_t seed) {
    float *h = malloc(n * sizeof(float));
    if (!h) return;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        h[i] = (float)((x >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
    }
    be->act_from_f32(be, d, h, n);
    free(h);
}

static int make_dev(rlvr_backend *be, const workload *w, dev *d) {
    const size_t row = (size_t)HKV * HD, N = (size_t)w->N;
    d->cache_bytes = (size_t)w->n_blocks * BS * row * be->act_size;
    d->out_bytes = N * HQ * HD * be->act_size;
    d->kc = be->alloc(be, d->cache_bytes);
    d->vc = be->alloc(be, d->cache_bytes);
    d->q = be->alloc(be, d->out_bytes);
    d->qkv = be->alloc(be, N * (HQ + 2 * HKV) * HD * be->act_size);
    d->out = be->alloc(be, d->out_bytes);
    d->qs = be->alloc(be, d->out_bytes);
    d->ks = be->alloc(be, N * row * be->act_size);
    d->vs = be->alloc(be, N * row * be->act_size);
    float f[HD / 2];
    for (int i = 0; i < HD / 2; i++) f[i] = powf(1000000.0f, -2.0f * (float)i / HD);
    d->inv_freq = up(be, f, sizeof f);
    d->tables = up(be, w->tables, N * w->max_blocks * sizeof(int));
    d->seq = up(be, w->seq, N * sizeof(int));
    d->pos = up(be, w->pos, N * sizeof(int));
    d->slots = up(be, w->slots, N * sizeof(int));
    d->share = w->units > 0 ? up(be, w->share, 3 * N * sizeof(int)) : NULL;
    if ((w->units > 0 && !d->share) || !d->kc || !d->vc || !d->q || !d->qkv || !d->out || !d->qs || !d->ks || !d->vs ||
        !d->inv_freq || !d->tables || !d->seq || !d->pos || !d->slots)
        return -1;
    fill(be, d->kc, d->cache_bytes / be->act_size, 1);
    fill(be, d->vc, d->cache_bytes / be->act_size, 2);
    fill(be, d->q, N * HQ * HD, 3);
    fill(be, d->qkv, N * (HQ + 2 * HKV) * HD, 4);
    return 0;
}

static void free_dev(rlvr_backend *be, dev *d) {
    void *p[] = {d->kc, d->vc, d->q,      d->qkv,    d->out, d->qs,  d->ks,
                 d->vs, d->inv_freq, d->tables, d->seq, d->pos, d->slots, d->share};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i]) be->free(be, p[i]);
}

/* One call of the variant's op (share: the units passed, or NULL). */
static void call(rlvr_backend *be, const workload *w, const dev *d, const variant *v,
                 const int *share) {
    if (v->qkv)
        be->qkv_attention_cached(be, d->out, d->qs, d->ks, d->vs, d->qkv, d->kc, d->vc, d->slots,
                                 d->pos, d->inv_freq, d->tables, w->max_blocks, BS, d->seq,
                                 share, w->N, HQ, HKV, HD, w->ctx_max);
    else
        be->attention_cached(be, d->out, d->q, d->kc, d->vc, d->tables, w->max_blocks, BS, d->seq,
                             d->pos, share, w->N, HQ, HKV, HD, w->ctx_max);
}

static const int *share_of(const dev *d, const variant *v) { return v->noshare ? NULL : d->share; }

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* µs per call of the variant: CALLS calls in one graph, replayed; -1 on a backend error. */
static double time_variant(rlvr_backend *be, const workload *w, const dev *d, const variant *v,
                           int runs) {
    apply(be, v);
    call(be, w, d, v, share_of(d, v)); /* eager first: scratch allocated outside the recording */
    void *graph = NULL;
    if (be->graph_begin && be->graph_begin(be) == 0) {
        for (int i = 0; i < CALLS; i++) call(be, w, d, v, share_of(d, v));
        graph = be->graph_end(be);
    }
    double t[RUNS];
    for (int r = 0; r < (runs > 1 ? WARMUP : 0) + runs; r++) {
        be->sync(be);
        const double t0 = now_us();
        if (graph) be->graph_launch(be, graph);
        else
            for (int i = 0; i < CALLS; i++) call(be, w, d, v, share_of(d, v));
        be->sync(be);
        if (r >= (runs > 1 ? WARMUP : 0)) t[r - (runs > 1 ? WARMUP : 0)] = now_us() - t0;
    }
    if (graph) be->graph_free(be, graph);
    if (be->error(be)) return -1;
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    return t[runs / 2] / CALLS;
}

/* The output (and, for qkv variants, both caches) after one call of v with share:
 * malloc'd bytes. */
static unsigned char *result(rlvr_backend *be, const workload *w, const dev *d,
                             const variant *v, const int *share, size_t *bytes) {
    apply(be, v);
    call(be, w, d, v, share);
    *bytes = d->out_bytes + (v->qkv ? 2 * d->cache_bytes : 0);
    unsigned char *h = malloc(*bytes);
    if (!h) return NULL;
    be->to_host(be, h, d->out, d->out_bytes);
    if (v->qkv) {
        be->to_host(be, h + d->out_bytes, d->kc, d->cache_bytes);
        be->to_host(be, h + d->out_bytes + d->cache_bytes, d->vc, d->cache_bytes);
    }
    return h;
}

/* Whether variant v gives the bits of its reference (pair: default; qkv*: qkvapart), both
 * with v's units (pair: none); noshare: default's output within bf16 tolerance
 * (‖a − b‖ <= 1e-2·‖b‖), the units summing in another order. */
static int same_bits(rlvr_backend *be, const workload *w, const dev *d, int v) {
    const int ref = VARIANTS[v].qkv ? V_QKVAPART : V_DEFAULT;
    const int *share = v == V_NOSHARE ? d->share : share_of(d, &VARIANTS[v]);
    size_t na = 0, nb = 0;
    unsigned char *a = result(be, w, d, &VARIANTS[ref], share, &na);
    unsigned char *b = result(be, w, d, &VARIANTS[v], share_of(d, &VARIANTS[v]), &nb);
    int same = a && b && na == nb && memcmp(a, b, na) == 0;
    if (v == V_NOSHARE && a && b && na == nb) {
        double num = 0, den = 0;
        for (size_t i = 0; i + 1 < d->out_bytes; i += 2) { /* bf16 words */
            uint32_t ua = (uint32_t)(a[i] | a[i + 1] << 8) << 16;
            uint32_t ub = (uint32_t)(b[i] | b[i + 1] << 8) << 16;
            float fa, fb;
            memcpy(&fa, &ua, 4);
            memcpy(&fb, &ub, 4);
            num += ((double)fa - fb) * ((double)fa - fb);
            den += (double)fb * fb;
        }
        same = num == num && num <= 1e-4 * den; /* (NaN fails) */
    }
    free(a);
    free(b);
    return same;
}

static int write_json(const char *path, const workload *ws, int nw, double us[][NV],
                      int ok[][NV], int runs) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "bench_decode_attn: cannot write %s\n", tmp);
        return -1;
    }
    fprintf(f, "{\n  \"bench\": \"bench_decode_attn\",\n  \"shape\": \"Hq %d, Hkv %d, D %d, "
               "block %d\",\n  \"timing\": \"median of %d replays of a graph of %d calls, "
               "per call\",\n  \"workloads\": [\n", HQ, HKV, HD, BS, runs, CALLS);
    for (int i = 0; i < nw; i++) {
        fprintf(f, "    {\"name\": \"%s\", \"N\": %d, \"units\": %d, \"kv_mb\": %.3f, "
                   "\"us\": {", ws[i].name, ws[i].N, ws[i].units, ws[i].kv_bytes / 1e6);
        for (int v = 0; v < NV; v++)
            fprintf(f, "%s\"%s\": %.3f", v ? ", " : "", VARIANTS[v].name, us[i][v]);
        fprintf(f, "}, \"same_bits\": {");
        for (int v = 0; v < NV; v++)
            fprintf(f, "%s\"%s\": %s", v ? ", " : "", VARIANTS[v].name,
                    ok[i][v] ? "true" : "false");
        fprintf(f, "}}%s\n", i + 1 < nw ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "bench_decode_attn: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *json = NULL;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = 1;
        else json = argv[i];
    }
    if (strcmp(VARIANTS[V_NOSHARE].name, "noshare") || strcmp(VARIANTS[V_PAIR].name, "pair") ||
        strcmp(VARIANTS[V_QKVAPART].name, "qkvapart")) {
        fprintf(stderr, "bench_decode_attn: the V_* indices do not match VARIANTS\n");
        return 1;
    }
    char err[512];
    rlvr_backend *be = rlvr_cuda_backend_create(0, err, sizeof err);
    if (!be) {
        printf("bench_decode_attn: SKIP: %s\n", err);
        return 77;
    }
    workload ws[MAXW];
    int nw = 0, rc = 0;
    if (quick) { /* the emulated smoke test: small and few */
        rc |= make_workload(&ws[nw++], "g1_small", 6, 1, 20, 120, 0, 0);
        rc |= make_workload(&ws[nw++], "g4_small", 2, 4, 40, 90, 1, 30);
    } else {
        rc |= make_workload(&ws[nw++], "g1_256", 256, 1, 100, 2000, 0, 0);
        rc |= make_workload(&ws[nw++], "g8_256", 32, 8, 100, 1024, 1, 1000);
        rc |= make_workload(&ws[nw++], "g1_32", 32, 1, 100, 600, 0, 0);
        rc |= make_workload(&ws[nw++], "b1", 1, 1, 768, 769, 0, 0);
        /* last: the workloads above draw what they drew in the seventh H200 run */
        rc |= make_workload(&ws[nw++], "g8_early", 32, 8, 100, 1024, 1, 50);
    }
    if (rc) {
        fprintf(stderr, "bench_decode_attn: out of host memory\n");
        return 1;
    }
    double us[MAXW][NV];
    int ok[MAXW][NV];
    const int runs = quick ? 1 : RUNS;
    printf("bench_decode_attn: Qwen2.5-0.5B attention (Hq %d, Hkv %d, D %d), µs per call "
           "(× default: > 1 faster)\n%-9s %5s %8s", HQ, HKV, HD, "workload", "N", "KV MB");
    for (int v = 0; v < NV; v++) printf(" %16s", VARIANTS[v].name);
    printf("\n");
    for (int i = 0; i < nw && rc == 0; i++) {
        dev d;
        memset(&d, 0, sizeof d);
        if (make_dev(be, &ws[i], &d)) {
            fprintf(stderr, "bench_decode_attn: %s: cannot allocate on the device\n",
                    ws[i].name);
            rc = 1;
            free_dev(be, &d);
            break;
        }
        printf("%-9s %5d %8.2f", ws[i].name, ws[i].N, ws[i].kv_bytes / 1e6);
        for (int v = 0; v < NV; v++) {
            us[i][v] = time_variant(be, &ws[i], &d, &VARIANTS[v], runs);
            ok[i][v] = v == V_PAIR || v == V_NOSHARE || VARIANTS[v].qkv
                           ? same_bits(be, &ws[i], &d, v)
                           : 1;
            if (!ok[i][v] || us[i][v] < 0) rc = 1;
            printf(" %7.2f (%5.3f)%s", us[i][v], us[i][V_DEFAULT] / us[i][v], ok[i][v] ? "" : "!");
        }
        printf("   %.0f GB/s (default), %d units\n", ws[i].kv_bytes / (us[i][V_DEFAULT] * 1e3),
               ws[i].units);
        free_dev(be, &d);
    }
    apply(be, &VARIANTS[V_DEFAULT]);
    if (be->error(be)) {
        fprintf(stderr, "bench_decode_attn: backend error: %s\n", be->error(be));
        rc = 1;
    }
    if (rc) fprintf(stderr, "bench_decode_attn: FAIL (a \"!\" marks bits that differ)\n");
    if (json && rc == 0 && write_json(json, ws, nw, us, ok, runs) != 0) rc = 1;
    for (int i = 0; i < nw; i++) free_workload(&ws[i]);
    be->destroy(be);
    return rc;
}
