/*
 * engine/rollout/decode_order.c — the order of a decode step's rows: longest context
 * first, then each group's samples in aligned pairs (decode_order.h).
 */
#include "engine/rollout/decode_order.h"

#include <string.h>

void decode_order_longest_first(int *active, int n, const int *len) {
    for (int i = 1; i < n; i++) {
        const int a = active[i];
        int j = i;
        for (; j > 0 && len[active[j - 1]] < len[a]; j--) active[j] = active[j - 1];
        active[j] = a;
    }
}

void decode_order_pair_groups(int *active, int n, const int *group, int *tmp) {
    int w = 0, pending = -1; /* w stays even between groups: each group starts a pair */
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && group[active[j]] == group[active[i]]) j++;
        int k = i, end = j;
        if ((j - i) % 2 == 1) {
            if (pending >= 0) { /* the waiting row and this group's first: one pair */
                tmp[w++] = pending;
                tmp[w++] = active[k++];
                pending = -1;
            } else { /* this group's last row waits */
                pending = active[--end];
            }
        }
        while (k < end) tmp[w++] = active[k++];
        i = j;
    }
    if (pending >= 0) tmp[w++] = pending;
    memcpy(active, tmp, (size_t)n * sizeof *active);
}
