/*
 * engine/model/kv_share.h — the shared-prefix units of a decode step: which neighbouring
 * queries read the same cache blocks first (the G samples of a group, forked from one
 * prompt: kv_cache.h), so the backend can read those keys once for all of them
 * (backend.h, attention_cached's `share`; CUDA: the shared-prefix blocks of the
 * tensor-core cached attention).
 */
#ifndef RLVR_MODEL_KV_SHARE_H
#define RLVR_MODEL_KV_SHARE_H

/* A unit's shared prefix is at least this many positions (shorter ones are left to each
 * query: the unit's extra partial and merge would cost about what they save). */
enum { KV_SHARE_MIN = 32, KV_SHARE_ROWS = 64 };

/* Writes share[3·N] for queries n at positions pos[n] of sequences seq[n] (block tables
 * tables[seq · max_blocks ..], blocks of block_size positions): runs of consecutive
 * queries whose tables start with the same blocks, cut into units of at most
 * KV_SHARE_ROWS / group queries (as even as possible), each with P = the whole blocks
 * every member shares with the unit's first, capped below every member's position; a
 * unit needs P >= KV_SHARE_MIN and at least two members. share[n] = P_n (0 outside every
 * unit), share[N + u] = the first query of unit u, share[2N + u] = its size (0 past the
 * last unit). Returns the number of units. */
int kv_share_plan(const int *tables, int max_blocks, int block_size, const int *seq,
                  const int *pos, int N, int group, int *share);

#endif
