/*
 * engine/io/st_write.c — the safetensors writer: fp32 tensors converted to F32, BF16
 * or F16, one file or a sharded model directory with model.safetensors.index.json.
 * Every file goes through fio_atomic (temp file, fsync, rename).
 *
 * Layout written (same as the reference Python writer): u64 LE header length N, the
 * JSON header {"__metadata__":{"format":"pt"}, name: {dtype, shape, data_offsets}, ...}
 * padded with spaces so N is a multiple of 8, then the tensors back to back in the
 * order given.
 */
#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/io/st_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void st_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// ---------------------------------------------------------------------------------------
// a growable string

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} st_buf;

static void sb_put(st_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_printf(st_buf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = 1;
        return;
    }
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal (the text is already checked to be UTF-8). */
static void sb_json_str(st_buf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u == '"' || u == '\\') {
            char esc[2] = {'\\', (char)u};
            sb_put(b, esc, 2);
        } else if (u < 0x20) {
            sb_printf(b, "\\u%04x", u);
        } else {
            sb_put(b, c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

// ---------------------------------------------------------------------------------------
// argument checks

/* Checks one tensor; sets *nbytes to its size in dtype. */
static int st_check_tensor(const char *path, const st_write_tensor *t, size_t esz,
                           uint64_t *nbytes, char *err, size_t errlen) {
    if (!t->name || !*t->name) {
        st_err(err, errlen, "%s: a tensor has an empty name", path);
        return -1;
    }
    if (strcmp(t->name, "__metadata__") == 0 ||
        !st_utf8_valid((const unsigned char *)t->name, strlen(t->name))) {
        st_err(err, errlen, "%s: tensor name '%s' is reserved or not UTF-8", path, t->name);
        return -1;
    }
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) {
        st_err(err, errlen, "%s: tensor '%s': ndim %d (expected 0..%d)", path, t->name, t->ndim,
               ST_MAX_DIMS);
        return -1;
    }
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0) {
            st_err(err, errlen, "%s: tensor '%s': shape[%d] = %lld is negative", path, t->name,
                   d, (long long)t->shape[d]);
            return -1;
        }
        if (__builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel)) {
            st_err(err, errlen, "%s: tensor '%s': shape product overflows", path, t->name);
            return -1;
        }
    }
    if (__builtin_mul_overflow(numel, (uint64_t)esz, nbytes) || *nbytes > (uint64_t)SIZE_MAX) {
        st_err(err, errlen, "%s: tensor '%s': byte size overflows", path, t->name);
        return -1;
    }
    if (numel > 0 && !t->data) {
        st_err(err, errlen, "%s: tensor '%s': data is NULL", path, t->name);
        return -1;
    }
    return 0;
}

static int st_cmp_wname(const void *a, const void *b) {
    return strcmp((*(const st_write_tensor *const *)a)->name,
                  (*(const st_write_tensor *const *)b)->name);
}

/* Rejects a name given twice. */
static int st_check_unique(const char *path, const st_write_tensor *t, int n, char *err,
                           size_t errlen) {
    if (n < 2) return 0;
    const st_write_tensor **v = malloc(sizeof(*v) * (size_t)n);
    if (!v) {
        st_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (int i = 0; i < n; i++)
        v[i] = &t[i];
    qsort(v, (size_t)n, sizeof(*v), st_cmp_wname);
    int rc = 0;
    for (int i = 1; i < n && rc == 0; i++) {
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
            st_err(err, errlen, "%s: tensor name '%s' given twice", path, v[i]->name);
            rc = -1;
        }
    }
    free(v);
    return rc;
}

static int st_check_dtype(const char *path, st_dtype dtype, char *err, size_t errlen) {
    if (dtype == ST_F32 || dtype == ST_BF16 || dtype == ST_F16) return 0;
    st_err(err, errlen, "%s: cannot write dtype %s (expected F32, BF16 or F16)", path,
           st_dtype_name(dtype));
    return -1;
}

// ---------------------------------------------------------------------------------------
// one file

/* Writes n elements of src converted to dtype. */
static int st_write_data(FILE *f, const float *src, uint64_t n, st_dtype dtype) {
    if (dtype == ST_F32) return n == 0 || fwrite(src, 4, (size_t)n, f) == (size_t)n ? 0 : -1;
    enum { CHUNK = 8192 };
    uint16_t buf[CHUNK];
    for (uint64_t i = 0; i < n; i += CHUNK) {
        size_t m = (size_t)(n - i < CHUNK ? n - i : CHUNK);
        for (size_t j = 0; j < m; j++)
            buf[j] = dtype == ST_BF16 ? st_f32_to_bf16(src[i + j]) : st_f32_to_f16(src[i + j]);
        if (fwrite(buf, 2, m, f) != m) return -1;
    }
    return 0;
}

int st_write_file(const char *path, const st_write_tensor *t, int n, st_dtype dtype, char *err,
                  size_t errlen) {
    if (st_check_dtype(path, dtype, err, errlen) != 0) return -1;
    if (n < 0 || (n > 0 && !t)) {
        st_err(err, errlen, "%s: bad tensor list (n = %d)", path, n);
        return -1;
    }
    size_t esz = st_dtype_size(dtype);
    st_buf h = {0};
    const char *open_meta = "{\"__metadata__\":{\"format\":\"pt\"}";
    sb_put(&h, open_meta, strlen(open_meta));
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t nb;
        if (st_check_tensor(path, &t[i], esz, &nb, err, errlen) != 0) {
            free(h.p);
            return -1;
        }
        sb_put(&h, ",", 1);
        sb_json_str(&h, t[i].name);
        sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(dtype));
        for (int d = 0; d < t[i].ndim; d++)
            sb_printf(&h, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
        sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                  (unsigned long long)(off + nb));
        off += nb;
    }
    sb_put(&h, "}", 1);
    while (!h.oom && h.n % 8 != 0)
        sb_put(&h, " ", 1);
    if (h.oom) {
        st_err(err, errlen, "%s: out of memory building the header", path);
        free(h.p);
        return -1;
    }
    if (st_check_unique(path, t, n, err, errlen) != 0) {
        free(h.p);
        return -1;
    }

    fio_atomic a;
    if (fio_atomic_open(&a, path, err, errlen) != 0) {
        free(h.p);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.n >> (8 * i));
    int ok = fwrite(len8, 1, 8, a.f) == 8 && fwrite(h.p, 1, h.n, a.f) == h.n;
    free(h.p);
    for (int i = 0; ok && i < n; i++) {
        uint64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (uint64_t)t[i].shape[d];
        ok = st_write_data(a.f, t[i].data, numel, dtype) == 0;
    }
    if (!ok) {
        st_err(err, errlen, "%s: write failed: %s", path, strerror(errno));
        fio_atomic_abort(&a);
        return -1;
    }
    return fio_atomic_commit(&a, err, errlen);
}

// ---------------------------------------------------------------------------------------
// model directories

static char *st_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* 1 when name looks like "model-00001-of-00004.safetensors". */
static int st_is_shard_name(const char *name) {
    unsigned a, b;
    char tail[16];
    return sscanf(name, "model-%5u-of-%5u.%15s", &a, &b, tail) == 3 &&
           strcmp(tail, "safetensors") == 0 && strlen(name) == 32;
}

/* Removes a file that would shadow or confuse the set just written (transformers
 * prefers model.safetensors over an index). keep_shards: leave shard files alone. */
static int st_remove_stale(const char *dir, int remove_single, int nshards, char *err,
                           size_t errlen) {
    const char *names[2] = {"model.safetensors", "model.safetensors.index.json"};
    char *p = st_join(dir, names[remove_single ? 0 : 1]);
    if (!p) {
        st_err(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    if (unlink(p) != 0 && errno != ENOENT) {
        st_err(err, errlen, "%s: cannot remove stale %s: %s", dir, p, strerror(errno));
        free(p);
        return -1;
    }
    free(p);
    /* shards of an earlier save with another shard count */
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!st_is_shard_name(e->d_name)) continue;
        unsigned a, b;
        if (sscanf(e->d_name, "model-%5u-of-%5u", &a, &b) == 2 && (int)b == nshards) continue;
        char *q = st_join(dir, e->d_name);
        if (!q || (unlink(q) != 0 && errno != ENOENT)) {
            st_err(err, errlen, "%s: cannot remove stale shard %s", dir, e->d_name);
            rc = -1;
        }
        free(q);
        if (rc) break;
    }
    closedir(d);
    return rc;
}

int st_write_dir(const char *dir, const st_write_tensor *t, int n, st_dtype dtype,
                 size_t max_shard_bytes, char *err, size_t errlen) {
    if (st_check_dtype(dir, dtype, err, errlen) != 0) return -1;
    if (n < 0 || (n > 0 && !t)) {
        st_err(err, errlen, "%s: bad tensor list (n = %d)", dir, n);
        return -1;
    }
    if (st_check_unique(dir, t, n, err, errlen) != 0) return -1;
    if (fio_mkdirs(dir, err, errlen) != 0) return -1;
    size_t esz = st_dtype_size(dtype);
    uint64_t total = 0;
    int *shard_of = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!shard_of) {
        st_err(err, errlen, "%s: out of memory", dir);
        return -1;
    }
    /* Greedy in the given order, like transformers: a new shard starts when the next
     * tensor would overflow the current one; a tensor larger than the limit sits alone. */
    int nshards = 1;
    uint64_t cur = 0;
    for (int i = 0; i < n; i++) {
        uint64_t nb;
        if (st_check_tensor(dir, &t[i], esz, &nb, err, errlen) != 0) {
            free(shard_of);
            return -1;
        }
        if (max_shard_bytes > 0 && cur > 0 && cur + nb > max_shard_bytes) {
            nshards++;
            cur = 0;
        }
        shard_of[i] = nshards - 1;
        cur += nb;
        total += nb;
    }
    int rc = -1;
    char *path = NULL;
    if (nshards == 1) {
        path = st_join(dir, "model.safetensors");
        if (!path) goto oom;
        if (st_write_file(path, t, n, dtype, err, errlen) != 0) goto done;
        rc = st_remove_stale(dir, 0, 0, err, errlen);
        goto done;
    }
    st_buf idx = {0};
    sb_printf(&idx, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {",
              (unsigned long long)total);
    for (int s = 0, i = 0; s < nshards; s++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, nshards);
        int j = i;
        while (j < n && shard_of[j] == s)
            j++;
        free(path);
        path = st_join(dir, name);
        if (!path) {
            free(idx.p);
            goto oom;
        }
        if (st_write_file(path, t + i, j - i, dtype, err, errlen) != 0) {
            free(idx.p);
            goto done;
        }
        for (int k = i; k < j; k++) {
            sb_put(&idx, k ? ",\n    " : "\n    ", k ? 6 : 5);
            sb_json_str(&idx, t[k].name);
            sb_put(&idx, ": ", 2);
            sb_json_str(&idx, name);
        }
        i = j;
    }
    sb_put(&idx, "\n  }\n}\n", 7);
    if (idx.oom) {
        free(idx.p);
        goto oom;
    }
    free(path);
    path = st_join(dir, "model.safetensors.index.json");
    if (!path) {
        free(idx.p);
        goto oom;
    }
    rc = fio_write_file(path, idx.p, idx.n, err, errlen);
    free(idx.p);
    if (rc == 0) rc = st_remove_stale(dir, 1, nshards, err, errlen);
    goto done;
oom:
    st_err(err, errlen, "%s: out of memory", dir);
    rc = -1;
done:
    free(path);
    free(shard_of);
    return rc;
}
