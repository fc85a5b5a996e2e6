/*
 * engine/runlog/checkpoint.h — training checkpoints: save, find the newest complete
 * one, load, prune.
 *
 * Layout: CKPT_DIR/step-000123/ (CKPT_DIR is the run's checkpoint.dir, by default
 * RUN_DIR/checkpoints) (at least 6 digits) holding
 *   config.json, model.safetensors (or shards + index)  model_save: a directory that
 *                                   transformers / vLLM load as-is
 *   tokenizer files                 copied from the paths given (basenames kept)
 *   trainer_state.safetensors       "optimizer.m", "optimizer.v" F32 [n_weights]; when the
 *                                   weights are saved in a dtype other than F32,
 *                                   "model.master" F32 [n_weights] (the exact fp32
 *                                   weights, for a bit-identical resume); every named
 *                                   host blob as U8 "blob.<name>" [len]
 *   trainer_state.json              {"format": "rlvr-checkpoint", "version": 1, "step",
 *                                    "optimizer_step", "n_weights", "weights_dtype",
 *                                    "scalars": {name: number}, "blobs": [names]}
 *   COMPLETE                        written last
 * A save writes everything into step-000123.partial/, each file atomically (temp file,
 * fsync, rename, directory fsync), then COMPLETE, and only then renames the directory
 * to step-000123/ (removing an older save of the same step first, its COMPLETE first).
 * So a failed save never harms an existing checkpoint, and a directory without COMPLETE
 * (a crash, or a copy cut short) is never taken for one: checkpoint_latest ignores it
 * and checkpoint_prune removes it (*.partial always; step-N/ without COMPLETE once a
 * newer complete checkpoint exists).
 */
#ifndef RLVR_RUNLOG_CHECKPOINT_H
#define RLVR_RUNLOG_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/model/model.h"
#include "engine/train/optimizer.h"

#define CHECKPOINT_NAME_MAX 64 /* bytes of a blob or scalar name, NUL included */

typedef struct {
    const char *name; /* 1..63 bytes of [A-Za-z0-9_.-] */
    const void *data;
    size_t len;
} checkpoint_blob;

typedef struct {
    const char *name; /* 1..63 bytes of [A-Za-z0-9_.-] */
    double value;     /* written exactly (integers up to 2^53 survive) */
} checkpoint_scalar;

typedef struct {
    long step;                    /* trainer step the state is *after* */
    const model *model;           /* required */
    const optimizer *opt;         /* NULL: no optimizer state (e.g. a final export) */
    int weights_dtype;            /* st_dtype of model.safetensors: ST_F32 (exact) or ST_BF16/ST_F16 */
    size_t max_shard_bytes;       /* model_save sharding; 0 = one file */
    const char *const *tokenizer_files; /* [n_tokenizer_files] source paths, copied */
    int n_tokenizer_files;
    const checkpoint_blob *blobs; /* [n_blobs] */
    int n_blobs;
    const checkpoint_scalar *scalars; /* [n_scalars] */
    int n_scalars;
} checkpoint_save_args;

/* Writes CKPT_DIR/step-<step>/ (run_dir below means CKPT_DIR) and, when path_out is not NULL, its path. */
int checkpoint_save(const char *run_dir, const checkpoint_save_args *a, char *path_out,
                    size_t path_len, char *err, size_t errlen);

/* Path of the newest complete checkpoint into path (and its step into *step when not
 * NULL). Returns 1 when found, 0 when there is none (no directory, or only incomplete
 * ones), -1 on an error reading the directory. */
int checkpoint_latest(const char *run_dir, char *path, size_t path_len, long *step, char *err,
                      size_t errlen);

/* Keeps the keep_last newest complete checkpoints (0 = keep all) and removes the older
 * complete ones, every *.partial one and every incomplete one older than the newest
 * complete one. Returns
 * the number of directories removed, -1 on error. */
int checkpoint_prune(const char *run_dir, int keep_last, char *err, size_t errlen);

/* ---- loading ---------------------------------------------------------------------- */
typedef struct checkpoint checkpoint;

/* Opens a checkpoint directory (must carry COMPLETE) and reads its trainer state. */
int checkpoint_open(const char *dir, checkpoint **out, char *err, size_t errlen);
long checkpoint_step(const checkpoint *c);
const char *checkpoint_dir(const checkpoint *c);
/* Restores the weights into an existing model of the same shape (every tensor's shape
 * is checked; from "model.master" when present, else from the model files). */
int checkpoint_load_model(const checkpoint *c, model *m, char *err, size_t errlen);
/* Restores m, v (to backend memory) and the step into an optimizer created for m. */
int checkpoint_load_optimizer(const checkpoint *c, optimizer *o, const model *m, char *err,
                              size_t errlen);
/* A blob's bytes (valid until checkpoint_close); -1 with a message when absent. */
int checkpoint_get_blob(const checkpoint *c, const char *name, const void **data, size_t *len,
                        char *err, size_t errlen);
/* A scalar; -1 with a message when absent. */
int checkpoint_get_scalar(const checkpoint *c, const char *name, double *value, char *err,
                          size_t errlen);
void checkpoint_close(checkpoint *c);

/* checkpoint_open + checkpoint_load_model + (when opt) checkpoint_load_optimizer; the
 * opened checkpoint is returned in *out for the blobs and scalars. */
int checkpoint_load(const char *dir, model *m, optimizer *opt, checkpoint **out, char *err,
                    size_t errlen);

#endif
