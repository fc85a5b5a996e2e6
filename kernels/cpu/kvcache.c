/*
 * kernels/cpu/kvcache.c — the paged KV cache ops for generation: storing new keys and
 * values into their slots, and causal attention of query tokens over the cached
 * positions of their own sequence (see backend.h for the layout).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/composite.h"
#include "kernels/cpu/cpu_ops.h"

static void kv_store(rlvr_backend *be, void *k_cache_, void *v_cache_, const void *k_,
                     const void *v_, const int *slots, int T, int Hkv, int D) {
    float *kc = k_cache_, *vc = v_cache_;
    const float *k = k_, *v = v_;
    const size_t row = (size_t)Hkv * D;
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * Hkv * D)) schedule(static)
    for (int t = 0; t < T; t++) {
        if (slots[t] < 0) continue; /* padding token: nothing stored (backend.h) */
        memcpy(kc + (size_t)slots[t] * row, k + (size_t)t * row, row * sizeof(float));
        memcpy(vc + (size_t)slots[t] * row, v + (size_t)t * row, row * sizeof(float));
    }
}

/* Checks the shared-prefix hint (backend.h, attention_cached) against the tables: NULL when
 * it holds, else what is wrong. The CPU computes every query alone, so the hint only
 * serves to prove its writer (engine/model/kv_share.c) in every CPU test that decodes
 * groups. */
static const char *share_violation(const int *share, const int *block_tables, int max_blocks,
                                   int block_size, const int *seq, const int *pos, int N,
                                   int group) {
    const int *lead = share + N, *count = share + 2 * (size_t)N;
    int covered = 0; /* queries in units so far: units are in order and do not overlap */
    for (int u = 0; u < N && count[u] > 0; u++) {
        const int a = lead[u], c = count[u];
        if (c < 2 || c * group > 64 || a < covered || a + c > N)
            return "cpu attention_cached: share hint: a unit is not 2 or more consecutive "
                   "queries of at most 64 rows, in order";
        const int P = share[a];
        if (P <= 0 || P % block_size != 0)
            return "cpu attention_cached: share hint: a unit's shared length is not a "
                   "positive multiple of the block size";
        const int *t0 = block_tables + (size_t)seq[a] * max_blocks;
        for (int j = 0; j < c; j++) {
            const int n = a + j;
            const int *tj = block_tables + (size_t)seq[n] * max_blocks;
            if (share[n] != P || P > pos[n] ||
                memcmp(t0, tj, (size_t)(P / block_size) * sizeof(int)))
                return "cpu attention_cached: share hint: a unit member does not share the "
                       "unit's first positions";
        }
        for (int n = covered; n < a; n++)
            if (share[n] != 0)
                return "cpu attention_cached: share hint: a query outside every unit has a "
                       "shared length";
        covered = a + c;
    }
    for (int n = covered; n < N; n++)
        if (share[n] != 0)
            return "cpu attention_cached: share hint: a query outside every unit has a "
                   "shared length";
    return NULL;
}

static void attention_cached(rlvr_backend *be, void *out_, const void *q_, const void *k_cache_,
                             const void *v_cache_, const int *block_tables, int max_blocks,
                             int block_size, const int *seq, const int *pos, const int *share,
                             int N, int Hq, int Hkv, int D, int max_ctx) {
    if (share) {
        const char *bad = share_violation(share, block_tables, max_blocks, block_size, seq, pos,
                                          N, Hq / Hkv);
        if (bad) {
            ((cpu_ctx *)be->ctx)->err = bad;
            return;
        }
    }
    float *out = out_;
    const float *q = q_, *kc = k_cache_, *vc = v_cache_;
    const int group = Hq / Hkv;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t row = (size_t)Hkv * D;
    int failed = 0;
#pragma omp parallel num_threads(cpu_threads_for(be, (size_t)N * Hq * (size_t)max_ctx * D)) reduction(| : failed)
    {
        float *p = malloc((size_t)(max_ctx > 0 ? max_ctx : 1) * sizeof(float));
        if (!p) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < N * Hq; task++) {
            if (!p) continue;
            const int n = task / Hq, h = task % Hq, hk = h / group;
            const int *table = block_tables + (size_t)seq[n] * max_blocks;
            const int len = pos[n] + 1;
            const float *qn = q + ((size_t)n * Hq + h) * D;
            float m = -INFINITY;
            for (int j = 0; j < len; j++) {
                const size_t slot = (size_t)table[j / block_size] * block_size + j % block_size;
                const float *kj = kc + slot * row + (size_t)hk * D;
                float s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int d = 0; d < D; d++) s += qn[d] * kj[d];
                s *= scale;
                p[j] = s;
                if (s > m) m = s;
            }
            float l = 0.0f;
            for (int j = 0; j < len; j++) l += (p[j] = expf(p[j] - m));
            float *o = out + ((size_t)n * Hq + h) * D;
            memset(o, 0, (size_t)D * sizeof(float));
            for (int j = 0; j < len; j++) {
                const size_t slot = (size_t)table[j / block_size] * block_size + j % block_size;
                const float *vj = vc + slot * row + (size_t)hk * D;
                const float w = p[j] / l;
                for (int d = 0; d < D; d++) o[d] += w * vj[d];
            }
        }
        free(p);
    }
    if (failed) ((cpu_ctx *)be->ctx)->err = "cpu attention_cached: out of memory";
}

void cpu_kvcache_register(rlvr_backend *be) {
    be->kv_store = kv_store;
    be->attention_cached = attention_cached;
    be->qkv_attention_cached = rlvr_qkv_attention_cached_apart;
}
