/*
 * kernels/cpu/sample.c — the fused LM head + sampling op (backend.h: lmhead_sample), the
 * fp32 reference of kernels/cuda/sample.cu with the same arithmetic where it decides:
 *   - thresholds are found by a radix select over the order-preserving uint32 key of
 *     the (penalised) logit, four 8-bit digits from the top, counting tokens (top-k)
 *     or summing their fixed-point mass ⌊e·2^40⌋ (top-p); every token at or above a
 *     threshold is kept, so ties at the threshold are all kept;
 *   - the draw walks the kept tokens in vocabulary order over integer masses, so for
 *     the same logits and u both backends pick the same token; they can differ only
 *     where expf rounds differently on the two (a token at a threshold or a draw
 *     boundary within an ulp).
 * The reported log-probability is accumulated in double here (fp32 on CUDA).
 * Rows are drawn in parallel (OpenMP), each thread with its own scratch; peak memory
 * 64 MiB of logits plus ~21 bytes × V per thread.
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

enum { SAMPLE_MAX_TILE_FLOATS = 16 << 20 }; /* 64 MiB of logits per sgemm at most */

static const double MASS_SCALE = 1099511627776.0; /* 2^40 */

/* Order-preserving key: a < b as floats ⇔ key(a) < key(b) as unsigned (no NaN). */
static uint32_t f2key(float f) {
    uint32_t b;
    memcpy(&b, &f, 4);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* The largest key v such that Σ weight over {i : key_i >= v, key_i >= floor} reaches
 * target (weight = 1 when mass == NULL). Four passes of 256-bin histograms, as the
 * CUDA kernel does; target >= 1 and reachable. */
static uint32_t radix_select(const uint32_t *key, const uint64_t *mass, int V, uint32_t floor,
                             uint64_t target) {
    uint32_t prefix = 0, pmask = 0;
    uint64_t hist[256];
    for (int shift = 24; shift >= 0; shift -= 8) {
        memset(hist, 0, sizeof hist);
        for (int i = 0; i < V; i++)
            if (key[i] >= floor && (key[i] & pmask) == prefix)
                hist[(key[i] >> shift) & 255u] += mass ? mass[i] : 1u;
        uint64_t cum = 0;
        int digit = 0;
        for (int b = 255; b >= 0; b--) {
            if (cum + hist[b] >= target) {
                digit = b;
                break;
            }
            cum += hist[b];
        }
        target -= cum;
        prefix |= (uint32_t)digit << shift;
        pmask |= 255u << shift;
    }
    return prefix;
}

typedef struct {
    float *z;       /* [V] penalised logits */
    float *e;       /* [V] exp((z − max)/T) */
    uint32_t *key;  /* [V] */
    uint64_t *mass; /* [V] */
    uint32_t *mask; /* [(V+31)/32] seen bits */
} sample_scratch;

static void sample_row(const float *l, int V, const rlvr_sample_params *p, float u,
                       const int *seen, int n_seen, sample_scratch *s, int *tok, float *lp) {
    float *z = s->z;
    memcpy(z, l, (size_t)V * sizeof(float));
    const float rp = p->repetition_penalty;
    if (rp != 1.0f && seen) {
        memset(s->mask, 0, (size_t)((V + 31) / 32) * sizeof(uint32_t));
        for (int j = 0; j < n_seen; j++) {
            const int id = seen[j];
            if (id >= 0 && id < V) s->mask[id >> 5] |= 1u << (id & 31);
        }
        for (int i = 0; i < V; i++)
            if (s->mask[i >> 5] >> (i & 31) & 1u) z[i] = l[i] > 0 ? l[i] / rp : l[i] * rp;
    }
    const int greedy = !(p->temperature > 0.0f);
    const float inv = greedy ? 1.0f : 1.0f / p->temperature;
    float lmax = -INFINITY, zmax = -INFINITY;
    int best = 0;
    for (int i = 0; i < V; i++) {
        if (l[i] > lmax) lmax = l[i];
        if (z[i] > zmax) {
            zmax = z[i];
            best = i;
        }
    }
    int pick = best;
    if (!greedy) {
        for (int i = 0; i < V; i++) {
            s->e[i] = expf((z[i] - zmax) * inv);
            s->mass[i] = (uint64_t)((double)s->e[i] * MASS_SCALE);
            s->key[i] = f2key(z[i]);
        }
        uint32_t thr = 0;
        if (p->top_k > 0 && p->top_k < V) thr = radix_select(s->key, NULL, V, 0, (uint64_t)p->top_k);
        if (p->top_p < 1.0f) {
            uint64_t tot = 0;
            for (int i = 0; i < V; i++)
                if (s->key[i] >= thr) tot += s->mass[i];
            uint64_t target = (uint64_t)((double)p->top_p * (double)tot);
            if (target < 1) target = 1;
            thr = radix_select(s->key, s->mass, V, thr, target);
        }
        const int use_minp = p->min_p > 0.0f;
        const float minp = p->min_p < 1.0f ? p->min_p : 1.0f;
        uint64_t total = 0;
        for (int i = 0; i < V; i++) {
            if (s->key[i] < thr || (use_minp && s->e[i] < minp)) s->mass[i] = 0;
            total += s->mass[i];
        }
        /* total >= 2^40: the maximum is always kept (e = 1) */
        uint64_t target = (uint64_t)((double)u * (double)total);
        if (target >= total) target = total - 1;
        uint64_t acc = 0;
        for (int i = 0; i < V; i++) {
            acc += s->mass[i];
            if (acc > target) {
                pick = i;
                break;
            }
        }
    }
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp(((double)l[i] - lmax) * inv);
    *tok = pick;
    *lp = (float)(((double)l[pick] - lmax) * inv - log(sum));
}

static void cpu_lmhead_sample(rlvr_backend *be, int *tokens, float *logprobs, const void *x_,
                              const void *w_, int R, int C, int V, const rlvr_sample_params *p,
                              const float *u, const int *seen, const int *seen_offsets) {
    if (R <= 0 || V <= 0) return;
    const float *x = x_, *w = w_;
    int rows = SAMPLE_MAX_TILE_FLOATS / V;
    if (rows < 1) rows = 1;
    if (rows > R) rows = R;
    float *logits = malloc((size_t)rows * V * sizeof(float));
    if (!logits) {
        ((cpu_ctx *)be->ctx)->err = "cpu lmhead_sample: out of memory";
        return;
    }
    const int pen = p->repetition_penalty != 1.0f && seen && seen_offsets;
    int oom = 0;
    for (int r0 = 0; r0 < R && !oom; r0 += rows) {
        const int rc = R - r0 < rows ? R - r0 : rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rc, V, C, 1.0f,
                    x + (size_t)r0 * C, C, w, C, 0.0f, logits, V);
        /* rows are independent: one scratch per thread */
#pragma omp parallel num_threads(cpu_threads_for(be, (size_t)rc * V * 8)) reduction(| : oom)
        {
            sample_scratch s;
            s.z = malloc((size_t)V * sizeof(float));
            s.e = malloc((size_t)V * sizeof(float));
            s.key = malloc((size_t)V * sizeof(uint32_t));
            s.mass = malloc((size_t)V * sizeof(uint64_t));
            s.mask = malloc((size_t)((V + 31) / 32) * sizeof(uint32_t));
            const int ok = s.z && s.e && s.key && s.mass && s.mask;
            oom |= !ok;
#pragma omp for schedule(static)
            for (int r = 0; r < rc; r++) {
                if (!ok) continue;
                const int g = r0 + r;
                const int *sn = pen ? seen + seen_offsets[g] : NULL;
                const int ns = pen ? seen_offsets[g + 1] - seen_offsets[g] : 0;
                sample_row(logits + (size_t)r * V, V, p, u ? u[g] : 0.0f, sn, ns, &s,
                           &tokens[g], &logprobs[g]);
            }
            free(s.z);
            free(s.e);
            free(s.key);
            free(s.mass);
            free(s.mask);
        }
    }
    if (oom) ((cpu_ctx *)be->ctx)->err = "cpu lmhead_sample: out of memory";
    free(logits);
}

void cpu_sample_register(rlvr_backend *be) { be->lmhead_sample = cpu_lmhead_sample; }
