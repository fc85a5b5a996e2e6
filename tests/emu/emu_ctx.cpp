/*
 * tests/emu/emu_ctx.cpp — the CUDA backend's context for kernels run by the CPU
 * emulation (tests/emu/cuda_emu.h): a fake "cuda" rlvr_backend whose memory is host
 * memory, and the two functions of kernels/cuda/backend_cuda.cu the launchers call
 * (cuda_record_error, cuda_scratch; scratch comes poisoned with 0xFF bytes, NaN in bf16
 * and f32, so a kernel that reads partials nobody wrote fails its comparison).
 */
#include "tests/emu/emu_ctx.h"

#include <cstdarg>

void cuda_record_error(cuda_ctx *c, const char *file, int line, const char *fmt, ...) {
    if (c->has_err) return;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int k = snprintf(c->err, sizeof c->err, "cuda (emulated) %s:%d: ", base, line);
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
    free(c->scratch[slot]);
    c->scratch[slot] = malloc(bytes);
    c->scratch_bytes[slot] = c->scratch[slot] ? bytes : 0;
    if (!c->scratch[slot]) {
        cuda_record_error(c, __FILE__, __LINE__, "scratch of %zu bytes: out of memory", bytes);
        return NULL;
    }
    memset(c->scratch[slot], 0xFF, bytes);
    return c->scratch[slot];
}

static void *emu_alloc(rlvr_backend *, size_t bytes) { return malloc(bytes ? bytes : 1); }
static void emu_free(rlvr_backend *, void *p) { free(p); }
static const char *emu_error(rlvr_backend *be) {
    cuda_ctx *c = (cuda_ctx *)be->ctx;
    return c->has_err ? c->err : NULL;
}

rlvr_backend *emu_backend_create(void) {
    rlvr_backend *be = (rlvr_backend *)calloc(1, sizeof *be);
    cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return NULL;
    }
    be->name = "cuda";
    be->act_size = 2;
    be->ctx = c;
    be->alloc = emu_alloc;
    be->free = emu_free;
    be->error = emu_error;
    return be;
}

void emu_backend_destroy(rlvr_backend *be) {
    if (!be) return;
    cuda_ctx *c = (cuda_ctx *)be->ctx;
    for (int i = 0; i < SCRATCH_COUNT; i++) free(c->scratch[i]);
    free(c);
    free(be);
}
