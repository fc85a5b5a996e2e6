/*
 * engine/io/st_dtype.c — safetensors dtypes: names, element sizes, and the scalar
 * fp32 <-> bf16 / f16 conversions (round to nearest, ties to even), plus
 * st_to_f32 for whole tensors. Tensor data in a mapped file may be unaligned, so
 * every element is read with memcpy.
 */
#include "engine/io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} st_dtypes[] = {
    [ST_F32] = {"F32", 4},   [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_F64] = {"F64", 8},   [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},   [ST_I8] = {"I8", 1},   [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1},
};
#define ST_NDTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

const char *st_dtype_name(st_dtype d) {
    if ((int)d < 0 || (int)d >= ST_NDTYPES) return "?";
    return st_dtypes[d].name;
}

size_t st_dtype_size(st_dtype d) {
    if ((int)d < 0 || (int)d >= ST_NDTYPES) return 0;
    return st_dtypes[d].size;
}

int st_dtype_parse(const char *name, st_dtype *out) {
    for (int i = 0; i < ST_NDTYPES; i++) {
        if (strcmp(name, st_dtypes[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    }
    return -1;
}

// ---------------------------------------------------------------------------------------
// scalar conversions

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t st_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    /* Add half an ulp minus one, plus the lowest kept bit: ties go to even. Overflow of
     * the largest finite values carries into the exponent and gives inf, as it should. */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float st_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t st_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((a >> 13) & 0x3ffu); /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 rounds to inf (or is inf) */
    if (a >= 0x38800000u) {                      /* normal f16: |f| >= 2^-14 */
        uint32_t h = ((((a >> 23) - 127u + 15u) << 10) | ((a >> 13) & 0x3ffu));
        uint32_t rem = a & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
        return sign | (uint16_t)h;
    }
    if (a <= 0x33000000u) return sign; /* <= 2^-25: rounds to zero (2^-25 ties to 0) */
    /* subnormal f16: units of 2^-24; shift in [14, 24] */
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - (a >> 23);
    uint32_t h = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) h++;
    return sign | (uint16_t)h;
}

float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = ldexpf((float)m, -24); /* zero or subnormal, exact */
        return sign ? -v : v;
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e - 15u + 127u) << 23) | (m << 13));
}

// ---------------------------------------------------------------------------------------
// whole tensors

int st_to_f32(const st_tensor *t, float *dst, char *err, size_t errlen) {
    const unsigned char *p = t->data;
    int64_t n = t->numel;
    switch (t->dtype) {
    case ST_F32:
        if (n > 0) memcpy(dst, p, (size_t)n * 4);
        return 0;
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = st_bf16_to_f32(h);
        }
        return 0;
    case ST_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = st_f16_to_f32(h);
        }
        return 0;
    case ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    default:
        if (err && errlen)
            snprintf(err, errlen,
                     "%s: tensor '%s': dtype %s cannot be converted to fp32 "
                     "(expected F32, F16, BF16 or F64)",
                     t->file ? t->file : "?", t->name ? t->name : "?", st_dtype_name(t->dtype));
        return -1;
    }
}
