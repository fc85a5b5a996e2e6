/*
 * tests/emu/test_emu_hazards.cpp — the CPU emulation of CUDA (tests/emu/cuda_emu.h) must
 * expose the bugs a GPU shows only sometimes, so that the emulated kernel tests can fail
 * on them in CI. Small kernels with a known hazard, each beside its corrected form:
 *
 *   barrier   threads write shared memory and read a neighbour's entry: without the
 *             __syncthreads between, the two thread orders (emu::threads_reversed,
 *             RLVR_EMU_THREADS) give different results; with it, the same correct one;
 *   warp      the same between the lanes of one warp, with and without __syncwarp;
 *   cp.async  two committed groups of 16-byte copies (tensor_core.cuh's tc_cp16, with
 *             zero fill): after tc_wait<0> both tiles hold the source, after tc_wait<1>
 *             only the older one does, with no wait neither does (the shared memory keeps
 *             its 0xFF poison), and a copy of fewer than 16 bytes zero-fills the rest;
 *   refill    threads read a neighbour's chunk of a tile, then refill their own chunk by
 *             cp.async: without a barrier between, a copy landing early
 *             (emu::cp_async_early, RLVR_EMU_CPASYNC=early) changes what a neighbour
 *             reads; with the barrier it does not;
 *   last block  a "last block" chosen by block index instead of a counter: the two block
 *             orders (emu::blocks_reversed, RLVR_EMU_ORDER) disagree; with the counter
 *             (cuda_internal.cuh's cuda_block_is_last) both orders agree;
 *   stops     what the hardware faults on stops the emulated program too (each in a
 *             child process): the CUDA backend's prefetch_l2 with a range one byte past
 *             its allocation (emu::check_device_range), a 16-byte cp.async to an address
 *             8 bytes off alignment, a kernel launched as a programmatic dependent
 *             (cuda_launch_dep, RLVR_DECODE_PDL) that does not begin with pdl_begin;
 *             their correct forms run.
 *
 * tests/gpu/test_cuda_ops.c runs every CUDA op in both orders and compares the bits of
 * every output (tests/emu/orders.sh); this test shows that comparison can fail.
 * Usage: test_emu_hazards. Exit 0 when every check holds.
 */
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/backend.h"

#include "kernels/cuda/tensor_core.cuh"

namespace {

int g_fail = 0, g_checks = 0;

void check(bool ok, const char *what) {
    g_checks++;
    if (!ok) g_fail++;
    printf("%-72s %s\n", what, ok ? "PASS" : "FAIL");
}

/* ---- barrier: out[t] = buf[(t + 1) % n] after every thread wrote buf[t] = 3t + 1 ---- */

template <bool SYNC> void neighbour_kernel(int *out) {
    int *buf = reinterpret_cast<int *>(emu::dyn_smem()); /* poisoned: -1 */
    const int t = (int)threadIdx.x, n = (int)blockDim.x;
    buf[t] = 3 * t + 1;
    if (SYNC) __syncthreads();
    out[t] = buf[(t + 1) % n];
}

/* ---- warp: the same within one warp of a 64-thread block ---- */

template <bool SYNC> void lane_kernel(int *out) {
    int *buf = reinterpret_cast<int *>(emu::dyn_smem());
    const int t = (int)threadIdx.x, w = t & ~31, lane = t & 31;
    buf[t] = 5 * t + 2;
    if (SYNC) __syncwarp();
    out[t] = buf[w + ((lane + 1) & 31)];
}

template <class K> std::vector<int> run_threads(K kernel, int n, bool reversed) {
    std::vector<int> out(n, 0);
    emu::threads_reversed = reversed;
    emu::launch_k(emu::cfg(dim3(1), dim3((unsigned)n), (size_t)n * sizeof(int)), "hazard",
                  kernel, out.data());
    emu::threads_reversed = false;
    return out;
}

void barrier_checks() {
    const int n = 64;
    std::vector<int> want(n);
    for (int t = 0; t < n; t++) want[t] = 3 * ((t + 1) % n) + 1;
    const auto a = run_threads(neighbour_kernel<false>, n, false);
    const auto b = run_threads(neighbour_kernel<false>, n, true);
    check(a != b, "barrier: a missing __syncthreads gives two results in the two orders");
    check(a != want || b != want, "barrier: and one of them is wrong");
    const auto c = run_threads(neighbour_kernel<true>, n, false);
    const auto d = run_threads(neighbour_kernel<true>, n, true);
    check(c == want && d == want, "barrier: with __syncthreads both orders are right");

    std::vector<int> wl(n);
    for (int t = 0; t < n; t++) wl[t] = 5 * ((t & ~31) + (((t & 31) + 1) & 31)) + 2;
    const auto e = run_threads(lane_kernel<false>, n, false);
    const auto f = run_threads(lane_kernel<false>, n, true);
    check(e != f, "warp: a missing __syncwarp gives two results in the two orders");
    const auto g = run_threads(lane_kernel<true>, n, false);
    const auto h = run_threads(lane_kernel<true>, n, true);
    check(g == wl && h == wl, "warp: with __syncwarp both orders are right");
}

/* ---- cp.async: two groups of one 16-byte chunk per thread, then WAIT pending ---- */

enum { CP_THREADS = 32, CP_ELEMS = CP_THREADS * 8 };

/* WAIT: -1 no wait, else tc_wait<WAIT>. tile0 gets src0 (chunk t: `bytes0` bytes of 16),
 * tile1 src1; out = tile0 | tile1 after the barrier. */
template <int WAIT>
void cp_kernel(bf16 *out, const bf16 *src0, const bf16 *src1, int bytes0) {
    bf16 *tile = reinterpret_cast<bf16 *>(emu::dyn_smem());
    const int t = (int)threadIdx.x;
    tc_cp16(tile + t * 8, src0 + t * 8, bytes0);
    tc_commit();
    tc_cp16(tile + CP_ELEMS + t * 8, src1 + t * 8, 16);
    tc_commit();
    if (WAIT == 0) tc_wait<0>();
    if (WAIT == 1) tc_wait<1>();
    __syncthreads();
    for (int i = t; i < 2 * CP_ELEMS; i += CP_THREADS) out[i] = tile[i];
}

std::vector<uint16_t> run_cp(void (*k)(bf16 *, const bf16 *, const bf16 *, int),
                             const std::vector<bf16> &s0, const std::vector<bf16> &s1,
                             int bytes0) {
    std::vector<bf16> out(2 * CP_ELEMS);
    emu::launch_k(emu::cfg(dim3(1), dim3(CP_THREADS), 2 * CP_ELEMS * sizeof(bf16) + 16),
                  "cp_kernel", k, out.data(), s0.data(), s1.data(), bytes0);
    std::vector<uint16_t> bits(out.size());
    memcpy(bits.data(), out.data(), out.size() * sizeof(uint16_t));
    return bits;
}

void cp_async_checks() {
    std::vector<bf16> s0(CP_ELEMS), s1(CP_ELEMS);
    std::vector<uint16_t> b0(CP_ELEMS), b1(CP_ELEMS);
    for (int i = 0; i < CP_ELEMS; i++) {
        s0[i] = __float2bfloat16_rn((float)(i % 97) - 40.0f);
        s1[i] = __float2bfloat16_rn(0.25f * (float)(i % 31) + 1.0f);
        memcpy(&b0[i], &s0[i], 2);
        memcpy(&b1[i], &s1[i], 2);
    }
    auto tile_is = [](const std::vector<uint16_t> &o, int which, const std::vector<uint16_t> *src,
                      int bytes) {
        for (int i = 0; i < CP_ELEMS; i++) {
            const int inchunk = (i % 8) * 2 < bytes;
            const uint16_t want = !src ? 0xFFFF : inchunk ? (*src)[i] : 0;
            if (o[(size_t)which * CP_ELEMS + i] != want) return false;
        }
        return true;
    };
    const auto all = run_cp(cp_kernel<0>, s0, s1, 16);
    check(tile_is(all, 0, &b0, 16) && tile_is(all, 1, &b1, 16),
          "cp.async: after wait_group 0 both groups have landed");
    const auto one = run_cp(cp_kernel<1>, s0, s1, 16);
    check(tile_is(one, 0, &b0, 16) && tile_is(one, 1, nullptr, 16),
          "cp.async: after wait_group 1 only the older group has landed");
    const auto none = run_cp(cp_kernel<-1>, s0, s1, 16);
    check(tile_is(none, 0, nullptr, 16) && tile_is(none, 1, nullptr, 16),
          "cp.async: with no wait the tiles still hold their old bytes");
    const auto part = run_cp(cp_kernel<0>, s0, s1, 6);
    const auto zero = run_cp(cp_kernel<0>, s0, s1, 0);
    check(tile_is(part, 0, &b0, 6) && tile_is(zero, 0, &b0, 0),
          "cp.async: a copy of 6 or 0 bytes zero-fills the rest of its 16");
}

/* ---- refill: read a neighbour's chunk of the tile, then refill one's own ---- */

/* tile chunk t holds 8 copies of old[t]; thread t reads chunk (t + 1) % 32, then (after a
 * barrier if SYNC) refills chunk t from src by cp.async; out[t] = what it read. */
template <bool SYNC> void refill_kernel(bf16 *out, const bf16 *old, const bf16 *src) {
    bf16 *tile = reinterpret_cast<bf16 *>(emu::dyn_smem());
    const int t = (int)threadIdx.x;
    for (int e = 0; e < 8; e++) tile[t * 8 + e] = old[t];
    __syncthreads();
    const bf16 x = tile[((t + 1) % CP_THREADS) * 8];
    if (SYNC) __syncthreads();
    tc_cp16(tile + t * 8, src + t * 8, 16);
    tc_commit();
    tc_wait<0>();
    __syncthreads();
    out[t] = x;
}

bool refill_reads_old(void (*k)(bf16 *, const bf16 *, const bf16 *), bool early) {
    std::vector<bf16> out(CP_THREADS), old(CP_THREADS), src(CP_ELEMS);
    for (int i = 0; i < CP_THREADS; i++) old[i] = __float2bfloat16_rn((float)i);
    for (int i = 0; i < CP_ELEMS; i++) src[i] = __float2bfloat16_rn(-1.0f - (float)i);
    emu::cp_async_early = early;
    emu::launch_k(emu::cfg(dim3(1), dim3(CP_THREADS), CP_ELEMS * sizeof(bf16) + 16),
                  "refill_kernel", k, out.data(), old.data(), src.data());
    emu::cp_async_early = false;
    for (int t = 0; t < CP_THREADS; t++)
        if (__bfloat162float(out[t]) != (float)((t + 1) % CP_THREADS)) return false;
    return true;
}

void refill_checks() {
    check(!refill_reads_old(refill_kernel<false>, true),
          "refill: early copies expose a refill with no barrier before it");
    check(refill_reads_old(refill_kernel<true>, true) && refill_reads_old(refill_kernel<true>, false),
          "refill: with the barrier every thread reads the old chunk");
}

/* ---- last block: which block merges the others' partials ---- */

/* Each block writes part[b] = b + 1; the merging block sums them into *out. BY_INDEX:
 * the block with the highest index merges (wrong: it need not run last); else the one
 * the counter finds last. */
template <bool BY_INDEX> void merge_kernel(int *out, int *part, unsigned *counter) {
    const int b = (int)blockIdx.x, n = (int)gridDim.x;
    if (threadIdx.x == 0) part[b] = b + 1;
    const bool last = BY_INDEX ? b == n - 1 : cuda_block_is_last(counter, (unsigned)n);
    if (last && threadIdx.x == 0) {
        int s = 0;
        for (int i = 0; i < n; i++) s += part[i];
        *out = s;
    }
}

int run_merge(void (*k)(int *, int *, unsigned *), bool reversed) {
    const int n = 7;
    std::vector<int> part(n, -1000); /* unwritten partials: -1000 each */
    int out = 0;
    unsigned counter = 0;
    emu::blocks_reversed = reversed;
    emu::launch_k(emu::cfg(dim3(n), dim3(32)), "merge_kernel", k, &out, part.data(), &counter);
    emu::blocks_reversed = false;
    return out;
}

void last_block_checks() {
    const int want = 7 * 8 / 2;
    const int a = run_merge(merge_kernel<true>, false), b = run_merge(merge_kernel<true>, true);
    check(a != b, "last block: merging in the highest-index block differs by block order");
    const int c = run_merge(merge_kernel<false>, false), d = run_merge(merge_kernel<false>, true);
    check(c == want && d == want, "last block: merging in the counter's last block is right");
}

/* ---- stops: what the emulation must refuse loudly (run in a child process) ---- */

/* Whether fn, run in a child with its stderr closed, ends in abort(). */
bool stops(void (*fn)(size_t, size_t), size_t a, size_t b) {
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        fclose(stderr); /* the expected message */
        fn(a, b);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

/* prefetch_l2 of `bytes` bytes from `offset` into a 4096-byte allocation. */
void prefetch_in_4096(size_t offset, size_t bytes) {
    char err[256];
    rlvr_backend *be = rlvr_cuda_backend_create(0, err, sizeof err);
    if (!be) _exit(3);
    char *d = (char *)be->alloc(be, 4096);
    const void *ptr[1] = {d + offset};
    const size_t len[1] = {bytes};
    be->prefetch_l2(be, ptr, len, 1);
}

/* A 16-byte cp.async whose destination is `shift` bytes past a 16-byte boundary. */
void cp_shifted_kernel(const bf16 *src, int shift) {
    unsigned char *sm = emu::dyn_smem();
    tc_cp16(reinterpret_cast<bf16 *>(sm + shift), src, 16);
    tc_commit();
    tc_wait<0>();
}
void cp_shifted(size_t shift, size_t) {
    static bf16 src[8];
    emu::launch_k(emu::cfg(dim3(1), dim3(32), 64), "cp_shifted_kernel", cp_shifted_kernel,
                  (const bf16 *)src, (int)shift);
}

/* A kernel launched as a programmatic dependent (cuda_launch_dep with PDL on), with or
 * without the pdl_begin every such kernel must start with. */
template <bool BEGIN> void dep_kernel(int *out) {
    if (BEGIN) pdl_begin();
    out[threadIdx.x] = 1;
}
void dep_launch(size_t begin, size_t) {
    static int out[32];
    cuda_ctx c;
    memset(&c, 0, sizeof c);
    c.pdl = 2; /* on */
    cuda_launch_dep(&c, "dep_kernel", begin ? dep_kernel<true> : dep_kernel<false>, 1, 32, 0,
                    out);
}

void stop_checks() {
    check(!stops(prefetch_in_4096, 100, 3996), "range: a prefetch inside its allocation runs");
    check(stops(prefetch_in_4096, 100, 3997), "range: one byte past its allocation stops it");
    check(!stops(cp_shifted, 16, 0), "align: a 16-byte cp.async to a 16-byte boundary runs");
    check(stops(cp_shifted, 8, 0), "align: one 8 bytes off stops it");
    check(!stops(dep_launch, 1, 0), "pdl: a dependent launch that begins with pdl_begin runs");
    check(stops(dep_launch, 0, 0), "pdl: one without pdl_begin stops");
}

} /* namespace */

int main() {
    barrier_checks();
    cp_async_checks();
    refill_checks();
    last_block_checks();
    stop_checks();
    printf("test_emu_hazards: %d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
