/*
 * engine/io/fileio.c — atomic file writes (temp file, fsync, rename, fsync of the
 * directory) and whole-file reads. See fileio.h for the contract.
 */
#include "engine/io/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fio_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void fio_atomic_free(fio_atomic *a) {
    free(a->path);
    free(a->tmp_path);
    a->path = NULL;
    a->tmp_path = NULL;
    a->f = NULL;
}

// ---------------------------------------------------------------------------------------
// atomic writes

int fio_atomic_open(fio_atomic *a, const char *path, char *err, size_t errlen) {
    a->f = NULL;
    a->path = NULL;
    a->tmp_path = NULL;
    if (!path || !*path) {
        fio_err(err, errlen, "fio_atomic_open: empty path");
        return -1;
    }
    size_t n = strlen(path) + 32;
    a->path = strdup(path);
    a->tmp_path = malloc(n);
    if (!a->path || !a->tmp_path) {
        fio_atomic_free(a);
        fio_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    snprintf(a->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(a->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fio_err(err, errlen, "%s: cannot create temporary file %s: %s", path, a->tmp_path,
                strerror(errno));
        fio_atomic_free(a);
        return -1;
    }
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp_path);
        fio_err(err, errlen, "%s: fdopen: %s", path, strerror(e));
        fio_atomic_free(a);
        return -1;
    }
    return 0;
}

/* fsync of the directory holding path, so the rename itself is durable. */
static int fio_sync_parent(const char *path, char *err, size_t errlen) {
    char *dir = strdup(path);
    if (!dir) {
        fio_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    char *slash = strrchr(dir, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        fio_err(err, errlen, "%s: cannot open directory %s to sync it: %s", path, dir,
                strerror(errno));
        free(dir);
        return -1;
    }
    int rc = 0;
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
        fio_err(err, errlen, "%s: fsync of directory %s: %s", path, dir, strerror(errno));
        rc = -1;
    }
    close(fd);
    free(dir);
    return rc;
}

int fio_atomic_commit(fio_atomic *a, char *err, size_t errlen) {
    if (!a->f) {
        fio_err(err, errlen, "%s: fio_atomic_commit on a file that is not open",
                a->path ? a->path : "(null)");
        fio_atomic_free(a);
        return -1;
    }
    int rc = 0;
    if (fflush(a->f) != 0 || ferror(a->f)) {
        fio_err(err, errlen, "%s: write to %s failed: %s", a->path, a->tmp_path,
                strerror(errno));
        rc = -1;
    } else if (fsync(fileno(a->f)) != 0) {
        fio_err(err, errlen, "%s: fsync of %s failed: %s", a->path, a->tmp_path,
                strerror(errno));
        rc = -1;
    }
    if (fclose(a->f) != 0 && rc == 0) {
        fio_err(err, errlen, "%s: close of %s failed: %s", a->path, a->tmp_path,
                strerror(errno));
        rc = -1;
    }
    a->f = NULL;
    if (rc == 0 && rename(a->tmp_path, a->path) != 0) {
        fio_err(err, errlen, "%s: rename from %s failed: %s", a->path, a->tmp_path,
                strerror(errno));
        rc = -1;
    }
    if (rc != 0) {
        unlink(a->tmp_path);
    } else {
        rc = fio_sync_parent(a->path, err, errlen);
    }
    fio_atomic_free(a);
    return rc;
}

void fio_atomic_abort(fio_atomic *a) {
    if (a->f) fclose(a->f);
    if (a->tmp_path) unlink(a->tmp_path);
    fio_atomic_free(a);
}

int fio_write_file(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    fio_atomic a;
    if (fio_atomic_open(&a, path, err, errlen) != 0) return -1;
    if (len > 0 && fwrite(data, 1, len, a.f) != len) {
        fio_err(err, errlen, "%s: write of %zu bytes failed: %s", path, len, strerror(errno));
        fio_atomic_abort(&a);
        return -1;
    }
    return fio_atomic_commit(&a, err, errlen);
}

// ---------------------------------------------------------------------------------------
// reads and directories

int fio_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    *data = NULL;
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fio_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        fio_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(f);
                fio_err(err, errlen, "%s: out of memory after %zu bytes", path, n);
                return -1;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        fio_err(err, errlen, "%s: read failed: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    if (len) *len = n;
    return 0;
}

int fio_mkdirs(const char *path, char *err, size_t errlen) {
    if (!path || !*path) {
        fio_err(err, errlen, "fio_mkdirs: empty path");
        return -1;
    }
    char *p = strdup(path);
    if (!p) {
        fio_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            fio_err(err, errlen, "%s: cannot create directory %s: %s", path, p,
                    strerror(errno));
            free(p);
            return -1;
        }
        p[i] = c;
    }
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fio_err(err, errlen, "%s: exists and is not a directory", path);
        rc = -1;
    }
    free(p);
    return rc;
}
