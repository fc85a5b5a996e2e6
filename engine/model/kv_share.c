/*
 * engine/model/kv_share.c — the shared-prefix units of a decode step (kv_share.h).
 */
#include "engine/model/kv_share.h"

#include <limits.h>
#include <string.h>

/* Positions at the start of both contexts that lie in the same cache blocks (whole
 * blocks: forks share only full blocks), at most `cap`; the count stops once it reaches
 * `enough` (the run test below needs no more). */
static int common_prefix(const int *ta, const int *tb, int max_blocks, int block_size, int cap,
                         int enough) {
    int limit = cap / block_size; /* whole blocks below cap */
    if (limit > max_blocks) limit = max_blocks;
    if (enough < INT_MAX && (enough + block_size - 1) / block_size < limit)
        limit = (enough + block_size - 1) / block_size;
    int b = 0;
    while (b < limit && ta[b] == tb[b] && ta[b] >= 0)
        b++;
    return b * block_size;
}

int kv_share_plan(const int *tables, int max_blocks, int block_size, const int *seq,
                  const int *pos, int N, int group, int *share) {
    memset(share, 0, (size_t)3 * N * sizeof(int));
    const int cap = group > 0 ? KV_SHARE_ROWS / group : 0; /* members per unit */
    if (cap < 2 || block_size <= 0) return 0;
    int units = 0;
    for (int a = 0; a < N;) {
        /* the run from a: each next query shares at least KV_SHARE_MIN positions with a
         * (the shared part may only be below every member's own position) */
        const int *ta = tables + (size_t)seq[a] * max_blocks;
        int b = a + 1;
        while (b < N &&
               common_prefix(ta, tables + (size_t)seq[b] * max_blocks, max_blocks, block_size,
                             pos[a] < pos[b] ? pos[a] : pos[b], KV_SHARE_MIN) >= KV_SHARE_MIN)
            b++;
        const int run = b - a;
        if (run < 2) {
            a = b;
            continue;
        }
        /* the run in k units of sizes differing by at most one */
        const int k = (run + cap - 1) / cap;
        for (int i = 0, start = a; i < k; i++) {
            const int size = run / k + (i < run % k);
            const int *t0 = tables + (size_t)seq[start] * max_blocks;
            int P = pos[start];
            for (int j = 1; j < size; j++) {
                const int n = start + j;
                const int *tn = tables + (size_t)seq[n] * max_blocks;
                /* (past the first member P is whole blocks: a member whose table starts
                 * with the same P / block_size entries keeps it, one memcmp instead of a
                 * walk — the usual case, samples forked from one prompt) */
                if (j > 1 && P <= pos[n] &&
                    !memcmp(t0, tn, (size_t)(P / block_size) * sizeof(int)))
                    continue;
                const int lim = P < pos[n] ? P : pos[n];
                const int c = common_prefix(t0, tn, max_blocks, block_size, lim, INT_MAX);
                if (c < P) P = c;
            }
            P = common_prefix(t0, t0, max_blocks, block_size, P, INT_MAX); /* whole blocks */
            if (size >= 2 && P >= KV_SHARE_MIN) {
                for (int j = 0; j < size; j++)
                    share[start + j] = P;
                share[N + units] = start;
                share[2 * N + units] = size;
                units++;
            }
            start += size;
        }
        a = b;
    }
    return units;
}
