/*
 * engine/io/fileio.h — files that are never left half-written, and whole-file reads.
 * Every writer in rlvr goes through fio_atomic_*: data goes to "<path>.tmp.<pid>",
 * is fsync'ed, renamed over <path>, and the directory is fsync'ed.
 * Errors: functions return 0 on success, -1 on failure with a message naming the
 * path and the OS error in err (errlen bytes).
 */
#ifndef RLVR_IO_FILEIO_H
#define RLVR_IO_FILEIO_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char *path;     /* final path */
    char *tmp_path; /* temporary path being written */
} fio_atomic;

/* Opens a temporary file beside path for writing. */
int fio_atomic_open(fio_atomic *a, const char *path, char *err, size_t errlen);
/* Flushes, fsyncs, renames over the final path, fsyncs the directory. Always frees a. */
int fio_atomic_commit(fio_atomic *a, char *err, size_t errlen);
/* Removes the temporary file and frees a (for error paths). */
void fio_atomic_abort(fio_atomic *a);
/* Writes a whole buffer atomically. */
int fio_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* Reads a whole file into a NUL-terminated malloc'ed buffer (*len excludes the NUL). */
int fio_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen);
/* mkdir -p; 0 when it exists or was made. */
int fio_mkdirs(const char *path, char *err, size_t errlen);

#endif
