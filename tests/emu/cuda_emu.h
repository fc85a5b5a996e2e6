/*
 * tests/emu/cuda_emu.h — runs the CUDA backend's kernels on the CPU, for tests without a
 * GPU (CI). A kernel file of kernels/cuda is turned into C++ by tests/emu/cu2cpp.py
 * (launch syntax and dynamic shared memory rewritten, nothing else) and compiled by the
 * host compiler with this header force-included (-include) and RLVR_CUDA_EMU defined.
 *
 * Model: every CUDA thread is a fiber with its own stack (a pool of them, each started once
 * by makecontext/swapcontext and reused for every block; switched by GCC's
 * __builtin_setjmp/__builtin_longjmp, which make no system call); the blocks of a launch
 * run one after another, the threads of a block cooperatively, each until it
 * waits at a barrier. What that checks and what it does not:
 *   - indexing, masking, fragment layouts, reductions and the host launch logic (grid,
 *     shared-memory size against the 48 KB default and cudaFuncSetAttribute's opt-in,
 *     scratch sizes) run as written, on real data, so the results can be compared with
 *     the CPU twins in kernels/cpu;
 *   - __syncthreads, __syncwarp and the warp collectives (shuffles, mma.sync,
 *     ldmatrix) are barriers over the live threads of the block / warp; a thread that
 *     has returned counts as arrived (as on sm_70+);
 *   - atomics are plain read-modify-writes (one fiber runs at a time);
 *   - cp.async lands as late as the program allows: at the cp.async.wait_group that
 *     retires its group, reading the source then (never, if its thread ends first); so a
 *     tile read before its wait (and a barrier) holds the shared memory's previous bytes;
 *     or, with RLVR_EMU_CPASYNC=early, as early as it can: at issue, so a stage refilled
 *     before every thread has read it (a missing barrier) changes what they read;
 *   - the threads of a block run in index order between barriers, or in reverse index
 *     order (RLVR_EMU_THREADS=reverse): a race between two threads with no barrier
 *     between a write and a read of the same shared (or global) bytes gives another
 *     result in one of the two orders, so a kernel whose bits differ between them has
 *     one; the blocks of a grid run in index order, or last to first
 *     (RLVR_EMU_ORDER=reverse). tests/emu/orders.sh runs a test twice, in index order
 *     with late copies and reversed with early ones, and compares the bits of every
 *     output (tests/gpu/test_cuda_ops.c's digest);
 *   - static __shared__ arrays are not re-poisoned per block (the dynamic shared memory
 *     is, with 0xFF bytes: NaN as bf16 and f32);
 *   - mma.sync sums its 16 products in k order in fp32 (the hardware's order and
 *     rounding differ in the last bits, so compare with bf16 tolerances).
 * Performance means nothing here; sizes in tests should stay small.
 */
#ifndef RLVR_TESTS_EMU_CUDA_EMU_H
#define RLVR_TESTS_EMU_CUDA_EMU_H

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <setjmp.h>
#include <ucontext.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace emu {

/* A cp.async a thread issued that has not landed yet (tensor_core_emu.h): `size` bytes to
 * dst, the first `bytes` of them read from src when it lands, the rest zero. */
struct pending_copy {
    void *dst;
    const void *src;
    int bytes, size;
};

/* A thread of the block being run. */
struct fiber {
    uint3 tid;
    int linear; /* x + y·bx + z·bx·by */
    int done;
    int wait; /* 0 runnable, 1 at the block barrier, 2 at its warp's barrier */
    unsigned wait_gen; /* the barrier generation it waits to see pass */
    std::deque<pending_copy> copies; /* issued, not landed, oldest first */
    std::deque<size_t> groups;       /* sizes of the committed groups among them */
    int pdl_begun;                   /* it has called pdl_begin (cuda_internal.cuh) */
};

enum { SLOT_BYTES = 64, FIBER_STACK = 128 * 1024 };

/* The execution contexts: fiber i runs thread i of every block. Each is started once
 * (makecontext + swapcontext, the only system calls) and then loops: run the block's
 * body for the current thread, park, and wait to be resumed for the next block. Stacks
 * are malloc'ed once (untouched pages cost nothing). */
struct pooled_fiber {
    ucontext_t ctx;
    void *jb[5]; /* where it waits (__builtin_setjmp buffer) */
    int started;
    void *stack;
};
inline std::vector<pooled_fiber *> fiber_pool;
inline pooled_fiber &pool_fiber(int i) {
    while ((int)fiber_pool.size() <= i) {
        pooled_fiber *f = (pooled_fiber *)calloc(1, sizeof(pooled_fiber));
        void *stack = malloc(FIBER_STACK);
        if (!f || !stack) {
            fprintf(stderr, "cuda_emu: out of memory for fiber stacks\n");
            abort();
        }
        f->stack = stack;
        fiber_pool.push_back(f);
    }
    return *fiber_pool[i];
}

/* The block being run and its threads' shared state. */
struct block_state {
    dim3 grid, block;
    uint3 bid;
    int nthreads, live, cur;
    void *sched[5]; /* the scheduler's resume point (__builtin_setjmp buffer) */
    std::function<void()> body;
    unsigned bar_gen;
    int bar_count;
    std::vector<unsigned> wgen;
    std::vector<int> wcount, wlive;
    std::vector<unsigned char> slots; /* [2][warp][lane][SLOT_BYTES] exchange for collectives */
    std::vector<unsigned char> smem;  /* dynamic shared memory */
    std::vector<fiber> th;
    bool pdl; /* launched as a programmatic dependent: every thread must call pdl_begin */
};

/* Device memory: every live cudaMalloc allocation, start → bytes (emu_runtime.cpp). */
inline std::map<uintptr_t, size_t> allocations;

/* Aborts (a kernel bug) unless [p, p + bytes) lies inside one live allocation: for
 * launchers that hand raw ranges to the hardware (prefetch_l2). */
inline void check_device_range(const void *p, size_t bytes, const char *what) {
    const uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a);
    if (it != allocations.begin()) {
        --it;
        if (a >= it->first && bytes <= it->second && a - it->first <= it->second - bytes) return;
    }
    fprintf(stderr, "cuda_emu: %s: the range %p + %zu bytes is not inside one allocation\n",
            what, p, bytes);
    abort();
}

inline block_state *S = nullptr;
/* Set around a launch_k call by cuda_launch_dep (cuda_internal.cuh) when the launch is a
 * programmatic dependent one; the launch keeps it (a graph replays it with the flag). */
inline bool launch_pdl = false;
inline cudaError_t last_error = cudaSuccess;
inline std::map<const void *, int> max_dyn_smem; /* cudaFuncSetAttribute opt-ins */
inline std::vector<std::string> launched;        /* kernel names, in launch order */
/* While a stream capture is open (emu_runtime.cpp), launches and copies are recorded here
 * instead of run; a graph launch runs them in order. */
inline std::vector<std::function<void()>> *capture = nullptr;

inline fiber &self() { return S->th[S->cur]; }
/* GCC's __builtin_setjmp/__builtin_longjmp: a few instructions, no signal mask, no
 * unwinding (glibc's _longjmp cost a fifth of the emulation's time); the long jump lives
 * in its own function, as GCC requires. */
__attribute__((noinline)) inline void jump_to(void **buf) { __builtin_longjmp(buf, 1); }
__attribute__((noinline)) inline void yield() {
    if (!__builtin_setjmp(fiber_pool[S->cur]->jb)) jump_to(S->sched);
}

/* Releases the block barrier or a warp barrier when every live thread has arrived. */
inline void check_block_barrier() {
    if (S->bar_count > 0 && S->bar_count >= S->live) {
        S->bar_count = 0;
        S->bar_gen++;
    }
}
inline void check_warp_barrier(int w) {
    if (S->wcount[w] > 0 && S->wcount[w] >= S->wlive[w]) {
        S->wcount[w] = 0;
        S->wgen[w]++;
    }
}

inline void syncthreads() {
    const unsigned g = S->bar_gen;
    S->bar_count++;
    check_block_barrier();
    if (S->bar_gen != g) return;
    self().wait = 1;
    self().wait_gen = g;
    yield(); /* the scheduler resumes it once the generation has moved on */
    self().wait = 0;
}

inline void syncwarp() {
    const int w = self().linear >> 5;
    const unsigned g = S->wgen[w];
    S->wcount[w]++;
    check_warp_barrier(w);
    if (S->wgen[w] != g) return;
    self().wait = 2;
    self().wait_gen = g;
    yield();
    self().wait = 0;
}

/* Whether thread i may run: not finished, and its barrier (if any) has been released. */
inline bool runnable(const block_state &st, int i) {
    const fiber &f = st.th[i];
    if (f.done) return false;
    if (f.wait == 1) return st.bar_gen != f.wait_gen;
    if (f.wait == 2) return st.wgen[f.linear >> 5] != f.wait_gen;
    return true;
}

inline int lane_id() { return self().linear & 31; }
/* Lane `lane`'s exchange slot in buffer `buf` of this thread's warp. Two buffers, chosen
 * by the parity of the warp's barrier generation at the deposit: a collective's single
 * barrier suffices, because a lane can only write the same buffer again after the next
 * barrier, which every lane reaches only after reading this one. */
inline unsigned char *slot(int buf, int lane) {
    const size_t w = (size_t)(self().linear >> 5), nw = S->wgen.size();
    return &S->slots[(((size_t)buf * nw + w) * 32 + (size_t)lane) * SLOT_BYTES];
}
inline int slot_buffer() { return (int)(S->wgen[self().linear >> 5] & 1u); }

/* Deposits this lane's bytes, waits for the warp, and returns lane src's. */
template <class T> T exchange(const T &v, int src) {
    static_assert(sizeof(T) <= SLOT_BYTES, "collective operand too large");
    const int b = slot_buffer();
    memcpy(slot(b, lane_id()), &v, sizeof(T));
    syncwarp();
    T r;
    memcpy(&r, slot(b, src & 31), sizeof(T));
    return r;
}

/* Deposits this lane's bytes and gathers every lane's into all[32]. */
template <class T> void exchange_all(const T &v, T *all) {
    static_assert(sizeof(T) <= SLOT_BYTES, "collective operand too large");
    const int b = slot_buffer();
    memcpy(slot(b, lane_id()), &v, sizeof(T));
    syncwarp();
    for (int l = 0; l < 32; l++) memcpy(&all[l], slot(b, l), sizeof(T));
}

/* Lands this thread's oldest pending copy. */
inline void land_copy(fiber &f) {
    const pending_copy c = f.copies.front();
    f.copies.pop_front();
    unsigned char tmp[16] = {0};
    if (c.bytes > 0) memcpy(tmp, c.src, (size_t)(c.bytes < c.size ? c.bytes : c.size));
    memcpy(c.dst, tmp, (size_t)c.size);
}

inline void fiber_main() {
    for (;;) {
        S->body();
        fiber &f = self();
        if (S->pdl && !f.pdl_begun) { /* it may have run before its predecessor ended */
            fprintf(stderr,
                    "cuda_emu: thread %d of block (%u,%u,%u) of a kernel launched as a "
                    "programmatic dependent ended without pdl_begin()\n",
                    f.linear, S->bid.x, S->bid.y, S->bid.z);
            abort();
        }
        /* copies it never waited for land as late as allowed: after its block ends, where
         * nothing can read them (they only write shared memory) */
        f.copies.clear();
        f.groups.clear();
        f.done = 1;
        S->live--;
        S->wlive[f.linear >> 5]--;
        check_block_barrier();
        check_warp_barrier(f.linear >> 5);
        yield(); /* parked; resumed with the next block's S */
    }
}

/* Thread i of the block st: its indices. */
inline void init_thread(block_state &st, int i) {
    fiber &f = st.th[i];
    f.linear = i;
    f.tid.x = (unsigned)i % st.block.x;
    f.tid.y = (unsigned)(i / st.block.x) % st.block.y;
    f.tid.z = (unsigned)(i / (st.block.x * st.block.y));
    f.done = 0;
    f.wait = 0;
    f.wait_gen = 0;
    f.copies.clear();
    f.groups.clear();
    f.pdl_begun = 0;
}

/* Whether the environment variable `name` is set to `value`. */
inline bool env_is(const char *name, const char *value) {
    const char *e = getenv(name);
    return e && !strcmp(e, value);
}
/* The order a launch runs its blocks in, and a block its threads, between barriers:
 * index order, or reversed — RLVR_EMU_ORDER=reverse: the blocks last to first (a result
 * that depends on which block runs first or last shows); RLVR_EMU_THREADS=reverse: the
 * threads from the highest index down (a shared-memory race, one thread reading what
 * another writes, or overwriting what another reads, with no barrier between, gives
 * another result in one of the two orders). Read at start-up; tests may set them. */
inline bool blocks_reversed = env_is("RLVR_EMU_ORDER", "reverse");
inline bool threads_reversed = env_is("RLVR_EMU_THREADS", "reverse");
/* When a cp.async lands (tensor_core_emu.h): as late as allowed, at the wait that retires
 * its group (the default: a tile read before its wait keeps its old bytes), or, with
 * RLVR_EMU_CPASYNC=early, at once (a stage refilled while other threads still read it, a
 * missing barrier before the refill, changes what they read). Tests may set it. */
inline bool cp_async_early = env_is("RLVR_EMU_CPASYNC", "early");

/* Runs thread i until it waits at a barrier or finishes. */
__attribute__((noinline)) inline void resume(block_state &st, int i) {
    st.cur = i;
    if (__builtin_setjmp(st.sched)) return;
    pooled_fiber &f = pool_fiber(i);
    if (f.started) jump_to(f.jb);
    f.started = 1;
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = FIBER_STACK;
    f.ctx.uc_link = NULL;
    makecontext(&f.ctx, fiber_main, 0);
    ucontext_t from; /* abandoned: the fiber comes back by a long jump */
    swapcontext(&from, &f.ctx);
}

inline void run_block(const dim3 &grid, const dim3 &block, const uint3 &bid, size_t smem,
                      const std::function<void()> &body, bool pdl = false) {
    block_state st;
    st.pdl = pdl;
    st.grid = grid;
    st.block = block;
    st.bid = bid;
    st.nthreads = (int)(block.x * block.y * block.z);
    st.live = st.nthreads;
    st.cur = 0;
    st.body = body;
    st.bar_gen = 0;
    st.bar_count = 0;
    const int nw = (st.nthreads + 31) / 32;
    st.wgen.assign(nw, 0u);
    st.wcount.assign(nw, 0);
    st.wlive.assign(nw, 0);
    for (int i = 0; i < st.nthreads; i++) st.wlive[i / 32]++;
    st.slots.assign((size_t)2 * nw * 32 * SLOT_BYTES, 0);
    st.smem.assign(smem + 16, 0xFF);
    st.th.resize(st.nthreads);
    block_state *prev = S;
    S = &st;
    for (int i = 0; i < st.nthreads; i++) init_thread(st, i);
    while (st.live > 0) {
        int progressed = 0;
        const bool rev = threads_reversed;
        for (int k = 0; k < st.nthreads; k++) {
            const int i = rev ? st.nthreads - 1 - k : k;
            if (!runnable(st, i)) continue;
            resume(st, i);
            progressed = 1;
        }
        if (!progressed) { /* a barrier some live thread never reaches: a kernel bug */
            fprintf(stderr,
                    "cuda_emu: deadlock in block (%u,%u,%u): %d threads wait at a barrier "
                    "the others never reach\n",
                    bid.x, bid.y, bid.z, st.live);
            abort();
        }
    }
    S = prev;
}

/* The launch configuration of kernel<<<grid, block, smem, stream>>>. */
struct launch_cfg {
    dim3 grid, block;
    size_t smem;
};
inline launch_cfg cfg(dim3 g, dim3 b, size_t smem = 0, cudaStream_t = 0) {
    return launch_cfg{g, b, smem};
}

/* A launch argument as the kernel's parameter type (NULL, an integer 0, for a pointer). */
template <class P, class A> P arg_as(A &&a) {
    if constexpr (std::is_pointer_v<P> && std::is_integral_v<std::decay_t<A>>)
        return reinterpret_cast<P>((uintptr_t)a);
    else
        return static_cast<P>(std::forward<A>(a));
}

/* kernel<<<c>>>(args...) (name: the kernel expression, recorded in `launched`): every block in order (x fastest), its threads as fibers. The
 * launch errors of the hardware that the tests can meet are reported like cudart does
 * (cudaGetLastError): more than 1024 threads, or more dynamic shared memory than 48 KB
 * without the opt-in attribute (227 KB with it). */
template <class... P, class... A>
void launch_k(launch_cfg c, const char *name, void (*k)(P...), A &&...a) {
    launched.push_back(name);
    static const bool trace = getenv("RLVR_EMU_TRACE") != nullptr;
    if (trace) /* which kernels a run took, and which as programmatic dependents */
        fprintf(stderr, "emu: launch %s%s\n", name, launch_pdl ? " (pdl)" : "");
    const size_t nthreads = (size_t)c.block.x * c.block.y * c.block.z;
    auto it = max_dyn_smem.find((const void *)k);
    const size_t limit = it != max_dyn_smem.end() && it->second > 48 * 1024 ? (size_t)it->second
                                                                          : 48 * 1024;
    if (nthreads == 0 || nthreads > 1024 || c.smem > limit || c.grid.x == 0 ||
        c.grid.y == 0 || c.grid.z == 0 || c.grid.y > 65535 || c.grid.z > 65535) {
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    std::tuple<P...> args(arg_as<P>(std::forward<A>(a))...);
    const bool pdl = launch_pdl;
    auto run = [c, k, args, pdl]() {
        const std::function<void()> body = [&]() { std::apply(k, args); };
        const unsigned long long n = (unsigned long long)c.grid.x * c.grid.y * c.grid.z;
        for (unsigned long long i = 0; i < n; i++) {
            const unsigned long long j = blocks_reversed ? n - 1 - i : i;
            uint3 b;
            b.x = (unsigned)(j % c.grid.x);
            b.y = (unsigned)(j / c.grid.x % c.grid.y);
            b.z = (unsigned)(j / c.grid.x / c.grid.y);
            run_block(c.grid, c.block, b, c.smem, body, pdl);
        }
    };
    if (capture) capture->push_back(run); /* recorded into a graph (cudaStreamBeginCapture) */
    else run();
}

inline unsigned char *dyn_smem() { return S->smem.data(); }

/* ---- warp collectives ---- */
template <class T> T shfl_xor(T v, int m) { return exchange(v, lane_id() ^ m); }
template <class T> T shfl(T v, int src) { return exchange(v, src); }
template <class T> T shfl_up(T v, int d) {
    const T r = exchange(v, lane_id() - d < 0 ? lane_id() : lane_id() - d);
    return lane_id() < d ? v : r;
}

} /* namespace emu */

/* ---- the CUDA names kernels use ---- */
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define threadIdx (emu::self().tid)
#define blockIdx (emu::S->bid)
#define blockDim (emu::S->block)
#define gridDim (emu::S->grid)
#define __syncthreads() emu::syncthreads()
#define __syncwarp(...) emu::syncwarp()
#define __shfl_xor_sync(mask, v, m) emu::shfl_xor((v), (m))
#define __shfl_sync(mask, v, src) emu::shfl((v), (src))
#define __shfl_up_sync(mask, v, d) emu::shfl_up((v), (d))

static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float __uint_as_float(unsigned int u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
static inline int __float_as_int(float f) {
    int i;
    memcpy(&i, &f, 4);
    return i;
}
/* the _rn arithmetic intrinsics: one IEEE operation each (the emulation is built with
 * -ffp-contract=off, so nothing else is fused either) */
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline unsigned long long __double2ull_rz(double d) {
    return d <= 0.0 ? 0ull : d >= 18446744073709551615.0 ? ~0ull : (unsigned long long)d;
}
static inline unsigned long long __float2ull_rz(float f) {
    return f <= 0.0f ? 0ull : f >= 18446744073709551615.0f ? ~0ull : (unsigned long long)f;
}
template <class T> static inline T atomicOr(T *p, T v) {
    const T o = *p;
    *p = o | v;
    return o;
}
template <class T> static inline T atomicAdd(T *p, T v) {
    const T o = *p;
    *p = o + v;
    return o;
}
/* One address space, blocks one after another: fences order nothing more, and an L2
 * load is a load. */
static inline void __threadfence(void) {}
template <class T> static inline T __ldcg(const T *p) { return *p; }

/* cuda_runtime.h's typed overload exists for nvcc only */
template <class T> static inline cudaError_t cudaFuncSetAttribute(T *f, enum cudaFuncAttribute a,
                                                                  int v) {
    return cudaFuncSetAttribute((const void *)f, a, v);
}

#endif
