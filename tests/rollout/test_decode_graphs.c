/*
 * tests/rollout/test_decode_graphs.c — the decode-graph bookkeeping of
 * engine/model/kv_cache.c (padded buckets, recording on a bucket's second use, replay,
 * dropping every graph when a buffer moves) on the CPU, where no CUDA graph exists.
 *
 * A recording backend stands in for CUDA's: the CPU backend with graph ops whose
 * "recording" stores each decode op and its arguments instead of running it, and whose
 * replay runs the stored list — the semantics of a CUDA graph (pointers and shapes
 * fixed when recorded, buffer contents read when replayed). The CPU attention_cached
 * sizes its scratch from max_ctx, which graphs record as 0 (CUDA ignores it); the
 * replay derives it from the positions buffer, as each CUDA block reads its own pos[n].
 *
 * Checks, for builtin:tiny-qwen2 and builtin:tiny-qwen3:
 *   1. decode steps through graphs give the same logits, bit for bit, as the plain CPU
 *      backend padding its steps the same way (RLVR_DECODE_PAD), over steps whose batch
 *      shrinks through several buckets (sequences end at different lengths), with graphs
 *      recorded and replayed (counters > 0);
 *   2. a training-sized forward between two generation phases moves the activations:
 *      the graphs are dropped and re-recorded, and the logits still match.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/builtin.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "kernels/backend.h"

/* ---- the recording backend ---------------------------------------------------------- */

enum { OP_EMB, OP_RMS, OP_MM, OP_ROPE, OP_KV, OP_ATT, OP_SWI, OP_ADD, OP_QKV, OP_SWP, OP_ARN };

typedef struct {
    int op;
    void *p[8];
    int i[10];
    float f;
    size_t n;
} rec;

typedef struct {
    rec *r;
    int n, cap;
} recording;

static rlvr_backend inner; /* the CPU backend's table (same ctx as the wrapper) */
static recording *rec_now; /* non-NULL while recording */
static long replays;

static rec *push(int op) {
    if (rec_now->n == rec_now->cap) {
        rec_now->cap = rec_now->cap ? rec_now->cap * 2 : 256;
        rec_now->r = realloc(rec_now->r, (size_t)rec_now->cap * sizeof(rec));
        if (!rec_now->r) abort();
    }
    rec *x = &rec_now->r[rec_now->n++];
    memset(x, 0, sizeof *x);
    x->op = op;
    return x;
}

static void r_emb(rlvr_backend *be, void *out, const int *ids, const void *wte, int T, int C) {
    if (!rec_now) return inner.embedding_forward(be, out, ids, wte, T, C);
    rec *x = push(OP_EMB);
    x->p[0] = out, x->p[1] = (void *)ids, x->p[2] = (void *)wte, x->i[0] = T, x->i[1] = C;
}
static void r_rms(rlvr_backend *be, void *out, float *rstd, const void *in, const void *w, int N,
                  int C, float eps) {
    if (!rec_now) return inner.rmsnorm_forward(be, out, rstd, in, w, N, C, eps);
    rec *x = push(OP_RMS);
    x->p[0] = out, x->p[1] = rstd, x->p[2] = (void *)in, x->p[3] = (void *)w;
    x->i[0] = N, x->i[1] = C, x->f = eps;
}
static void r_mm(rlvr_backend *be, void *out, const void *in, const void *w, const void *bias,
                 int N, int IC, int OC) {
    if (!rec_now) return inner.matmul_forward(be, out, in, w, bias, N, IC, OC);
    rec *x = push(OP_MM);
    x->p[0] = out, x->p[1] = (void *)in, x->p[2] = (void *)w, x->p[3] = (void *)bias;
    x->i[0] = N, x->i[1] = IC, x->i[2] = OC;
}
static void r_rope(rlvr_backend *be, void *xx, const int *pos, const float *inv_freq, int T,
                   int H, int D) {
    if (!rec_now) return inner.rope_forward(be, xx, pos, inv_freq, T, H, D);
    rec *x = push(OP_ROPE);
    x->p[0] = xx, x->p[1] = (void *)pos, x->p[2] = (void *)inv_freq;
    x->i[0] = T, x->i[1] = H, x->i[2] = D;
}
static void r_kv(rlvr_backend *be, void *kc, void *vc, const void *k, const void *v,
                 const int *slots, int T, int Hkv, int D) {
    if (!rec_now) return inner.kv_store(be, kc, vc, k, v, slots, T, Hkv, D);
    rec *x = push(OP_KV);
    x->p[0] = kc, x->p[1] = vc, x->p[2] = (void *)k, x->p[3] = (void *)v, x->p[4] = (void *)slots;
    x->i[0] = T, x->i[1] = Hkv, x->i[2] = D;
}
static void r_att(rlvr_backend *be, void *out, const void *q, const void *kc, const void *vc,
                  const int *tables, int max_blocks, int bs, const int *seq, const int *pos,
                  const int *share, int N, int Hq, int Hkv, int D, int max_ctx) {
    if (!rec_now)
        return inner.attention_cached(be, out, q, kc, vc, tables, max_blocks, bs, seq, pos,
                                      share, N, Hq, Hkv, D, max_ctx);
    rec *x = push(OP_ATT);
    x->p[0] = out, x->p[1] = (void *)q, x->p[2] = (void *)kc, x->p[3] = (void *)vc;
    x->p[4] = (void *)tables, x->p[5] = (void *)seq, x->p[6] = (void *)pos;
    x->p[7] = (void *)share;
    x->i[0] = max_blocks, x->i[1] = bs, x->i[2] = N, x->i[3] = Hq, x->i[4] = Hkv, x->i[5] = D;
}
static void r_swi(rlvr_backend *be, void *out, const void *g, const void *u, size_t n) {
    if (!rec_now) return inner.swiglu_forward(be, out, g, u, n);
    rec *x = push(OP_SWI);
    x->p[0] = out, x->p[1] = (void *)g, x->p[2] = (void *)u, x->n = n;
}
static void r_add(rlvr_backend *be, void *out, const void *a, const void *b, size_t n) {
    if (!rec_now) return inner.add(be, out, a, b, n);
    rec *x = push(OP_ADD);
    x->p[0] = out, x->p[1] = (void *)a, x->p[2] = (void *)b, x->n = n;
}

static void r_qkv(rlvr_backend *be, void *q, void *k, void *v, const void *qkv, const int *pos,
                  const float *inv_freq, int T, int Hq, int Hkv, int D) {
    if (!rec_now) return inner.qkv_split(be, q, k, v, qkv, pos, inv_freq, T, Hq, Hkv, D);
    rec *x = push(OP_QKV);
    x->p[0] = q, x->p[1] = k, x->p[2] = v, x->p[3] = (void *)qkv, x->p[4] = (void *)pos;
    x->p[5] = (void *)inv_freq, x->i[0] = T, x->i[1] = Hq, x->i[2] = Hkv, x->i[3] = D;
}
static void r_swp(rlvr_backend *be, void *out, const void *gu, int T, int I) {
    if (!rec_now) return inner.swiglu_packed_forward(be, out, gu, T, I);
    rec *x = push(OP_SWP);
    x->p[0] = out, x->p[1] = (void *)gu, x->i[0] = T, x->i[1] = I;
}

static void r_arn(rlvr_backend *be, void *sum, void *out, float *rstd, const void *a,
                  const void *b, const void *w, int N, int C, float eps) {
    if (!rec_now) return inner.add_rmsnorm_forward(be, sum, out, rstd, a, b, w, N, C, eps);
    rec *x = push(OP_ARN);
    x->p[0] = sum, x->p[1] = out, x->p[2] = rstd, x->p[3] = (void *)a, x->p[4] = (void *)b;
    x->p[5] = (void *)w, x->i[0] = N, x->i[1] = C, x->f = eps;
}

static int g_begin(rlvr_backend *be) {
    (void)be;
    rec_now = calloc(1, sizeof *rec_now);
    return rec_now ? 0 : -1;
}
static void *g_end(rlvr_backend *be) {
    (void)be;
    recording *r = rec_now;
    rec_now = NULL;
    return r;
}
static void g_launch(rlvr_backend *be, void *graph) {
    const recording *g = graph;
    replays++;
    for (int k = 0; k < g->n; k++) {
        const rec *x = &g->r[k];
        const int *ip = x->i;
        switch (x->op) {
        case OP_EMB: inner.embedding_forward(be, x->p[0], x->p[1], x->p[2], ip[0], ip[1]); break;
        case OP_RMS:
            inner.rmsnorm_forward(be, x->p[0], x->p[1], x->p[2], x->p[3], ip[0], ip[1], x->f);
            break;
        case OP_MM:
            inner.matmul_forward(be, x->p[0], x->p[1], x->p[2], x->p[3], ip[0], ip[1], ip[2]);
            break;
        case OP_ROPE: inner.rope_forward(be, x->p[0], x->p[1], x->p[2], ip[0], ip[1], ip[2]); break;
        case OP_KV:
            inner.kv_store(be, x->p[0], x->p[1], x->p[2], x->p[3], x->p[4], ip[0], ip[1], ip[2]);
            break;
        case OP_ATT: {
            const int *pos = x->p[6];
            int max_ctx = 1;
            for (int n = 0; n < ip[2]; n++)
                if (pos[n] + 1 > max_ctx) max_ctx = pos[n] + 1;
            inner.attention_cached(be, x->p[0], x->p[1], x->p[2], x->p[3], x->p[4], ip[0], ip[1],
                                   x->p[5], pos, x->p[7], ip[2], ip[3], ip[4], ip[5], max_ctx);
            break;
        }
        case OP_SWI: inner.swiglu_forward(be, x->p[0], x->p[1], x->p[2], x->n); break;
        case OP_ADD: inner.add(be, x->p[0], x->p[1], x->p[2], x->n); break;
        case OP_QKV:
            inner.qkv_split(be, x->p[0], x->p[1], x->p[2], x->p[3], x->p[4], x->p[5], ip[0],
                            ip[1], ip[2], ip[3]);
            break;
        case OP_SWP: inner.swiglu_packed_forward(be, x->p[0], x->p[1], ip[0], ip[1]); break;
        case OP_ARN:
            inner.add_rmsnorm_forward(be, x->p[0], x->p[1], x->p[2], x->p[3], x->p[4], x->p[5],
                                      ip[0], ip[1], x->f);
            break;
        }
    }
}
static void g_free(rlvr_backend *be, void *graph) {
    (void)be;
    recording *g = graph;
    if (g) free(g->r);
    free(g);
}

/* The CPU backend with recording graph ops: the same ctx, so every other entry of the
 * CPU table works unchanged. */
static rlvr_backend *recording_backend(rlvr_backend *cpu) {
    rlvr_backend *be = malloc(sizeof *be);
    if (!be) return NULL;
    inner = *cpu;
    *be = *cpu;
    be->embedding_forward = r_emb;
    be->rmsnorm_forward = r_rms;
    be->matmul_forward = r_mm;
    be->rope_forward = r_rope;
    be->kv_store = r_kv;
    be->attention_cached = r_att;
    be->swiglu_forward = r_swi;
    be->add = r_add;
    be->qkv_split = r_qkv;
    be->swiglu_packed_forward = r_swp;
    be->add_rmsnorm_forward = r_arn;
    be->graph_begin = g_begin;
    be->graph_end = g_end;
    be->graph_launch = g_launch;
    be->graph_free = g_free;
    return be;
}

/* ---- the checks ------------------------------------------------------------------------ */

enum { NSEQ = 64, PROMPT = 5 };

/* Prefills NSEQ prompts, then decodes while more than 16 sequences are short of their
 * own lengths (so the batch shrinks through the buckets 64, 48 and 32, where graph
 * buckets and the reference's RLVR_DECODE_PAD padding are the same multiples of 16),
 * writing every step's logits into out (appended; returns the count of floats, -1 on
 * error). */
static long generate(model *m, kv_cache *kv, float *out, char *err, size_t errlen) {
    const int V = m->cfg.vocab_size;
    int seqs[NSEQ], len[NSEQ], target[NSEQ];
    int32_t ids[NSEQ * PROMPT];
    int sq[NSEQ * PROMPT], ps[NSEQ * PROMPT], rows[NSEQ];
    long w = 0;
    for (int s = 0; s < NSEQ; s++) {
        seqs[s] = kv_seq_new(kv);
        if (seqs[s] < 0 || kv_seq_reserve(kv, seqs[s], PROMPT)) return -1;
        for (int t = 0; t < PROMPT; t++) {
            ids[s * PROMPT + t] = (s * 7 + t * 13) % V;
            sq[s * PROMPT + t] = seqs[s];
            ps[s * PROMPT + t] = t;
        }
        rows[s] = s * PROMPT + PROMPT - 1;
        len[s] = PROMPT;
        target[s] = PROMPT + 3 + (s * 5) % 23; /* 3 .. 25 new tokens */
    }
    float *logits = malloc((size_t)NSEQ * V * sizeof(float));
    if (!logits) return -1;
    if (model_decode(m, kv, ids, sq, ps, NSEQ * PROMPT, rows, NSEQ, logits, err, errlen)) {
        free(logits);
        return -1;
    }
    int next[NSEQ];
    for (int s = 0; s < NSEQ; s++) { /* greedy, so both backends follow the same path */
        int best = 0;
        for (int v = 1; v < V; v++)
            if (logits[(size_t)s * V + v] > logits[(size_t)s * V + best]) best = v;
        next[s] = best;
    }
    for (;;) {
        int N = 0, who[NSEQ];
        for (int s = 0; s < NSEQ; s++) {
            if (len[s] >= target[s]) continue;
            if (kv_seq_reserve(kv, seqs[s], len[s] + 1)) return -1;
            ids[N] = next[s];
            sq[N] = seqs[s];
            ps[N] = len[s];
            rows[N] = N;
            who[N++] = s;
        }
        if (N <= 16) break;
        if (model_decode(m, kv, ids, sq, ps, N, rows, N, logits, err, errlen)) {
            free(logits);
            return -1;
        }
        memcpy(out + w, logits, (size_t)N * V * sizeof(float));
        w += (long)N * V;
        for (int r = 0; r < N; r++) {
            const int s = who[r];
            int best = 0;
            for (int v = 1; v < V; v++)
                if (logits[(size_t)r * V + v] > logits[(size_t)r * V + best]) best = v;
            next[s] = best;
            len[s]++;
        }
    }
    for (int s = 0; s < NSEQ; s++) kv_seq_free(kv, seqs[s]);
    free(logits);
    return w;
}

/* A forward of a batch bigger than any decode step: the activations are reallocated. */
static int big_forward(model *m, char *err, size_t errlen) {
    enum { T = 600 };
    int32_t *ids = malloc(T * sizeof(int32_t));
    const int32_t offsets[2] = {0, T};
    if (!ids) return -1;
    for (int t = 0; t < T; t++) ids[t] = t % m->cfg.vocab_size;
    model_batch b = {.T = T, .B = 1, .ids = ids, .offsets = offsets};
    const int rc = model_forward(m, &b, 1.0f, 1, err, errlen);
    free(ids);
    return rc;
}

static int check(const char *spec) {
    char err[512];
    rlvr_backend *cpu_a = rlvr_cpu_backend_create(1), *cpu_b = rlvr_cpu_backend_create(1);
    rlvr_backend *rb = cpu_b ? recording_backend(cpu_b) : NULL;
    model *ma = NULL, *mb = NULL;
    kv_cache *ka = NULL, *kb = NULL;
    int fails = 0;
    if (!cpu_a || !rb || model_open(spec, cpu_a, &ma, err, sizeof err) ||
        model_open(spec, rb, &mb, err, sizeof err) ||
        kv_cache_create(ma, 8u << 20, 16, NSEQ, 256, &ka, err, sizeof err) ||
        kv_cache_create(mb, 8u << 20, 16, NSEQ, 256, &kb, err, sizeof err)) {
        printf("FAIL %s: setup: %s\n", spec, err);
        return 1;
    }
    /* the reference pads its decode steps as the graphs do, without graphs: the same ops
     * on the same shapes, so the logits must agree bit for bit */
    ka->pad_only = 1;
    const size_t cap = (size_t)NSEQ * 30 * ma->cfg.vocab_size;
    float *la = malloc(cap * sizeof(float)), *lb = malloc(cap * sizeof(float));
    for (int phase = 0; phase < 2 && !fails; phase++) {
        if (phase == 1 && (big_forward(ma, err, sizeof err) || big_forward(mb, err, sizeof err))) {
            printf("FAIL %s: training-sized forward: %s\n", spec, err);
            fails++;
            break;
        }
        const long rec0 = kb->graph_records;
        const long na = generate(ma, ka, la, err, sizeof err);
        const long nb = na < 0 ? -1 : generate(mb, kb, lb, err, sizeof err);
        if (na < 0 || nb < 0 || na != nb) {
            printf("FAIL %s phase %d: generation: %s (%ld vs %ld floats)\n", spec, phase, err,
                   na, nb);
            fails++;
            break;
        }
        long diff = 0;
        for (long i = 0; i < na; i++) diff += la[i] != lb[i];
        const long recs = kb->graph_records - rec0;
        printf("%s %s phase %d: %ld logits, %ld differ; graphs recorded %ld, replays %ld\n",
               diff || recs == 0 ? "FAIL" : "PASS", spec, phase, na, diff, recs, replays);
        fails += diff != 0 || recs == 0 || kb->graph_launches == 0;
    }
    free(la);
    free(lb);
    kv_cache_free(ka);
    kv_cache_free(kb);
    model_free(ma);
    model_free(mb);
    cpu_a->destroy(cpu_a);
    cpu_b->destroy(cpu_b);
    free(rb);
    return fails;
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    int fails = check("builtin:tiny-qwen2") + check("builtin:tiny-qwen3");
    printf("%s\n", fails ? "FAILED" : "all decode-graph checks passed");
    return fails ? 1 : 0;
}
