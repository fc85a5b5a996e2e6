/*
 * engine/rollout/decode_order.h — the order of a decode step's rows (the sampler's active
 * sequences). A row's tokens never depend on its place; the order only serves the
 * kernels: longest context first, and the samples of a group in aligned pairs of rows.
 */
#ifndef RLVR_ROLLOUT_DECODE_ORDER_H
#define RLVR_ROLLOUT_DECODE_ORDER_H

/* Orders active[0..n) (sequence ids) by len[id] (context length), longest first, stably:
 * the samples of a group, always at one position, stay side by side. The cached attention
 * launches its blocks in row order, so the longest contexts, whose blocks take longest,
 * start first instead of finishing the step last (longest-processing-time-first). Every
 * context grows by one per step, so the order is nearly kept from step to step: an
 * insertion sort. */
void decode_order_longest_first(int *active, int n, const int *len);

/* Then keeps each group's samples (runs of equal group[id], as the order above leaves
 * them) in pairs of rows (2i, 2i + 1): the CUDA cached attention can run two neighbouring
 * rows in one block and read the cache tiles they share once (kernels/cuda/kvcache_mma.cu,
 * paired rows; the sampler calls it only with RLVR_DECODE_ATTN_PAIR=1 since session 22,
 * so that a group's samples stay together for its shared-prefix unit). Without this, after a group with an odd number of live samples every pair
 * of the groups after it would straddle two groups. An odd group's last sample waits and
 * goes with the next odd group's first (that pair shares nothing), or last; other rows
 * keep their order. tmp: n ints of scratch. */
void decode_order_pair_groups(int *active, int n, const int *group, int *tmp);

#endif
