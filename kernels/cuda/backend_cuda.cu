/*
 * kernels/cuda/backend_cuda.cu — the CUDA backend's lifecycle, memory entries and error
 * state: one device, one stream and one cuBLAS handle owned by the backend, no managed
 * memory, bf16 act memory. The op families live in their own files and register their
 * entries here (cuda_*_register).
 *
 * Threading: the device is selected (cudaSetDevice) at creation; a backend is meant to
 * be driven from the thread that created it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_internal.cuh"

/* kernels/cuda/kvcache.cu: kv_store, attention_cached and qkv_attention_cached. */
void cuda_kvcache_register(rlvr_backend *be);
/* kernels/cuda/sample.cu: lmhead_sample. */
void cuda_sample_register(rlvr_backend *be);
/* kernels/cuda/prefetch.cu: prefetch_l2. */
void cuda_prefetch_register(rlvr_backend *be);

/* Host staging for act_from_f32 / act_to_f32: bf16 elements per round trip. */
static const size_t STAGE_ELEMS = (size_t)1 << 20;

void cuda_record_error(cuda_ctx *c, const char *file, int line, const char *fmt, ...) {
    if (c->has_err) return;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int k = snprintf(c->err, sizeof c->err, "cuda backend %s:%d: ", base, line);
    if (k < 0 || (size_t)k >= sizeof c->err) k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + k, sizeof c->err - (size_t)k, fmt, ap);
    va_end(ap);
    c->has_err = 1;
}

void *cuda_scratch(cuda_ctx *c, int slot, size_t bytes) {
    if (bytes == 0) bytes = 256;
    if (c->scratch_bytes[slot] >= bytes) return c->scratch[slot];
    if (c->scratch[slot]) {
        /* Work queued earlier may still read the old buffer. */
        CU_CHECK(c, cudaStreamSynchronize(c->stream));
        CU_CHECK(c, cudaFree(c->scratch[slot]));
        c->scratch[slot] = NULL;
        c->scratch_bytes[slot] = 0;
    }
    size_t want = bytes + bytes / 4; /* some headroom against repeated growth */
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, want);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the non-sticky error for later launch checks */
        cuda_record_error(c, __FILE__, __LINE__, "scratch of %zu bytes: %s", want,
                          cudaGetErrorString(e));
        return NULL;
    }
    c->scratch[slot] = p;
    c->scratch_bytes[slot] = want;
    return p;
}

void *cuda_scratch_zeroed(cuda_ctx *c, int slot, size_t bytes, size_t zero_bytes) {
    void *before = c->scratch[slot];
    void *p = cuda_scratch(c, slot, bytes);
    if (p && p != before) CU_CHECK(c, cudaMemsetAsync(p, 0, zero_bytes, c->stream));
    return p;
}

/* ---- host bf16 rounding (round to nearest even; NaN stays NaN) ------------------- */

static uint16_t host_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float host_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- kernels -------------------------------------------------------------------- */

static __global__ void cast_f32_to_bf16_kernel(bf16 *dst, const float *src, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = f2bf(src[i]);
}

/* ---- op table entries ------------------------------------------------------------ */

/* Graphs: stream capture of the backend's stream (this thread's calls only), then an
 * executable graph replayed on the same stream. */
static int cu_graph_begin(rlvr_backend *be) {
    cuda_ctx *c = cuda_get(be);
    if (c->has_err) return -1;
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        cuda_record_error(c, __FILE__, __LINE__, "cudaStreamBeginCapture: %s",
                          cudaGetErrorString(e));
        return -1;
    }
    return 0;
}

static void *cu_graph_end(rlvr_backend *be) {
    cuda_ctx *c = cuda_get(be);
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    if (e != cudaSuccess || !g) {
        cuda_record_error(c, __FILE__, __LINE__, "cudaStreamEndCapture: %s",
                          e != cudaSuccess ? cudaGetErrorString(e) : "no graph");
        if (g) cudaGraphDestroy(g);
        return NULL;
    }
    if (c->has_err) { /* an op failed while recording */
        cudaGraphDestroy(g);
        return NULL;
    }
    cudaGraphExec_t x = NULL;
    e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        cuda_record_error(c, __FILE__, __LINE__, "cudaGraphInstantiate: %s",
                          cudaGetErrorString(e));
        return NULL;
    }
    return (void *)x;
}

static void cu_graph_launch(rlvr_backend *be, void *graph) {
    cuda_ctx *c = cuda_get(be);
    CU_CHECK(c, cudaGraphLaunch((cudaGraphExec_t)graph, c->stream));
}

static void cu_graph_free(rlvr_backend *be, void *graph) {
    (void)be;
    if (graph) cudaGraphExecDestroy((cudaGraphExec_t)graph);
}

/* Timeline markers (backend.h timer_mark / timer_read): a pool of timing events created
 * at the first mark, ev[0..used) recorded in issue order. */
enum { TIMER_POOL = 8192 };
struct cuda_timer_pool {
    cudaEvent_t ev[TIMER_POOL];
    cudaEvent_t spare[TIMER_POOL]; /* timer_read's room for rotating ev */
    int created; /* events created so far (all of them, unless creation failed) */
    int used;    /* markers held */
};

static void timer_pool_destroy(struct cuda_timer_pool *t) {
    if (!t) return;
    for (int i = 0; i < t->created; i++) cudaEventDestroy(t->ev[i]);
    free(t);
}

static int cu_timer_mark(rlvr_backend *be) {
    cuda_ctx *c = cuda_get(be);
    if (!c->timer) {
        struct cuda_timer_pool *t = (struct cuda_timer_pool *)calloc(1, sizeof *t);
        if (!t) {
            cuda_record_error(c, __FILE__, __LINE__, "timer_mark: host out of memory");
            return -1;
        }
        for (; t->created < TIMER_POOL; t->created++) {
            cudaError_t e = cudaEventCreateWithFlags(&t->ev[t->created], cudaEventDefault);
            if (e != cudaSuccess) {
                cuda_record_error(c, __FILE__, __LINE__, "timer_mark: cudaEventCreate: %s",
                                  cudaGetErrorString(e));
                timer_pool_destroy(t);
                return -1;
            }
        }
        c->timer = t;
    }
    struct cuda_timer_pool *t = c->timer;
    if (t->used == TIMER_POOL) return -1; /* full: the caller reads (releases) markers */
    cudaError_t e = cudaEventRecord(t->ev[t->used], c->stream);
    if (e != cudaSuccess) {
        cuda_record_error(c, __FILE__, __LINE__, "timer_mark: cudaEventRecord: %s",
                          cudaGetErrorString(e));
        return -1;
    }
    return t->used++;
}

static int cu_timer_read(rlvr_backend *be, int n, float *ms_between) {
    cuda_ctx *c = cuda_get(be);
    struct cuda_timer_pool *t = c->timer;
    const int held = t ? t->used : 0;
    if (n < 0 || n > held) {
        cuda_record_error(c, __FILE__, __LINE__, "timer_read: %d markers asked, %d held", n,
                          held);
        return -1;
    }
    if (n == 0) return 0;
    int rc = 0;
    cudaError_t e = cudaEventSynchronize(t->ev[n - 1]);
    if (e != cudaSuccess) {
        cuda_record_error(c, __FILE__, __LINE__, "timer_read: cudaEventSynchronize: %s",
                          cudaGetErrorString(e));
        rc = -1;
    }
    for (int i = 0; rc == 0 && ms_between && i + 1 < n; i++) {
        e = cudaEventElapsedTime(&ms_between[i], t->ev[i], t->ev[i + 1]);
        if (e != cudaSuccess) {
            cuda_record_error(c, __FILE__, __LINE__, "timer_read: cudaEventElapsedTime: %s",
                              cudaGetErrorString(e));
            rc = -1;
        }
    }
    /* Release 0..n-1: the later markers move to the front, the released events after. */
    const int rest = held - n;
    memcpy(t->spare, t->ev, (size_t)n * sizeof(cudaEvent_t));
    memmove(t->ev, t->ev + n, (size_t)rest * sizeof(cudaEvent_t));
    memcpy(t->ev + rest, t->spare, (size_t)n * sizeof(cudaEvent_t));
    t->used = rest;
    return rc;
}

/* Pinned host staging for small host → device copies (cu_to_device): a ring of
 * UPLOAD_SLOTS slots of UPLOAD_SLOT_BYTES, each with the event recorded after the copy
 * out of it, so a slot is refilled only once its copy has left. */
enum { UPLOAD_SLOTS = 16, UPLOAD_SLOT_BYTES = 256 << 10 };
struct cuda_upload_ring {
    unsigned char *buf; /* pinned, UPLOAD_SLOTS · UPLOAD_SLOT_BYTES */
    cudaEvent_t ev[UPLOAD_SLOTS];
    int recorded[UPLOAD_SLOTS];
    int next;
};

static void upload_ring_destroy(struct cuda_upload_ring *r) {
    if (!r) return;
    for (int i = 0; i < UPLOAD_SLOTS; i++) cudaEventDestroy(r->ev[i]);
    cudaFreeHost(r->buf);
    free(r);
}

/* The ring, created at the first upload; NULL when it is off (RLVR_CUDA_STAGED_UPLOAD=0,
 * read then) or could not be made (pinned memory or events refused: the plain path). */
static struct cuda_upload_ring *upload_ring(cuda_ctx *c) {
    if (c->upload_state == 0) {
        const char *e = getenv("RLVR_CUDA_STAGED_UPLOAD");
        c->upload_state = 1;
        if (e && strcmp(e, "0") == 0) return NULL;
        struct cuda_upload_ring *r = (struct cuda_upload_ring *)calloc(1, sizeof *r);
        if (!r) return NULL;
        if (cudaMallocHost((void **)&r->buf, (size_t)UPLOAD_SLOTS * UPLOAD_SLOT_BYTES) !=
            cudaSuccess) {
            (void)cudaGetLastError();
            free(r);
            return NULL;
        }
        int made = 0;
        while (made < UPLOAD_SLOTS &&
               cudaEventCreateWithFlags(&r->ev[made], cudaEventDisableTiming) == cudaSuccess)
            made++;
        if (made < UPLOAD_SLOTS) {
            (void)cudaGetLastError();
            for (int i = 0; i < made; i++) cudaEventDestroy(r->ev[i]);
            cudaFreeHost(r->buf);
            free(r);
            return NULL;
        }
        c->upload = r;
        c->upload_state = 2;
    }
    return c->upload_state == 2 ? c->upload : NULL;
}

static void cu_destroy(rlvr_backend *be) {
    if (!be) return;
    cuda_ctx *c = cuda_get(be);
    if (c) {
        cudaStreamSynchronize(c->stream);
        for (int i = 0; i < SCRATCH_COUNT; i++)
            if (c->scratch[i]) cudaFree(c->scratch[i]);
        cuda_gemm_tuner_destroy(c->tuner);
        if (c->cublas) cublasDestroy(c->cublas);
        if (c->cublas_ws) cudaFree(c->cublas_ws);
        timer_pool_destroy(c->timer);
        upload_ring_destroy(c->upload);
        if (c->stream) cudaStreamDestroy(c->stream);
        free(c);
    }
    free(be);
}

static const char *cu_error(rlvr_backend *be) {
    cuda_ctx *c = cuda_get(be);
    if (!c->has_err) {
        /* Pick up asynchronous faults without blocking. */
        cudaError_t e = cudaStreamQuery(c->stream);
        if (e == cudaErrorNotReady)
            (void)cudaGetLastError(); /* "still running" is no error: keep it out of the
                                         launch checks (they report right after launch) */
        else if (e != cudaSuccess)
            cuda_record_error(c, __FILE__, __LINE__, "asynchronous error: %s",
                              cudaGetErrorString(e));
    }
    return c->has_err ? c->err : NULL;
}

static void *cu_alloc(rlvr_backend *be, size_t bytes) {
    cuda_ctx *c = cuda_get(be);
    void *p = NULL;
    size_t rounded = (bytes + 255) / 256 * 256;
    cudaError_t e = cudaMalloc(&p, rounded ? rounded : 256);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        cuda_record_error(c, __FILE__, __LINE__, "cudaMalloc of %zu bytes: %s", bytes,
                          cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

static void cu_free(rlvr_backend *be, void *p) {
    cuda_ctx *c = cuda_get(be);
    if (!p) return;
    /* Work queued on our stream may still use p. */
    CU_CHECK(c, cudaStreamSynchronize(c->stream));
    CU_CHECK(c, cudaFree(p));
}

static void cu_zero(rlvr_backend *be, void *p, size_t bytes) {
    cuda_ctx *c = cuda_get(be);
    if (bytes) CU_CHECK(c, cudaMemsetAsync(p, 0, bytes, c->stream));
}

static void cu_copy(rlvr_backend *be, void *dst, const void *src, size_t bytes) {
    cuda_ctx *c = cuda_get(be);
    if (bytes && dst != src)
        CU_CHECK(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
}

/* host_src may be reused or freed as soon as this returns. Up to UPLOAD_SLOT_BYTES: copied
 * into a slot of the pinned ring and sent from there without waiting (the copy is ordered
 * on the stream like any op; the slot is refilled only after its event). A decode step
 * makes 3–5 such uploads (inputs, changed block-table rows, uniforms) and each used to
 * cost the host a wait on the stream with the GPU idle. Larger copies (weights, batches)
 * from pageable memory, then a wait, as before. */
static void cu_to_device(rlvr_backend *be, void *dst, const void *host_src, size_t bytes) {
    cuda_ctx *c = cuda_get(be);
    if (!bytes) return;
    struct cuda_upload_ring *r = bytes <= UPLOAD_SLOT_BYTES ? upload_ring(c) : NULL;
    if (r) {
        const int i = r->next;
        r->next = (i + 1) % UPLOAD_SLOTS;
        if (r->recorded[i]) CU_CHECK(c, cudaEventSynchronize(r->ev[i]));
        unsigned char *slot = r->buf + (size_t)i * UPLOAD_SLOT_BYTES;
        memcpy(slot, host_src, bytes);
        CU_CHECK(c, cudaMemcpyAsync(dst, slot, bytes, cudaMemcpyHostToDevice, c->stream));
        CU_CHECK(c, cudaEventRecord(r->ev[i], c->stream));
        r->recorded[i] = 1;
        return;
    }
    CU_CHECK(c, cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, c->stream));
    CU_CHECK(c, cudaStreamSynchronize(c->stream));
}

static void cu_to_host(rlvr_backend *be, void *host_dst, const void *src, size_t bytes) {
    cuda_ctx *c = cuda_get(be);
    if (!bytes) return;
    CU_CHECK(c, cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
    CU_CHECK(c, cudaStreamSynchronize(c->stream));
}

static void cu_act_from_f32(rlvr_backend *be, void *dst_act, const float *host_src,
                            size_t n) {
    cuda_ctx *c = cuda_get(be);
    if (!n) return;
    size_t chunk = n < STAGE_ELEMS ? n : STAGE_ELEMS;
    uint16_t *stage = (uint16_t *)malloc(chunk * sizeof(uint16_t));
    if (!stage) {
        cuda_record_error(c, __FILE__, __LINE__, "act_from_f32: host out of memory");
        return;
    }
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t m = n - i0 < chunk ? n - i0 : chunk;
        for (size_t i = 0; i < m; i++) stage[i] = host_f32_to_bf16(host_src[i0 + i]);
        CU_CHECK(c, cudaMemcpyAsync((uint16_t *)dst_act + i0, stage, m * sizeof(uint16_t),
                                    cudaMemcpyHostToDevice, c->stream));
        CU_CHECK(c, cudaStreamSynchronize(c->stream));
    }
    free(stage);
}

static void cu_act_to_f32(rlvr_backend *be, float *host_dst, const void *src_act, size_t n) {
    cuda_ctx *c = cuda_get(be);
    if (!n) return;
    size_t chunk = n < STAGE_ELEMS ? n : STAGE_ELEMS;
    uint16_t *stage = (uint16_t *)malloc(chunk * sizeof(uint16_t));
    if (!stage) {
        cuda_record_error(c, __FILE__, __LINE__, "act_to_f32: host out of memory");
        return;
    }
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t m = n - i0 < chunk ? n - i0 : chunk;
        CU_CHECK(c, cudaMemcpyAsync(stage, (const uint16_t *)src_act + i0,
                                    m * sizeof(uint16_t), cudaMemcpyDeviceToHost, c->stream));
        CU_CHECK(c, cudaStreamSynchronize(c->stream));
        for (size_t i = 0; i < m; i++) host_dst[i0 + i] = host_bf16_to_f32(stage[i]);
    }
    free(stage);
}

static void cu_cast_f32_to_act(rlvr_backend *be, void *dst_act, const float *src, size_t n) {
    cuda_ctx *c = cuda_get(be);
    if (!n) return;
    cast_f32_to_bf16_kernel<<<cuda_blocks(n, 256), 256, 0, c->stream>>>((bf16 *)dst_act, src,
                                                                         n);
    CU_LAUNCH_CHECK(c, "cast_f32_to_bf16_kernel");
}

static void cu_sync(rlvr_backend *be) {
    cuda_ctx *c = cuda_get(be);
    CU_CHECK(c, cudaStreamSynchronize(c->stream));
}

/* ---- creation --------------------------------------------------------------------- */

extern "C" int rlvr_cuda_set_lmhead_chunks(rlvr_backend *be, int tokens, int vocab) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->lm_tchunk = tokens > 0 ? tokens : 0;
    c->lm_vchunk = vocab > 0 ? (vocab + 7) / 8 * 8 : 0;
    return 0;
}

extern "C" int rlvr_cuda_set_decode_fuse(rlvr_backend *be, int on) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->decode_fuse = cuda_switch(on);
    return 0;
}

extern "C" int rlvr_cuda_set_pdl(rlvr_backend *be, int on) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->pdl = cuda_switch(on);
    return 0;
}

extern "C" int rlvr_cuda_set_gemv(rlvr_backend *be, int on) {
    cuda_ctx *c = cuda_ctx_of(be);
    if (!c) return -1;
    c->gemv = on != 0;
    return 0;
}

extern "C" rlvr_backend *rlvr_cuda_backend_create(int device, char *err, size_t errlen) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(err, errlen, "cuda backend: no usable GPU (cudaGetDeviceCount: %s)",
                 cudaGetErrorString(e));
        return NULL;
    }
    if (device < 0 || device >= count) {
        snprintf(err, errlen, "cuda backend: device %d does not exist (found %d device%s)",
                 device, count, count == 1 ? "" : "s");
        return NULL;
    }
    e = cudaSetDevice(device);
    if (e != cudaSuccess) {
        snprintf(err, errlen, "cuda backend: cudaSetDevice(%d): %s", device,
                 cudaGetErrorString(e));
        return NULL;
    }
    rlvr_backend *be = (rlvr_backend *)calloc(1, sizeof *be);
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        snprintf(err, errlen, "cuda backend: host out of memory");
        return NULL;
    }
    c->device = device;
    c->lm_keep_cap = -1; /* RLVR_LM_KEEP_GB read at the first LM head call */
    /* LM head chunks: 0 = the automatic shape (lmhead.cu); RLVR_LM_CHUNKS=TxV fixes them */
    if (const char *lc = getenv("RLVR_LM_CHUNKS")) {
        int t = 0, v = 0;
        char tail = 0;
        if (sscanf(lc, "%dx%d%c", &t, &v, &tail) != 2 || t <= 0 || v <= 0) {
            snprintf(err, errlen,
                     "environment variable RLVR_LM_CHUNKS = '%s': expected TOKENSxVOCAB, "
                     "two positive integers (e.g. 1024x32768)",
                     lc);
            free(be);
            free(c);
            return NULL;
        }
        c->lm_tchunk = t;
        c->lm_vchunk = (v + 7) / 8 * 8;
    }
    {
        const char *g = getenv("RLVR_GEMV");
        c->gemv = !(g && !strcmp(g, "0")); /* on unless RLVR_GEMV=0 */
        const char *sk = getenv("RLVR_SKINNY");
        /* off unless RLVR_SKINNY=1 (every shape it takes), 2 (OC <= 1.5·IC only) or tune
         * (where a timing against cuBLAS chooses it, gemm_tune.cu) */
        c->skinny = !sk                   ? 0
                    : !strcmp(sk, "1")    ? 1
                    : !strcmp(sk, "2")    ? 2
                    : !strcmp(sk, "tune") ? 3
                                          : 0;
        /* the most rows it takes (RLVR_SKINNY_ROWS; the sixth H200 run: RLVR_SKINNY=2 won
         * at 32 sequences and lost at 256, so a cap is the next experiment) */
        const char *sr = getenv("RLVR_SKINNY_ROWS");
        c->skinny_rows = sr ? atoi(sr) : 256;
        if (c->skinny_rows < 1 || c->skinny_rows > 256) c->skinny_rows = 256;
        const char *ge = getenv("RLVR_GEMV_EARLY");
        c->weights_early = !(ge && !strcmp(ge, "0")); /* on unless RLVR_GEMV_EARLY=0 */
        const char *nf = getenv("RLVR_DECODE_NORM_FUSE");
        /* off unless RLVR_DECODE_NORM_FUSE=1: the seventh H200 run measured batch-1 decode
         * at 0.945 ms/token with the two kernels against 0.988 fused (the same bits) */
        c->norm_fuse_rv = nf && !strcmp(nf, "1");
        const char *qf = getenv("RLVR_DECODE_QKV_FUSE");
        c->qkv_fuse = !(qf && !strcmp(qf, "0")); /* on unless RLVR_DECODE_QKV_FUSE=0 */
    }
    be->ctx = c;
    e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        snprintf(err, errlen, "cuda backend: cudaStreamCreate: %s", cudaGetErrorString(e));
        c->stream = NULL;
        cu_destroy(be);
        return NULL;
    }
    cublasStatus_t s = cublasCreate(&c->cublas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, errlen, "cuda backend: cublasCreate: %s", cublasGetStatusString(s));
        c->cublas = NULL;
        cu_destroy(be);
        return NULL;
    }
    s = cublasSetStream(c->cublas, c->stream);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, errlen, "cuda backend: cublasSetStream: %s", cublasGetStatusString(s));
        cu_destroy(be);
        return NULL;
    }
    /* cuBLAS's own workspace by default: on the fourth H200 run an explicit 32 MiB one
     * (what cuBLAS's documentation recommends for Hopper) made the 0.5B training step
     * slower, 103.6k -> 96.2k tok/s. RLVR_CUBLAS_WORKSPACE_MB=N sets an explicit one of
     * N MiB (0: cuBLAS's own). */
    {
        size_t mb = 0;
        const char *ws = getenv("RLVR_CUBLAS_WORKSPACE_MB");
        if (ws && *ws) {
            char *end;
            const long v = strtol(ws, &end, 10);
            if (*end || v < 0 || v > 4096) {
                snprintf(err, errlen,
                         "environment variable RLVR_CUBLAS_WORKSPACE_MB = '%s': expected "
                         "0..4096 (MiB)",
                         ws);
                cu_destroy(be);
                return NULL;
            }
            mb = (size_t)v;
        }
        if (mb > 0) {
            e = cudaMalloc(&c->cublas_ws, mb << 20);
            if (e == cudaSuccess)
                s = cublasSetWorkspace(c->cublas, c->cublas_ws, mb << 20);
            if (e != cudaSuccess || s != CUBLAS_STATUS_SUCCESS) {
                snprintf(err, errlen, "cuda backend: cuBLAS workspace of %zu MiB: %s", mb,
                         e != cudaSuccess ? cudaGetErrorString(e) : cublasGetStatusString(s));
                cu_destroy(be);
                return NULL;
            }
        }
    }
    be->name = "cuda";
    be->act_dtype = RLVR_DTYPE_BF16;
    be->act_size = 2;
    be->qkv_store_fused_rows = c->qkv_fuse ? GEMV_MAX_N : 0;
    be->destroy = cu_destroy;
    be->error = cu_error;
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->zero = cu_zero;
    be->copy = cu_copy;
    be->to_device = cu_to_device;
    be->to_host = cu_to_host;
    be->act_from_f32 = cu_act_from_f32;
    be->act_to_f32 = cu_act_to_f32;
    be->cast_f32_to_act = cu_cast_f32_to_act;
    be->sync = cu_sync;
    be->graph_begin = cu_graph_begin;
    be->graph_end = cu_graph_end;
    be->graph_launch = cu_graph_launch;
    be->graph_free = cu_graph_free;
    be->timer_mark = cu_timer_mark;
    be->timer_read = cu_timer_read;
    cuda_embedding_register(be);
    cuda_elementwise_register(be);
    cuda_rmsnorm_register(be);
    cuda_matmul_register(be);
    cuda_attention_register(be);
    cuda_kvcache_register(be);
    cuda_sample_register(be);
    cuda_prefetch_register(be);
    cuda_lmhead_register(be);
    cuda_optim_register(be);
    return be;
}
