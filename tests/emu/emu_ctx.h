/*
 * tests/emu/emu_ctx.h — a fake CUDA backend for kernels run by the CPU emulation
 * (tests/emu/cuda_emu.h): name "cuda", bf16 activations in host memory, alloc/free/error
 * set; each test registers the op families it checks (cuda_<family>_register) on it.
 */
#ifndef RLVR_TESTS_EMU_EMU_CTX_H
#define RLVR_TESTS_EMU_EMU_CTX_H

#include "kernels/cuda/cuda_internal.cuh"

rlvr_backend *emu_backend_create(void);
void emu_backend_destroy(rlvr_backend *be);

#endif
