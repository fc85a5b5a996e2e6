/*
 * kernels/cuda/embedding.cu — token embedding lookup and its deterministic backward.
 *
 * Backward without atomics: the (id, token) pairs are sorted by id with CUB's stable
 * radix sort (equal ids keep token order), so every distinct id becomes one run of
 * the sorted list. The block that sits at the start of a run owns row `id` of dwte
 * and sums dout over the run's tokens in token order. Each dwte element is written by
 * one thread, in a fixed order: the same bits every run, and the same order as the CPU
 * twin. Cost: the sort (a few µs for 8k tokens) plus one read of dout.
 */
#include <cub/cub.cuh>

#include "kernels/cuda/cuda_internal.cuh"

enum { EMB_BWD_THREADS = 128 };

/* out[T,C] = wte[ids[t], :]; vec: C % 8 == 0 and both pointers 16-byte aligned. */
static __global__ void embedding_forward_kernel(bf16 *out, const int *ids, const bf16 *wte,
                                                int C, int vec) {
    pdl_begin(); /* programmatic dependent launch: before any memory access */
    const int t = blockIdx.x;
    const size_t row = (size_t)ids[t];
    if (vec) {
        const uint4 *src = reinterpret_cast<const uint4 *>(wte + row * C);
        uint4 *dst = reinterpret_cast<uint4 *>(out + (size_t)t * C);
        for (int i = threadIdx.x; i < C / 8; i += blockDim.x) dst[i] = src[i];
    } else {
        for (int i = threadIdx.x; i < C; i += blockDim.x)
            out[(size_t)t * C + i] = wte[row * C + i];
    }
}

/* tokens[t] = t: the values the sort carries along with the ids. */
static __global__ void emb_iota_kernel(int *tokens, int T) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < T) tokens[t] = t;
}

/* grid (T, ceil(C / EMB_BWD_THREADS)). sorted_ids[T] ascending, order[T] the token of
 * each sorted entry (token order within equal ids). The block at sorted position i
 * does work only when i starts a run: dwte[id, c] += Σ over the run of dout[token, c]. */
static __global__ void embedding_backward_kernel(float *dwte, const bf16 *dout,
                                                 const int *sorted_ids, const int *order,
                                                 int T, int C) {
    const int i = blockIdx.x;
    const int id = sorted_ids[i];
    if (i > 0 && sorted_ids[i - 1] == id) return; /* uniform across the block */
    const int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int j = i; j < T && sorted_ids[j] == id; j++)
        acc += bf2f(dout[(size_t)order[j] * C + c]);
    dwte[(size_t)id * C + c] += acc;
}

static size_t emb_align(size_t n) { return (n + 255) & ~(size_t)255; }

static void embedding_forward(rlvr_backend *be, void *out, const int *ids, const void *wte,
                              int T, int C) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0 || C <= 0) return;
    const int vec = C % 8 == 0 && cuda_aligned16(out) && cuda_aligned16(wte);
    const int work = vec ? C / 8 : C;
    const int threads = work >= 256 ? 256 : (work + 31) / 32 * 32;
    cuda_launch_dep(c, "embedding_forward_kernel", embedding_forward_kernel, T, threads, 0,
                    (bf16 *)out, ids, (const bf16 *)wte, C, vec);
}

static void embedding_backward(rlvr_backend *be, float *dwte, const void *dout, const int *ids,
                               int T, int C) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0 || C <= 0) return;
    /* scratch: sorted ids [T] | tokens [T] | sorted tokens [T] | CUB temporary storage */
    size_t cub_bytes = 0;
    cudaError_t e = cub::DeviceRadixSort::SortPairs(NULL, cub_bytes, (const int *)NULL,
                                                    (int *)NULL, (const int *)NULL, (int *)NULL,
                                                    T, 0, 32, c->stream);
    if (e != cudaSuccess) {
        cuda_record_error(c, __FILE__, __LINE__, "embedding_backward: CUB sort sizing: %s",
                          cudaGetErrorString(e));
        return;
    }
    const size_t arr = emb_align((size_t)T * sizeof(int));
    char *base = (char *)cuda_scratch(c, SCRATCH_EMB_SORT, 3 * arr + emb_align(cub_bytes));
    if (!base) return;
    int *sorted_ids = (int *)base, *tokens = (int *)(base + arr);
    int *order = (int *)(base + 2 * arr);
    void *cub_tmp = base + 3 * arr;
    emb_iota_kernel<<<cuda_blocks((size_t)T, 256), 256, 0, c->stream>>>(tokens, T);
    CU_LAUNCH_CHECK(c, "emb_iota_kernel");
    /* ids are non-negative: sorting all 32 bits of a signed int key is exact */
    CU_CHECK(c, cub::DeviceRadixSort::SortPairs(cub_tmp, cub_bytes, ids, sorted_ids, tokens,
                                                order, T, 0, 32, c->stream));
    dim3 grid((unsigned)T, cuda_blocks((size_t)C, EMB_BWD_THREADS));
    embedding_backward_kernel<<<grid, EMB_BWD_THREADS, 0, c->stream>>>(
        dwte, (const bf16 *)dout, sorted_ids, order, T, C);
    CU_LAUNCH_CHECK(c, "embedding_backward_kernel");
}

void cuda_embedding_register(rlvr_backend *be) {
    be->embedding_forward = embedding_forward;
    be->embedding_backward = embedding_backward;
}
