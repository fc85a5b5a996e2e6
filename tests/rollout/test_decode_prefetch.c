/*
 * tests/rollout/test_decode_prefetch.c — the weight-prefetch plan of decode steps
 * (engine/model/kv_cache.c: decode_prefetch, opt-in RLVR_DECODE_PREFETCH_MB) on the CPU,
 * where a test op stands in for the CUDA backend's prefetch_l2 and records every call.
 *
 * Checks, on builtin:tiny-qwen2 (q/k/v biases, stacked projections) and
 * builtin:tiny-qwen3:
 *   1. the logits of a prefill and decode steps are the same bits with the prefetch on
 *      as off (a hint changes no value);
 *   2. no prefetch in the prefill; one call per layer in every decode step, whose ranges,
 *      laid end to end, are exactly the bytes of (layer 0: its q, k, v, then) the layer's
 *      o, gate, up and down and the next layer's q, k, v, in that order, each range inside
 *      the weights, adjacent parameters merged into one range (the stacked q|k|v and
 *      gate|up), at most RLVR_PREFETCH_MAX ranges;
 *   3. with a budget smaller than that (kv->prefetch_bytes), the same bytes cut at the
 *      budget;
 *   4. RLVR_DECODE_PREFETCH_MB that is not a size is refused by kv_cache_create, with an
 *      error naming the variable and the value; 0 turns the prefetch off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/acts.h"
#include "engine/model/builtin.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "kernels/backend.h"

/* ---- the recording prefetch op ------------------------------------------------------- */

enum { MAX_CALLS = 4096 };

typedef struct {
    int n;
    const char *ptr[RLVR_PREFETCH_MAX];
    size_t bytes[RLVR_PREFETCH_MAX];
} call;

static call g_calls[MAX_CALLS];
static int g_ncalls, g_overflow;

static void rec_prefetch(rlvr_backend *be, const void *const *ptr, const size_t *bytes, int n) {
    (void)be;
    if (g_ncalls == MAX_CALLS || n > RLVR_PREFETCH_MAX) {
        g_overflow = 1;
        return;
    }
    call *c = &g_calls[g_ncalls++];
    c->n = n;
    for (int i = 0; i < n; i++) {
        c->ptr[i] = ptr[i];
        c->bytes[i] = bytes[i];
    }
}

static int g_fails;
static void check(int ok, const char *spec, const char *what) {
    printf("%s %s: %s\n", ok ? "PASS" : "FAIL", spec, what);
    g_fails += !ok;
}

/* ---- the expected plan ----------------------------------------------------------------- */

/* The bytes layer l's call must cover, in order, as (pointer, bytes) of each parameter. */
static int expected_params(const model *m, int l, const char **ptr, size_t *bytes) {
    const model_layer_params *P = &m->layers[l];
    int idx[10], n = 0, k = 0;
    if (l == 0) idx[n++] = P->q, idx[n++] = P->k, idx[n++] = P->v;
    idx[n++] = P->o, idx[n++] = P->gate, idx[n++] = P->up, idx[n++] = P->down;
    if (l + 1 < m->cfg.num_layers) {
        const model_layer_params *Q = &m->layers[l + 1];
        idx[n++] = Q->q, idx[n++] = Q->k, idx[n++] = Q->v;
    }
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0) continue;
        ptr[k] = model_w(m, idx[i]);
        bytes[k++] = m->params[idx[i]].numel * m->be->act_size;
    }
    return k;
}

/* Whether call c covers the expected parameters' bytes, in order, cut at budget, with
 * adjacent parameters merged, every range inside the weights. */
static int call_matches(const model *m, int l, const call *c, size_t budget) {
    const char *ep[10];
    size_t eb[10];
    const int ne = expected_params(m, l, ep, eb);
    const char *w0 = m->weights, *w1 = w0 + m->n_weights * m->be->act_size;
    /* the expected ranges, cut and merged as the plan should be */
    const char *xp[10];
    size_t xb[10];
    int nx = 0;
    size_t left = budget;
    for (int i = 0; i < ne && left > 0; i++) {
        const size_t b = eb[i] < left ? eb[i] : left;
        left -= b;
        if (nx > 0 && xp[nx - 1] + xb[nx - 1] == ep[i]) {
            xb[nx - 1] += b;
        } else {
            xp[nx] = ep[i];
            xb[nx++] = b;
        }
    }
    if (nx > RLVR_PREFETCH_MAX) nx = RLVR_PREFETCH_MAX; /* the plan stops at the limit */
    if (c->n != nx) return 0;
    for (int i = 0; i < nx; i++) {
        if (c->ptr[i] != xp[i] || c->bytes[i] != xb[i]) return 0;
        if (c->ptr[i] < w0 || c->ptr[i] + c->bytes[i] > w1) return 0;
    }
    return 1;
}

/* ---- a generation: a prefill of 3 prompts, then decode steps ---------------------------- */

enum { NSEQ = 3, PROMPT = 4, STEPS = 3 };

/* Writes the logits of the prefill rows and of every decode step into out; the count of
 * prefetch calls made during the prefill into *prefill_calls. Returns 0 or -1 (err). */
static int generate(model *m, kv_cache *kv, float *out, int *prefill_calls, char *err,
                    size_t errlen) {
    const int V = m->cfg.vocab_size;
    int seqs[NSEQ], sq[NSEQ * PROMPT], ps[NSEQ * PROMPT], rows[NSEQ];
    int32_t ids[NSEQ * PROMPT];
    for (int s = 0; s < NSEQ; s++) {
        seqs[s] = kv_seq_new(kv);
        if (seqs[s] < 0 || kv_seq_reserve(kv, seqs[s], PROMPT + STEPS)) {
            snprintf(err, errlen, "no kv slot");
            return -1;
        }
        for (int t = 0; t < PROMPT; t++) {
            ids[s * PROMPT + t] = (s * 11 + t * 5) % V;
            sq[s * PROMPT + t] = seqs[s];
            ps[s * PROMPT + t] = t;
        }
        rows[s] = s * PROMPT + PROMPT - 1;
    }
    const int before = g_ncalls;
    if (model_decode(m, kv, ids, sq, ps, NSEQ * PROMPT, rows, NSEQ, out, err, errlen)) return -1;
    *prefill_calls = g_ncalls - before;
    for (int step = 0; step < STEPS; step++) {
        for (int s = 0; s < NSEQ; s++) {
            ids[s] = (step * 7 + s) % V;
            sq[s] = seqs[s];
            ps[s] = PROMPT + step;
            rows[s] = s;
        }
        float *o = out + (size_t)(step + 1) * NSEQ * V;
        if (model_decode(m, kv, ids, sq, ps, NSEQ, rows, NSEQ, o, err, errlen)) return -1;
    }
    for (int s = 0; s < NSEQ; s++) kv_seq_free(kv, seqs[s]);
    return 0;
}

static void run(const char *spec) {
    char err[512];
    rlvr_backend *cpu = rlvr_cpu_backend_create(1);
    model *m = NULL;
    if (!cpu || model_open(spec, cpu, &m, err, sizeof err)) {
        printf("FAIL %s: setup: %s\n", spec, err);
        g_fails++;
        return;
    }
    const int V = m->cfg.vocab_size, L = m->cfg.num_layers;
    const size_t nlog = (size_t)(STEPS + 1) * NSEQ * V;
    float *off = calloc(nlog, sizeof(float)), *on = calloc(nlog, sizeof(float));
    kv_cache *kv = NULL;
    int pre = 0, ok = off && on;

    /* prefetch off (the CPU backend has no prefetch_l2) */
    unsetenv("RLVR_DECODE_PREFETCH_MB");
    ok = ok && !kv_cache_create(m, 4u << 20, 16, NSEQ, 64, &kv, err, sizeof err) &&
         !generate(m, kv, off, &pre, err, sizeof err);
    kv_cache_free(kv);
    kv = NULL;

    /* prefetch on: the recording op, a budget above any layer */
    cpu->prefetch_l2 = rec_prefetch;
    setenv("RLVR_DECODE_PREFETCH_MB", "64", 1);
    g_ncalls = 0;
    ok = ok && !kv_cache_create(m, 4u << 20, 16, NSEQ, 64, &kv, err, sizeof err) &&
         !generate(m, kv, on, &pre, err, sizeof err);
    if (!ok) {
        printf("FAIL %s: generation: %s\n", spec, err);
        g_fails++;
    } else {
        check(memcmp(off, on, nlog * sizeof(float)) == 0, spec,
              "logits the same bits with the prefetch on as off");
        check(pre == 0 && g_ncalls == STEPS * L && !g_overflow, spec,
              "no prefetch in the prefill, one per layer in each decode step");
        int all = 1;
        for (int i = 0; i < g_ncalls; i++) all &= call_matches(m, i % L, &g_calls[i], (size_t)64 << 20);
        check(all, spec,
              "each call: o, gate, up, down, the next layer's q, k, v (layer 0: its own "
              "first), merged, inside the weights");
        int ranges = 0;
        for (int i = 0; i < g_ncalls; i++) ranges += g_calls[i].n;
        printf("     %s: %d calls, %d ranges (adjacent parameters merged)\n", spec, g_ncalls,
               ranges);

        /* a budget that cuts the plan: 1.5 of layer 0's o-projection */
        const size_t cut = m->params[m->layers[0].o].numel * m->be->act_size * 3 / 2 + 2;
        kv->prefetch_bytes = cut;
        g_ncalls = 0;
        ok = !generate(m, kv, on, &pre, err, sizeof err);
        int cut_ok = ok && g_ncalls == STEPS * L;
        for (int i = 0; cut_ok && i < g_ncalls; i++)
            cut_ok = call_matches(m, i % L, &g_calls[i], cut);
        check(cut_ok, spec, "a smaller budget cuts the same bytes at the budget");
        check(ok && memcmp(off, on, nlog * sizeof(float)) == 0, spec,
              "and the logits are still the same bits");
    }
    kv_cache_free(kv);
    kv = NULL;

    /* bad values are refused; 0 is off */
    const char *bad[] = {"12x", "-1", "1.5", "99999999999"};
    for (int i = 0; i < 4; i++) {
        setenv("RLVR_DECODE_PREFETCH_MB", bad[i], 1);
        err[0] = 0;
        const int rc = kv_cache_create(m, 4u << 20, 16, NSEQ, 64, &kv, err, sizeof err);
        char what[96];
        snprintf(what, sizeof what, "RLVR_DECODE_PREFETCH_MB=%s refused, naming both", bad[i]);
        check(rc != 0 && !kv && strstr(err, "RLVR_DECODE_PREFETCH_MB") && strstr(err, bad[i]),
              spec, what);
        kv_cache_free(kv);
        kv = NULL;
    }
    setenv("RLVR_DECODE_PREFETCH_MB", "0", 1);
    check(!kv_cache_create(m, 4u << 20, 16, NSEQ, 64, &kv, err, sizeof err) &&
              kv->prefetch_bytes == 0,
          spec, "RLVR_DECODE_PREFETCH_MB=0 is off");
    kv_cache_free(kv);
    unsetenv("RLVR_DECODE_PREFETCH_MB");
    free(off);
    free(on);
    model_free(m);
    cpu->destroy(cpu);
}

int main(void) {
    setvbuf(stdout, NULL, _IONBF, 0);
    run("builtin:tiny-qwen2");
    run("builtin:tiny-qwen3");
    printf("%s\n", g_fails ? "FAILED" : "all decode-prefetch checks passed");
    return g_fails ? 1 : 0;
}
