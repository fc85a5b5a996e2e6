/*
 * kernels/backend.c — picks an op-table implementation by name.
 */
#include "kernels/backend.h"

#include <stdio.h>
#include <string.h>

rlvr_backend *rlvr_backend_create(const char *name, int threads, char *err, size_t errlen) {
    if (!name || strcmp(name, "cpu") == 0) {
        rlvr_backend *be = rlvr_cpu_backend_create(threads);
        if (!be) snprintf(err, errlen, "cpu backend: out of memory");
        return be;
    }
    if (strcmp(name, "cuda") == 0) {
#ifdef RLVR_HAVE_CUDA
        return rlvr_cuda_backend_create(0, err, errlen);
#else
        snprintf(err, errlen,
                 "device 'cuda': this rlvr was built without the CUDA backend (nvcc was not "
                 "found at configure time; reconfigure with -DRLVR_CUDA=ON)");
        return NULL;
#endif
    }
    snprintf(err, errlen, "unknown device '%s': expected 'cpu' or 'cuda'", name);
    return NULL;
}
