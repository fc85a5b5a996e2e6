/*
 * engine/runlog/crc32c.c — see crc32c.h. Bit at a time: event records are a few
 * hundred bytes, so a table (and its initialisation) is not worth having.
 */
#include "engine/runlog/crc32c.h"

uint32_t crc32c_update(uint32_t crc, const void *p, size_t n) {
    const unsigned char *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

uint32_t crc32c(const void *p, size_t n) { return crc32c_update(0, p, n); }

uint32_t crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }
