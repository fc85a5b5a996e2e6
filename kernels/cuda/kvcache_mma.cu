/*
 * kernels/cuda/kvcache_mma.cu — the split-K cached attention on tensor cores
 * (attention_cached's and qkv_attention_cached's default kernel since the sixth H200 run,
 * session 17: 256-sequence workload 34.6k -> 51.6k output tok/s, batch 1 1.26 -> 1.14
 * ms/token): the splits, grid and partials of kvcache.cu's scalar split-K kernel, but the
 * group's query heads are the rows of an mma.sync tile, so the scores and p·v of a 16-key
 * tile are a few tensor-core instructions instead of 16·D·group scalar FMAs. D 64 or 128,
 * Hq/Hkv <= 16. Opt-in paired rows (RLVR_DECODE_ATTN_PAIR=1, group <= 8): two neighbouring
 * queries per block, a tile that is the same cache slots for both copied and multiplied
 * once; and (qkv_attention_cached) q read from the stacked q|k|v and rotated in registers,
 * each query's new k and v stored by its last split's block. The same bits in every form.
 * See attention_split_mma_kernel. Shared-prefix units (session 22; backend.h,
 * attention_cached's share, written by engine/model/kv_share.c): the first blocks of the
 * grid each attend all of a unit's query rows (a group's samples, up to 64 rows) to a split
 * of the prompt keys they share, so those keys are read once per unit instead of once per
 * sample; each sample's own blocks attend the rest, and the last block to finish merges
 * (mma_prefix_block).
 */
#include <string.h>

#include "kernels/cuda/flash_common.cuh"
#include "kernels/cuda/kvcache_split.cuh"

/* ---- attention over the cache: split-K on tensor cores (the default) ------------------- */

/* The group's query heads are the 16 rows of an mma.sync A operand (rows past the group are
 * zero), so S = Q·Kᵀ and O += P·V of a 16-key tile take 2·D/16 + D/16·2 tensor-core
 * instructions where the split kernel above spends 16·D·group scalar FMAs per key on the
 * CUDA cores. One block of MMA_WARPS warps per (split, KV head, query n), the same grid,
 * split count and partials as the split kernel (so the same combine kernel); inside the
 * split, warp w takes the 16-key tiles w, w + 4, ... with its own NST-stage ring of shared
 * tiles (cp.async, zero rows past the split; the warp's next NST − 1 tiles in flight while
 * it computes one), its own online softmax (flash_softmax_step,
 * log2 domain, the split's end as the mask) and its own O[16][D]; the four warps' (m, l, O)
 * are merged in warp order at the end. D = 64 or 128, group <= 16. Fixed-order reductions,
 * no atomics.
 *
 * Paired rows (PAIR; RLVR_DECODE_ATTN_PAIR=1, group <= 8): one block per (split, KV head,
 * query pair 2p, 2p + 1), the first query's heads in A rows 0..7, the second's in rows
 * 8..15, each half with its own context, splits and mask (flash_softmax_step's two row
 * limits). A tile whose 16 keys are the same cache slots for both halves — the G samples
 * of a group share their prompt's blocks, and the sampler puts them side by side — is
 * copied and multiplied once for both; otherwise each half's tile is copied, the scores of
 * each half taken from its own product, and P·V run twice, each time with the other half's
 * probabilities zero. Every row sees the same keys in the same order with the same
 * arithmetic as unpaired (what the other half adds is 0·V, V finite), so the bits are the
 * unpaired kernel's; the softmax step runs once for both halves, shared tiles are read
 * once, and half the blocks are launched. */
/* MMA_STAGES: shared K|V tile stages per warp (the default, as measured in the sixth H200
 * run; RLVR_DECODE_ATTN_STAGES=3 or 4 for A/B runs: more of a warp's tiles in flight, but
 * fewer blocks per SM — D 64: 36 / 55 / 74 KB of shared memory per block for 2 / 3 / 4
 * stages, so 5 (the register limit at 96 registers) / 4 / 3 blocks per SM; D 128: 68 /
 * 102 / 136 KB, 3 / 2 / 1; paired rows need twice the tiles per stage). The launch bounds
 * ask for 5 blocks per SM at D 64 (4 paired) and 3 at D 128: 96 / 128 / 168 registers,
 * which the forms with shared-prefix blocks (126 / 189 unbounded) and the q|k|v form at
 * D 64 (100 unbounded: 4 blocks per SM) then also keep, without spills at 2 stages (ptxas,
 * session 22; a few bytes with 3 or 4 stages or paired q|k|v at D 128). */
enum { MMA_WARPS = 4, MMA_KEYS = 16, MMA_PAD = 8 };
#define MMA_LN2 0.6931471805599453f

template <int D, int NST, bool PAIR> struct mma_shape {
    static constexpr int LD = D + MMA_PAD; /* elements per shared row (16-byte reads of 8
                                            * rows at one column hit different banks) */
    static constexpr int TILE = MMA_KEYS * LD; /* elements of one K or V tile */
    /* per stage: K, V (and the second half's K, V when paired) */
    static constexpr int STAGE = (PAIR ? 4 : 2) * TILE;
    /* per warp: NST stages; reused after the loop for the merge: per warp O [16][D],
     * m [16], l [16] f32 */
    static constexpr size_t TILES = (size_t)MMA_WARPS * NST * STAGE * 2;
    static constexpr size_t MERGE = (size_t)MMA_WARPS * (16 * D + 32) * 4;
    static constexpr size_t SMEM = TILES > MERGE ? TILES : MERGE;
};

/* Copies key positions p0 .. p0+15 (those < p1; zero rows beyond) of one KV head into the
 * warp's tiles sk, sv [16][LD] by 16-byte cp.async; kb, vb point at the head's first element
 * in slot 0 of the caches. Lane l copies chunk l % CH of rows l / CH + j·(32 / CH). When
 * the 16 positions lie in one cache block (every tile when block_size is a multiple of 16:
 * tiles start at multiples of 16, splits at multiples of SPLIT_UNIT), their slots are
 * consecutive: one table read and one division per tile, and a lane's chunks sit at fixed
 * strides from its first. Else each row's slot comes from the table. The same copies
 * either way. */
template <int D>
static __device__ __forceinline__ void mma_load_tile(bf16 *sk, bf16 *sv, const bf16 *kb,
                                                     const bf16 *vb, const int *table,
                                                     int block_size, size_t krow, int p0,
                                                     int p1, int lane) {
    constexpr int CH = D / 8, LD = D + MMA_PAD, RPS = 32 / CH, STEPS = MMA_KEYS * CH / 32;
    static_assert(32 % CH == 0 && (MMA_KEYS * CH) % 32 == 0, "a row's chunks within a warp");
    const int r0 = lane / CH, c8 = (lane % CH) * 8;
    const int blk = p0 / block_size, first = p0 - blk * block_size;
    if (first + MMA_KEYS <= block_size) { /* one block: consecutive slots */
        const size_t base = ((size_t)table[blk] * block_size + first + r0) * krow + c8;
#pragma unroll
        for (int j = 0; j < STEPS; j++) {
            const int r = r0 + j * RPS;
            const bool ok = p0 + r < p1;
            const size_t off = ok ? base + (size_t)(j * RPS) * krow : (size_t)c8;
            tc_cp16(sk + r * LD + c8, kb + off, ok ? 16 : 0);
            tc_cp16(sv + r * LD + c8, vb + off, ok ? 16 : 0);
        }
        return;
    }
#pragma unroll
    for (int j = 0; j < STEPS; j++) {
        const int r = r0 + j * RPS, p = p0 + r;
        const bool ok = p < p1;
        size_t off = 0;
        if (ok) off = ((size_t)table[p / block_size] * block_size + p % block_size) * krow;
        tc_cp16(sk + r * LD + c8, kb + off + c8, ok ? 16 : 0);
        tc_cp16(sv + r * LD + c8, vb + off + c8, ok ? 16 : 0);
    }
}

/* What one block of the tensor-core kernel works on: h[0] (and, paired, h[1]: the query
 * after it) with live[i] when that half has keys in this split; nt[i] its 16-key tiles
 * (0 when not live); tab[i] its sequence's block table. */
typedef struct {
    split_block h[2];
    bool live[2];
    int nt[2];
    const int *tab[2];
    int hk, split; /* the same for both halves */
} mma_block;

/* The block's rows (bid = (u·Hkv + hk)·S + split, u the query, or paired the query pair 2u,
 * 2u + 1; share: the shared-prefix units, unpaired only, or NULL); false when no half has
 * keys in this split. */
template <bool PAIR>
static __device__ __forceinline__ bool mma_block_of(mma_block *b, unsigned bid, const int *pos,
                                                    const int *seq, const int *block_tables,
                                                    int max_blocks, int N, int Hkv, int S,
                                                    int per_fixed, const int *share,
                                                    int extra) {
    const int unit = (int)(bid / (unsigned)S), split = (int)(bid % (unsigned)S);
    const int hk = unit % Hkv, u = unit / Hkv;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        const int n = PAIR ? 2 * u + i : u;
        b->live[i] = (PAIR || i == 0) && n < N &&
                     split_range(&b->h[i], n, hk, split, pos, S, per_fixed, share, extra);
        b->nt[i] = b->live[i] ? (b->h[i].k1 - b->h[i].k0 + MMA_KEYS - 1) / MMA_KEYS : 0;
        b->tab[i] = b->live[i] ? block_tables + (size_t)seq[n] * max_blocks : NULL;
    }
    b->hk = hk;
    b->split = split;
    return b->live[0] || b->live[1];
}

/* Tile tl of a paired block: MMA_T0 / MMA_T1 when half 0 / 1 has keys there, MMA_TSHARED
 * when both do and their 16 keys are the same cache slots (the same positions inside one
 * cache block that both tables name): one copy, one product for both. */
enum { MMA_T0 = 1, MMA_T1 = 2, MMA_TSHARED = 4 };
static __device__ __forceinline__ int mma_pair_kind(const mma_block &b, int block_size,
                                                    int tl) {
    const int kind = (tl < b.nt[0] ? MMA_T0 : 0) | (tl < b.nt[1] ? MMA_T1 : 0);
    if (kind != (MMA_T0 | MMA_T1)) return kind;
    const int p = b.h[0].k0 + tl * MMA_KEYS;
    if (p != b.h[1].k0 + tl * MMA_KEYS) return kind;
    const int blk = p / block_size;
    if (p - blk * block_size + MMA_KEYS > block_size || b.tab[0][blk] != b.tab[1][blk])
        return kind;
    return kind | MMA_TSHARED;
}

/* Issues the copies of tile tl into stage st ([K, V] for half 0 or the shared tile, then
 * [K, V] for half 1's own tile). Unpaired: half 0's tile. */
template <int D, bool PAIR>
static __device__ __forceinline__ void mma_stage_load(bf16 *st, const mma_block &b,
                                                      const bf16 *kb, const bf16 *vb,
                                                      int block_size, size_t krow, int tl,
                                                      int lane) {
    constexpr int TILE = MMA_KEYS * (D + MMA_PAD);
    const int kind = PAIR ? mma_pair_kind(b, block_size, tl) : MMA_T0;
    if (kind & MMA_T0) {
        const int end = (kind & MMA_TSHARED) ? max(b.h[0].k1, b.h[1].k1) : b.h[0].k1;
        mma_load_tile<D>(st, st + TILE, kb, vb, b.tab[0], block_size, krow,
                         b.h[0].k0 + tl * MMA_KEYS, end, lane);
    }
    if (PAIR && (kind & MMA_T1) && !(kind & MMA_TSHARED))
        mma_load_tile<D>(st + 2 * TILE, st + 3 * TILE, kb, vb, b.tab[1], block_size, krow,
                         b.h[1].k0 + tl * MMA_KEYS, b.h[1].k1, lane);
}

/* s = Q·Kᵀ of a 16-key tile Kt [16][LD] (qf: Q's A fragments; p2: tc_p2's lane offset). */
template <int D>
static __device__ __forceinline__ void mma_scores(float (*s)[4], const uint32_t (*qf)[4],
                                                  const bf16 *Kt, int p2) {
#pragma unroll
    for (int nt = 0; nt < MMA_KEYS / 8; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int kd = 0; kd < D / 16; kd++) {
        uint32_t bk[4];
        tc_ldsm(bk, Kt + kd * 16 + p2);
        tc_mma(s[0], qf[kd], bk[0], bk[1]);
        tc_mma(s[1], qf[kd], bk[2], bk[3]);
    }
}

/* o += P·V of a 16-key tile Vt [16][LD] (a: P's A fragment; p1: tc_p1's lane offset). */
template <int D>
static __device__ __forceinline__ void mma_pv(float (*o)[4], const uint32_t *a, const bf16 *Vt,
                                              int p1) {
#pragma unroll
    for (int np = 0; np < D / 16; np++) {
        uint32_t bv[4];
        tc_ldsm_t(bv, Vt + np * 16 + p1);
        tc_mma(o[2 * np], a, bv[0], bv[1]);
        tc_mma(o[2 * np + 1], a, bv[2], bv[3]);
    }
}

/* Stores the new k (rotated at its position, as qkv_move rotates it) and v of each half
 * whose last split this block runs (a negative slot: nothing). */
template <int D>
static __device__ __forceinline__ void mma_store_new_kv(const mma_block &b, const mma_qkv &qx,
                                                        const int *pos, int Hq, int Hkv,
                                                        int tid) {
    const size_t row = (size_t)(Hq + 2 * Hkv) * D;
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (!b.live[i] || b.h[i].split != b.h[i].ns - 1) continue;
        const int n = b.h[i].n, slot = qx.slots[n];
        if (slot < 0) continue;
        const bf16 *ks = qx.qkv + (size_t)n * row + (size_t)(Hq + b.hk) * D;
        const bf16 *vs = ks + (size_t)Hkv * D;
        bf16 *kd = qx.kc + ((size_t)slot * Hkv + b.hk) * D;
        bf16 *vd = qx.vc + ((size_t)slot * Hkv + b.hk) * D;
        for (int d = tid; d < D / 2; d += MMA_WARPS * 32) {
            float sn, co, x1 = bf2f(ks[d]), x2 = bf2f(ks[d + D / 2]);
            rope_angle(pos[n], qx.inv_freq[d], 1.0f, &sn, &co);
            rope_rotate(&x1, &x2, sn, co);
            kd[d] = f2bf(x1);
            kd[d + D / 2] = f2bf(x2);
        }
        for (int d = tid; d < D; d += MMA_WARPS * 32) vd[d] = vs[d];
    }
}

/* One register of two bf16 (a tc_pack'ed pair) → two floats. */
static __device__ __forceinline__ void mma_unpack(uint32_t u, float *lo, float *hi) {
    bf16 h[2];
    memcpy(h, &u, 4);
    *lo = bf2f(h[0]);
    *hi = bf2f(h[1]);
}

/* Rotates Q's A fragments at the rows' positions (p0: rows g, p1: rows g + 8) as qkv_move
 * rotates q (column c with c + D/2 at angle pos·inv_freq[c], rounded to bf16): a lane
 * holds columns 2t, 2t+1, 2t+8, 2t+9 of every 16-column chunk, so column c's partner sits
 * in the same lane D/32 chunks later. */
template <int D>
static __device__ __forceinline__ void mma_rotate_q(uint32_t (*qf)[4], int p0, int p1,
                                                    const float *inv_freq, int t) {
#pragma unroll
    for (int kd = 0; kd < D / 32; kd++) {
#pragma unroll
        for (int j = 0; j < 2; j++) { /* columns 2t, 2t+1 (j 0) and 2t+8, 2t+9 (j 1) */
            float x1[2][2], x2[2][2]; /* [row half r][element e] */
#pragma unroll
            for (int r = 0; r < 2; r++) {
                mma_unpack(qf[kd][r + 2 * j], &x1[r][0], &x1[r][1]);
                mma_unpack(qf[kd + D / 32][r + 2 * j], &x2[r][0], &x2[r][1]);
            }
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const float f = inv_freq[kd * 16 + 2 * t + 8 * j + e];
                float sn, co;
                rope_angle(p0, f, 1.0f, &sn, &co);
                rope_rotate(&x1[0][e], &x2[0][e], sn, co);
                if (p1 != p0) rope_angle(p1, f, 1.0f, &sn, &co);
                rope_rotate(&x1[1][e], &x2[1][e], sn, co);
            }
#pragma unroll
            for (int r = 0; r < 2; r++) {
                qf[kd][r + 2 * j] = tc_pack(x1[r][0], x1[r][1]);
                qf[kd + D / 32][r + 2 * j] = tc_pack(x2[r][0], x2[r][1]);
            }
        }
    }
}


/* Q's A fragments of one warp's 16 rows, straight from global memory: qrow[r] is row g
 * (r 0) or g + 8 (r 1), zero where !qok[r]; a0 (g, 2t..), a1 (g+8, 2t..), a2 (g, 2t+8..),
 * a3 (g+8, 2t+8..) of each 16-column chunk kd. */
template <int D>
static __device__ __forceinline__ void mma_q_frags(uint32_t (*qf)[4], const bf16 *const *qrow,
                                                   const bool *qok, int t) {
#pragma unroll
    for (int kd = 0; kd < D / 16; kd++) {
#pragma unroll
        for (int r = 0; r < 2; r++) {
            const bf16 *src = qrow[r] + kd * 16 + 2 * t;
            qf[kd][r] = qok[r] ? *reinterpret_cast<const uint32_t *>(src) : 0u;
            qf[kd][r + 2] = qok[r] ? *reinterpret_cast<const uint32_t *>(src + 8) : 0u;
        }
    }
}

/* ---- shared-prefix blocks ---------------------------------------------------------------- */

/* One prefix block of a shared-prefix unit (SHARE; backend.h, attention_cached's share):
 * bid = (u·Hkv + hk)·sh.sp + i, unit u = queries a .. a + c − 1 whose first P keys lie in
 * the same cache blocks (a group's samples over their prompt). The block attends the
 * c·group query rows (member-major: row r is head r % group of query a + r / group; at
 * most 64) to prefix split i of [0, P) (split_plan_of: the same split for every member)
 * and writes each row's partial (m, l, O) at index ns + i of that query's partials, so the
 * prompt's keys are read once for the unit instead of once per sample. Warp w takes rows
 * 16w .. 16w + 15 against every key of the split: the four warps copy the split's 16-key
 * tiles as the own-split blocks do (tile 4j + w by warp w into its ring), and a barrier
 * makes each chunk of four tiles visible to every warp. Then each member's finished-split
 * counter is counted (as split_finish: the last of its ns + np blocks merges). Keys in the same
 * order and the same arithmetic per row as an own split (flash_softmax_step over 16-key
 * tiles), a fixed-order merge: deterministic. */
template <int D, int NST, bool QKV>
static __device__ __forceinline__ void mma_prefix_block(
    unsigned bid, bf16 *out, float *part_o, float *part_ml, unsigned *counters, const bf16 *q,
    const bf16 *kc, const bf16 *vc, const int *block_tables, int max_blocks, int block_size,
    const int *seq, const int *pos, int N, int Hq, int Hkv, int S, int per_fixed,
    float scale_log2, const mma_qkv &qx, const mma_share &sh, bf16 *smem) {
    typedef mma_shape<D, NST, false> SH;
    constexpr int LD = SH::LD;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int i = (int)(bid % (unsigned)sh.sp), uh = (int)(bid / (unsigned)sh.sp);
    const int hk = uh % Hkv, u = uh / Hkv;
    if (u >= N) return;
    const int c = sh.share[2 * N + u], a = sh.share[N + u], group = Hq / Hkv, rows = c * group;
    if (c < 2 || rows > MMA_WARPS * 16) return; /* no unit (outside the contract: none) */
    const split_plan pa = split_plan_of(pos[a] + 1, sh.share[a], S, per_fixed, sh.extra);
    if (pa.P == 0 || i >= pa.np) return;
    const int k0 = i * pa.per_p, k1 = min(pa.P, k0 + pa.per_p);
    const int ntiles = (k1 - k0 + MMA_KEYS - 1) / MMA_KEYS;
    const int *tab = block_tables + (size_t)seq[a] * max_blocks; /* the unit's blocks */
    const size_t krow = (size_t)Hkv * D;
    const bf16 *kb = kc + (size_t)hk * D, *vb = vc + (size_t)hk * D;

    /* the warp's rows: r 0 is row 16·warp + g, r 1 row 16·warp + g + 8 */
    const bf16 *qrow[2];
    bool qok[2];
    int qpos[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = 16 * warp + g + 8 * r, j = row / group, head = row - j * group;
        qok[r] = row < rows;
        const int n = a + (qok[r] ? j : 0);
        qpos[r] = pos[n];
        const size_t at = QKV ? (size_t)n * (Hq + 2 * Hkv) * D + ((size_t)hk * group + head) * D
                              : ((size_t)n * Hq + (size_t)hk * group + head) * D;
        qrow[r] = qok[r] ? (QKV ? qx.qkv : q) + at : (QKV ? qx.qkv : q);
    }
    uint32_t qf[D / 16][4];
    mma_q_frags<D>(qf, qrow, qok, t);
    if (QKV) mma_rotate_q<D>(qf, qpos[0], qpos[1], qx.inv_freq, t);

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    bf16 *wt = smem + (size_t)warp * NST * SH::STAGE; /* this warp's ring */
#pragma unroll
    for (int s0 = 0; s0 < NST - 1; s0++) {
        const int tl = warp + s0 * MMA_WARPS;
        if (tl < ntiles)
            mma_load_tile<D>(wt + s0 * SH::STAGE, wt + s0 * SH::STAGE + SH::TILE, kb, vb, tab,
                             block_size, krow, k0 + tl * MMA_KEYS, k1, lane);
        tc_commit();
    }
    /* each member's own split count once (-1: the prefix reaches its query, so its own
     * splits cover its whole context and this block leaves it alone); visible after the
     * chunk loop's first barrier (ntiles >= 1) */
    __shared__ int own_ns[MMA_WARPS * 16], ntot[MMA_WARPS * 16]; /* members: c <= 64 */
    if (tid < c) {
        const split_plan pn = split_plan_of(pos[a + tid] + 1, pa.P, S, per_fixed, sh.extra);
        own_ns[tid] = pn.P == pa.P ? pn.ns : -1;
        ntot[tid] = pn.ns + pn.np;
    }
    const bool rows_here = 16 * warp < rows;
    const int nchunks = (ntiles + MMA_WARPS - 1) / MMA_WARPS;
    for (int ch = 0, st = 0; ch < nchunks; ch++, st = st + 1 == NST ? 0 : st + 1) {
        __syncthreads(); /* every warp is done with the stage refilled next (ch − 1's) */
        const int ahead = warp + (ch + NST - 1) * MMA_WARPS;
        if (ahead < ntiles) {
            bf16 *dst = wt + (st == 0 ? NST - 1 : st - 1) * SH::STAGE;
            mma_load_tile<D>(dst, dst + SH::TILE, kb, vb, tab, block_size, krow,
                             k0 + ahead * MMA_KEYS, k1, lane);
        }
        tc_commit();
        tc_wait<NST - 1>(); /* this warp's tile of chunk ch has landed */
        __syncthreads();     /* and every other warp's */
        if (!rows_here) continue;
        for (int w = 0; w < MMA_WARPS; w++) {
            const int tl = ch * MMA_WARPS + w;
            if (tl >= ntiles) break;
            const bf16 *K = smem + ((size_t)w * NST + st) * SH::STAGE, *V = K + SH::TILE;
            float sc[MMA_KEYS / 8][4];
            mma_scores<D>(sc, qf, K, p2);
            flash_softmax_step<MMA_KEYS, D>(sc, m, l, o, k0 + tl * MMA_KEYS, k1 - 1, k1 - 1, t,
                                            scale_log2);
            uint32_t pa4[4];
            tc_acc_to_a(pa4, sc, 0);
            mma_pv<D>(o, pa4, V, p1);
        }
    }
    /* each row's partial at index ns + i of its query (ns: that query's own splits) */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        if (!qok[r]) continue;
        const int row = 16 * warp + g + 8 * r, j = row / group, head = row - j * group;
        const int n = a + j;
        if (own_ns[j] < 0) continue; /* the prefix reaches this member's query: none for it */
        const size_t idx = ((size_t)n * Hq + (size_t)hk * group + head) * S + own_ns[j] + i;
        float *dst = part_o + idx * D + 2 * t;
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++)
            *reinterpret_cast<float2 *>(dst + nd * 8) =
                make_float2(o[nd][2 * r], o[nd][2 * r + 1]);
        if (t == 0) {
            part_ml[2 * idx] = m[r] * MMA_LN2;
            part_ml[2 * idx + 1] = l[r];
        }
    }
    if (!counters) return; /* the combine kernel merges */
    /* split_finish for every member at once: thread j counts this block for member j (one
     * round of atomics, not c in a row), then the members whose last block this is are
     * merged, a warp per (member, head) row */
    __shared__ bool last[MMA_WARPS * 16];
    __threadfence(); /* this block's partials visible before its counts */
    __syncthreads();
    if (tid < c) {
        bool is_last = false;
        if (own_ns[tid] >= 0) {
            unsigned *ctr = counters + (size_t)(a + tid) * Hkv + hk;
            is_last = atomicAdd(ctr, 1u) == (unsigned)ntot[tid] - 1u;
            if (is_last) *ctr = 0u; /* for the next launch or graph replay */
        }
        last[tid] = is_last;
    }
    __syncthreads();
    __threadfence(); /* the other blocks' partials, read below through L2 */
    for (int row = warp; row < rows; row += MMA_WARPS) {
        const int j = row / group, head = row - j * group, n = a + j;
        if (!last[j]) continue; /* (the same for the warp) */
        const size_t item = (size_t)n * Hq + (size_t)hk * group + head;
        split_merge_warp(out + item * D, part_o + item * S * D, part_ml + item * S * 2, ntot[j],
                         D, lane);
    }
}

template <int D, int NST, bool PAIR, bool QKV, bool SHARE>
static __global__ void __launch_bounds__(MMA_WARPS * 32, D == 128 ? 3 : PAIR ? 4 : 5)
    attention_split_mma_kernel(bf16 *out, float *part_o, float *part_ml, unsigned *counters,
                               const bf16 *q, const bf16 *kc, const bf16 *vc,
                               const int *block_tables, int max_blocks, int block_size,
                               const int *seq, const int *pos, int N, int Hq, int Hkv, int S,
                               int per_fixed, float scale_log2, mma_qkv qx, mma_share sh) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    typedef mma_shape<D, NST, PAIR> SH;
    static_assert(NST >= 2, "stages: at least two");
    static_assert(!(PAIR && SHARE), "shared prefixes: unpaired rows only");
    constexpr int LD = SH::LD;
    extern __shared__ __align__(128) unsigned char mma_smem[];
    if (SHARE && blockIdx.x < (unsigned)sh.blocks) { /* a shared-prefix unit's block */
        mma_prefix_block<D, NST, QKV>(blockIdx.x, out, part_o, part_ml, counters, q, kc, vc,
                                      block_tables, max_blocks, block_size, seq, pos, N, Hq,
                                      Hkv, S, per_fixed, scale_log2, qx, sh,
                                      reinterpret_cast<bf16 *>(mma_smem));
        return;
    }
    const unsigned bid = SHARE ? blockIdx.x - (unsigned)sh.blocks : blockIdx.x;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    mma_block b;
    if (!mma_block_of<PAIR>(&b, bid, pos, seq, block_tables, max_blocks, N, Hkv, S, per_fixed,
                            SHARE ? sh.share : NULL, SHARE ? sh.extra : 0))
        return; /* the same for the block */
    const int hk = b.hk;
    const int group = Hq / Hkv;
    if (QKV) { /* this step's k and v where this block runs a query's last split */
        mma_store_new_kv<D>(b, qx, pos, Hq, Hkv, tid);
        __syncthreads(); /* stored before any warp copies its tiles */
    }
    const int ntiles = max(b.nt[0], b.nt[1]);

    const size_t krow = (size_t)Hkv * D;
    const bf16 *kb = kc + (size_t)hk * D, *vb = vc + (size_t)hk * D;
    /* the warp's ring of stages */
    bf16 *wt = reinterpret_cast<bf16 *>(mma_smem) + (size_t)warp * NST * SH::STAGE;

    /* Q's A fragments (rows g and g + 8: query heads hk·group + row of query h[0], or paired
     * head hk·group + g of h[0] and of h[1]; zero past the group), straight from global
     * memory: a0 (g, 2t..), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..) of each
     * 16-column chunk kd */
    const bf16 *qrow[2];
    bool qok[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int half = PAIR ? r : 0, head = PAIR ? g : g + 8 * r;
        qok[r] = b.live[half] && head < group;
        const int n = half ? b.h[1].n : b.h[0].n;
        const size_t at = QKV ? (size_t)n * (Hq + 2 * Hkv) * D + ((size_t)hk * group + head) * D
                              : ((size_t)n * Hq + (size_t)hk * group + head) * D;
        qrow[r] = qok[r] ? (QKV ? qx.qkv : q) + at : q;
    }
    uint32_t qf[D / 16][4];
    mma_q_frags<D>(qf, qrow, qok, t);
    if (QKV) /* zero rows stay zero: a rotation of 0 is 0 */
        mma_rotate_q<D>(qf, pos[b.h[0].n], PAIR && b.live[1] ? pos[b.h[1].n] : pos[b.h[0].n],
                        qx.inv_freq, t);

    float o[D / 8][4];
#pragma unroll
    for (int nd = 0; nd < D / 8; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    const int p1 = tc_p1<LD>(lane), p2 = tc_p2<LD>(lane);
    /* the warp's tiles warp + MMA_WARPS·i go to stage i % NST; one copy group per tile,
     * committed even when empty (past the split), so group i is always tile i */
#pragma unroll
    for (int i = 0; i < NST - 1; i++) {
        const int tl = warp + i * MMA_WARPS;
        if (tl < ntiles)
            mma_stage_load<D, PAIR>(wt + i * SH::STAGE, b, kb, vb, block_size, krow, tl, lane);
        tc_commit();
    }
    for (int tl = warp, st = 0; tl < ntiles; tl += MMA_WARPS, st = st + 1 == NST ? 0 : st + 1) {
        const int ahead = tl + (NST - 1) * MMA_WARPS; /* into the stage computed last */
        if (ahead < ntiles)
            mma_stage_load<D, PAIR>(wt + (st == 0 ? NST - 1 : st - 1) * SH::STAGE, b, kb, vb,
                                    block_size, krow, ahead, lane);
        tc_commit();
        const int kind = PAIR ? mma_pair_kind(b, block_size, tl) : MMA_T0;
        tc_wait<NST - 1>(); /* this tile's group has landed */
        __syncwarp(); /* every lane's copies are visible to the warp */
        const bf16 *K0 = wt + st * SH::STAGE, *V0 = K0 + SH::TILE;
        const bf16 *K1 = V0 + SH::TILE, *V1 = K1 + SH::TILE; /* paired only */
        /* both halves with their own tiles: two products, two P·V */
        const bool two = PAIR && kind == (MMA_T0 | MMA_T1);
        float s[MMA_KEYS / 8][4];
        mma_scores<D>(s, qf, (kind & MMA_T0) ? K0 : K1, p2);
        if (two) { /* half 1's rows (c2, c3) from its own keys */
            float s1[MMA_KEYS / 8][4];
            mma_scores<D>(s1, qf, K1, p2);
#pragma unroll
            for (int nt = 0; nt < MMA_KEYS / 8; nt++) {
                s[nt][2] = s1[nt][2];
                s[nt][3] = s1[nt][3];
            }
        }
        if (PAIR) { /* each half's keys past its split end masked (all of them: no keys) */
            const int e0 = (kind & MMA_T0) ? b.h[0].k1 - 1 - (b.h[0].k0 + tl * MMA_KEYS) : -1;
            const int e1 = (kind & MMA_T1) ? b.h[1].k1 - 1 - (b.h[1].k0 + tl * MMA_KEYS) : -1;
            flash_softmax_step<MMA_KEYS, D>(s, m, l, o, 0, e0, e1, t, scale_log2);
        } else { /* keys >= k1 masked: the causal mask of a query row at k1 − 1 */
            const int k1 = b.h[0].k1;
            flash_softmax_step<MMA_KEYS, D>(s, m, l, o, b.h[0].k0 + tl * MMA_KEYS, k1 - 1,
                                            k1 - 1, t, scale_log2);
        }
        uint32_t a[4];
        tc_acc_to_a(a, s, 0);
        if (two) { /* rows g (half 0) against V0, rows g + 8 (half 1) against V1 */
            const uint32_t a0[4] = {a[0], 0u, a[2], 0u}, a1[4] = {0u, a[1], 0u, a[3]};
            mma_pv<D>(o, a0, V0, p1);
            mma_pv<D>(o, a1, V1, p1);
        } else {
            mma_pv<D>(o, a, (kind & MMA_T0) ? V0 : V1, p1);
        }
        __syncwarp(); /* stage st is read before the next iteration refills it */
    }

    /* each warp's (m, l, O) into shared memory (the tiles are free after the barrier) */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
    __syncthreads();
    float *mo = reinterpret_cast<float *>(mma_smem);           /* [warp][16][D] */
    float *mm = mo + (size_t)MMA_WARPS * 16 * D, *ml = mm + MMA_WARPS * 16; /* [warp][16] */
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = g + 8 * r;
        float *dst = mo + ((size_t)warp * 16 + row) * D + 2 * t;
#pragma unroll
        for (int nd = 0; nd < D / 8; nd++)
            *reinterpret_cast<float2 *>(dst + nd * 8) = make_float2(o[nd][2 * r], o[nd][2 * r + 1]);
        if (t == 0) {
            mm[warp * 16 + row] = m[r];
            ml[warp * 16 + row] = l[r];
        }
    }
    __syncthreads();
    /* rows: the group's heads of h[0] (unpaired), or rows 0..7 of h[0] and 8..15 of h[1] */
    for (int e = tid; e < (PAIR ? 16 : group) * D; e += MMA_WARPS * 32) {
        const int row = e / D, d = e - row * D;
        const int half = PAIR ? row >> 3 : 0, head = PAIR ? row & 7 : row;
        if (PAIR && (head >= group || !(half ? b.live[1] : b.live[0]))) continue;
        /* the half's query and partial count (selects, not an indexed load) */
        const int n = half ? b.h[1].n : b.h[0].n, ntot = half ? b.h[1].ntot : b.h[0].ntot;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < MMA_WARPS; w++) M = fmaxf(M, mm[w * 16 + row]); /* warp 0: finite */
        float O = 0.0f, L = 0.0f;
#pragma unroll
        for (int w = 0; w < MMA_WARPS; w++) {
            const float mw = mm[w * 16 + row];
            const float f = mw == -INFINITY ? 0.0f : exp2f(mw - M); /* a warp with no keys */
            O += f * mo[((size_t)w * 16 + row) * D + d];
            L += f * ml[w * 16 + row];
        }
        const size_t nh_q = (size_t)n * Hq + (size_t)hk * group + head; /* row of out */
        if (ntot == 1) {
            out[nh_q * D + d] = f2bf(O / L);
        } else { /* the combine kernel's units: natural-log max, unnormalised O */
            const size_t idx = nh_q * S + b.split;
            part_o[idx * D + d] = O;
            if (d == 0) {
                part_ml[2 * idx] = M * MMA_LN2;
                part_ml[2 * idx + 1] = L;
            }
        }
    }
    if (!counters) return;
#pragma unroll
    for (int i = 0; i < (PAIR ? 2 : 1); i++) /* the same for the whole block */
        if (b.live[i] && b.h[i].ntot > 1)
            split_finish(counters + (size_t)b.h[i].n * Hkv + hk, out, part_o, part_ml,
                         b.h[i].n, hk, group, Hq, D, S, b.h[i].ntot);
}

/* ---- launch ------------------------------------------------------------------------------ */

template <int D, int NST, bool PAIR, bool QKV, bool SHARE>
static void mma_launch_stages(cuda_ctx *c, const mma_args &a) {
    const size_t sm = mma_shape<D, NST, PAIR>::SMEM;
    if (sm > 48 * 1024)
        CU_CHECK(c, cudaFuncSetAttribute(attention_split_mma_kernel<D, NST, PAIR, QKV, SHARE>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
    static const char *const names[3][2] = {
        {"attention_split_mma_kernel", "attention_split_mma_kernel (qkv)"},
        {"attention_split_mma_kernel (pair)", "attention_split_mma_kernel (pair, qkv)"},
        {"attention_split_mma_kernel (share)", "attention_split_mma_kernel (share, qkv)"}};
    cuda_launch_dep(c, names[SHARE ? 2 : PAIR ? 1 : 0][QKV],
                    attention_split_mma_kernel<D, NST, PAIR, QKV, SHARE>, a.grid,
                    MMA_WARPS * 32, sm, a.out, a.part_o, a.part_ml, a.counters, a.q, a.kc, a.vc,
                    a.block_tables, a.max_blocks, a.block_size, a.seq, a.pos, a.N, a.Hq, a.Hkv,
                    a.S, a.per_fixed, a.scale_log2, a.qx, a.sh);
}

/* The tensor-core kernel with nst stages per warp (2, 3 or 4), or 2 where the device cannot
 * give a block the shared memory of nst; paired rows, or shared-prefix blocks first, or
 * neither; q given or from qkv. */
template <int D, bool PAIR, bool QKV, bool SHARE>
static void mma_launch(cuda_ctx *c, int nst, const mma_args &a) {
    int optin = 0;
    CU_CHECK(c, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                       c->device));
    if ((nst == 4 && mma_shape<D, 4, PAIR>::SMEM > (size_t)optin) ||
        (nst == 3 && mma_shape<D, 3, PAIR>::SMEM > (size_t)optin))
        nst = 2;
    if (nst == 4) mma_launch_stages<D, 4, PAIR, QKV, SHARE>(c, a);
    else if (nst == 3) mma_launch_stages<D, 3, PAIR, QKV, SHARE>(c, a);
    else mma_launch_stages<D, 2, PAIR, QKV, SHARE>(c, a);
}

template <int D> static void mma_launch_of(cuda_ctx *c, int nst, bool pair, const mma_args &a) {
    const bool qkv = a.qx.qkv != NULL, share = a.sh.blocks > 0 && !pair;
    if (pair && qkv) mma_launch<D, true, true, false>(c, nst, a);
    else if (pair) mma_launch<D, true, false, false>(c, nst, a);
    else if (share && qkv) mma_launch<D, false, true, true>(c, nst, a);
    else if (share) mma_launch<D, false, false, true>(c, nst, a);
    else if (qkv) mma_launch<D, false, true, false>(c, nst, a);
    else mma_launch<D, false, false, false>(c, nst, a);
}

void cuda_attention_mma_launch(cuda_ctx *c, int D, int nst, bool pair, const mma_args &a) {
    if (D == 64) mma_launch_of<64>(c, nst, pair, a);
    else mma_launch_of<128>(c, nst, pair, a);
}
