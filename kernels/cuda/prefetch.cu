/*
 * kernels/cuda/prefetch.cu — prefetch_l2 (backend.h): starts bringing ranges of device
 * memory into the L2 cache and returns; no value changes. For decode steps
 * (engine/model/kv_cache.c, opt-in RLVR_DECODE_PREFETCH_MB): at a small batch every
 * projection is a GEMV that reads a weight matrix once, and one GEMV alone keeps too few
 * loads in flight to stream HBM at its rate, while between the GEMVs (norms, attention,
 * launch gaps) HBM idles. A prefetch of the layer's next weights at its start keeps HBM
 * streaming through those gaps, and the GEMVs then read L2.
 *
 * One thread per CHUNK bytes of a range issues `cp.async.bulk.prefetch.L2.global` (sm_90:
 * a bulk copy engine request with no destination and no completion to wait for, so the
 * kernel ends at once and the fill goes on behind the kernels that follow). Ranges are
 * cut to 16-byte-aligned starts and whole 16-byte multiples, as the instruction requires
 * (the few edge bytes are not worth a second instruction). Before sm_90 (PTX JIT on an
 * older card) it issues one `prefetch.global.L2` per 128-byte line instead.
 *
 * On the CPU emulation (tests/emu) nothing is fetched, but every range must lie inside one
 * cudaMalloc allocation (emu::check_device_range): a wrong pointer or size in a caller's
 * prefetch plan fails there.
 */
#include "kernels/cuda/cuda_internal.cuh"

enum { PREFETCH_THREADS = 128 };
static const size_t PREFETCH_CHUNK = (size_t)64 << 10; /* bytes per instruction */

typedef struct {
    const char *ptr[RLVR_PREFETCH_MAX];
    unsigned long long bytes[RLVR_PREFETCH_MAX];
    unsigned long long first_chunk[RLVR_PREFETCH_MAX + 1]; /* prefix of the chunk counts */
    int n;
} prefetch_plan;

static __global__ void __launch_bounds__(PREFETCH_THREADS)
    prefetch_l2_kernel(prefetch_plan plan) {
    const unsigned long long chunk =
        (unsigned long long)blockIdx.x * PREFETCH_THREADS + threadIdx.x;
    if (chunk < plan.first_chunk[plan.n]) {
        int r = 0;
        while (chunk >= plan.first_chunk[r + 1]) r++;
        const unsigned long long off = (chunk - plan.first_chunk[r]) * PREFETCH_CHUNK;
        const unsigned long long left = plan.bytes[r] - off;
        const unsigned size = (unsigned)(left < PREFETCH_CHUNK ? left : PREFETCH_CHUNK);
        const char *p = plan.ptr[r] + off;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p), "r"(size)
                     : "memory");
#elif defined(__CUDA_ARCH__)
        for (unsigned i = 0; i < size; i += 128)
            asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p + i));
#else
        (void)p;
        (void)size;
#endif
    }
    /* a prefetch is only a hint (and of weights, which no kernel of the step writes), so
     * it goes before the programmatic-dependent wait: it overlaps the kernel before */
    pdl_begin();
}

static void cu_prefetch_l2(rlvr_backend *be, const void *const *ptr, const size_t *bytes,
                           int n) {
    cuda_ctx *c = cuda_get(be);
    if (n <= 0) return;
    if (n > RLVR_PREFETCH_MAX) {
        cuda_record_error(c, __FILE__, __LINE__, "prefetch_l2: %d ranges (at most %d)", n,
                          (int)RLVR_PREFETCH_MAX);
        return;
    }
    prefetch_plan plan;
    memset(&plan, 0, sizeof plan);
    for (int i = 0; i < n; i++) {
        if (!ptr[i] || bytes[i] == 0) continue;
#ifdef RLVR_CUDA_EMU
        emu::check_device_range(ptr[i], bytes[i], "prefetch_l2");
#endif
        /* the 16-byte-aligned whole multiples of 16 inside the range */
        const uintptr_t a = (uintptr_t)ptr[i], b = a + bytes[i];
        const uintptr_t a16 = (a + 15) & ~(uintptr_t)15, b16 = b & ~(uintptr_t)15;
        if (b16 <= a16) continue;
        plan.ptr[plan.n] = (const char *)a16;
        plan.bytes[plan.n] = (unsigned long long)(b16 - a16);
        plan.first_chunk[plan.n + 1] =
            plan.first_chunk[plan.n] + (plan.bytes[plan.n] + PREFETCH_CHUNK - 1) / PREFETCH_CHUNK;
        plan.n++;
    }
    const unsigned long long chunks = plan.first_chunk[plan.n];
    if (chunks == 0) return;
    cuda_launch_dep(c, "prefetch_l2_kernel", prefetch_l2_kernel,
                    cuda_blocks((size_t)chunks, PREFETCH_THREADS), PREFETCH_THREADS, 0, plan);
}

void cuda_prefetch_register(rlvr_backend *be) { be->prefetch_l2 = cu_prefetch_l2; }
