/*
 * kernels/cuda/flash_attention2.cu — the second fused attention implementation (the
 * default for D 64/128 since the fourth H200 run; RLVR_ATTENTION=flash1 selects the first,
 * read by attention.cu at every call). Same
 * function as flash_attention.cu (causal, packed varlen via offsets, GQA without
 * replicating K/V, head dims 64 and 128, lse saved in natural log, deterministic), with
 * the tile traffic reorganised for sm_80+ hardware:
 *   - every tile goes global → shared by 16-byte `cp.async.cg` (no registers on the way,
 *     zero-fill for rows past the sequence), and the tile the loop streams over (K/V in
 *     the forward and dQ, Q/dO/lse/Δ in dK/dV) is double-buffered: tile i+1 is in flight
 *     while tile i is computed;
 *   - every mma operand comes from shared memory by `ldmatrix.x4` (four 8×8 matrices per
 *     instruction, one per lane group of 8), and with `.trans` where the operand is the
 *     transpose of a row-major tile (V in the forward, K in dQ, Q and dO in dK/dV), so no
 *     tile is ever transposed element by element;
 *   - the forward runs 8 warps per block over 128 query rows, so each K/V tile brought
 *     into shared memory serves twice the queries of the first implementation;
 *   - a warp whose rows (or keys) see nothing of the current tile under the causal mask
 *     skips its mma work for that tile (it still loads and meets the barriers).
 *
 * Shapes (backend.h): q[T,Hq,D], k/v[T,Hkv,D], out/dout/dq[T,Hq,D], dk/dv[T,Hkv,D],
 * lse[T,Hq] f32 = ln Σ_j exp(scale·q·k_j); offsets[B+1] on the device; query head h reads
 * KV head h / (Hq/Hkv).
 *
 * Work:
 *   forward  grid (query tiles, Hq, B), 8 warps, BR = 128 queries, BC = 64-key tiles;
 *            S = Q·Kᵀ, online softmax in the log2 domain, O += P·V with the S
 *            accumulators reused as the A operand; lse = ln 2·(m + log2 l).
 *   delta    Δ[t,h] = dout·out, D/8 lanes per row (4 rows per warp at D 64), 16-byte
 *            loads.
 *   dK, dV   grid (key tiles, Hq, B), 4 warps, BC = 64 keys per block (16 per warp) held
 *            in shared memory; streams the query tiles at or below the diagonal (BR = 64
 *            at D = 64, 32 at D = 128): Sᵀ = K_w·Qᵀ, dPᵀ = V_w·dOᵀ, Pᵀ, dSᵀ = Pᵀ∘(dPᵀ−Δ),
 *            dV += Pᵀ·dO, dK += dSᵀ·Q. With GQA each block writes its query head's share
 *            in fp32 to scratch and a reduction sums the group in head order.
 *   dQ       grid (query tiles, Hq, B), 4 warps, BR = 64, key tiles of BC = 64 (D = 64)
 *            or 32 (D = 128): S, dP, dS, dQ += dS·K.
 * One owner per output element, fixed loop orders, no atomics: the same bits every run.
 *
 * dQ partials (opt-in: RLVR_ATTN_DQ=partials, read at every call): the dK/dV kernel also
 * computes dQ, so S and dP are computed once instead of twice (5 tile matmuls per
 * (query tile, key tile) pair instead of 7). For each pair the block already holds dSᵀ
 * (its 64 keys × the query tile) in registers; it writes dSᵀ in bf16 (the values the dK
 * product rounds to) to shared memory, meets a barrier, and each warp computes 16 query
 * rows × 64 columns of dQ_part(i, j) = dS_ij·K_j (K_j is resident) into fp32 scratch.
 * A row i of a sequence has one partial per key tile j = 0..i/64 (the tiles the dK/dV
 * grid visits for it), so the partials are stored compactly: row-slot
 *   base[b] + tri(i) + j,  tri(i) = Σ_{i' < i} (i'/64 + 1) = 32·R(R+1) + r·(R+1)
 * (R = i/64, r = i%64), each row-slot [Hq][D] f32, base[b] = Σ_{b' < b} tri(len_b')
 * computed on the device (fa2_dq_base_kernel). fa2_dq_reduce_kernel then sums a row's
 * partials in increasing j (fixed order, deterministic) and writes scale·Σ in bf16.
 * Sizing: the host bounds Σ_b tri(len_b) from T and max_len (tri is convex, so the
 * bound is T/M sequences of M = max_len plus one of T % M, exact when every sequence is
 * M long); when the bytes exceed FA2_DQP_CAP the call takes the two-kernel backward.
 * An understated max_len makes the bound too small: the base kernel marks every
 * sequence whose partials would not fit (base −1), the dK/dV kernel skips its dQ work,
 * and the dQ kernel (launched in that mode with a skip test) computes it instead —
 * correct, the same bits every run for a given max_len, but dq's bits then depend on
 * max_len (dk, dv's do not).
 *
 * Fragments of mma.sync m16n8k16 (g = lane/4, t = lane%4; see flash_attention.cu):
 *   A (16×16): a0 (g, 2t), a1 (g+8, 2t), a2 (g, 2t+8), a3 (g+8, 2t+8)
 *   B (16×8, k × n): b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g);  C: c0,c1 (g, 2t..), c2,c3 (g+8, ..)
 * ldmatrix.x4: lanes 8i..8i+7 give the row addresses of matrix i; register i returns
 * matrix i with lane (g, t) holding row g, columns 2t..2t+1 (with .trans: rows 2t..2t+1 of
 * column g). Two lane-address patterns cover every operand here (r = lane%8):
 *   P1: row (lane/8 & 1)·8 + r, column (lane/16)·8  → non-trans: the A fragment
 *       (a0..a3) of a 16×16 block; .trans on a row-major [k][n] tile: {b0,b1} of n-tile
 *       j and {b0,b1} of n-tile j+1 for 16 k and 16 n.
 *   P2: row (lane/16)·8 + r, column (lane/8 & 1)·8 → non-trans on a row-major [n][k]
 *       tile (Bᵀ stored): {b0,b1} of n-tile j and of n-tile j+1.
 * Shared tiles are [rows][D + 8] bf16: the 16-byte pad moves each row 4 banks on, so the
 * eight 16-byte rows one ldmatrix phase reads (and the eight a cp.async phase writes)
 * fall in eight different bank quads: no conflicts, and every row start stays 16-byte
 * aligned as cp.async and ldmatrix require.
 * The pieces the kernels share (tile loads by cp.async, the forward/dQ key-tile pipeline
 * step, zeroed accumulators, and the ldmatrix + mma loops over the n-blocks of one k-chunk,
 * fa2_mma_nk/kn and their paired forms) are the device helpers below.
 */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_internal.cuh"
#include "kernels/cuda/flash_common.cuh"
#include "kernels/cuda/tensor_core.cuh"

enum { FA2_PAD = 8 };

#define FA2_LOG2E 1.4426950408889634f

/* ---- device helpers ------------------------------------------------------------------- */

/* Rows 0..R−1 of a global tile (row r at src + r·ld, D elements) into dst[R][D + PAD] by
 * cp.async, rows >= nvalid zero-filled (and not read). All NT threads take part; the
 * 16-byte chunks go row-major across the threads, so a warp reads whole rows (coalesced)
 * and a phase of 8 threads writes one 128-byte run (D = 64) or half a row (D = 128). The
 * caller commits. nvalid >= 1 (src itself is a readable row). */
template <int R, int D, int NT>
static __device__ __forceinline__ void fa2_load_tile(bf16 *dst, const bf16 *src, size_t ld,
                                                     int nvalid) {
    constexpr int CH = D / 8, LD = D + FA2_PAD;
    static_assert((R * CH) % NT == 0, "tile chunks must divide among the threads");
#pragma unroll
    for (int i = 0; i < R * CH / NT; i++) {
        const int idx = (int)threadIdx.x + i * NT;
        const int r = idx / CH, c = idx % CH;
        const bool ok = r < nvalid;
        tc_cp16(dst + r * LD + c * 8, ok ? src + (size_t)r * ld + c * 8 : src, ok ? 16 : 0);
    }
}

/* lse and Δ ([T, Hq] f32) of R consecutive query rows of one head into ls[R], dls[R] by
 * 4-byte cp.async: row r at index i0 + r·Hq, rows >= nvalid read as zero (nvalid >= 1).
 * Threads 0..2R−1 take part (2R <= NT). */
template <int R>
static __device__ __forceinline__ void fa2_load_rows(float *ls, float *dls, const float *lse,
                                                     const float *delta, size_t i0, int Hq,
                                                     int nvalid) {
    const int i = (int)threadIdx.x;
    if (i >= 2 * R) return;
    const int r = i % R;
    const bool ok = r < nvalid;
    const size_t off = i0 + (size_t)(ok ? r : 0) * Hq;
    if (i < R) tc_cp4(ls + r, lse + off, ok ? 4 : 0);
    else tc_cp4(dls + r, delta + off, ok ? 4 : 0);
}

static __device__ __forceinline__ int fa2_rev(int ntiles, int i) { return ntiles - 1 - i; }

/* The key-tile pipeline step of the forward and dQ kernels, before key tile kt of nkt
 * (first key k0, in stage st of Ks, Vs [2][BC][D + PAD]): tile kt + 1 of K and V (rows
 * of kseq, vseq at stride ldk; the sequence has len keys) goes into the other stage and
 * stays in flight while this one is waited for; then the block barrier. */
template <int BC, int D, int NT>
static __device__ __forceinline__ void fa2_kv_step(bf16 *Ks, bf16 *Vs, const bf16 *kseq,
                                                   const bf16 *vseq, size_t ldk, int kt,
                                                   int nkt, int k0, int st, int len) {
    constexpr int LD = D + FA2_PAD;
    if (kt + 1 < nkt) { /* the next tile into the other stage, in flight meanwhile */
        fa2_load_tile<BC, D, NT>(Ks + (st ^ 1) * BC * LD, kseq + (size_t)(k0 + BC) * ldk, ldk,
                                 len - k0 - BC);
        fa2_load_tile<BC, D, NT>(Vs + (st ^ 1) * BC * LD, vseq + (size_t)(k0 + BC) * ldk, ldk,
                                 len - k0 - BC);
        tc_commit();
        tc_wait<1>(); /* this tile's group has landed */
    } else {
        tc_wait<0>();
    }
    __syncthreads();
}

/* The query-tile pipeline of the dK/dV kernels. fa2_q_first: Q, dO (rows of qseq, dseq at
 * stride ldq), lse and Δ (from row index lrow0 + q0·Hq, stride Hq) of the query tile at q0
 * into stage 0 of Qs, Ds [2][BR][D + PAD] and ls, dls [2][BR], committed. fa2_q_step,
 * before query tile qt of nqt (first query q0, in stage st): tile qt + 1 into the other
 * stage, in flight while this one is waited for; then the block barrier. */
template <int BR, int D, int NT>
static __device__ __forceinline__ void fa2_q_load(bf16 *Qs, bf16 *Ds, float *ls, float *dls,
                                                  const bf16 *qseq, const bf16 *dseq,
                                                  const float *lse, const float *delta,
                                                  size_t lrow0, size_t ldq, int Hq, int q0,
                                                  int len) {
    fa2_load_tile<BR, D, NT>(Qs, qseq + (size_t)q0 * ldq, ldq, len - q0);
    fa2_load_tile<BR, D, NT>(Ds, dseq + (size_t)q0 * ldq, ldq, len - q0);
    fa2_load_rows<BR>(ls, dls, lse, delta, lrow0 + (size_t)q0 * Hq, Hq, len - q0);
    tc_commit();
}
template <int BR, int D, int NT>
static __device__ __forceinline__ void fa2_q_step(bf16 *Qs, bf16 *Ds, float *ls, float *dls,
                                                  const bf16 *qseq, const bf16 *dseq,
                                                  const float *lse, const float *delta,
                                                  size_t lrow0, size_t ldq, int Hq, int qt,
                                                  int nqt, int q0, int st, int len) {
    constexpr int LD = D + FA2_PAD;
    if (qt + 1 < nqt) { /* the next query tile into the other stage */
        const int o = st ^ 1;
        fa2_q_load<BR, D, NT>(Qs + o * BR * LD, Ds + o * BR * LD, ls + o * BR, dls + o * BR,
                              qseq, dseq, lse, delta, lrow0, ldq, Hq, q0 + BR, len);
        tc_wait<1>();
    } else {
        tc_wait<0>();
    }
    __syncthreads();
}

/* c[N][4] = 0: a thread's share of N mma accumulator n-tiles. */
template <int N> static __device__ __forceinline__ void fa2_zero(float (&c)[N][4]) {
#pragma unroll
    for (int i = 0; i < N; i++) c[i][0] = c[i][1] = c[i][2] = c[i][3] = 0.0f;
}

/* c[0], c[1] (two neighbouring n-tiles) += a · B, b = {b0,b1} of each from one ldmatrix.x4. */
static __device__ __forceinline__ void fa2_mma2(float (*c)[4], const uint32_t *a,
                                                const uint32_t *b) {
    tc_mma(c[0], a, b[0], b[1]);
    tc_mma(c[1], a, b[2], b[3]);
}

/* c[N/8][4] += a · B for one 16-wide k-chunk and N columns (N/16 ldmatrix.x4, each giving
 * {b0,b1} of two neighbouring n-tiles), B in shared memory as
 *   nk: Bᵀ row-major [n][k] (K in S = Q·Kᵀ, Q and dO in Sᵀ, dPᵀ): p = tile + 16kd + P2,
 *       n-block np at p + 16np·LD;
 *   kn: B row-major [k][n] by .trans (V in P·V, K in dS·K, dO and Q in dV, dK): n-block
 *       np at p + off + 16np + lo, off = 16kc·LD (+ a column offset), lo = P1.
 * The ...2 forms run two products side by side (both ldmatrix, then the four mma). */
template <int N, int LD>
static __device__ __forceinline__ void fa2_mma_nk(float (*c)[4], const uint32_t *a,
                                                  const bf16 *p) {
#pragma unroll
    for (int np = 0; np < N / 16; np++) {
        uint32_t b[4];
        tc_ldsm(b, p + np * 16 * LD);
        fa2_mma2(c + 2 * np, a, b);
    }
}
template <int N>
static __device__ __forceinline__ void fa2_mma_kn(float (*c)[4], const uint32_t *a, const bf16 *p,
                                                  int off, int lo) {
#pragma unroll
    for (int np = 0; np < N / 16; np++) {
        uint32_t b[4];
        tc_ldsm_t(b, p + off + np * 16 + lo);
        fa2_mma2(c + 2 * np, a, b);
    }
}
template <int N, int LD>
static __device__ __forceinline__ void fa2_mma_nk2(float (*c)[4], const uint32_t *a,
                                                   const bf16 *p, float (*c2)[4],
                                                   const uint32_t *a2, const bf16 *p2) {
#pragma unroll
    for (int np = 0; np < N / 16; np++) {
        uint32_t b[4], b2[4];
        tc_ldsm(b, p + np * 16 * LD);
        tc_ldsm(b2, p2 + np * 16 * LD);
        fa2_mma2(c + 2 * np, a, b);
        fa2_mma2(c2 + 2 * np, a2, b2);
    }
}
template <int N>
static __device__ __forceinline__ void fa2_mma_kn2(float (*c)[4], const uint32_t *a,
                                                   const bf16 *p, float (*c2)[4],
                                                   const uint32_t *a2, const bf16 *p2, int off,
                                                   int lo) {
#pragma unroll
    for (int np = 0; np < N / 16; np++) {
        uint32_t b[4], b2[4];
        tc_ldsm_t(b, p + off + np * 16 + lo);
        tc_ldsm_t(b2, p2 + off + np * 16 + lo);
        fa2_mma2(c + 2 * np, a, b);
        fa2_mma2(c2 + 2 * np, a2, b2);
    }
}

/* ---- forward ---------------------------------------------------------------------------- */

template <int D> struct fa2_fwd_shape {
    static constexpr int NW = 8, NT = NW * 32, BR = 16 * NW, BC = 64, LD = D + FA2_PAD;
    static constexpr int MINB = D == 64 ? 2 : 1; /* blocks per SM asked of ptxas */
    /* Qs [BR][LD]; Ks, Vs [2][BC][LD] */
    static constexpr size_t SMEM = (size_t)(BR + 4 * BC) * LD * 2;
};

template <int D>
static __global__ void __launch_bounds__(fa2_fwd_shape<D>::NT, fa2_fwd_shape<D>::MINB)
    fa2_fwd_kernel(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                   const int *offsets, int Hq, int Hkv, float scale_log2) {
    typedef fa2_fwd_shape<D> S_;
    constexpr int NT = S_::NT, BR = S_::BR, BC = S_::BC, LD = S_::LD;
    extern __shared__ __align__(128) unsigned char fa2_smem[];
    bf16 *Qs = reinterpret_cast<bf16 *>(fa2_smem);
    bf16 *Ks = Qs + BR * LD, *Vs = Ks + 2 * BC * LD;
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int ntiles = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;
    const bf16 *qseq = q + (size_t)start * ldq + (size_t)h * D;
    const bf16 *kseq = k + (size_t)start * ldk + (size_t)hk * D;
    const bf16 *vseq = v + (size_t)start * ldk + (size_t)hk * D;

    for (int it = blockIdx.x; it < ntiles; it += gridDim.x) {
        const int q0 = fa2_rev(ntiles, it) * BR;
        const int w0 = q0 + warp * 16;         /* this warp's first query row */
        const int r0 = w0 + g, r1 = r0 + 8;    /* this thread's two query rows */
        const int kend = q0 + BR < len ? q0 + BR : len; /* keys 0..kend−1 are visible */
        const int nkt = (kend + BC - 1) / BC;
        __syncthreads(); /* the previous query tile's readers of Qs, Ks, Vs are done */
        fa2_load_tile<BR, D, NT>(Qs, qseq + (size_t)q0 * ldq, ldq, len - q0);
        fa2_load_tile<BC, D, NT>(Ks, kseq, ldk, len);
        fa2_load_tile<BC, D, NT>(Vs, vseq, ldk, len);
        tc_commit();
        tc_wait<0>();
        __syncthreads();
        /* Q's A fragments: held in registers at D = 128; at D = 64 re-read from Qs (resident
         * for the whole query tile) at each use, to fit the 128 registers that two blocks
         * of 8 warps per SM allow (ptxas, CUDA 13.0: 24 bytes of spill remain there, 64
         * when Q is held) */
        constexpr bool QREG = D == 128;
        uint32_t qf[QREG ? D / 16 : 1][4];
        if (QREG) {
#pragma unroll
            for (int kd = 0; kd < (QREG ? D / 16 : 0); kd++)
                tc_ldsm(qf[kd], Qs + warp * 16 * LD + kd * 16 + p1);
        }
        float o[D / 8][4];
        fa2_zero(o);
        float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
        for (int kt = 0; kt < nkt; kt++) {
            const int k0 = kt * BC, st = kt & 1;
            fa2_kv_step<BC, D, NT>(Ks, Vs, kseq, vseq, ldk, kt, nkt, k0, st, len);
            /* warps whose rows all precede key k0 (or lie past the sequence) see nothing */
            if (k0 <= w0 + 15 && w0 < len) {
                const bf16 *Kt = Ks + st * BC * LD, *Vt = Vs + st * BC * LD;
                float s[BC / 8][4];
                fa2_zero(s);
#pragma unroll
                for (int kd = 0; kd < D / 16; kd++) {
                    uint32_t qa[4];
                    if (!QREG) tc_ldsm(qa, Qs + warp * 16 * LD + kd * 16 + p1);
                    fa2_mma_nk<BC, LD>(s, QREG ? qf[QREG ? kd : 0] : qa, Kt + kd * 16 + p2);
                }
                flash_softmax_step<BC, D>(s, m, l, o, k0, r0, r1, t, scale_log2);
                /* O += P·V; V's B fragments by ldmatrix.trans from the row-major tile */
#pragma unroll
                for (int kc = 0; kc < BC / 16; kc++) {
                    uint32_t a[4];
                    tc_acc_to_a(a, s, kc);
                    fa2_mma_kn<D>(o, a, Vt, kc * 16 * LD, p1);
                }
            }
            __syncthreads(); /* stage st is read: the next iteration may refill it */
        }
        flash_fwd_store<D>(out, lse, o, m, l, r0, len, start, Hq, h, t);
    }
}

/* ---- backward: Δ = rowsum(dout ∘ out) ----------------------------------------------------- */

/* A row of D elements (D 64 or 128, rows 16-byte aligned) per LPR = D/8 lanes, each lane
 * one 16-byte chunk, 32/LPR rows per warp; the lanes' sums then meet by an xor butterfly
 * within the row's lanes (LPR/2 down to 1). Until session 17 a whole warp took each row,
 * its lanes past D/8 idle and adding zeros first (xor 16, then 8 at D 64), so the sums
 * are the same values (19.3 µs per 0.5B layer on the sixth H200 run for 29 MB read). */
enum { FA2_DELTA_T = 128 };
template <int D>
static __global__ void fa2_delta_kernel(float *delta, const bf16 *dout, const bf16 *out,
                                        long long rows) {
    constexpr int LPR = D / 8, RPW = 32 / LPR;
    const int lane = threadIdx.x & 31, sub = lane % LPR;
    const long long row =
        ((long long)blockIdx.x * (FA2_DELTA_T / 32) + (threadIdx.x >> 5)) * RPW + lane / LPR;
    float s = 0.0f;
    if (row < rows) {
        const uint4 x = *reinterpret_cast<const uint4 *>(dout + (size_t)row * D + 8 * sub);
        const uint4 y = *reinterpret_cast<const uint4 *>(out + (size_t)row * D + 8 * sub);
        __nv_bfloat162 xa[4], ya[4];
        memcpy(xa, &x, 16);
        memcpy(ya, &y, 16);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const float2 xf = __bfloat1622float2(xa[i]), yf = __bfloat1622float2(ya[i]);
            s += xf.x * yf.x + xf.y * yf.y;
        }
    }
#pragma unroll
    for (int o = LPR / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (row < rows && sub == 0) delta[row] = s;
}

/* ---- backward: dK, dV ----------------------------------------------------------------------- */

/* In place over one warp's 16 keys (this thread's kr0 and kr0 + 8) × N queries from q0:
 * Pᵀ = exp(Sᵀ·scale − lse) where query >= key (and query < len), dSᵀ = Pᵀ∘(dPᵀ − Δ) (the
 * scale goes on dK at the end); lt, dlt: the query tile's lse and Δ. */
template <int N>
static __device__ __forceinline__ void fa2_p_ds(float (*s)[4], float (*dp)[4], int kr0, int q0,
                                                int t, int len, const float *lt,
                                                const float *dlt, float scale_log2) {
#pragma unroll
    for (int nt = 0; nt < N / 8; nt++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int key = e < 2 ? kr0 : kr0 + 8;
            const int qi = nt * 8 + 2 * t + (e & 1), qa = q0 + qi;
            const float p = (qa >= key && qa < len)
                                ? exp2f(s[nt][e] * scale_log2 - lt[qi] * FA2_LOG2E)
                                : 0.0f;
            dp[nt][e] = p * (dp[nt][e] - dlt[qi]);
            s[nt][e] = p;
        }
    }
}

/* The dQ kernels' dS for one warp's 16 queries (this thread's rows r0, r0 + 8) × N keys
 * from k0, in place of S (dp: dP): P = exp(S·scale − lse) where key <= row < len, dS =
 * P∘(dP − Δ) without the scale (l2: the rows' lse·log2 e, dl: their Δ). */
template <int N>
static __device__ __forceinline__ void fa2_dq_ds(float (*s)[4], const float (*dp)[4], int k0,
                                                 int r0, int t, int len, const float *l2,
                                                 const float *dl, float scale_log2) {
#pragma unroll
    for (int nt = 0; nt < N / 8; nt++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int key = k0 + nt * 8 + 2 * t + (e & 1);
            const int r = e >> 1, row = r0 + 8 * r;
            const float p = (key <= row && row < len) ? exp2f(s[nt][e] * scale_log2 - l2[r])
                                                      : 0.0f;
            s[nt][e] = p * (dp[nt][e] - dl[r]); /* dS without the scale */
        }
    }
}

/* The rows' lse (·log2 e) and Δ into l2, dl (0 past len); and the dQ kernels' result:
 * scale·acc in bf16 into dq[T, Hq, D] for rows r0, r0 + 8 < len. */
static __device__ __forceinline__ void fa2_dq_rows(float *l2, float *dl, const float *lse,
                                                   const float *delta, int r0, int len,
                                                   int start, int Hq, int h) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = r0 + 8 * r;
        const size_t i = (size_t)(start + row) * Hq + h;
        l2[r] = row < len ? lse[i] * FA2_LOG2E : 0.0f;
        dl[r] = row < len ? delta[i] : 0.0f;
    }
}
template <int D>
static __device__ __forceinline__ void fa2_dq_store(bf16 *dq, const float (*acc)[4], int r0,
                                                    int len, int start, int Hq, int h, int t,
                                                    float scale) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = r0 + 8 * r;
        if (row >= len) continue;
        bf16 *o = dq + ((size_t)(start + row) * Hq + h) * D + 2 * t;
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++)
            *reinterpret_cast<uint32_t *>(o + nd * 8) =
                tc_pack(acc[nd][2 * r] * scale, acc[nd][2 * r + 1] * scale);
    }
}

/* The group sum inside the dK/dV kernels (the default for GQA; RLVR_ATTN_GQA=separate runs
 * flash_group_sum_kernel after them instead). Called by every thread of a block after it
 * stored its query head's partials of keys [k0, k0 + nk) of sequence b (token `start`
 * on): the last of the group's blocks to get here for that (sequence, KV head, key tile)
 * — a counter per pair of the tile's first token and the KV head, gcount[(start + k0)·Hkv
 * + hk] (a tile starts inside its sequence, so no two tiles share a first token; T·Hkv
 * counters whatever the packing) — sums the group's partials of those keys into dk, dv
 * with flash_group_sum_quad (flash_common.cuh), so the bits are the separate kernel's, but
 * the partials are read from L2 just after they were written and one launch and a DRAM
 * pass over 2·[T, Hq, D] f32 go (the sixth H200 run: the separate kernel 20 µs a layer at
 * 8 × 1024 tokens). */
template <int D>
static __device__ void fa2_group_finish(unsigned *gcount, bf16 *dk, bf16 *dv, const float *dkp,
                                        const float *dvp, int k0, int nk, int start, int Hq,
                                        int Hkv, int hk) {
    const int group = Hq / Hkv;
    if (!cuda_block_is_last(gcount + ((size_t)start + k0) * Hkv + hk, (unsigned)group)) return;
    constexpr int Q = D / 4;
    for (int e = threadIdx.x; e < nk * Q; e += blockDim.x)
        flash_group_sum_quad(dk, dv, dkp, dvp, (long long)start + k0 + e / Q, hk, (e % Q) * 4,
                             Hkv, group, D);
}

template <int D> struct fa2_dkdv_shape {
    static constexpr int NW = 4, NT = NW * 32, BC = 16 * NW, BR = D == 128 ? 32 : 64;
    static constexpr int LD = D + FA2_PAD, MINB = 2; /* 3 at D = 64 would spill */
    /* Ks, Vs [BC][LD]; Qs, Ds [2][BR][LD]; ls, dls [2][BR] f32 */
    static constexpr size_t SMEM = (size_t)(2 * BC + 4 * BR) * LD * 2 + (size_t)4 * BR * 4;
    /* dQ partials: dSᵀ [BC][LDS] bf16 after dls; each warp's dQ_part share is 16 query
     * rows (block MB of the tile) × DW columns (64 at both head dims) */
    static constexpr int LDS = BR + FA2_PAD, NMB = BR / 16, DW = D * NMB / NW;
    static constexpr size_t SMEM_DQP = SMEM + (size_t)BC * LDS * 2;
};

/* Row-slots of dQ partials before row i of a sequence (and the count for a sequence of
 * length i): Σ_{i' < i} (i'/64 + 1), one partial per 64-key tile j <= i'/64. */
static __host__ __device__ __forceinline__ long long fa2_tri(long long i) {
    if (i <= 0) return 0;
    const long long R = i / 64, r = i % 64;
    return 32 * R * (R + 1) + r * (R + 1);
}

/* The dK/dV block's dQ partial for query tile q0 and key tile kt: dQ_part = dS·K_j with
 * dS (BR queries × BC keys) read from dSt, stored transposed ([key][query], LDS), and K_j
 * from Ks ([key][d], LD), both resident. Warp w takes query block MB = w % NMB (16 rows)
 * and columns (w / NMB)·DW..+DW−1. A fragments of dS by ldmatrix.trans on dSᵀ with
 * pattern P2 (matrix i: keys (i/2)·8.., queries (i%2)·8..; each lane gets dSᵀ rows 2t,
 * 2t+1 of column g = dS[g][2t..2t+1], the A layout), K's B fragments by ldmatrix.trans
 * with P1 as in the dQ kernel. Rows of the tile past len are not stored. Unscaled
 * (fa2_dq_reduce_kernel multiplies the sum by the softmax scale). */
template <int D>
static __device__ __forceinline__ void fa2_dq_part(float *dqp, long long base,
                                                   const bf16 *dSt, const bf16 *Ks, int q0,
                                                   int kt, int len, int Hq, int h) {
    typedef fa2_dkdv_shape<D> S_;
    constexpr int BC = S_::BC, LD = S_::LD, LDS = S_::LDS, NMB = S_::NMB, DW = S_::DW;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int mb = warp % NMB, c0 = (warp / NMB) * DW, qr = q0 + mb * 16;
    if (qr >= len) return; /* all 16 rows past the sequence */
    float acc[DW / 8][4];
    fa2_zero(acc);
#pragma unroll
    for (int kc = 0; kc < BC / 16; kc++) {
        uint32_t a[4];
        tc_ldsm_t(a, dSt + kc * 16 * LDS + mb * 16 + tc_p2<LDS>(lane));
        fa2_mma_kn<DW>(acc, a, Ks + kc * 16 * LD, c0, tc_p1<LD>(lane));
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = qr + g + 8 * r;
        if (row >= len) continue;
        float *o = dqp + ((size_t)(base + fa2_tri(row) + kt) * Hq + h) * D + c0 + 2 * t;
#pragma unroll
        for (int nd = 0; nd < DW / 8; nd++)
            *reinterpret_cast<float2 *>(o + nd * 8) = make_float2(acc[nd][2 * r], acc[nd][2 * r + 1]);
    }
}

/* DQP: also the dQ partials (the header's "dQ partials"): dqp the row-slots, dqbase[b]
 * the sequence's first row-slot or −1 (its dQ left to the dQ kernel). Without DQP both
 * are unused and the kernel is the plain dK/dV one. */
template <int D, bool DQP>
static __global__ void __launch_bounds__(fa2_dkdv_shape<D>::NT, fa2_dkdv_shape<D>::MINB)
    fa2_bwd_dkdv_kernel(bf16 *dk, bf16 *dv, float *dkp, float *dvp, float *dqp,
                        const long long *dqbase, const bf16 *dout, const bf16 *q,
                        const bf16 *k, const bf16 *v, const float *lse, const float *delta,
                        const int *offsets, int Hq, int Hkv, float scale, float scale_log2,
                        unsigned *gcount) {
    typedef fa2_dkdv_shape<D> S_;
    constexpr int NT = S_::NT, BC = S_::BC, BR = S_::BR, LD = S_::LD, LDS = S_::LDS;
    extern __shared__ __align__(128) unsigned char fa2_smem[];
    bf16 *Ks = reinterpret_cast<bf16 *>(fa2_smem);
    bf16 *Vs = Ks + BC * LD, *Qs = Vs + BC * LD, *Ds = Qs + 2 * BR * LD;
    float *ls = reinterpret_cast<float *>(Ds + 2 * BR * LD), *dls = ls + 2 * BR;
    bf16 *dSt = reinterpret_cast<bf16 *>(dls + 2 * BR); /* DQP: dSᵀ [BC keys][LDS queries] */
    /* one query head per block; dkp/dvp (fp32 [T, Hq, D]) receive its share when
     * non-NULL (GQA), else dk/dv (bf16 [T, Hkv, D]) the whole gradient (Hq == Hkv) */
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int nkt = (len + BC - 1) / BC, nqt = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;
    const bf16 *qseq = q + (size_t)start * ldq + (size_t)h * D;
    const bf16 *dseq = dout + (size_t)start * ldq + (size_t)h * D;
    const size_t lrow0 = (size_t)start * Hq + h; /* lse/Δ index of the sequence's row 0 */
    /* DQP: whether this sequence's dQ partials fit (the same for the whole block) */
    const bool dqw = DQP && dqbase[b] >= 0;

    for (int kt = blockIdx.x; kt < nkt; kt += gridDim.x) {
        const int k0 = kt * BC;
        const int w0 = k0 + warp * 16;         /* this warp's first key */
        const int kr0 = w0 + g, kr1 = kr0 + 8; /* this thread's two keys */
        const int qt0 = k0 / BR;               /* the first query tile that sees a key here */
        __syncthreads(); /* the previous key tile's readers are done */
        const size_t koff = (size_t)(start + k0) * ldk + (size_t)hk * D;
        fa2_load_tile<BC, D, NT>(Ks, k + koff, ldk, len - k0);
        fa2_load_tile<BC, D, NT>(Vs, v + koff, ldk, len - k0);
        fa2_q_load<BR, D, NT>(Qs, Ds, ls, dls, qseq, dseq, lse, delta, lrow0, ldq, Hq,
                              qt0 * BR, len);
        float dka[D / 8][4], dva[D / 8][4];
        fa2_zero(dka);
        fa2_zero(dva);
        for (int qt = qt0; qt < nqt; qt++) {
            const int q0 = qt * BR, st = (qt - qt0) & 1;
            fa2_q_step<BR, D, NT>(Qs, Ds, ls, dls, qseq, dseq, lse, delta, lrow0, ldq, Hq, qt,
                                  nqt, q0, st, len);
            /* a warp whose keys all follow the tile's last query (or lie past the
             * sequence) gets nothing from it */
            if (q0 + BR - 1 >= w0 && w0 < len) {
                const bf16 *Qt = Qs + st * BR * LD, *Dt = Ds + st * BR * LD;
                const float *lt = ls + st * BR, *dlt = dls + st * BR;
                /* Sᵀ = K_w·Qᵀ and dPᵀ = V_w·dOᵀ: 16 keys × BR queries per warp */
                float sa[BR / 8][4], dpa[BR / 8][4];
                fa2_zero(sa);
                fa2_zero(dpa);
#pragma unroll
                for (int kd = 0; kd < D / 16; kd++) {
                    uint32_t ak[4], av[4];
                    tc_ldsm(ak, Ks + warp * 16 * LD + kd * 16 + p1);
                    tc_ldsm(av, Vs + warp * 16 * LD + kd * 16 + p1);
                    fa2_mma_nk2<BR, LD>(sa, ak, Qt + kd * 16 + p2, dpa, av, Dt + kd * 16 + p2);
                }
                fa2_p_ds<BR>(sa, dpa, kr0, q0, t, len, lt, dlt, scale_log2);
                if (dqw) { /* dSᵀ in bf16: rows (keys) warp·16 + g (+8), queries 16kc + 2t (+8) */
                    bf16 *o = dSt + (warp * 16 + g) * LDS + 2 * t;
#pragma unroll
                    for (int kc = 0; kc < BR / 16; kc++) {
                        uint32_t ads[4];
                        tc_acc_to_a(ads, dpa, kc);
                        *reinterpret_cast<uint32_t *>(o + kc * 16) = ads[0];
                        *reinterpret_cast<uint32_t *>(o + kc * 16 + 8 * LDS) = ads[1];
                        *reinterpret_cast<uint32_t *>(o + kc * 16 + 8) = ads[2];
                        *reinterpret_cast<uint32_t *>(o + kc * 16 + 8 * LDS + 8) = ads[3];
                    }
                }
                /* dV += Pᵀ·dO, dK += dSᵀ·Q (B fragments by ldmatrix.trans) */
#pragma unroll
                for (int kc = 0; kc < BR / 16; kc++) {
                    uint32_t ap[4], ads[4];
                    tc_acc_to_a(ap, sa, kc);
                    tc_acc_to_a(ads, dpa, kc);
                    fa2_mma_kn2<D>(dva, ap, Dt, dka, ads, Qt, kc * 16 * LD, p1);
                }
            } else if (dqw) { /* this warp's keys see none of the tile: dS rows of zeros */
                for (int e = lane; e < 16 * BR / 2; e += 32)
                    *reinterpret_cast<uint32_t *>(dSt + (warp * 16 + e / (BR / 2)) * LDS +
                                                  2 * (e % (BR / 2))) = 0u;
            }
            if (dqw) {
                __syncthreads(); /* dSᵀ of the whole tile is in place */
                fa2_dq_part<D>(dqp, dqbase[b], dSt, Ks, q0, kt, len, Hq, h);
            }
            __syncthreads(); /* stage st (and dSᵀ) is read: the next iteration may refill it */
        }
        flash_store_dkdv<D>(dk, dv, dkp, dvp, dka, dva, kr0, kr1, len, start, Hq, Hkv, h, hk, t,
                            scale);
        /* GQA partials summed by the group's last block (the whole block); D 64 only: at
         * D 128 the kernel is at 251 registers and the finish made ptxas spill */
        if constexpr (D == 64)
            if (gcount)
                fa2_group_finish<D>(gcount, dk, dv, dkp, dvp, k0, min(BC, len - k0), start, Hq,
                                    Hkv, hk);
    }
}

/* ---- backward, dK/dV with two key tiles per warp (opt-in: RLVR_ATTN_BWD=wide) ---------
 * The kernel above gives each warp 16 keys, so every Q and dO fragment a warp loads from
 * shared memory feeds one mma: per 64-query tile 72 ldmatrix.x4 for 128 mma per warp. The
 * sixth H200 run measured that kernel at ~115 TFLOP/s (260 µs per 0.5B layer), and by
 * count shared-memory reads, not the tensor cores, bound it (~147 KB per block and tile
 * at 128 B/clock against ~2.1 MFLOP). Here each warp owns WMT = 2 key tiles (32 keys,
 * BC = 128 per block of 4 warps) and the query tile is BR = 32, so each Q/dO fragment
 * feeds two mma: 48 ldmatrix per 128 mma. The accumulators grow to dK, dV [2][D/8][4]
 * and Sᵀ, dPᵀ [2][BR/8][4] (D = 64 only: at 128 they would not fit in registers).
 * Every output element is accumulated by the same mma in the same order as in the
 * kernel above (S over D in 16-chunks, dK and dV over queries in 16-chunks ascending;
 * tiles a warp skips add nothing), so the bits should match it. Not with the dQ
 * partials (their layout is per 64-key tile). Unmeasured. */
/* c[m] += A_m · Bᵀ for the warp's WMT key tiles: A_m = rows 16m.. of a [keys][LD] tile
 * (a: its lane's P1 address at the warp's first row), B = N rows of a [N][LD] tile (b: its
 * lane's P2 address), K = D: each B fragment feeds WMT mma. */
template <int WMT, int N, int LD, int D>
static __device__ __forceinline__ void fa2_wide_nk(float (*c)[N / 8][4], const bf16 *a,
                                                   const bf16 *b) {
#pragma unroll
    for (int kd = 0; kd < D / 16; kd++) {
        uint32_t af[WMT][4];
#pragma unroll
        for (int m = 0; m < WMT; m++) tc_ldsm(af[m], a + 16 * m * LD + kd * 16);
#pragma unroll
        for (int np = 0; np < N / 16; np++) {
            uint32_t bf[4];
            tc_ldsm(bf, b + kd * 16 + np * 16 * LD);
#pragma unroll
            for (int m = 0; m < WMT; m++) fa2_mma2(c[m] + 2 * np, af[m], bf);
        }
    }
}

/* c[m] += A_m · B for the warp's WMT key tiles: A_m from the accumulators s[m] (the K = R
 * queries of a tile, 16 at a time), B = a row-major [R][LD] tile read by .trans (b: its
 * lane's P1 address), D columns: each B fragment feeds WMT mma. */
template <int WMT, int R, int LD, int D>
static __device__ __forceinline__ void fa2_wide_kn(float (*c)[D / 8][4],
                                                   const float (*s)[R / 8][4], const bf16 *b) {
#pragma unroll
    for (int kc = 0; kc < R / 16; kc++) {
        uint32_t af[WMT][4];
#pragma unroll
        for (int m = 0; m < WMT; m++) tc_acc_to_a(af[m], s[m], kc);
#pragma unroll
        for (int np = 0; np < D / 16; np++) {
            uint32_t bf[4];
            tc_ldsm_t(bf, b + kc * 16 * LD + np * 16);
#pragma unroll
            for (int m = 0; m < WMT; m++) fa2_mma2(c[m] + 2 * np, af[m], bf);
        }
    }
}

template <int D> struct fa2_dkdv_wide_shape {
    static constexpr int NW = 4, WMT = 2, NT = NW * 32, BC = 16 * WMT * NW, BR = 32;
    static constexpr int LD = D + FA2_PAD, MINB = 2;
    /* Ks, Vs [BC][LD]; Qs, Ds [2][BR][LD]; ls, dls [2][BR] f32 */
    static constexpr size_t SMEM = (size_t)(2 * BC + 4 * BR) * LD * 2 + (size_t)4 * BR * 4;
};

template <int D>
static __global__ void __launch_bounds__(fa2_dkdv_wide_shape<D>::NT,
                                         fa2_dkdv_wide_shape<D>::MINB)
    fa2_bwd_dkdv_wide_kernel(bf16 *dk, bf16 *dv, float *dkp, float *dvp, const bf16 *dout,
                             const bf16 *q, const bf16 *k, const bf16 *v, const float *lse,
                             const float *delta, const int *offsets, int Hq, int Hkv,
                             float scale, float scale_log2, unsigned *gcount) {
    typedef fa2_dkdv_wide_shape<D> S_;
    constexpr int NT = S_::NT, BC = S_::BC, BR = S_::BR, LD = S_::LD, WMT = S_::WMT;
    extern __shared__ __align__(128) unsigned char fa2_smem[];
    bf16 *Ks = reinterpret_cast<bf16 *>(fa2_smem);
    bf16 *Vs = Ks + BC * LD, *Qs = Vs + BC * LD, *Ds = Qs + 2 * BR * LD;
    float *ls = reinterpret_cast<float *>(Ds + 2 * BR * LD), *dls = ls + 2 * BR;
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int nkt = (len + BC - 1) / BC, nqt = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;
    const bf16 *qseq = q + (size_t)start * ldq + (size_t)h * D;
    const bf16 *dseq = dout + (size_t)start * ldq + (size_t)h * D;
    const size_t lrow0 = (size_t)start * Hq + h;

    for (int kt = blockIdx.x; kt < nkt; kt += gridDim.x) {
        const int k0 = kt * BC;
        const int wr = warp * 16 * WMT; /* this warp's first key row in the tile */
        const int w0 = k0 + wr;         /* ... and its key */
        const int qt0 = k0 / BR;
        __syncthreads(); /* the previous key tile's readers are done */
        const size_t koff = (size_t)(start + k0) * ldk + (size_t)hk * D;
        fa2_load_tile<BC, D, NT>(Ks, k + koff, ldk, len - k0);
        fa2_load_tile<BC, D, NT>(Vs, v + koff, ldk, len - k0);
        fa2_q_load<BR, D, NT>(Qs, Ds, ls, dls, qseq, dseq, lse, delta, lrow0, ldq, Hq,
                              qt0 * BR, len);
        float dka[WMT][D / 8][4], dva[WMT][D / 8][4];
#pragma unroll
        for (int m = 0; m < WMT; m++) {
            fa2_zero(dka[m]);
            fa2_zero(dva[m]);
        }
        for (int qt = qt0; qt < nqt; qt++) {
            const int q0 = qt * BR, st = (qt - qt0) & 1;
            fa2_q_step<BR, D, NT>(Qs, Ds, ls, dls, qseq, dseq, lse, delta, lrow0, ldq, Hq, qt,
                                  nqt, q0, st, len);
            /* a warp whose keys all follow the tile's last query (or lie past the
             * sequence) gets nothing from it */
            if (q0 + BR - 1 >= w0 && w0 < len) {
                const bf16 *Qt = Qs + st * BR * LD, *Dt = Ds + st * BR * LD;
                const float *lt = ls + st * BR, *dlt = dls + st * BR;
                /* Sᵀ = K_w·Qᵀ and dPᵀ = V_w·dOᵀ: 32 keys × BR queries per warp, each Q /
                 * dO fragment used by both key tiles */
                float sa[WMT][BR / 8][4], dpa[WMT][BR / 8][4];
#pragma unroll
                for (int m = 0; m < WMT; m++) {
                    fa2_zero(sa[m]);
                    fa2_zero(dpa[m]);
                }
                fa2_wide_nk<WMT, BR, LD, D>(sa, Ks + wr * LD + p1, Qt + p2);
                fa2_wide_nk<WMT, BR, LD, D>(dpa, Vs + wr * LD + p1, Dt + p2);
#pragma unroll
                for (int m = 0; m < WMT; m++)
                    fa2_p_ds<BR>(sa[m], dpa[m], w0 + 16 * m + g, q0, t, len, lt, dlt,
                                 scale_log2);
                /* dV += Pᵀ·dO, dK += dSᵀ·Q (B fragments by ldmatrix.trans, each used by
                 * both key tiles) */
                fa2_wide_kn<WMT, BR, LD, D>(dva, sa, Dt + p1);
                fa2_wide_kn<WMT, BR, LD, D>(dka, dpa, Qt + p1);
            }
            __syncthreads(); /* stage st is read: the next iteration may refill it */
        }
#pragma unroll
        for (int m = 0; m < WMT; m++)
            flash_store_dkdv<D>(dk, dv, dkp, dvp, dka[m], dva[m], w0 + 16 * m + g,
                                w0 + 16 * m + g + 8, len, start, Hq, Hkv, h, hk, t, scale);
        if (gcount)
            fa2_group_finish<D>(gcount, dk, dv, dkp, dvp, k0, min(BC, len - k0), start, Hq, Hkv,
                                hk);
    }
}

/* ---- forward with two query tiles per warp (opt-in: RLVR_ATTN_FWD=wide) ---------------
 * The forward's 8 warps own 16 queries each, so every K and V fragment a warp reads feeds
 * one mma (and at D 64 the Q fragments are re-read from shared memory each key tile to
 * stay within 128 registers). Here 4 warps own 32 queries each (the same BR = 128 per
 * block): each K/V fragment feeds two mma. The same mma in the same order per element,
 * and the softmax step of a key tile that a query tile sees nothing of leaves its state
 * and o exactly as they were (corr = 1, P = 0), so the bits are the forward's (which
 * skips such tiles). D 64 only. FlashAttention-2's own forward at head dim 64 has this
 * layout (4 warps of 32 queries). ptxas (CUDA 13.0, sm_90a): 255 registers, 32 bytes of
 * spill, so 2 blocks (8 warps) per SM against the forward's 16 warps at 128 registers;
 * asking for 3 blocks spills 228 bytes. Unmeasured. */
template <int D> struct fa2_fwd_wide_shape {
    static constexpr int NW = 4, WMT = 2, NT = NW * 32, BR = 16 * WMT * NW, BC = 64;
    static constexpr int LD = D + FA2_PAD, MINB = 2;
    static constexpr size_t SMEM = (size_t)(BR + 4 * BC) * LD * 2; /* as the forward's */
};

template <int D>
static __global__ void __launch_bounds__(fa2_fwd_wide_shape<D>::NT, fa2_fwd_wide_shape<D>::MINB)
    fa2_fwd_wide_kernel(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                        const int *offsets, int Hq, int Hkv, float scale_log2) {
    typedef fa2_fwd_wide_shape<D> S_;
    constexpr int NT = S_::NT, BR = S_::BR, BC = S_::BC, LD = S_::LD, WMT = S_::WMT;
    extern __shared__ __align__(128) unsigned char fa2_smem[];
    bf16 *Qs = reinterpret_cast<bf16 *>(fa2_smem);
    bf16 *Ks = Qs + BR * LD, *Vs = Ks + 2 * BC * LD;
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int ntiles = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;
    const bf16 *qseq = q + (size_t)start * ldq + (size_t)h * D;
    const bf16 *kseq = k + (size_t)start * ldk + (size_t)hk * D;
    const bf16 *vseq = v + (size_t)start * ldk + (size_t)hk * D;

    for (int it = blockIdx.x; it < ntiles; it += gridDim.x) {
        const int q0 = fa2_rev(ntiles, it) * BR;
        const int wr = warp * 16 * WMT, w0 = q0 + wr; /* this warp's first query row */
        const int kend = q0 + BR < len ? q0 + BR : len;
        const int nkt = (kend + BC - 1) / BC;
        __syncthreads(); /* the previous query tile's readers of Qs, Ks, Vs are done */
        fa2_load_tile<BR, D, NT>(Qs, qseq + (size_t)q0 * ldq, ldq, len - q0);
        fa2_load_tile<BC, D, NT>(Ks, kseq, ldk, len);
        fa2_load_tile<BC, D, NT>(Vs, vseq, ldk, len);
        tc_commit();
        tc_wait<0>();
        __syncthreads();
        float o[WMT][D / 8][4], m[WMT][2], l[WMT][2];
#pragma unroll
        for (int mt = 0; mt < WMT; mt++) {
            fa2_zero(o[mt]);
            m[mt][0] = m[mt][1] = -INFINITY;
            l[mt][0] = l[mt][1] = 0.0f;
        }
        for (int kt = 0; kt < nkt; kt++) {
            const int k0 = kt * BC, st = kt & 1;
            fa2_kv_step<BC, D, NT>(Ks, Vs, kseq, vseq, ldk, kt, nkt, k0, st, len);
            /* warps whose rows all precede key k0 (or lie past the sequence) see nothing */
            if (k0 <= w0 + 16 * WMT - 1 && w0 < len) {
                const bf16 *Kt = Ks + st * BC * LD, *Vt = Vs + st * BC * LD;
                float s[WMT][BC / 8][4];
#pragma unroll
                for (int mt = 0; mt < WMT; mt++) fa2_zero(s[mt]);
                fa2_wide_nk<WMT, BC, LD, D>(s, Qs + wr * LD + p1, Kt + p2);
#pragma unroll
                for (int mt = 0; mt < WMT; mt++)
                    flash_softmax_step<BC, D>(s[mt], m[mt], l[mt], o[mt], k0, w0 + 16 * mt + g,
                                              w0 + 16 * mt + g + 8, t, scale_log2);
                /* O += P·V; V's B fragments by ldmatrix.trans, each used by both tiles */
                fa2_wide_kn<WMT, BC, LD, D>(o, s, Vt + p1);
            }
            __syncthreads(); /* stage st is read: the next iteration may refill it */
        }
#pragma unroll
        for (int mt = 0; mt < WMT; mt++)
            flash_fwd_store<D>(out, lse, o[mt], m[mt], l[mt], w0 + 16 * mt + g, len, start, Hq, h,
                             t);
    }
}

/* ---- backward, dQ with two query tiles per warp (opt-in: RLVR_ATTN_DQ=wide) ------------
 * The dQ kernel's 4 warps own 16 queries each, so each K and V fragment feeds one mma;
 * here they own 32 (BR = 128 per block) and each feeds two. Q's fragments are read from
 * shared memory at each use (as dO's already are) to leave room for the doubled S, dP and
 * dQ accumulators. The same mma in the same order per element, and a key tile that one of
 * the warp's query tiles sees nothing of gives it dS = 0 (dQ += 0), so the bits are the
 * dQ kernel's (which skips such tiles). D 64 only; not with the dQ partials. Unmeasured. */
template <int D> struct fa2_dq_wide_shape {
    static constexpr int NW = 4, WMT = 2, NT = NW * 32, BR = 16 * WMT * NW, BC = 64;
    static constexpr int LD = D + FA2_PAD, MINB = 2;
    /* Qs, Ds [BR][LD]; Ks, Vs [2][BC][LD] */
    static constexpr size_t SMEM = (size_t)(2 * BR + 4 * BC) * LD * 2;
};

template <int D>
static __global__ void __launch_bounds__(fa2_dq_wide_shape<D>::NT, fa2_dq_wide_shape<D>::MINB)
    fa2_bwd_dq_wide_kernel(bf16 *dq, const bf16 *dout, const bf16 *q, const bf16 *k,
                           const bf16 *v, const float *lse, const float *delta,
                           const int *offsets, int Hq, int Hkv, float scale,
                           float scale_log2) {
    typedef fa2_dq_wide_shape<D> S_;
    constexpr int NT = S_::NT, BR = S_::BR, BC = S_::BC, LD = S_::LD, WMT = S_::WMT;
    extern __shared__ __align__(128) unsigned char fa2_smem[];
    bf16 *Qs = reinterpret_cast<bf16 *>(fa2_smem);
    bf16 *Ds = Qs + BR * LD, *Ks = Ds + BR * LD, *Vs = Ks + 2 * BC * LD;
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int ntiles = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;
    const bf16 *qseq = q + (size_t)start * ldq + (size_t)h * D;
    const bf16 *dseq = dout + (size_t)start * ldq + (size_t)h * D;
    const bf16 *kseq = k + (size_t)start * ldk + (size_t)hk * D;
    const bf16 *vseq = v + (size_t)start * ldk + (size_t)hk * D;

    for (int it = blockIdx.x; it < ntiles; it += gridDim.x) {
        const int q0 = fa2_rev(ntiles, it) * BR;
        const int wr = warp * 16 * WMT, w0 = q0 + wr; /* this warp's first query row */
        const int kend = q0 + BR < len ? q0 + BR : len;
        const int nkt = (kend + BC - 1) / BC;
        __syncthreads(); /* the previous query tile's readers are done */
        fa2_load_tile<BR, D, NT>(Qs, qseq + (size_t)q0 * ldq, ldq, len - q0);
        fa2_load_tile<BR, D, NT>(Ds, dseq + (size_t)q0 * ldq, ldq, len - q0);
        fa2_load_tile<BC, D, NT>(Ks, kseq, ldk, len);
        fa2_load_tile<BC, D, NT>(Vs, vseq, ldk, len);
        tc_commit();
        float l2[WMT][2], dl[WMT][2];
#pragma unroll
        for (int m = 0; m < WMT; m++)
            fa2_dq_rows(l2[m], dl[m], lse, delta, w0 + 16 * m + g, len, start, Hq, h);
        tc_wait<0>();
        __syncthreads();
        float acc[WMT][D / 8][4];
#pragma unroll
        for (int m = 0; m < WMT; m++) fa2_zero(acc[m]);
        for (int kt = 0; kt < nkt; kt++) {
            const int k0 = kt * BC, st = kt & 1;
            fa2_kv_step<BC, D, NT>(Ks, Vs, kseq, vseq, ldk, kt, nkt, k0, st, len);
            if (k0 <= w0 + 16 * WMT - 1 && w0 < len) {
                const bf16 *Kt = Ks + st * BC * LD, *Vt = Vs + st * BC * LD;
                float s[WMT][BC / 8][4], dp[WMT][BC / 8][4];
#pragma unroll
                for (int m = 0; m < WMT; m++) {
                    fa2_zero(s[m]);
                    fa2_zero(dp[m]);
                }
                fa2_wide_nk<WMT, BC, LD, D>(s, Qs + wr * LD + p1, Kt + p2);  /* S = Q·Kᵀ */
                fa2_wide_nk<WMT, BC, LD, D>(dp, Ds + wr * LD + p1, Vt + p2); /* dP = dO·Vᵀ */
#pragma unroll
                for (int m = 0; m < WMT; m++)
                    fa2_dq_ds<BC>(s[m], dp[m], k0, w0 + 16 * m + g, t, len, l2[m], dl[m],
                                  scale_log2);
                /* dQ += dS·K; K's B fragments by ldmatrix.trans, each used by both tiles */
                fa2_wide_kn<WMT, BC, LD, D>(acc, s, Kt + p1);
            }
            __syncthreads(); /* stage st is read: the next iteration may refill it */
        }
#pragma unroll
        for (int m = 0; m < WMT; m++)
            fa2_dq_store<D>(dq, acc[m], w0 + 16 * m + g, len, start, Hq, h, t, scale);
    }
}


/* ---- backward: dQ ------------------------------------------------------------------------------ */

template <int D> struct fa2_dq_shape {
    static constexpr int NW = 4, NT = NW * 32, BR = 16 * NW, BC = D == 128 ? 32 : 64;
    static constexpr int LD = D + FA2_PAD, MINB = D == 64 ? 3 : 2;
    /* Qs, Ds [BR][LD]; Ks, Vs [2][BC][LD] */
    static constexpr size_t SMEM = (size_t)(2 * BR + 4 * BC) * LD * 2;
};

/* SKIP (dQ partials mode): sequences with dqbase[b] >= 0 have their dQ from the
 * partials; the kernel takes only the others (whole blocks return: no barrier is split). */
template <int D, bool SKIP>
static __global__ void __launch_bounds__(fa2_dq_shape<D>::NT, fa2_dq_shape<D>::MINB)
    fa2_bwd_dq_kernel(bf16 *dq, const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                      const float *lse, const float *delta, const int *offsets,
                      const long long *dqbase, int Hq, int Hkv, float scale, float scale_log2) {
    typedef fa2_dq_shape<D> S_;
    constexpr int NT = S_::NT, BR = S_::BR, BC = S_::BC, LD = S_::LD;
    extern __shared__ __align__(128) unsigned char fa2_smem[];
    bf16 *Qs = reinterpret_cast<bf16 *>(fa2_smem);
    bf16 *Ds = Qs + BR * LD, *Ks = Ds + BR * LD, *Vs = Ks + 2 * BC * LD;
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    if (SKIP && dqbase[b] >= 0) return;
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int ntiles = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;
    const bf16 *qseq = q + (size_t)start * ldq + (size_t)h * D;
    const bf16 *dseq = dout + (size_t)start * ldq + (size_t)h * D;
    const bf16 *kseq = k + (size_t)start * ldk + (size_t)hk * D;
    const bf16 *vseq = v + (size_t)start * ldk + (size_t)hk * D;

    for (int it = blockIdx.x; it < ntiles; it += gridDim.x) {
        const int q0 = fa2_rev(ntiles, it) * BR;
        const int w0 = q0 + warp * 16;
        const int r0 = w0 + g; /* this thread's rows: r0, r0 + 8 */
        const int kend = q0 + BR < len ? q0 + BR : len;
        const int nkt = (kend + BC - 1) / BC;
        __syncthreads(); /* the previous query tile's readers are done */
        fa2_load_tile<BR, D, NT>(Qs, qseq + (size_t)q0 * ldq, ldq, len - q0);
        fa2_load_tile<BR, D, NT>(Ds, dseq + (size_t)q0 * ldq, ldq, len - q0);
        fa2_load_tile<BC, D, NT>(Ks, kseq, ldk, len);
        fa2_load_tile<BC, D, NT>(Vs, vseq, ldk, len);
        tc_commit();
        float l2[2], dl[2];
        fa2_dq_rows(l2, dl, lse, delta, r0, len, start, Hq, h);
        tc_wait<0>();
        __syncthreads();
        /* Q's A fragments stay in registers; dO's are re-read from Ds (resident for the
         * whole query tile) at each use, which keeps D = 128 clear of spills */
        uint32_t qf[D / 16][4];
#pragma unroll
        for (int kd = 0; kd < D / 16; kd++) tc_ldsm(qf[kd], Qs + warp * 16 * LD + kd * 16 + p1);
        float acc[D / 8][4];
        fa2_zero(acc);
        for (int kt = 0; kt < nkt; kt++) {
            const int k0 = kt * BC, st = kt & 1;
            fa2_kv_step<BC, D, NT>(Ks, Vs, kseq, vseq, ldk, kt, nkt, k0, st, len);
            if (k0 <= w0 + 15 && w0 < len) {
                const bf16 *Kt = Ks + st * BC * LD, *Vt = Vs + st * BC * LD;
                float s[BC / 8][4], dp[BC / 8][4];
                fa2_zero(s);
                fa2_zero(dp);
#pragma unroll
                for (int kd = 0; kd < D / 16; kd++) {
                    uint32_t df[4];
                    tc_ldsm(df, Ds + warp * 16 * LD + kd * 16 + p1);
                    fa2_mma_nk2<BC, LD>(s, qf[kd], Kt + kd * 16 + p2, dp, df, Vt + kd * 16 + p2);
                }
                fa2_dq_ds<BC>(s, dp, k0, r0, t, len, l2, dl, scale_log2);
                /* dQ += dS·K; K's B fragments by ldmatrix.trans from the row-major tile */
#pragma unroll
                for (int kc = 0; kc < BC / 16; kc++) {
                    uint32_t a[4];
                    tc_acc_to_a(a, s, kc);
                    fa2_mma_kn<D>(acc, a, Kt, kc * 16 * LD, p1);
                }
            }
            __syncthreads(); /* stage st is read: the next iteration may refill it */
        }
        fa2_dq_store<D>(dq, acc, r0, len, start, Hq, h, t, scale);
    }
}

/* ---- backward: dQ from the partials ------------------------------------------------------------ */

/* dqbase[b] = Σ_{b' < b} tri(len_b') (row-slots before sequence b), or −1 when sequence
 * b's partials would end past cap row-slots (an understated max_len). One warp: lane l
 * takes sequences l·per..(l+1)·per−1, an exclusive shuffle scan of the lane sums gives
 * each lane its start. Integer sums: exact, any order. */
static __global__ void fa2_dq_base_kernel(long long *dqbase, const int *offsets, int B,
                                          long long cap) {
    const int lane = threadIdx.x & 31, per = (B + 31) / 32;
    const int b0 = lane * per, b1 = b0 + per < B ? b0 + per : B;
    long long own = 0;
    for (int b = b0; b < b1; b++) own += fa2_tri(offsets[b + 1] - offsets[b]);
    long long incl = own;
    for (int o = 1; o < 32; o <<= 1) {
        const long long x = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += x;
    }
    long long run = incl - own;
    for (int b = b0; b < b1; b++) {
        const long long n = fa2_tri(offsets[b + 1] - offsets[b]);
        dqbase[b] = run + n <= cap ? run : -1;
        run += n;
    }
}

/* dq[t, h, d..d+3] = scale · Σ_{j = 0..i/64} dqp[base + tri(i) + j, h, d..d+3] in
 * increasing j (i = t − start of t's sequence); one thread per four elements of dq
 * (D % 4 == 0). Tokens of sequences whose partials did not fit (dqbase −1) are left to
 * the dQ kernel, tokens outside every sequence untouched. */
static __global__ void fa2_dq_reduce_kernel(bf16 *dq, const float *dqp, const long long *dqbase,
                                            const int *offsets, int B, long long quads, int Hq,
                                            int D, float scale) {
    const long long x = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= quads) return;
    const int per = D / 4;
    const int d = (int)(x % per) * 4;
    const long long th = x / per; /* t·Hq + h */
    const int h = (int)(th % Hq), tok = (int)(th / Hq);
    int lo = 0, hi = B - 1; /* the last sequence with offsets[b] <= tok (empty ones skipped) */
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (offsets[mid] <= tok) lo = mid;
        else hi = mid - 1;
    }
    const int i = tok - offsets[lo];
    if (i < 0 || i >= offsets[lo + 1] - offsets[lo]) return;
    const long long base = dqbase[lo];
    if (base < 0) return;
    const size_t stride = (size_t)Hq * D;
    const float *p = dqp + (size_t)(base + fa2_tri(i)) * stride + (size_t)h * D + d;
    float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int j = 0; j <= i / 64; j++) {
        const float4 y = *reinterpret_cast<const float4 *>(p + (size_t)j * stride);
        a.x += y.x;
        a.y += y.y;
        a.z += y.z;
        a.w += y.w;
    }
    *reinterpret_cast<uint2 *>(dq + (size_t)th * D + d) =
        make_uint2(tc_pack(a.x * scale, a.y * scale), tc_pack(a.z * scale, a.w * scale));
}

/* ---- launchers ----------------------------------------------------------------------------------- */

/* Whether these kernels take the call: head dim 64 or 128, every tensor 16-byte aligned
 * (cp.async moves 16 bytes), B and Hq within a grid dimension. */
static int fa2_supported(int B, int Hq, int Hkv, int D, const void *const *ptrs, int n) {
    if (!(D == 64 || D == 128) || B <= 0 || B > 65535 || Hq <= 0 || Hq > 65535 || Hkv <= 0 ||
        Hq % Hkv != 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (!cuda_aligned16(ptrs[i])) return 0;
    return 1;
}

/* Blocks along x: one per tile of the longest sequence (the kernels loop over further
 * tiles when a sequence is longer than max_len claims: a wrong max_len costs speed only). */
static unsigned fa2_tiles(int max_len, int tile) {
    const int L = max_len > 0 ? max_len : 1;
    return (unsigned)((L + tile - 1) / tile);
}

/* Whether the environment variable `name` is `value`. The attention switches
 * (RLVR_ATTN_FWD, RLVR_ATTN_BWD, RLVR_ATTN_DQ) are read at every call, so a test or
 * benchmark can change path inside one process. */
static int fa2_env_is(const char *name, const char *value) {
    const char *e = getenv(name);
    return e && strcmp(e, value) == 0;
}

template <int D>
static void fa2_forward_launch(cuda_ctx *c, bf16 *out, float *lse, const bf16 *q,
                               const bf16 *k, const bf16 *v, const int *offsets, int B, int Hq,
                               int Hkv, int max_len) {
    typedef fa2_fwd_shape<D> S_;
    const float scale_log2 = FA2_LOG2E / sqrtf((float)D);
    const dim3 grid(fa2_tiles(max_len, S_::BR), (unsigned)Hq, (unsigned)B);
    if constexpr (D == 64) {
        if (fa2_env_is("RLVR_ATTN_FWD", "wide")) { /* two query tiles per warp */
            typedef fa2_fwd_wide_shape<64> SW;
            static_assert(SW::BR == S_::BR, "the same query tiles as the forward");
            CU_CHECK(c, cudaFuncSetAttribute(fa2_fwd_wide_kernel<64>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)SW::SMEM));
            fa2_fwd_wide_kernel<64><<<grid, SW::NT, SW::SMEM, c->stream>>>(
                out, lse, q, k, v, offsets, Hq, Hkv, scale_log2);
            CU_LAUNCH_CHECK(c, "fa2_fwd_wide_kernel");
            return;
        }
    }
    CU_CHECK(c, cudaFuncSetAttribute(fa2_fwd_kernel<D>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)S_::SMEM));
    fa2_fwd_kernel<D><<<grid, S_::NT, S_::SMEM, c->stream>>>(out, lse, q, k, v, offsets, Hq,
                                                              Hkv, scale_log2);
    CU_LAUNCH_CHECK(c, "fa2_fwd_kernel");
}

/* The dK/dV kernel, then the dQ kernel, of one backward mode: DQP = the dQ partials mode
 * (the dK/dV kernel also writes dqp; the dQ kernel only does the sequences whose partials
 * did not fit, per dqbase), else the two-kernel backward (dqp, dqbase NULL). */
template <int D, bool DQP>
static void fa2_backward_kernels(cuda_ctx *c, bf16 *dq, bf16 *dk, bf16 *dv, float *dkp,
                                 float *dvp, float *dqp, const long long *dqbase,
                                 const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                                 const float *lse, const float *delta, const int *offsets,
                                 int B, int Hq, int Hkv, int max_len, unsigned *gcount) {
    typedef fa2_dkdv_shape<D> SK;
    typedef fa2_dq_shape<D> SQ;
    const float scale = 1.0f / sqrtf((float)D), scale_log2 = FA2_LOG2E * scale;
    const size_t smem_k = DQP ? SK::SMEM_DQP : SK::SMEM;
    const dim3 gk(fa2_tiles(max_len, SK::BC), (unsigned)Hq, (unsigned)B);
    const dim3 gq(fa2_tiles(max_len, SQ::BR), (unsigned)Hq, (unsigned)B);
    bool wide = false;
    if constexpr (D == 64 && !DQP) wide = fa2_env_is("RLVR_ATTN_BWD", "wide"); /* 2 key tiles */
    if (wide) {
        typedef fa2_dkdv_wide_shape<64> SW;
        const dim3 gw(fa2_tiles(max_len, SW::BC), (unsigned)Hq, (unsigned)B);
        CU_CHECK(c, cudaFuncSetAttribute(fa2_bwd_dkdv_wide_kernel<64>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)SW::SMEM));
        fa2_bwd_dkdv_wide_kernel<64><<<gw, SW::NT, SW::SMEM, c->stream>>>(
            dk, dv, dkp, dvp, dout, q, k, v, lse, delta, offsets, Hq, Hkv, scale, scale_log2,
            gcount);
        CU_LAUNCH_CHECK(c, "fa2_bwd_dkdv_wide_kernel");
    } else {
        CU_CHECK(c, cudaFuncSetAttribute(fa2_bwd_dkdv_kernel<D, DQP>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)smem_k));
        fa2_bwd_dkdv_kernel<D, DQP><<<gk, SK::NT, smem_k, c->stream>>>(
            dk, dv, dkp, dvp, dqp, dqbase, dout, q, k, v, lse, delta, offsets, Hq, Hkv, scale,
            scale_log2, gcount);
        CU_LAUNCH_CHECK(c, DQP ? "fa2_bwd_dkdv_kernel (dQ partials)" : "fa2_bwd_dkdv_kernel");
    }
    if constexpr (D == 64 && !DQP) {
        if (fa2_env_is("RLVR_ATTN_DQ", "wide")) { /* two query tiles per warp */
            typedef fa2_dq_wide_shape<64> SQW;
            const dim3 gw(fa2_tiles(max_len, SQW::BR), (unsigned)Hq, (unsigned)B);
            CU_CHECK(c, cudaFuncSetAttribute(fa2_bwd_dq_wide_kernel<64>,
                                             cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)SQW::SMEM));
            fa2_bwd_dq_wide_kernel<64><<<gw, SQW::NT, SQW::SMEM, c->stream>>>(
                dq, dout, q, k, v, lse, delta, offsets, Hq, Hkv, scale, scale_log2);
            CU_LAUNCH_CHECK(c, "fa2_bwd_dq_wide_kernel");
            return;
        }
    }
    CU_CHECK(c, cudaFuncSetAttribute(fa2_bwd_dq_kernel<D, DQP>,
                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)SQ::SMEM));
    fa2_bwd_dq_kernel<D, DQP><<<gq, SQ::NT, SQ::SMEM, c->stream>>>(
        dq, dout, q, k, v, lse, delta, offsets, dqbase, Hq, Hkv, scale, scale_log2);
    CU_LAUNCH_CHECK(c, DQP ? "fa2_bwd_dq_kernel (skip)" : "fa2_bwd_dq_kernel");
}

/* dqp/dqbase non-NULL: the dQ partials mode (dqbase already written by
 * fa2_dq_base_kernel), whose partials are then summed into dq; else the two-kernel
 * backward. */
template <int D>
static void fa2_backward_launch(cuda_ctx *c, bf16 *dq, bf16 *dk, bf16 *dv, float *dkp,
                                float *dvp, float *dqp, const long long *dqbase,
                                const bf16 *dout, const bf16 *q, const bf16 *k, const bf16 *v,
                                const float *lse, const float *delta, const int *offsets, int B,
                                int T, int Hq, int Hkv, int max_len, unsigned *gcount) {
    if (!dqp) {
        fa2_backward_kernels<D, false>(c, dq, dk, dv, dkp, dvp, NULL, NULL, dout, q, k, v, lse,
                                       delta, offsets, B, Hq, Hkv, max_len, gcount);
        return;
    }
    fa2_backward_kernels<D, true>(c, dq, dk, dv, dkp, dvp, dqp, dqbase, dout, q, k, v, lse,
                                  delta, offsets, B, Hq, Hkv, max_len, gcount);
    const long long quads = (long long)T * Hq * (D / 4);
    const float scale = 1.0f / sqrtf((float)D);
    fa2_dq_reduce_kernel<<<cuda_blocks((size_t)quads, 256), 256, 0, c->stream>>>(
        dq, dqp, dqbase, offsets, B, quads, Hq, D, scale);
    CU_LAUNCH_CHECK(c, "fa2_dq_reduce_kernel");
}


/* The most scratch the dQ partials may take; a call that would need more (from its
 * shapes) takes the two-kernel backward. Once grown, a scratch slot is kept. */
static const size_t FA2_DQP_CAP = (size_t)2 << 30;

/* Bytes of the partials region before the row-slots: dqbase[B] int64, 256-aligned. */
static size_t fa2_dqp_header(int B) { return ((size_t)B * 8 + 255) / 256 * 256; }

/* Row-slots the partials of T tokens in sequences of at most M = max_len tokens can need:
 * tri is convex, so Σ tri(len_b) under Σ len_b = T, len_b <= M is largest with T / M
 * sequences of M and one of T % M. An understated max_len gives too few: the device
 * side then leaves the sequences that do not fit to the dQ kernel. */
static long long fa2_dqp_rows(int T, int max_len) {
    const int M = max_len < 1 ? 1 : max_len > T ? T : max_len;
    return (long long)(T / M) * fa2_tri(M) + fa2_tri(T % M);
}

int cuda_flash2_attention_forward(cuda_ctx *c, bf16 *out, float *lse, const bf16 *q,
                                  const bf16 *k, const bf16 *v, const int *offsets, int B,
                                  int Hq, int Hkv, int D, int max_len) {
    const void *ptrs[] = {out, q, k, v};
    if (!fa2_supported(B, Hq, Hkv, D, ptrs, 4)) return -1;
    if (D == 64) fa2_forward_launch<64>(c, out, lse, q, k, v, offsets, B, Hq, Hkv, max_len);
    else fa2_forward_launch<128>(c, out, lse, q, k, v, offsets, B, Hq, Hkv, max_len);
    return 0;
}

int cuda_flash2_attention_backward(cuda_ctx *c, bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout,
                                   const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *out,
                                   const float *lse, const int *offsets, int B, int T, int Hq,
                                   int Hkv, int D, int max_len) {
    const void *ptrs[] = {dq, dk, dv, dout, q, k, v, out};
    if (!fa2_supported(B, Hq, Hkv, D, ptrs, 8)) return -1;
    const long long rows = (long long)T * Hq;
    float *delta = (float *)cuda_scratch(c, SCRATCH_ATTN, (size_t)rows * sizeof(float));
    if (!delta) return 0; /* error recorded */
    const unsigned per_block = FA2_DELTA_T / 32 * (32 / (D / 8)); /* rows */
    const unsigned nb = (unsigned)(((size_t)rows + per_block - 1) / per_block);
    if (D == 64)
        fa2_delta_kernel<64><<<nb, FA2_DELTA_T, 0, c->stream>>>(delta, dout, out, rows);
    else
        fa2_delta_kernel<128><<<nb, FA2_DELTA_T, 0, c->stream>>>(delta, dout, out, rows);
    CU_LAUNCH_CHECK(c, "fa2_delta_kernel");
    /* GQA: per-query-head fp32 partials of dK, dV, summed per group afterwards */
    const int group = Hq / Hkv;
    float *dkp = NULL, *dvp = NULL;
    if (group > 1) {
        const size_t n = (size_t)T * Hq * D;
        dkp = (float *)cuda_scratch(c, SCRATCH_ATTN_DKV, 2 * n * sizeof(float));
        if (!dkp) return 0; /* error recorded */
        dvp = dkp + n;
    }
    /* dQ partials: chosen from the environment and the shapes only */
    float *dqp = NULL;
    long long *dqbase = NULL;
    if (fa2_env_is("RLVR_ATTN_DQ", "partials")) { /* anything else: the two-kernel backward */
        const long long rows = fa2_dqp_rows(T, max_len);
        const size_t slot = (size_t)Hq * D * sizeof(float), hdr = fa2_dqp_header(B);
        if ((size_t)rows <= (FA2_DQP_CAP - hdr) / slot) {
            char *buf = (char *)cuda_scratch(c, SCRATCH_ATTN_DQP, hdr + (size_t)rows * slot);
            if (!buf) return 0; /* error recorded */
            dqbase = (long long *)buf;
            dqp = (float *)(buf + hdr);
            fa2_dq_base_kernel<<<1, 32, 0, c->stream>>>(dqbase, offsets, B, rows);
            CU_LAUNCH_CHECK(c, "fa2_dq_base_kernel");
        }
    }
    /* GQA at D 64: the group sum inside the dK/dV kernels (a counter per (token, KV head),
     * used by the key tiles' first tokens) unless RLVR_ATTN_GQA=separate */
    unsigned *gcount = NULL;
    if (group > 1 && D == 64 && !fa2_env_is("RLVR_ATTN_GQA", "separate")) {
        const size_t gbytes = (size_t)T * Hkv * sizeof(unsigned);
        gcount = (unsigned *)cuda_scratch_zeroed(c, SCRATCH_ATTN_GQA, gbytes, gbytes);
        if (!gcount) return 0; /* error recorded */
    }
    if (D == 64)
        fa2_backward_launch<64>(c, dq, dk, dv, dkp, dvp, dqp, dqbase, dout, q, k, v, lse, delta,
                                offsets, B, T, Hq, Hkv, max_len, gcount);
    else
        fa2_backward_launch<128>(c, dq, dk, dv, dkp, dvp, dqp, dqbase, dout, q, k, v, lse,
                                 delta, offsets, B, T, Hq, Hkv, max_len, gcount);
    if (group > 1 && !gcount) {
        const long long quads = (long long)T * Hkv * (D / 4);
        flash_group_sum_kernel<<<cuda_blocks((size_t)quads, 256), 256, 0, c->stream>>>(
            dk, dv, dkp, dvp, quads, Hkv, group, D);
        CU_LAUNCH_CHECK(c, "flash_group_sum_kernel");
    }
    return 0;
}
