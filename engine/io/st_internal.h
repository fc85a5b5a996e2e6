/*
 * engine/io/st_internal.h — helpers shared by the safetensors reader and writer
 * (not part of the public contract).
 */
#ifndef RLVR_IO_ST_INTERNAL_H
#define RLVR_IO_ST_INTERNAL_H

#include <stddef.h>

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, surrogates or values > U+10FFFF). */
int st_utf8_valid(const unsigned char *p, size_t n);

#endif
