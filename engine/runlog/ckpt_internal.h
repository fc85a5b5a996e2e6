/*
 * engine/runlog/ckpt_internal.h — helpers shared by the checkpoint files (not part of
 * the public contract).
 */
#ifndef RLVR_RUNLOG_CKPT_INTERNAL_H
#define RLVR_RUNLOG_CKPT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

#define CKPT_STATE_ST "trainer_state.safetensors"
#define CKPT_STATE_JSON "trainer_state.json"
#define CKPT_MARKER "COMPLETE"
#define CKPT_PARTIAL ".partial" /* suffix of a checkpoint being written */
#define CKPT_FORMAT "rlvr-checkpoint"
#define CKPT_VERSION 1

/* One tensor of trainer_state.safetensors: F32 from backend memory (be != NULL) or U8
 * from host memory (be == NULL). */
typedef struct {
    const char *name;
    int64_t numel;
    const void *data;
    rlvr_backend *be; /* non-NULL: data is f32 backend memory, copied out in chunks */
} ckpt_tensor;

/* Writes the tensors as one safetensors file, atomically. */
int ckpt_write_state(const char *path, const ckpt_tensor *t, int n, char *err, size_t errlen);
/* 1 when name is 1..63 bytes of [A-Za-z0-9_.-]. */
int ckpt_name_ok(const char *name);
/* fsync of a directory. */
int ckpt_fsync_dir(const char *dir, char *err, size_t errlen);
/* Removes a checkpoint directory: its COMPLETE marker first (made durable), then the
 * rest, recursively. A missing directory is not an error. */
int ckpt_remove_dir(const char *dir, char *err, size_t errlen);
/* out = a + "/" + b; -1 with a message when it does not fit in n bytes. */
int ckpt_join(char *out, size_t n, const char *a, const char *b, char *err, size_t errlen);
/* Parses "step-<digits>" (returns 1) or "step-<digits>.partial" (returns 2, a save
 * that failed or was interrupted); 0 otherwise. */
int ckpt_parse_name(const char *name, long *step);

#endif
