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
 *            type), the result rounded to C's type;
 *   cublasLt what gemm_tune.cu uses: descriptors and layouts are stored as given, the
 *            heuristic proposes EMU_LT_ALGOS algorithms (ids 1..EMU_LT_ALGOS, no
 *            workspace), and cublasLtMatmul derives m, n, k from the layouts and the
 *            transposes, checks they agree (CUBLAS_STATUS_INVALID_VALUE if not: a caller's
 *            wrong layout shows here) and computes as cublasGemmEx does;
 *            cublasLtMatmulAlgoCheck accepts those ids; cublasLtGetVersion is 130000.
 *   L2       the device reports none (cudaDevAttrL2CacheSize 0), so nothing flushes it.
 */
#include <cblas.h>
#include <chrono>

#include "tests/emu/cuda_emu.h"

#include <cublasLt.h>
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
cudaError_t cudaStreamIsCapturing(cudaStream_t, enum cudaStreamCaptureStatus *st) {
    *st = emu::capture ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}

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

namespace {
/* C = alpha·op(A)·op(B) + beta·C (column-major), recorded while a capture is open. */
cublasStatus_t emu_gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                        float al, const void *A, cudaDataType at, int lda, const void *B,
                        cudaDataType bt, int ldb, float be, void *C, cudaDataType ct,
                        int ldc) {
    if ((at != CUDA_R_16BF && at != CUDA_R_32F) || (bt != CUDA_R_16BF && bt != CUDA_R_32F) ||
        (ct != CUDA_R_16BF && ct != CUDA_R_32F) || m < 0 || n < 0 || k < 0)
        return CUBLAS_STATUS_NOT_SUPPORTED;
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

enum { EMU_LT_ALGOS = 3 };
struct emu_lt_desc {
    int32_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
};
struct emu_lt_layout {
    cudaDataType t;
    uint64_t rows, cols;
    int64_t ld;
};
int emu_lt_handle;
} /* namespace */

extern "C" cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                                       int m, int n, int k, const void *alpha, const void *A,
                                       cudaDataType at, int lda, const void *B, cudaDataType bt,
                                       int ldb, const void *beta, void *C, cudaDataType ct,
                                       int ldc, cublasComputeType_t, cublasGemmAlgo_t) {
    return emu_gemm(ta, tb, m, n, k, *(const float *)alpha, A, at, lda, B, bt, ldb,
                    *(const float *)beta, C, ct, ldc);
}

/* ---- cublasLt (the calls of gemm_tune.cu) ---- */

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = reinterpret_cast<cublasLtHandle_t>(&emu_lt_handle);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t) { return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t ct,
                                        cudaDataType_t st) {
    if (ct != CUBLAS_COMPUTE_32F || st != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    *d = reinterpret_cast<cublasLtMatmulDesc_t>(new emu_lt_desc());
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete reinterpret_cast<emu_lt_desc *>(d);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d,
                                              cublasLtMatmulDescAttributes_t a,
                                              const void *buf, size_t size) {
    emu_lt_desc *e = reinterpret_cast<emu_lt_desc *>(d);
    if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
    if (a == CUBLASLT_MATMUL_DESC_TRANSA) memcpy(&e->ta, buf, size);
    else if (a == CUBLASLT_MATMUL_DESC_TRANSB) memcpy(&e->tb, buf, size);
    else return CUBLAS_STATUS_NOT_SUPPORTED;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
    if (ld < (int64_t)rows) return CUBLAS_STATUS_INVALID_VALUE;
    *l = reinterpret_cast<cublasLtMatrixLayout_t>(new emu_lt_layout{t, rows, cols, ld});
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete reinterpret_cast<emu_lt_layout *>(l);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = reinterpret_cast<cublasLtMatmulPreference_t>(new int(0));
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    delete reinterpret_cast<int *>(p);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t,
                                                    cublasLtMatmulPreferenceAttributes_t,
                                                    const void *, size_t) {
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                              cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t *res, int *n) {
    if (requested <= 0) return CUBLAS_STATUS_INVALID_VALUE;
    *n = requested < EMU_LT_ALGOS ? requested : EMU_LT_ALGOS;
    for (int i = 0; i < *n; i++) {
        memset(&res[i], 0, sizeof res[i]);
        res[i].algo.data[0] = (uint64_t)i + 1;
        res[i].state = CUBLAS_STATUS_SUCCESS;
        res[i].wavesCount = 1.0f;
    }
    return CUBLAS_STATUS_SUCCESS;
}

size_t cublasLtGetVersion(void) { return 130000; /* any nonzero version */ }

cublasStatus_t cublasLtMatmulAlgoCheck(cublasLtHandle_t, cublasLtMatmulDesc_t,
                                       cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                       cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                       const cublasLtMatmulAlgo_t *algo,
                                       cublasLtMatmulHeuristicResult_t *res) {
    if (!algo || algo->data[0] < 1 || algo->data[0] > EMU_LT_ALGOS)
        return CUBLAS_STATUS_INVALID_VALUE;
    memset(res, 0, sizeof *res);
    res->state = CUBLAS_STATUS_SUCCESS;
    res->wavesCount = 1.0f;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t desc, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t la, const void *B,
                              cublasLtMatrixLayout_t lb, const void *beta, const void *C,
                              cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *algo, void *, size_t,
                              cudaStream_t) {
    const emu_lt_desc *d = reinterpret_cast<const emu_lt_desc *>(desc);
    const emu_lt_layout *a = reinterpret_cast<const emu_lt_layout *>(la),
                        *b = reinterpret_cast<const emu_lt_layout *>(lb),
                        *c = reinterpret_cast<const emu_lt_layout *>(lc),
                        *o = reinterpret_cast<const emu_lt_layout *>(ld);
    if (!algo || algo->data[0] < 1 || algo->data[0] > EMU_LT_ALGOS)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const uint64_t m = o->rows, n = o->cols;
    const uint64_t am = d->ta == CUBLAS_OP_N ? a->rows : a->cols,
                   ak = d->ta == CUBLAS_OP_N ? a->cols : a->rows,
                   bk = d->tb == CUBLAS_OP_N ? b->rows : b->cols,
                   bn = d->tb == CUBLAS_OP_N ? b->cols : b->rows;
    if (am != m || bn != n || ak != bk || c->rows != m || c->cols != n || c->t != o->t ||
        c->ld != o->ld || C != D)
        return CUBLAS_STATUS_INVALID_VALUE; /* C != D: not needed by gemm_tune.cu */
    return emu_gemm((cublasOperation_t)d->ta, (cublasOperation_t)d->tb, (int)m, (int)n, (int)ak,
                    *(const float *)alpha, A, a->t, (int)a->ld, B, b->t, (int)b->ld,
                    *(const float *)beta, D, o->t, (int)o->ld);
}

} /* extern "C" */
