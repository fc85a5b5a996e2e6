/*
 * engine/reward/reward_wire.h — the byte format spoken over the pipes between the reward
 * host and an isolated worker subprocess (`isolation: process`). A frame is a u32 length
 * (little-endian host order: both ends are the same machine) followed by the payload.
 * Readers check every length against the bytes left, so a garbled frame is an error and
 * never an out-of-bounds read.
 */
#ifndef RLVR_ENGINE_REWARD_WIRE_H
#define RLVR_ENGINE_REWARD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define RW_MSG_INIT 1u  /* host -> worker: str name, str config */
#define RW_MSG_SCORE 2u /* host -> worker: batch */
#define RW_MAX_FRAME (1u << 30)

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} rw_buf;

void rw_init(rw_buf *b);
void rw_free(rw_buf *b);
void rw_u32(rw_buf *b, uint32_t v);
void rw_u64(rw_buf *b, uint64_t v);
void rw_f64(rw_buf *b, double v);
void rw_str(rw_buf *b, const char *s, size_t n); /* u64 length + bytes */
/* Writes the frame length into the first 4 bytes (reserve them with rw_u32(b, 0)). */
void rw_finish_frame(rw_buf *b);

typedef struct {
    const char *p;
    size_t len, pos;
    int bad;
} rw_reader;

uint32_t rr_u32(rw_reader *r);
uint64_t rr_u64(rw_reader *r);
double rr_f64(rw_reader *r);
/* Returns a pointer into the frame (not NUL-terminated) and its length. */
const char *rr_str(rw_reader *r, size_t *n);

#endif
