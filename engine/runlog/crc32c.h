/*
 * engine/runlog/crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as
 * used by TFRecord framing, and TFRecord's "masked" form of it.
 */
#ifndef RLVR_RUNLOG_CRC32C_H
#define RLVR_RUNLOG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc32c_update(0, p, n) is the CRC of p[0..n). */
uint32_t crc32c_update(uint32_t crc, const void *p, size_t n);
uint32_t crc32c(const void *p, size_t n);
/* TFRecord mask: rotate right by 15 bits, add 0xa282ead8. */
uint32_t crc32c_mask(uint32_t crc);

#endif
