/*
 * kernels/cpu/cpu_expf.h — an fp32 exponential that the compiler can vectorise inside
 * `#pragma omp simd` loops (glibc's expf is a scalar call there unless -ffast-math).
 * Used by the softmax-shaped loops of the CPU backend (attention, LM head, SwiGLU).
 *
 * Method (Cephes expf): n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two parts so
 * r is exact to fp32), e^r by a degree-6 polynomial, times 2^n built in the exponent
 * bits. Error within 2 ulp of the true value over [−87.3, 88]; below −87.33 the
 * result is 0 (true value is a subnormal < 1.2e-38), above 88 it saturates at
 * e^88 ≈ 1.65e38 instead of overflowing; NaN in gives NaN out.
 */
#ifndef RLVR_KERNELS_CPU_EXPF_H
#define RLVR_KERNELS_CPU_EXPF_H

#include <math.h>
#include <stdint.h>

static inline float cpu_expf(float x) {
    const float lo = -87.33654f, hi = 88.0f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    /* round to nearest by the 1.5·2^23 trick (a floorf call would block vectorising) */
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    union { int32_t i; float f; } scale; /* 2^n from its exponent bits (C11 type punning) */
    scale.i = ((int32_t)n + 127) << 23;
    const float y = p * scale.f;
    return x < lo ? 0.0f : y;
}

#endif
