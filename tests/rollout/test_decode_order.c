/*
 * tests/rollout/test_decode_order.c — the decode rows' order (engine/rollout/decode_order.h):
 * longest context first and stable; each group's samples in aligned pairs of rows. Random
 * steps of a run where groups lose samples (EOS) at random, against properties checked
 * directly: the result is a permutation of the input; without waiting rows it is the
 * stable sort; every row (2i, 2i + 1) holds two samples of one group except at most one
 * pair per two odd-sized groups; a group's samples keep their order and no row moves
 * more than one place earlier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rollout/decode_order.h"

static int fails;
static void check(int ok, const char *what, int trial) {
    if (!ok) {
        fprintf(stderr, "FAIL %s (trial %d)\n", what, trial);
        fails++;
    }
}

static unsigned long long rng = 88172645463325252ULL;
static int irand(int n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (int)(rng % (unsigned long long)n);
}

int main(void) {
    enum { MAXS = 512 };
    static int active[MAXS], sorted[MAXS], len[MAXS], grp[MAXS], tmp[MAXS], seen[MAXS];
    int checked_pairs = 0, straddles = 0;
    for (int trial = 0; trial < 2000; trial++) {
        /* ngroups groups of G samples; each sample alive or not; a group's samples share a
         * context length (they decode in step), groups often share one too */
        const int ngroups = 1 + irand(40), G = 1 + irand(9);
        int n = 0;
        for (int g = 0; g < ngroups; g++) {
            const int L = 100 + irand(trial % 3 == 0 ? 3 : 1000);
            for (int s = 0; s < G; s++) {
                const int id = g * G + s;
                len[id] = L;
                grp[id] = g;
                if (irand(4) != 0) active[n++] = id; /* some finished */
            }
        }
        /* admission order, then the step's order */
        memcpy(sorted, active, (size_t)n * sizeof(int));
        decode_order_longest_first(active, n, len);
        /* the stable sort, by a second method: for each length from long to short, the ids in
         * admission order */
        int m = 0;
        for (int L = 1100; L >= 100; L--)
            for (int i = 0; i < n; i++)
                if (len[sorted[i]] == L) tmp[m++] = sorted[i];
        check(m == n && memcmp(tmp, active, (size_t)n * sizeof(int)) == 0,
              "longest first, stable", trial);
        memcpy(sorted, active, (size_t)n * sizeof(int));
        decode_order_pair_groups(active, n, grp, tmp);
        /* a permutation */
        memset(seen, 0, sizeof seen);
        int perm = 1;
        for (int i = 0; i < n; i++)
            perm &= active[i] >= 0 && active[i] < MAXS && !seen[active[i]]++;
        check(perm, "a permutation of the rows", trial);
        /* groups in the sorted order with an odd count: at most half of them (rounded up)
         * give a straddling pair; every other pair is within a group */
        int odd = 0;
        for (int i = 0; i < n;) {
            int j = i + 1;
            while (j < n && grp[sorted[j]] == grp[sorted[i]]) j++;
            odd += (j - i) % 2;
            i = j;
        }
        int across = 0;
        for (int i = 0; i + 1 < n; i += 2) {
            checked_pairs++;
            across += grp[active[i]] != grp[active[i + 1]];
        }
        straddles += across;
        check(across <= odd / 2, "pairs across groups: one per two odd groups", trial);
        /* a group's samples keep their order; a row moves at most one place earlier (past a
         * waiting row), and a waiting row only moves later */
        static int at[MAXS];
        for (int x = 0; x < n; x++) at[sorted[x]] = x;
        int order_ok = 1, shift_ok = 1;
        for (int i = 0; i < n; i++) {
            if (at[active[i]] - i > 1) shift_ok = 0;
            if (i > 0 && grp[active[i - 1]] == grp[active[i]] &&
                at[active[i - 1]] > at[active[i]])
                order_ok = 0;
        }
        check(order_ok, "a group's samples keep their order", trial);
        check(shift_ok, "no row moves more than one place earlier", trial);
    }
    /* the hand example: groups a(3) b(2) c(3) d(1) -> a a | b b | a c | c c | d */
    {
        int act[9] = {0, 1, 2, 10, 11, 20, 21, 22, 30};
        int gr[31], t[9];
        for (int i = 0; i < 31; i++) gr[i] = i / 10;
        decode_order_pair_groups(act, 9, gr, t);
        const int want[9] = {0, 1, 10, 11, 2, 20, 21, 22, 30};
        check(memcmp(act, want, sizeof want) == 0, "hand example", -1);
    }
    printf("test_decode_order: %d checks of pairs (%d across groups), %d failed\n",
           checked_pairs, straddles, fails);
    return fails ? 1 : 0;
}
