/*
 * engine/io/safetensors.h — Hugging Face safetensors: a validating mmap reader and an
 * atomic writer, single-file and sharded (model.safetensors.index.json).
 *
 * File format: u64 little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {str: str}}, then the data section. Validation follows the
 * reference implementation: N ≤ 100 MB and within the file, the header is a JSON
 * object, no duplicate names, offsets contiguous and non-overlapping covering the
 * whole data section, end − begin = Π shape × dtype size (overflow-checked), file
 * length exact. Every error names the file and the tensor/field.
 */
#ifndef RLVR_IO_SAFETENSORS_H
#define RLVR_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

typedef enum {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL
} st_dtype;

typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;   /* points into the mmapped file */
    size_t nbytes;
    const char *file;   /* path of the file holding it */
} st_tensor;

/* A set of tensors from one file or a sharded directory. */
typedef struct st_set st_set;

/* Opens a single .safetensors file. */
int st_open_file(const char *path, st_set **out, char *err, size_t errlen);
/* Opens a model directory: model.safetensors, or model.safetensors.index.json and the
 * shards it names (each shard validated; a tensor listed in the index but missing from
 * its shard, or present in two shards, is an error). */
int st_open_dir(const char *dir, st_set **out, char *err, size_t errlen);
void st_close(st_set *s);

int st_count(const st_set *s);
const st_tensor *st_get(const st_set *s, int i);
const st_tensor *st_find(const st_set *s, const char *name); /* NULL when absent */
const char *st_dtype_name(st_dtype d);   /* "F32", "BF16", ... */
size_t st_dtype_size(st_dtype d);

/* Converts a floating tensor (F32, F16, BF16, F64) to fp32 into dst[numel];
 * -1 with a message for other dtypes. */
int st_to_f32(const st_tensor *t, float *dst, char *err, size_t errlen);

/* ---- writing --------------------------------------------------------------- */
typedef struct {
    const char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data;  /* fp32 source, numel = Π shape */
} st_write_tensor;

/* Writes tensors to one file, converted to dtype (ST_F32, ST_BF16 or ST_F16; bf16 by
 * round-to-nearest-even), with {"format": "pt"} metadata so transformers accepts it.
 * Atomic (temp file, fsync, rename). */
int st_write_file(const char *path, const st_write_tensor *t, int n, st_dtype dtype,
                  char *err, size_t errlen);
/* Writes a model directory's weights: model.safetensors when the total fits in
 * max_shard_bytes (0 = never shard), otherwise model-0000i-of-0000N.safetensors shards
 * plus model.safetensors.index.json ({"metadata": {"total_size": ..}, "weight_map"}). */
int st_write_dir(const char *dir, const st_write_tensor *t, int n, st_dtype dtype,
                 size_t max_shard_bytes, char *err, size_t errlen);

/* ---- additions (helpers used by the reader/writer, public for other modules) --- */

/* Scalar conversions. f32 -> bf16/f16 round to nearest, ties to even; NaN stays NaN
 * (quiet, sign kept); values past the target's range become ±inf. */
uint16_t st_f32_to_bf16(float f);
float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float f);
float st_f16_to_f32(uint16_t h);

/* Parses a dtype name ("F32", "BF16", ...); 0 on success, -1 when unknown. */
int st_dtype_parse(const char *name, st_dtype *out);

/* Value of a "__metadata__" key of the (first) file holding it; NULL when absent. */
const char *st_metadata(const st_set *s, const char *key);

#endif
