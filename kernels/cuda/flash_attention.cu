/*
 * kernels/cuda/flash_attention.cu — fused causal attention over packed variable-length
 * sequences with GQA, forward and backward, FlashAttention-2 style on the tensor cores
 * (mma.sync m16n8k16, bf16 inputs, fp32 accumulation), for head dims 64 and 128. The
 * op-table entries in attention.cu call these and fall back to the simple kernels for
 * any other shape (or with RLVR_ATTENTION=simple).
 *
 * Shapes (backend.h): q[T,Hq,D], k/v[T,Hkv,D], out/dout/dq[T,Hq,D], dk/dv[T,Hkv,D],
 * lse[T,Hq] f32 (natural log of Σ_j exp(scale·q·k_j), the same quantity the simple
 * kernel and the CPU reference save, so forward and backward of any pair of
 * implementations can be combined). offsets[B+1] on the device. Query head h reads KV
 * head h / (Hq/Hkv) straight from k/v: no replication.
 *
 * Work (4 warps per block; each warp owns 16 rows of a tile; the tile loops skip every
 * key tile that lies wholly above the causal diagonal):
 *   forward  grid (query tiles, Hq, B): BR = 64 queries per block, key tiles of BC = 64
 *            through shared memory (K row-major, V transposed). S = Q·Kᵀ and O += P·V on
 *            the tensor cores; the S accumulators become the A operand of P·V in
 *            registers; online softmax in the log2 domain; lse = ln 2·(m + log2 l).
 *   delta    Δ[t,h] = dout·out, a warp per row.
 *   dK, dV   grid (key tiles, Hq, B): BC = 64 keys per block held in shared memory,
 *            one query head per block, looping over every query tile at or below the
 *            diagonal (BR = 64 for D = 64, 32 for D = 128). With GQA (Hq > Hkv) each
 *            block writes its head's share of dK, dV in fp32 to scratch [T, Hq, D], and
 *            a reduction sums the heads of each group in head order (FlashAttention-2's
 *            approach: Hq/Hkv times more blocks than one per KV head, which left most
 *            of the GPU idle and serialised the group). Each warp computes
 *            Sᵀ = K_w·Qᵀ and dPᵀ = V_w·dOᵀ for its 16 keys, then Pᵀ = exp(Sᵀ − lse),
 *            dSᵀ = Pᵀ∘(dPᵀ − Δ), and accumulates dV += Pᵀ·dO, dK += dSᵀ·Q in registers
 *            (Q and dO are also stored transposed in shared memory for those B operands).
 *   dQ       grid (query tiles, Hq, B): BR = 64, key tiles of BC = 64 (D = 64) or 32
 *            (D = 128): S, dP, dS again, dQ += dS·K (K also stored transposed).
 * Every output element has exactly one owner thread and a fixed summation order: no
 * atomics, the same bits every run (backend.h's determinism promise).
 *
 * mma.sync m16n8k16 fragments (PTX ISA; g = lane/4, t = lane%4), two bf16 per register,
 * the lower index in the low half:
 *   A (16×16, row-major): a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..)
 *   B (16×8, k × n):      b0 (k 2t..2t+1, n g), b1 (k 2t+8..2t+9, n g)
 *   C (16×8, fp32):       c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
 * so the C fragments of two neighbouring n-tiles are exactly the A fragment of one
 * k-chunk, and a B fragment is two 32-bit shared loads from a tile stored with its k
 * index contiguous. Shared tiles are padded by 8 elements per row (16 bytes) so the
 * eight rows a warp touches in one load fall in different banks.
 */
#include <string.h>

#include "kernels/cuda/cuda_internal.cuh"
#include "kernels/cuda/flash_common.cuh"
#include "kernels/cuda/tensor_core.cuh"

enum { FA_WARPS = 4, FA_THREADS = FA_WARPS * 32, FA_PAD = 8 };

#define FA_LOG2E 1.4426950408889634f

/* ---- device helpers -------------------------------------------------------------------- */

/* Two consecutive bf16 (4-byte aligned) as one register. */
static __device__ __forceinline__ uint32_t fa_ld32(const bf16 *p) {
    return *reinterpret_cast<const uint32_t *>(p);
}

/* A fragment of the 16×16 block at p (row stride ld elements), rows r < nvalid only
 * (others zero). p points at element (row g, col 2t) of the block. */
static __device__ __forceinline__ void fa_load_a(uint32_t *a, const bf16 *p, size_t ld,
                                                 int valid0, int valid1) {
    a[0] = valid0 ? fa_ld32(p) : 0u;
    a[1] = valid1 ? fa_ld32(p + 8 * ld) : 0u;
    a[2] = valid0 ? fa_ld32(p + 8) : 0u;
    a[3] = valid1 ? fa_ld32(p + 8 * ld + 8) : 0u;
}

/* Rows 0..R−1 of a global tile (row r at src + r·ld, D elements, rows >= nvalid read as
 * zero) into shared memory: row-major dst[R][D+PAD] when ROW, transposed dstT[D][R+PAD]
 * when TR. All FA_THREADS threads take part; 16-byte global reads. */
template <int R, int D, bool ROW, bool TR>
static __device__ __forceinline__ void fa_load_tile(bf16 *dst, bf16 *dstT, const bf16 *src,
                                                    size_t ld, int nvalid) {
    constexpr int CH = D / 8;
    for (int idx = threadIdx.x; idx < R * CH; idx += FA_THREADS) {
        const int r = idx % R, c = idx / R;
        uint4 u = make_uint4(0u, 0u, 0u, 0u);
        if (r < nvalid) u = *reinterpret_cast<const uint4 *>(src + (size_t)r * ld + c * 8);
        if (ROW) *reinterpret_cast<uint4 *>(dst + r * (D + FA_PAD) + c * 8) = u;
        if (TR) {
            bf16 e[8];
            memcpy(e, &u, 16);
#pragma unroll
            for (int i = 0; i < 8; i++) dstT[(c * 8 + i) * (R + FA_PAD) + r] = e[i];
        }
    }
}

/* Tile index of the i-th block along x when the heaviest (last) query tiles go first. */
static __device__ __forceinline__ int fa_rev(int ntiles, int i) { return ntiles - 1 - i; }

/* ---- forward ----------------------------------------------------------------------------- */

template <int D>
static __global__ void __launch_bounds__(FA_THREADS)
    flash_fwd_kernel(bf16 *out, float *lse, const bf16 *q, const bf16 *k, const bf16 *v,
                     const int *offsets, int Hq, int Hkv, float scale_log2) {
    constexpr int BR = 64, BC = 64, LDK = D + FA_PAD, LDV = BC + FA_PAD;
    __shared__ __align__(16) bf16 Ks[BC * LDK]; /* keys × d */
    __shared__ __align__(16) bf16 Vt[D * LDV];  /* d × keys */
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int ntiles = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;
    const bf16 *qseq = q + (size_t)start * ldq + (size_t)h * D;
    const bf16 *kseq = k + (size_t)start * ldk + (size_t)hk * D;
    const bf16 *vseq = v + (size_t)start * ldk + (size_t)hk * D;

    for (int it = blockIdx.x; it < ntiles; it += gridDim.x) {
        const int q0 = fa_rev(ntiles, it) * BR;
        const int r0 = q0 + warp * 16 + g, r1 = r0 + 8; /* this thread's two query rows */
        uint32_t qf[D / 16][4];
#pragma unroll
        for (int kd = 0; kd < D / 16; kd++)
            fa_load_a(qf[kd], qseq + (size_t)r0 * ldq + kd * 16 + 2 * t, ldq, r0 < len,
                      r1 < len);
        float o[D / 8][4];
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
        float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
        const int kend = q0 + BR < len ? q0 + BR : len; /* keys 0..kend−1 are visible */
        const int nkt = (kend + BC - 1) / BC;
        for (int kt = 0; kt < nkt; kt++) {
            const int k0 = kt * BC;
            __syncthreads(); /* the previous tile's readers are done */
            fa_load_tile<BC, D, true, false>(Ks, nullptr, kseq + (size_t)k0 * ldk, ldk,
                                             len - k0);
            fa_load_tile<BC, D, false, true>(nullptr, Vt, vseq + (size_t)k0 * ldk, ldk,
                                             len - k0);
            __syncthreads();
            float s[BC / 8][4];
#pragma unroll
            for (int nt = 0; nt < BC / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
            for (int kd = 0; kd < D / 16; kd++) {
#pragma unroll
                for (int nt = 0; nt < BC / 8; nt++) {
                    const bf16 *kp = Ks + (nt * 8 + g) * LDK + kd * 16 + 2 * t;
                    tc_mma(s[nt], qf[kd], fa_ld32(kp), fa_ld32(kp + 8));
                }
            }
            flash_softmax_step<BC, D>(s, m, l, o, k0, r0, r1, t, scale_log2);
            /* O += P·V */
#pragma unroll
            for (int kc = 0; kc < BC / 16; kc++) {
                uint32_t a[4];
                tc_acc_to_a(a, s, kc);
#pragma unroll
                for (int nd = 0; nd < D / 8; nd++) {
                    const bf16 *vp = Vt + (nd * 8 + g) * LDV + kc * 16 + 2 * t;
                    tc_mma(o[nd], a, fa_ld32(vp), fa_ld32(vp + 8));
                }
            }
        }
        flash_fwd_store<D>(out, lse, o, m, l, r0, len, start, Hq, h, t);
    }
}

/* ---- backward: Δ = rowsum(dout ∘ out) ------------------------------------------------------- */

static __global__ void flash_delta_kernel(float *delta, const bf16 *dout, const bf16 *out,
                                          long long rows, int D) {
    const int lane = threadIdx.x & 31;
    const long long row = (long long)blockIdx.x * FA_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;
    const bf16 *a = dout + (size_t)row * D, *o = out + (size_t)row * D;
    float s = 0.0f;
    for (int d = 2 * lane; d < D; d += 64) {
        const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(a + d));
        const float2 y = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(o + d));
        s += x.x * y.x + x.y * y.y;
    }
    s = warp_sum(s);
    if (lane == 0) delta[row] = s;
}

/* ---- backward: dK, dV ------------------------------------------------------------------------ */

template <int D> struct fa_dkdv_shape {
    static constexpr int BC = 64, BR = D == 128 ? 32 : 64, LDR = D + FA_PAD, LDT = BR + FA_PAD;
    /* Ks, Vs [BC][LDR]; Qs, Ds [BR][LDR]; Qt, Dt [D][LDT]; lse, Δ [BR] f32 */
    static constexpr size_t SMEM =
        (size_t)(2 * BC * LDR + 2 * BR * LDR + 2 * D * LDT) * 2 + (size_t)2 * BR * 4;
};

template <int D>
static __global__ void __launch_bounds__(FA_THREADS)
    flash_bwd_dkdv_kernel(bf16 *dk, bf16 *dv, float *dkp, float *dvp, const bf16 *dout,
                          const bf16 *q, const bf16 *k, const bf16 *v, const float *lse,
                          const float *delta, const int *offsets, int Hq, int Hkv, float scale,
                          float scale_log2) {
    typedef fa_dkdv_shape<D> S_;
    constexpr int BC = S_::BC, BR = S_::BR, LDR = S_::LDR, LDT = S_::LDT;
    extern __shared__ __align__(16) unsigned char fa_smem[];
    bf16 *Ks = reinterpret_cast<bf16 *>(fa_smem);
    bf16 *Vs = Ks + BC * LDR, *Qs = Vs + BC * LDR, *Ds = Qs + BR * LDR;
    bf16 *Qt = Ds + BR * LDR, *Dt = Qt + D * LDT;
    float *ls = reinterpret_cast<float *>(Dt + D * LDT), *dls = ls + BR;
    /* one query head per block; dkp/dvp (fp32 [T, Hq, D]) receive its share when
     * non-NULL (GQA), else dk/dv (bf16 [T, Hkv, D]) the whole gradient (Hq == Hkv) */
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int nkt = (len + BC - 1) / BC, nqt = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;

    for (int kt = blockIdx.x; kt < nkt; kt += gridDim.x) {
        const int k0 = kt * BC;
        const int kr0 = k0 + warp * 16 + g, kr1 = kr0 + 8; /* this thread's two key rows */
        __syncthreads();
        const size_t koff = (size_t)(start + k0) * ldk + (size_t)hk * D;
        fa_load_tile<BC, D, true, false>(Ks, nullptr, k + koff, ldk, len - k0);
        fa_load_tile<BC, D, true, false>(Vs, nullptr, v + koff, ldk, len - k0);
        float dka[D / 8][4], dva[D / 8][4];
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++)
#pragma unroll
            for (int e = 0; e < 4; e++) dka[nd][e] = dva[nd][e] = 0.0f;
        { /* the query tiles of head h at or below the diagonal */
            for (int qt = k0 / BR; qt < nqt; qt++) {
                const int q0 = qt * BR;
                __syncthreads(); /* the previous query tile's readers are done */
                const size_t qoff = (size_t)(start + q0) * ldq + (size_t)h * D;
                fa_load_tile<BR, D, true, true>(Qs, Qt, q + qoff, ldq, len - q0);
                fa_load_tile<BR, D, true, true>(Ds, Dt, dout + qoff, ldq, len - q0);
                for (int r = threadIdx.x; r < BR; r += FA_THREADS) {
                    const int valid = q0 + r < len;
                    const size_t row = (size_t)(start + q0 + r) * Hq + h;
                    ls[r] = valid ? lse[row] * FA_LOG2E : 0.0f;
                    dls[r] = valid ? delta[row] : 0.0f;
                }
                __syncthreads();
                /* Sᵀ = K_w·Qᵀ and dPᵀ = V_w·dOᵀ: 16 keys × BR queries per warp */
                float st[BR / 8][4], dpt[BR / 8][4];
#pragma unroll
                for (int nt = 0; nt < BR / 8; nt++)
#pragma unroll
                    for (int e = 0; e < 4; e++) st[nt][e] = dpt[nt][e] = 0.0f;
#pragma unroll
                for (int kd = 0; kd < D / 16; kd++) {
                    uint32_t ak[4], av[4];
                    const int aoff = (warp * 16 + g) * LDR + kd * 16 + 2 * t;
                    fa_load_a(ak, Ks + aoff, LDR, 1, 1);
                    fa_load_a(av, Vs + aoff, LDR, 1, 1);
#pragma unroll
                    for (int nt = 0; nt < BR / 8; nt++) {
                        const int boff = (nt * 8 + g) * LDR + kd * 16 + 2 * t;
                        tc_mma(st[nt], ak, fa_ld32(Qs + boff), fa_ld32(Qs + boff + 8));
                        tc_mma(dpt[nt], av, fa_ld32(Ds + boff), fa_ld32(Ds + boff + 8));
                    }
                }
                /* Pᵀ = exp(Sᵀ·scale − lse) where query >= key (and query < len);
                 * dSᵀ = Pᵀ∘(dPᵀ − Δ) (the scale goes on dK at the end) */
#pragma unroll
                for (int nt = 0; nt < BR / 8; nt++) {
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        const int key = e < 2 ? kr0 : kr1;
                        const int qi = nt * 8 + 2 * t + (e & 1), qa = q0 + qi;
                        const float p = (qa >= key && qa < len)
                                            ? exp2f(st[nt][e] * scale_log2 - ls[qi])
                                            : 0.0f;
                        dpt[nt][e] = p * (dpt[nt][e] - dls[qi]);
                        st[nt][e] = p;
                    }
                }
                /* dV += Pᵀ·dO, dK += dSᵀ·Q (B operands from the transposed tiles) */
#pragma unroll
                for (int kc = 0; kc < BR / 16; kc++) {
                    uint32_t ap[4], ads[4];
                    tc_acc_to_a(ap, st, kc);
                    tc_acc_to_a(ads, dpt, kc);
#pragma unroll
                    for (int nd = 0; nd < D / 8; nd++) {
                        const int boff = (nd * 8 + g) * LDT + kc * 16 + 2 * t;
                        tc_mma(dva[nd], ap, fa_ld32(Dt + boff), fa_ld32(Dt + boff + 8));
                        tc_mma(dka[nd], ads, fa_ld32(Qt + boff), fa_ld32(Qt + boff + 8));
                    }
                }
            }
        }
        flash_store_dkdv<D>(dk, dv, dkp, dvp, dka, dva, kr0, kr1, len, start, Hq, Hkv, h, hk, t,
                            scale);
    }
}


/* ---- backward: dQ ------------------------------------------------------------------------------ */

template <int D>
static __global__ void __launch_bounds__(FA_THREADS)
    flash_bwd_dq_kernel(bf16 *dq, const bf16 *dout, const bf16 *q, const bf16 *k,
                        const bf16 *v, const float *lse, const float *delta,
                        const int *offsets, int Hq, int Hkv, float scale, float scale_log2) {
    constexpr int BR = 64, BC = D == 128 ? 32 : 64, LDR = D + FA_PAD, LDT = BC + FA_PAD;
    __shared__ __align__(16) bf16 Ks[BC * LDR]; /* keys × d */
    __shared__ __align__(16) bf16 Kt[D * LDT];  /* d × keys */
    __shared__ __align__(16) bf16 Vs[BC * LDR]; /* keys × d */
    const int h = blockIdx.y, b = blockIdx.z, hk = h / (Hq / Hkv);
    const int start = offsets[b], len = offsets[b + 1] - start;
    const int ntiles = (len + BR - 1) / BR;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, t = lane & 3;
    const size_t ldq = (size_t)Hq * D, ldk = (size_t)Hkv * D;
    const bf16 *qseq = q + (size_t)start * ldq + (size_t)h * D;
    const bf16 *dseq = dout + (size_t)start * ldq + (size_t)h * D;
    const bf16 *kseq = k + (size_t)start * ldk + (size_t)hk * D;
    const bf16 *vseq = v + (size_t)start * ldk + (size_t)hk * D;

    for (int it = blockIdx.x; it < ntiles; it += gridDim.x) {
        const int q0 = fa_rev(ntiles, it) * BR;
        const int r0 = q0 + warp * 16 + g, r1 = r0 + 8;
        uint32_t qf[D / 16][4], df[D / 16][4];
#pragma unroll
        for (int kd = 0; kd < D / 16; kd++) {
            fa_load_a(qf[kd], qseq + (size_t)r0 * ldq + kd * 16 + 2 * t, ldq, r0 < len,
                      r1 < len);
            fa_load_a(df[kd], dseq + (size_t)r0 * ldq + kd * 16 + 2 * t, ldq, r0 < len,
                      r1 < len);
        }
        float l2[2], dl[2];
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const int row = r ? r1 : r0;
            const size_t i = (size_t)(start + row) * Hq + h;
            l2[r] = row < len ? lse[i] * FA_LOG2E : 0.0f;
            dl[r] = row < len ? delta[i] : 0.0f;
        }
        float acc[D / 8][4];
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[nd][e] = 0.0f;
        const int kend = q0 + BR < len ? q0 + BR : len;
        const int nkt = (kend + BC - 1) / BC;
        for (int kt = 0; kt < nkt; kt++) {
            const int k0 = kt * BC;
            __syncthreads();
            fa_load_tile<BC, D, true, true>(Ks, Kt, kseq + (size_t)k0 * ldk, ldk, len - k0);
            fa_load_tile<BC, D, true, false>(Vs, nullptr, vseq + (size_t)k0 * ldk, ldk,
                                             len - k0);
            __syncthreads();
            float s[BC / 8][4], dp[BC / 8][4];
#pragma unroll
            for (int nt = 0; nt < BC / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.0f;
#pragma unroll
            for (int kd = 0; kd < D / 16; kd++) {
#pragma unroll
                for (int nt = 0; nt < BC / 8; nt++) {
                    const int boff = (nt * 8 + g) * LDR + kd * 16 + 2 * t;
                    tc_mma(s[nt], qf[kd], fa_ld32(Ks + boff), fa_ld32(Ks + boff + 8));
                    tc_mma(dp[nt], df[kd], fa_ld32(Vs + boff), fa_ld32(Vs + boff + 8));
                }
            }
#pragma unroll
            for (int nt = 0; nt < BC / 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int key = k0 + nt * 8 + 2 * t + (e & 1);
                    const int r = e >> 1, row = r ? r1 : r0;
                    const float p = (key <= row && row < len)
                                        ? exp2f(s[nt][e] * scale_log2 - l2[r])
                                        : 0.0f;
                    s[nt][e] = p * (dp[nt][e] - dl[r]); /* dS without the scale */
                }
            }
            /* dQ += dS·K */
#pragma unroll
            for (int kc = 0; kc < BC / 16; kc++) {
                uint32_t a[4];
                tc_acc_to_a(a, s, kc);
#pragma unroll
                for (int nd = 0; nd < D / 8; nd++) {
                    const int boff = (nd * 8 + g) * LDT + kc * 16 + 2 * t;
                    tc_mma(acc[nd], a, fa_ld32(Kt + boff), fa_ld32(Kt + boff + 8));
                }
            }
        }
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const int row = r ? r1 : r0;
            if (row >= len) continue;
            bf16 *o = dq + ((size_t)(start + row) * Hq + h) * D + 2 * t;
#pragma unroll
            for (int nd = 0; nd < D / 8; nd++)
                *reinterpret_cast<uint32_t *>(o + nd * 8) =
                    tc_pack(acc[nd][2 * r] * scale, acc[nd][2 * r + 1] * scale);
        }
    }
}

/* ---- launchers ----------------------------------------------------------------------------------- */

/* Whether the fused kernels take this call: head dim 64 or 128, every tensor 16-byte
 * aligned (the tiles are read 16 bytes at a time), B within a grid dimension. */
static int flash_supported(int B, int Hq, int Hkv, int D, const void *const *ptrs, int n) {
    if (!(D == 64 || D == 128) || B <= 0 || B > 65535 || Hq <= 0 || Hq > 65535 || Hkv <= 0 ||
        Hq % Hkv != 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (!cuda_aligned16(ptrs[i])) return 0;
    return 1;
}

/* Blocks along x: one per tile of the longest sequence (the kernels loop when a sequence
 * is longer than max_len claims, so a wrong max_len costs speed, not correctness). */
static unsigned flash_tiles(int max_len, int tile) {
    const int L = max_len > 0 ? max_len : 1;
    return (unsigned)((L + tile - 1) / tile);
}

int cuda_flash_attention_forward(cuda_ctx *c, bf16 *out, float *lse, const bf16 *q,
                                 const bf16 *k, const bf16 *v, const int *offsets, int B,
                                 int Hq, int Hkv, int D, int max_len) {
    const void *ptrs[] = {out, q, k, v};
    if (!flash_supported(B, Hq, Hkv, D, ptrs, 4)) return -1;
    const float scale_log2 = FA_LOG2E / sqrtf((float)D);
    const dim3 grid(flash_tiles(max_len, 64), (unsigned)Hq, (unsigned)B);
    if (D == 64)
        flash_fwd_kernel<64><<<grid, FA_THREADS, 0, c->stream>>>(out, lse, q, k, v, offsets, Hq,
                                                                  Hkv, scale_log2);
    else
        flash_fwd_kernel<128><<<grid, FA_THREADS, 0, c->stream>>>(out, lse, q, k, v, offsets,
                                                                   Hq, Hkv, scale_log2);
    CU_LAUNCH_CHECK(c, "flash_fwd_kernel");
    return 0;
}

int cuda_flash_attention_backward(cuda_ctx *c, bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout,
                                  const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *out,
                                  const float *lse, const int *offsets, int B, int T, int Hq,
                                  int Hkv, int D, int max_len) {
    const void *ptrs[] = {dq, dk, dv, dout, q, k, v, out};
    if (!flash_supported(B, Hq, Hkv, D, ptrs, 8)) return -1;
    const float scale = 1.0f / sqrtf((float)D), scale_log2 = FA_LOG2E * scale;
    const long long rows = (long long)T * Hq;
    float *delta = (float *)cuda_scratch(c, SCRATCH_ATTN, (size_t)rows * sizeof(float));
    if (!delta) return 0; /* error recorded */
    flash_delta_kernel<<<cuda_blocks((size_t)rows, FA_WARPS), FA_THREADS, 0, c->stream>>>(
        delta, dout, out, rows, D);
    CU_LAUNCH_CHECK(c, "flash_delta_kernel");
    /* GQA: per-query-head fp32 partials of dK, dV, summed per group afterwards */
    const int group = Hq / Hkv;
    float *dkp = NULL, *dvp = NULL;
    if (group > 1) {
        const size_t n = (size_t)T * Hq * D;
        dkp = (float *)cuda_scratch(c, SCRATCH_ATTN_DKV, 2 * n * sizeof(float));
        if (!dkp) return 0; /* error recorded */
        dvp = dkp + n;
    }
    const dim3 gk(flash_tiles(max_len, 64), (unsigned)Hq, (unsigned)B);
    const dim3 gq(flash_tiles(max_len, 64), (unsigned)Hq, (unsigned)B);
    if (D == 64) {
        const size_t sm = fa_dkdv_shape<64>::SMEM;
        CU_CHECK(c, cudaFuncSetAttribute(flash_bwd_dkdv_kernel<64>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
        flash_bwd_dkdv_kernel<64><<<gk, FA_THREADS, sm, c->stream>>>(
            dk, dv, dkp, dvp, dout, q, k, v, lse, delta, offsets, Hq, Hkv, scale, scale_log2);
        CU_LAUNCH_CHECK(c, "flash_bwd_dkdv_kernel<64>");
        flash_bwd_dq_kernel<64><<<gq, FA_THREADS, 0, c->stream>>>(
            dq, dout, q, k, v, lse, delta, offsets, Hq, Hkv, scale, scale_log2);
        CU_LAUNCH_CHECK(c, "flash_bwd_dq_kernel<64>");
    } else {
        const size_t sm = fa_dkdv_shape<128>::SMEM;
        CU_CHECK(c, cudaFuncSetAttribute(flash_bwd_dkdv_kernel<128>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
        flash_bwd_dkdv_kernel<128><<<gk, FA_THREADS, sm, c->stream>>>(
            dk, dv, dkp, dvp, dout, q, k, v, lse, delta, offsets, Hq, Hkv, scale, scale_log2);
        CU_LAUNCH_CHECK(c, "flash_bwd_dkdv_kernel<128>");
        flash_bwd_dq_kernel<128><<<gq, FA_THREADS, 0, c->stream>>>(
            dq, dout, q, k, v, lse, delta, offsets, Hq, Hkv, scale, scale_log2);
        CU_LAUNCH_CHECK(c, "flash_bwd_dq_kernel<128>");
    }
    if (group > 1) {
        const long long quads = (long long)T * Hkv * (D / 4);
        flash_group_sum_kernel<<<cuda_blocks((size_t)quads, 256), 256, 0, c->stream>>>(
            dk, dv, dkp, dvp, quads, Hkv, group, D);
        CU_LAUNCH_CHECK(c, "flash_group_sum_kernel");
    }
    return 0;
}
