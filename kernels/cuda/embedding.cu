/*
 * kernels/cuda/embedding.cu — token embedding lookup and its deterministic backward.
 *
 * Backward without atomics and without a host-side token list (ids live on the
 * device): block (t, column slice) first checks whether token t is the FIRST
 * occurrence of its id in the batch; only then it owns row ids[t] of dwte and sums
 * dout over every occurrence of that id in token order. Each dwte element is therefore
 * written by one thread, in a fixed order: the same bits every run. Cost is O(T²)
 * integer compares (cheap next to the T·C float traffic for T up to ~16k).
 */
#include "kernels/cuda/cuda_internal.cuh"

enum { EMB_BWD_THREADS = 128 };

/* out[T,C] = wte[ids[t], :]; vec: C % 8 == 0 and both pointers 16-byte aligned. */
static __global__ void embedding_forward_kernel(bf16 *out, const int *ids, const bf16 *wte,
                                                int C, int vec) {
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

/* grid (T, ceil(C / EMB_BWD_THREADS)); dwte[ids[t], c] += Σ_{t' : ids[t'] = ids[t]} dout[t', c]
 * computed by the block of the first such t only. */
static __global__ void embedding_backward_kernel(float *dwte, const bf16 *dout, const int *ids,
                                                 int T, int C) {
    __shared__ int s_ids[EMB_BWD_THREADS];
    const int t = blockIdx.x;
    const int id = ids[t];
    int earlier = 0;
    for (int j = threadIdx.x; j < t && !earlier; j += blockDim.x) earlier = ids[j] == id;
    if (__syncthreads_or(earlier)) return; /* uniform across the block */
    const int c = blockIdx.y * blockDim.x + threadIdx.x;
    float acc = 0.0f;
    for (int base = t; base < T; base += EMB_BWD_THREADS) {
        const int n = T - base < EMB_BWD_THREADS ? T - base : EMB_BWD_THREADS;
        __syncthreads();
        if ((int)threadIdx.x < n) s_ids[threadIdx.x] = ids[base + threadIdx.x];
        __syncthreads();
        if (c < C)
            for (int i = 0; i < n; i++)
                if (s_ids[i] == id) acc += bf2f(dout[(size_t)(base + i) * C + c]);
    }
    if (c < C) dwte[(size_t)id * C + c] += acc;
}

static void embedding_forward(rlvr_backend *be, void *out, const int *ids, const void *wte,
                              int T, int C) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0 || C <= 0) return;
    const int vec = C % 8 == 0 && cuda_aligned16(out) && cuda_aligned16(wte);
    const int work = vec ? C / 8 : C;
    const int threads = work >= 256 ? 256 : (work + 31) / 32 * 32;
    embedding_forward_kernel<<<T, threads, 0, c->stream>>>((bf16 *)out, ids,
                                                          (const bf16 *)wte, C, vec);
    CU_LAUNCH_CHECK(c, "embedding_forward_kernel");
}

static void embedding_backward(rlvr_backend *be, float *dwte, const void *dout, const int *ids,
                               int T, int C) {
    cuda_ctx *c = cuda_get(be);
    if (T <= 0 || C <= 0) return;
    dim3 grid((unsigned)T, cuda_blocks((size_t)C, EMB_BWD_THREADS));
    embedding_backward_kernel<<<grid, EMB_BWD_THREADS, 0, c->stream>>>(
        dwte, (const bf16 *)dout, ids, T, C);
    CU_LAUNCH_CHECK(c, "embedding_backward_kernel");
}

void cuda_embedding_register(rlvr_backend *be) {
    be->embedding_forward = embedding_forward;
    be->embedding_backward = embedding_backward;
}
