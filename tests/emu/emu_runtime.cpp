/*
 * tests/emu/emu_runtime.cpp — the CUDA runtime and cuBLAS calls of kernels/cuda, for the
 * CPU emulation (tests/emu/cuda_emu.h): with these, kernels/cuda/backend_cuda.cu and every
 * kernel file build unchanged as C++ and rlvr_cuda_backend_create returns a working
 * "cuda" backend whose device memory is host memory.
 *
 *   memory   cudaMalloc: 256-byte aligned host memory filled with 0xFF bytes (NaN in bf16
 *            and f32: a read of memory nobody wrote shows); copies and memsets at once;
 *   streams  one implicit stream, everything synchronous; stream capture records the
 *            launches, copies and memsets (cuda_emu.h: emu::capture) and a graph launch
 *            replays them in order; a synchronisation inside a capture is an error, as on
 *            the GPU;
 *   events   time stamps of the host clock (timer_mark/timer_read work; the times mean
 *            nothing about a GPU);
 *   device   one "GPU" with 132 SMs, 227 KB opt-in shared memory, 64 GiB;
 *   cuBLAS   cublasGemmEx with bf16 or f32 operands: the operands converted to f32 and
 *            multiplied by OpenBLAS's sgemm (fp32 accumulation, like cuBLAS's compute
 *            type), the result rounded to C's type.
 */
#include <cblas.h>
#include <chrono>

#include "tests/emu/cuda_emu.h"

#include <cublas_v2.h>

typedef __nv_bfloat16 bf16;

struct CUstream_st {
    int unused;
};
struct CUevent_st {
    double ms;
};
struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};

namespace {
CUstream_st g_stream_obj;
bool g_capture_broken = false;

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

/* A copy or memset: run now, or recorded while a capture is open. */
void run_or_record(const std::function<void()> &op) {
    if (emu::capture) emu::capture->push_back(op);
    else op();
}
} /* namespace */

extern "C" {

cudaError_t cudaGetLastError(void) {
    const cudaError_t e = emu::last_error;
    emu::last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return emu::last_error; }
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument (emulated)";
    case cudaErrorInvalidValue: return "invalid argument (emulated)";
    case cudaErrorMemoryAllocation: return "out of memory (emulated)";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing (emulated)";
    default: return "error (emulated)";
    }
}
cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
    return device == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int) {
    switch (a) {
    case cudaDevAttrMultiProcessorCount: *v = 132; break; /* an H100 SXM / H200 */
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = 227 * 1024; break;
    case cudaDevAttrComputeCapabilityMajor: *v = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *v = 0; break;
    default: *v = 0; break;
    }
    return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void *f, enum cudaFuncAttribute a, int v) {
    if (a == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (v > 227 * 1024) return cudaErrorInvalidValue;
        emu::max_dyn_smem[f] = v;
    }
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b) {
    *free_b = *total_b = (size_t)64 << 30;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    const size_t n = (bytes + 255) / 256 * 256;
    *p = aligned_alloc(256, n ? n : 256);
    if (!*p) return cudaErrorMemoryAllocation;
    memset(*p, 0xFF, n ? n : 256);
    emu::allocations[(uintptr_t)*p] = bytes;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    emu::allocations.erase((uintptr_t)p);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind,
                            cudaStream_t) {
    run_or_record([=]() { memmove(dst, src, n); });
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) {
    run_or_record([=]() { memset(p, v, n); });
    return cudaSuccess;
}
cudaError_t cudaMemset2DAsync(void *p, size_t pitch, int v, size_t width, size_t height,
                              cudaStream_t) {
    run_or_record([=]() {
        for (size_t r = 0; r < height; r++) memset((char *)p + r * pitch, v, width);
    });
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned int) {
    *s = &g_stream_obj;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    if (emu::capture) {
        g_capture_broken = true;
        return cudaErrorStreamCaptureUnsupported;
    }
    return cudaSuccess;
}
cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaStreamBeginCapture(cudaStream_t, enum cudaStreamCaptureMode) {
    if (emu::capture) return cudaErrorIllegalState;
    emu::capture = new std::vector<std::function<void()>>();
    g_capture_broken = false;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g) {
    if (!emu::capture) return cudaErrorIllegalState;
    std::vector<std::function<void()>> *ops = emu::capture;
    emu::capture = nullptr;
    if (g_capture_broken) {
        delete ops;
        *g = nullptr;
        return cudaErrorStreamCaptureInvalidated;
    }
    *g = new CUgraph_st{std::move(*ops)};
    delete ops;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long) {
    *x = new CUgraphExec_st{g->ops};
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t) {
    for (const auto &op : x->ops) op();
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) {
    delete x;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int) {
    *e = new CUevent_st{0.0};
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
    run_or_record([=]() { e->ms = now_ms(); });
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(b->ms - a->ms);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}

/* ---- cuBLAS ---- */

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    /* one OpenBLAS thread: the emulation runs on one core, and idle OpenBLAS threads
     * spinning between its small GEMMs cost more than they give */
    openblas_set_num_threads(1);
    *h = (cublasHandle_t)&g_stream_obj; /* any non-null handle */
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t, void *, size_t) {
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_NOT_SUPPORTED (emulated)";
}

} /* extern "C" */

namespace {
/* op(X) of a column-major X (rows × cols after op) as f32, column-major, ld = rows. */
std::vector<float> operand_f32(const void *x, cudaDataType t, int ld, cublasOperation_t op,
                               int rows, int cols) {
    std::vector<float> out((size_t)rows * cols);
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++) {
            const size_t idx = op == CUBLAS_OP_N ? (size_t)j * ld + i : (size_t)i * ld + j;
            out[(size_t)j * rows + i] = t == CUDA_R_16BF ? __bfloat162float(((const bf16 *)x)[idx])
                                                         : ((const float *)x)[idx];
        }
    return out;
}
} /* namespace */

extern "C" cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                                       int m, int n, int k, const void *alpha, const void *A,
                                       cudaDataType at, int lda, const void *B, cudaDataType bt,
                                       int ldb, const void *beta, void *C, cudaDataType ct,
                                       int ldc, cublasComputeType_t, cublasGemmAlgo_t) {
    if ((at != CUDA_R_16BF && at != CUDA_R_32F) || (bt != CUDA_R_16BF && bt != CUDA_R_32F) ||
        (ct != CUDA_R_16BF && ct != CUDA_R_32F) || m < 0 || n < 0 || k < 0)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    auto op = [=]() {
        if (m == 0 || n == 0) return;
        const std::vector<float> a = operand_f32(A, at, lda, ta, m, k);
        const std::vector<float> b = operand_f32(B, bt, ldb, tb, k, n);
        std::vector<float> c((size_t)m * n, 0.0f);
        if (k > 0)
            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), m,
                        b.data(), k, 0.0f, c.data(), m);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                const size_t o = (size_t)j * ldc + i;
                float *cf = (float *)C;
                bf16 *cb = (bf16 *)C;
                const float old = be == 0.0f ? 0.0f
                                  : ct == CUDA_R_32F ? cf[o]
                                                     : __bfloat162float(cb[o]);
                const float v = al * c[(size_t)j * m + i] + be * old;
                if (ct == CUDA_R_32F) cf[o] = v;
                else cb[o] = __float2bfloat16_rn(v);
            }
    };
    if (emu::capture) emu::capture->push_back(op);
    else op();
    return CUBLAS_STATUS_SUCCESS;
}
