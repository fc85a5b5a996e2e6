/*
 * engine/rollout/philox.h — Philox 4x32-10 (Salmon et al., "Parallel random numbers:
 * as easy as 1, 2, 3", SC'11), the counter-based generator behind every sampling
 * decision: the same (key, counter) always gives the same numbers, on any machine, in
 * any order — so a token's randomness depends only on what it is, not when it is drawn.
 */
#ifndef RLVR_ROLLOUT_PHILOX_H
#define RLVR_ROLLOUT_PHILOX_H

#include <stdint.h>

/* out[4] = Philox4x32-10(counter ctr[4], key key[2]). */
void philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* A uniform double in [0, 1) (53 random bits) for the sampling decision of a token:
 * key = seed, counter = (pos, sample, prompt, step) — step's high bits fold into the key. */
double philox_uniform(uint64_t seed, uint64_t step, uint32_t prompt, uint32_t sample,
                      uint32_t pos);

#endif
