/*
 * engine/runlog/ckpt_util.c — the trainer-state safetensors writer (F32 from backend
 * memory, U8 blobs from host memory: the engine/io writer takes fp32 host tensors
 * only), checkpoint names, directory fsync and removal.
 */
#define _XOPEN_SOURCE 700
#include "engine/runlog/ckpt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/io/fileio.h"
#include "engine/runlog/jbuf.h"

int ckpt_name_ok(const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '-') return 0;
    }
    return 1;
}

int ckpt_join(char *out, size_t n, const char *a, const char *b, char *err, size_t errlen) {
    int k = snprintf(out, n, "%s/%s", a, b);
    if (k < 0 || (size_t)k >= n) {
        snprintf(err, errlen, "path too long: %.200s/%.100s", a, b);
        return -1;
    }
    return 0;
}

int ckpt_parse_name(const char *name, long *step) {
    if (strncmp(name, "step-", 5) != 0) return 0;
    const char *c = name + 5;
    long v = 0;
    int digits = 0;
    for (; *c >= '0' && *c <= '9' && digits < 18; c++, digits++) v = v * 10 + (*c - '0');
    if (!digits) return 0;
    *step = v;
    if (!*c) return 1;
    return strcmp(c, CKPT_PARTIAL) == 0 ? 2 : 0;
}

int ckpt_write_state(const char *path, const ckpt_tensor *t, int n, char *err, size_t errlen) {
    jbuf h;
    jbuf_init(&h);
    jbuf_puts(&h, "{\"__metadata__\":{\"format\":\"rlvr-trainer-state\"}");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const uint64_t bytes = (uint64_t)t[i].numel * (t[i].be ? 4u : 1u);
        char tmp[160];
        jbuf_puts(&h, ",");
        jbuf_str(&h, t[i].name, strlen(t[i].name));
        snprintf(tmp, sizeof tmp, ":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
                 t[i].be ? "F32" : "U8", (long long)t[i].numel, (unsigned long long)off,
                 (unsigned long long)(off + bytes));
        jbuf_puts(&h, tmp);
        off += bytes;
    }
    jbuf_puts(&h, "}");
    while (h.n % 8) jbuf_puts(&h, " "); /* data section 8-byte aligned */
    if (!jbuf_ok(&h)) {
        jbuf_free(&h);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    fio_atomic a;
    if (fio_atomic_open(&a, path, err, errlen)) {
        jbuf_free(&h);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int ok = fwrite(len8, 1, 8, a.f) == 8 && fwrite(h.p, 1, h.n, a.f) == h.n;
    jbuf_free(&h);
    const size_t chunk = (size_t)4 << 20; /* floats per device→host copy (16 MiB) */
    float *buf = NULL;
    for (int i = 0; ok && i < n; i++) {
        if (!t[i].be) {
            ok = t[i].numel == 0 || fwrite(t[i].data, 1, (size_t)t[i].numel, a.f) == (size_t)t[i].numel;
            continue;
        }
        if (!buf && !(buf = malloc(chunk * sizeof(float)))) {
            fio_atomic_abort(&a);
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
        for (size_t s = 0; ok && s < (size_t)t[i].numel; s += chunk) {
            size_t k = (size_t)t[i].numel - s < chunk ? (size_t)t[i].numel - s : chunk;
            t[i].be->to_host(t[i].be, buf, (const float *)t[i].data + s, k * sizeof(float));
            ok = fwrite(buf, sizeof(float), k, a.f) == k;
        }
    }
    free(buf);
    if (!ok) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        fio_atomic_abort(&a);
        return -1;
    }
    return fio_atomic_commit(&a, err, errlen);
}

int ckpt_fsync_dir(const char *dir, char *err, size_t errlen) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot fsync the directory: %s", dir, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int ckpt_remove_dir(const char *dir, char *err, size_t errlen) {
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    char marker[4096];
    snprintf(marker, sizeof marker, "%s/%s", dir, CKPT_MARKER);
    if (unlink(marker) == 0) {
        if (ckpt_fsync_dir(dir, err, errlen)) return -1;
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "%s: cannot remove: %s", marker, strerror(errno));
        return -1;
    }
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        snprintf(err, errlen, "%s: cannot remove the directory: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}
