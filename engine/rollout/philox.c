/*
 * engine/rollout/philox.c — see philox.h. Constants from the Random123 paper.
 */
#include "engine/rollout/philox.h"

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    const uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(0xD2511F53u, c0, &hi0, &lo0);
        mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

double philox_uniform(uint64_t seed, uint64_t step, uint32_t prompt, uint32_t sample,
                      uint32_t pos) {
    const uint32_t ctr[4] = {pos, sample, prompt, (uint32_t)step};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32) ^ (uint32_t)(step >> 32)};
    uint32_t r[4];
    philox4x32(ctr, key, r);
    const uint64_t bits = ((uint64_t)r[0] << 21) ^ (r[1] >> 11); /* 53 bits */
    return (double)(bits & ((1ULL << 53) - 1)) * 0x1.0p-53;
}
