/*
 * tests/emu/tensor_core_emu.h — the CPU emulation (tests/emu/cuda_emu.h) of the PTX
 * wrappers of kernels/cuda/tensor_core.cuh, which includes this file instead of its
 * inline assembly when RLVR_CUDA_EMU is defined. Same names, same operand conventions
 * (the fragment layouts are written out in tensor_core.cuh's header comment):
 *   tc_mma       mma.sync m16n8k16 bf16 → f32: a warp collective; each lane computes its
 *                four C elements from the A and B fragments every lane deposited;
 *   tc_ldsm(_t)  ldmatrix.x4 (.trans): a warp collective over the lanes' row addresses
 *                (each must be 16-byte aligned, as the hardware requires: checked);
 *   tc_cp16/cp4  cp.async with zero fill (addresses aligned to the copy's size: checked):
 *                queued on the thread (cuda_emu.h: pending_copy)
 *                and landed by the tc_wait<N> that retires its committed group — never
 *                earlier, so a missing or too-weak wait reads the old shared bytes; or
 *                landed at once with emu::cp_async_early (RLVR_EMU_CPASYNC=early).
 */
#ifndef RLVR_TESTS_EMU_TENSOR_CORE_EMU_H
#define RLVR_TESTS_EMU_TENSOR_CORE_EMU_H

#include <cstring>

#include "tests/emu/cuda_emu.h"

namespace emu {

inline float bf16_lo(uint32_t u) { return __uint_as_float(u << 16); }
inline float bf16_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }
inline float bf16_half(uint32_t u, int hi) { return hi ? bf16_hi(u) : bf16_lo(u); }

struct mma_operands {
    uint32_t a[4], b[2];
};

} /* namespace emu */

/* The hardware faults ("misaligned address") where a copy's shared or global address is
 * not a multiple of its size (a zero-fill copy of 0 bytes reads nothing: its source is
 * not checked); so does the emulation, loudly. */
static inline void tc_check_aligned(const void *p, int size, const char *what) {
    if ((uintptr_t)p % (uintptr_t)size == 0) return;
    fprintf(stderr, "cuda_emu: %s: misaligned address %p (needs %d-byte alignment)\n", what, p,
            size);
    abort();
}

/* c[16×8] += a[16×16] · b[16×8] (fragments as in tensor_core.cuh). */
static inline void tc_mma(float *c, const uint32_t *a, uint32_t b0, uint32_t b1) {
    emu::mma_operands mine;
    memcpy(mine.a, a, sizeof mine.a);
    mine.b[0] = b0;
    mine.b[1] = b1;
    emu::mma_operands all[32];
    emu::exchange_all(mine, all);
    const int lane = emu::lane_id(), g = lane >> 2, t = lane & 3;
    for (int e = 0; e < 4; e++) {
        const int row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
        float acc = c[e];
        for (int k = 0; k < 16; k++) {
            /* A[row][k]: lane (row % 8, (k % 8) / 2), register (row >= 8) + 2·(k >= 8) */
            const emu::mma_operands &pa = all[(row & 7) * 4 + (k & 7) / 2];
            const float av = emu::bf16_half(pa.a[(row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)], k & 1);
            /* B[k][col]: lane (col, (k % 8) / 2), register k >= 8 */
            const emu::mma_operands &pb = all[col * 4 + (k & 7) / 2];
            const float bv = emu::bf16_half(pb.b[k >= 8 ? 1 : 0], k & 1);
            acc += av * bv;
        }
        c[e] = acc;
    }
}

/* ldmatrix.x4: lane 8i + r gives row r of matrix i; lane (g, t) receives, per matrix i,
 * row g's columns 2t, 2t+1 (trans: rows 2t, 2t+1 of column g). */
static inline void tc_ldsm_impl(uint32_t *r, const bf16 *p, int trans) {
    tc_check_aligned(p, 16, "ldmatrix row address");
    const bf16 *rows[32];
    emu::exchange_all(p, rows);
    const int lane = emu::lane_id(), g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; i++) {
        uint16_t lo, hi;
        if (!trans) {
            memcpy(&lo, rows[8 * i + g] + 2 * t, 2);
            memcpy(&hi, rows[8 * i + g] + 2 * t + 1, 2);
        } else {
            memcpy(&lo, rows[8 * i + 2 * t] + g, 2);
            memcpy(&hi, rows[8 * i + 2 * t + 1] + g, 2);
        }
        r[i] = (uint32_t)lo | ((uint32_t)hi << 16);
    }
}
static inline void tc_ldsm(uint32_t *r, const bf16 *p) { tc_ldsm_impl(r, p, 0); }
static inline void tc_ldsm_t(uint32_t *r, const bf16 *p) { tc_ldsm_impl(r, p, 1); }

static inline void tc_cp_issue(void *dst, const void *src, int bytes, int size) {
    tc_check_aligned(dst, size, "cp.async destination");
    if (bytes > 0) tc_check_aligned(src, size, "cp.async source");
    emu::fiber &f = emu::self();
    f.copies.push_back(emu::pending_copy{dst, src, bytes, size});
    /* early: lands now (it is the last of the queue, and only the late mode leaves any) */
    if (emu::cp_async_early) emu::land_copy(f);
}
static inline void tc_cp16(bf16 *dst, const bf16 *src, int bytes) {
    tc_cp_issue(dst, src, bytes, 16);
}
static inline void tc_cp4(float *dst, const float *src, int bytes) {
    tc_cp_issue(dst, src, bytes, 4);
}
/* Closes a group of this thread's copies issued since the last commit (possibly none). */
static inline void tc_commit(void) {
    emu::fiber &f = emu::self();
    size_t committed = 0;
    for (size_t g : f.groups) committed += g;
    f.groups.push_back(f.copies.size() - committed); /* 0 in the early mode */
}
/* cp.async.wait_group N: lands the oldest committed groups until at most N remain. */
template <int N> static inline void tc_wait(void) {
    emu::fiber &f = emu::self();
    while (f.groups.size() > (size_t)N) {
        for (size_t i = f.groups.front(); i > 0; i--) emu::land_copy(f);
        f.groups.pop_front();
    }
}

#endif
