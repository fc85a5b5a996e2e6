/*
 * engine/io/st_read.c — the validating safetensors reader: mmap of each file, header
 * checks that follow the reference implementation (see safetensors.h), and sharded
 * model directories through model.safetensors.index.json.
 *
 * A set owns its mapped files and their parsed headers; tensor names point into the
 * header trees and tensor data into the maps, so both live until st_close.
 */
#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/io/st_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER ((uint64_t)100000000) /* 100 MB, as the reference implementation */

typedef struct {
    char *path;
    void *map;      /* whole file, read-only */
    size_t map_len; /* file length in bytes */
    cJSON *header;  /* parsed JSON header */
    cJSON *meta;    /* its "__metadata__" object or NULL */
} st_file;

struct st_set {
    st_file *files;
    int nfiles, files_cap;
    st_tensor *tensors; /* in file order, header order within a file */
    int ntensors, tensors_cap;
    const st_tensor **by_name; /* all tensors, sorted by name (built after loading) */
};

static void st_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

// ---------------------------------------------------------------------------------------
// set bookkeeping

void st_close(st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->nfiles; i++) {
        if (s->files[i].map) munmap(s->files[i].map, s->files[i].map_len);
        cJSON_Delete(s->files[i].header);
        free(s->files[i].path);
    }
    free(s->files);
    free(s->tensors);
    free(s->by_name);
    free(s);
}

int st_count(const st_set *s) {
    return s->ntensors;
}

const st_tensor *st_get(const st_set *s, int i) {
    if (i < 0 || i >= s->ntensors) return NULL;
    return &s->tensors[i];
}

static int st_cmp_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

const st_tensor *st_find(const st_set *s, const char *name) {
    int lo = 0, hi = s->ntensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const st_tensor *t = s->by_name[mid];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *st_metadata(const st_set *s, const char *key) {
    for (int i = 0; i < s->nfiles; i++) {
        const cJSON *v =
            s->files[i].meta ? cJSON_GetObjectItemCaseSensitive(s->files[i].meta, key) : NULL;
        if (cJSON_IsString(v)) return v->valuestring;
    }
    return NULL;
}

/* Builds the name index and rejects a name held twice (within a file, which cJSON
 * lets through, or across shards). */
static int st_index_names(st_set *s, char *err, size_t errlen) {
    free(s->by_name);
    s->by_name = malloc(sizeof(*s->by_name) * (size_t)(s->ntensors > 0 ? s->ntensors : 1));
    if (!s->by_name) {
        st_err(err, errlen, "safetensors: out of memory indexing %d tensors", s->ntensors);
        return -1;
    }
    for (int i = 0; i < s->ntensors; i++)
        s->by_name[i] = &s->tensors[i];
    qsort(s->by_name, (size_t)s->ntensors, sizeof(*s->by_name), st_cmp_name);
    for (int i = 1; i < s->ntensors; i++) {
        const st_tensor *a = s->by_name[i - 1], *b = s->by_name[i];
        if (strcmp(a->name, b->name) != 0) continue;
        if (a->file == b->file)
            st_err(err, errlen,
                   "%s: duplicate tensor name '%s' in the header (expected each "
                   "name once)",
                   a->file, a->name);
        else
            st_err(err, errlen,
                   "tensor '%s' appears in two files: %s and %s (expected each "
                   "name in one shard)",
                   a->name, a->file, b->file);
        return -1;
    }
    return 0;
}

static st_tensor *st_push_tensor(st_set *s) {
    if (s->ntensors == s->tensors_cap) {
        int cap = s->tensors_cap ? s->tensors_cap * 2 : 64;
        st_tensor *nt = realloc(s->tensors, sizeof(st_tensor) * (size_t)cap);
        if (!nt) return NULL;
        s->tensors = nt;
        s->tensors_cap = cap;
    }
    st_tensor *t = &s->tensors[s->ntensors++];
    memset(t, 0, sizeof *t);
    return t;
}

// ---------------------------------------------------------------------------------------
// header validation helpers

int st_utf8_valid(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        int k;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, min = 0x80, c &= 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, min = 0x800, c &= 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return 0;
        }
        if (i + (size_t)k >= n) return 0;
        for (int j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80) return 0;
            c = (c << 6) | (p[i + j] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
        i += (size_t)k + 1;
    }
    return 1;
}

/* A JSON number that is an integer in [0, 2^53] (exact in a double). */
static int st_json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

typedef struct {
    int tensor; /* index into set->tensors */
    uint64_t begin, end;
} st_span;

static int st_cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Validates one tensor entry of a header and fills t (data pointer set later). */
static int st_parse_entry(const char *path, const cJSON *e, st_tensor *t, st_span *sp,
                          char *err, size_t errlen) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) {
        st_err(err, errlen,
               "%s: tensor '%s': expected an object with dtype, shape and "
               "data_offsets",
               path, name);
        return -1;
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) {
        st_err(err, errlen, "%s: tensor '%s': field 'dtype' missing or not a string", path,
               name);
        return -1;
    }
    if (st_dtype_parse(dt->valuestring, &t->dtype) != 0) {
        st_err(err, errlen,
               "%s: tensor '%s': unknown dtype '%s' (expected one of F32, F16, "
               "BF16, F64, I64, I32, I16, I8, U8, BOOL)",
               path, name, dt->valuestring);
        return -1;
    }
    if (!cJSON_IsArray(sh)) {
        st_err(err, errlen, "%s: tensor '%s': field 'shape' missing or not an array", path,
               name);
        return -1;
    }
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS) {
        st_err(err, errlen, "%s: tensor '%s': shape has %d dimensions (at most %d supported)",
               path, name, nd, ST_MAX_DIMS);
        return -1;
    }
    uint64_t numel = 1;
    int overflow = 0;
    t->ndim = nd;
    int d = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t v;
        if (!st_json_uint(x, &v)) {
            st_err(err, errlen,
                   "%s: tensor '%s': shape[%d] is not a non-negative integer "
                   "(expected an integer in [0, 2^53])",
                   path, name, d);
            return -1;
        }
        t->shape[d] = (int64_t)v;
        if (__builtin_mul_overflow(numel, v, &numel)) overflow = 1;
    }
    size_t esz = st_dtype_size(t->dtype);
    uint64_t nbytes = 0;
    if (!overflow && numel > (uint64_t)INT64_MAX) overflow = 1;
    if (overflow || __builtin_mul_overflow(numel, (uint64_t)esz, &nbytes)) {
        st_err(err, errlen,
               "%s: tensor '%s': shape product times dtype size (%zu bytes) "
               "overflows 64 bits",
               path, name, esz);
        return -1;
    }
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 ||
        !st_json_uint(of->child, &sp->begin) || !st_json_uint(of->child->next, &sp->end)) {
        st_err(err, errlen,
               "%s: tensor '%s': field 'data_offsets' must be [begin, end] of "
               "two non-negative integers",
               path, name);
        return -1;
    }
    if (sp->end < sp->begin) {
        st_err(err, errlen, "%s: tensor '%s': data_offsets [%llu, %llu] end before begin", path,
               name, (unsigned long long)sp->begin, (unsigned long long)sp->end);
        return -1;
    }
    if (sp->end - sp->begin != nbytes) {
        st_err(err, errlen,
               "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but "
               "shape x dtype %s needs %llu bytes",
               path, name, (unsigned long long)sp->begin, (unsigned long long)sp->end,
               (unsigned long long)(sp->end - sp->begin), st_dtype_name(t->dtype),
               (unsigned long long)nbytes);
        return -1;
    }
    t->name = name;
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)nbytes;
    return 0;
}

// ---------------------------------------------------------------------------------------
// one file

/* Maps path, validates it and appends its tensors to s. */
static int st_load_file(st_set *s, const char *path, char *err, size_t errlen) {
    if (s->nfiles == s->files_cap) {
        int cap = s->files_cap ? s->files_cap * 2 : 4;
        st_file *nf = realloc(s->files, sizeof(st_file) * (size_t)cap);
        if (!nf) {
            st_err(err, errlen, "%s: out of memory", path);
            return -1;
        }
        s->files = nf;
        s->files_cap = cap;
    }
    st_file *f = &s->files[s->nfiles];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) {
        st_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    s->nfiles++; /* from here st_close releases whatever f holds */

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        st_err(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    uint64_t flen = (uint64_t)st.st_size;
    if (flen < 8) {
        st_err(err, errlen,
               "%s: file is %llu bytes, too short for the 8-byte header length "
               "(truncated?)",
               path, (unsigned long long)flen);
        close(fd);
        return -1;
    }
    void *map = mmap(NULL, (size_t)flen, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED) {
        st_err(err, errlen, "%s: mmap of %llu bytes failed: %s", path, (unsigned long long)flen,
               strerror(map_errno));
        return -1;
    }
    f->map = map;
    f->map_len = (size_t)flen;
    const unsigned char *b = map;

    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | b[i];
    if (hlen > ST_MAX_HEADER) {
        st_err(err, errlen, "%s: header length %llu exceeds the 100 MB limit", path,
               (unsigned long long)hlen);
        return -1;
    }
    if (hlen > flen - 8) {
        st_err(err, errlen,
               "%s: header length %llu runs past the end of the file (%llu "
               "bytes after the length field; truncated?)",
               path, (unsigned long long)hlen, (unsigned long long)(flen - 8));
        return -1;
    }
    if (!st_utf8_valid(b + 8, (size_t)hlen) || memchr(b + 8, '\0', (size_t)hlen)) {
        st_err(err, errlen, "%s: header is not valid UTF-8 JSON text", path);
        return -1;
    }
    size_t k = 0;
    while (k < hlen &&
           (b[8 + k] == ' ' || b[8 + k] == '\n' || b[8 + k] == '\r' || b[8 + k] == '\t'))
        k++;
    if (k == hlen || b[8 + k] != '{') {
        st_err(err, errlen, "%s: header is not a JSON object (expected it to start with '{')",
               path);
        return -1;
    }
    const char *end = NULL;
    f->header = cJSON_ParseWithLengthOpts((const char *)b + 8, (size_t)hlen, &end, 0);
    if (!f->header) {
        size_t at = end ? (size_t)(end - (const char *)(b + 8)) : 0;
        st_err(err, errlen, "%s: header is not valid JSON (error near byte %zu of %llu)", path,
               at, (unsigned long long)hlen);
        return -1;
    }
    for (const char *q = end; q && q < (const char *)b + 8 + hlen; q++) {
        if (*q != ' ' && *q != '\n' && *q != '\r' && *q != '\t') {
            st_err(err, errlen, "%s: header has text after the JSON object at byte %zu", path,
                   (size_t)(q - (const char *)(b + 8)));
            return -1;
        }
    }
    if (!cJSON_IsObject(f->header)) {
        st_err(err, errlen, "%s: header is not a JSON object", path);
        return -1;
    }

    /* entries */
    int first = s->ntensors, nent = 0;
    for (const cJSON *e = f->header->child; e; e = e->next)
        nent++;
    st_span *spans = malloc(sizeof(st_span) * (size_t)(nent > 0 ? nent : 1));
    if (!spans) {
        st_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    int nspan = 0;
    for (const cJSON *e = f->header->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (f->meta) {
                st_err(err, errlen, "%s: duplicate key '__metadata__' in the header", path);
                goto fail;
            }
            if (!cJSON_IsObject(e)) {
                st_err(err, errlen, "%s: '__metadata__' must be an object of strings", path);
                goto fail;
            }
            for (const cJSON *m = e->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    st_err(err, errlen,
                           "%s: '__metadata__' key '%s' is not a string (expected "
                           "an object of strings)",
                           path, m->string);
                    goto fail;
                }
            }
            f->meta = (cJSON *)e;
            continue;
        }
        st_tensor *t = st_push_tensor(s);
        if (!t) {
            st_err(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        t->file = f->path;
        spans[nspan].tensor = s->ntensors - 1;
        if (st_parse_entry(path, e, t, &spans[nspan], err, errlen) != 0) goto fail;
        nspan++;
    }

    /* Names first: cJSON keeps both copies of a repeated key. */
    if (nspan > 1) {
        const st_tensor **names = malloc(sizeof(*names) * (size_t)nspan);
        if (!names) {
            st_err(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        for (int i = 0; i < nspan; i++)
            names[i] = &s->tensors[first + i];
        qsort(names, (size_t)nspan, sizeof(*names), st_cmp_name);
        for (int i = 1; i < nspan; i++) {
            if (strcmp(names[i - 1]->name, names[i]->name) == 0) {
                st_err(err, errlen,
                       "%s: duplicate tensor name '%s' in the header (expected "
                       "each name once)",
                       path, names[i]->name);
                free(names);
                goto fail;
            }
        }
        free(names);
    }

    /* The data offsets, sorted by begin, must tile the data section exactly. */
    uint64_t data_len = flen - 8 - hlen, pos = 0;
    qsort(spans, (size_t)nspan, sizeof(st_span), st_cmp_span);
    for (int i = 0; i < nspan; i++) {
        const st_tensor *t = &s->tensors[spans[i].tensor];
        if (spans[i].begin < pos) {
            const st_tensor *p = &s->tensors[spans[i - 1].tensor];
            st_err(err, errlen,
                   "%s: tensor '%s' data_offsets [%llu, %llu] overlap tensor "
                   "'%s' [%llu, %llu] (expected contiguous, non-overlapping offsets)",
                   path, t->name, (unsigned long long)spans[i].begin,
                   (unsigned long long)spans[i].end, p->name,
                   (unsigned long long)spans[i - 1].begin,
                   (unsigned long long)spans[i - 1].end);
            goto fail;
        }
        if (spans[i].begin > pos) {
            st_err(err, errlen,
                   "%s: gap of %llu bytes before tensor '%s' (data_offsets begin "
                   "%llu, previous tensor ends at %llu; expected contiguous offsets from 0)",
                   path, (unsigned long long)(spans[i].begin - pos), t->name,
                   (unsigned long long)spans[i].begin, (unsigned long long)pos);
            goto fail;
        }
        if (spans[i].end > data_len) {
            st_err(err, errlen,
                   "%s: tensor '%s' data_offsets end %llu is past the end of the "
                   "data section (%llu bytes; truncated file?)",
                   path, t->name, (unsigned long long)spans[i].end,
                   (unsigned long long)data_len);
            goto fail;
        }
        pos = spans[i].end;
    }
    if (pos != data_len) {
        st_err(err, errlen,
               "%s: %llu trailing bytes after the last tensor (data section is "
               "%llu bytes, tensors cover %llu; expected exact file length)",
               path, (unsigned long long)(data_len - pos), (unsigned long long)data_len,
               (unsigned long long)pos);
        goto fail;
    }
    for (int i = 0; i < nspan; i++)
        s->tensors[spans[i].tensor].data = b + 8 + hlen + spans[i].begin;
    free(spans);
    return 0;
fail:
    free(spans);
    return -1;
}

int st_open_file(const char *path, st_set **out, char *err, size_t errlen) {
    *out = NULL;
    st_set *s = calloc(1, sizeof *s);
    if (!s) {
        st_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    if (st_load_file(s, path, err, errlen) != 0 || st_index_names(s, err, errlen) != 0) {
        st_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

// ---------------------------------------------------------------------------------------
// model directories

static char *st_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int st_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *st_base(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int st_open_index(const char *dir, const char *ipath, st_set **out, char *err,
                         size_t errlen) {
    char *text = NULL;
    size_t len = 0;
    if (fio_read_file(ipath, &text, &len, err, errlen) != 0) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    st_set *s = NULL;
    const char **shards = NULL;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        st_err(err, errlen, "%s: not a JSON object", ipath);
        goto done;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        st_err(err, errlen,
               "%s: field 'weight_map' missing or not an object of "
               "tensor name -> shard file",
               ipath);
        goto done;
    }
    int n = cJSON_GetArraySize(wm), nsh = 0;
    shards = malloc(sizeof(char *) * (size_t)(n > 0 ? n : 1));
    if (!shards) {
        st_err(err, errlen, "%s: out of memory", ipath);
        goto done;
    }
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !*e->valuestring || strchr(e->valuestring, '/')) {
            st_err(err, errlen,
                   "%s: weight_map['%s'] must be a shard file name in the same "
                   "directory",
                   ipath, e->string);
            goto done;
        }
        shards[nsh++] = e->valuestring;
    }
    if (nsh == 0) {
        st_err(err, errlen, "%s: weight_map is empty (expected at least one tensor)", ipath);
        goto done;
    }
    qsort(shards, (size_t)nsh, sizeof(char *), st_cmp_str);
    s = calloc(1, sizeof *s);
    if (!s) {
        st_err(err, errlen, "%s: out of memory", ipath);
        goto done;
    }
    for (int i = 0; i < nsh; i++) {
        if (i > 0 && strcmp(shards[i], shards[i - 1]) == 0) continue;
        char *p = st_join(dir, shards[i]);
        if (!p) {
            st_err(err, errlen, "%s: out of memory", ipath);
            goto done;
        }
        if (access(p, F_OK) != 0) {
            st_err(err, errlen, "%s: names shard '%s', but %s does not exist", ipath, shards[i],
                   p);
            free(p);
            goto done;
        }
        int r = st_load_file(s, p, err, errlen);
        free(p);
        if (r != 0) goto done;
    }
    if (st_index_names(s, err, errlen) != 0) goto done;
    for (const cJSON *e = wm->child; e; e = e->next) {
        const st_tensor *t = st_find(s, e->string);
        if (!t) {
            st_err(err, errlen,
                   "%s: weight_map puts tensor '%s' in shard '%s', but that shard "
                   "has no such tensor",
                   ipath, e->string, e->valuestring);
            goto done;
        }
        if (strcmp(st_base(t->file), e->valuestring) != 0) {
            st_err(err, errlen,
                   "%s: weight_map puts tensor '%s' in shard '%s', but it is in "
                   "%s",
                   ipath, e->string, e->valuestring, t->file);
            goto done;
        }
    }
    rc = 0;
done:
    free(shards);
    cJSON_Delete(root);
    if (rc == 0) {
        *out = s;
    } else {
        st_close(s);
    }
    return rc;
}

int st_open_dir(const char *dir, st_set **out, char *err, size_t errlen) {
    *out = NULL;
    /* Same preference as transformers: a single model.safetensors wins over an index. */
    char *single = st_join(dir, "model.safetensors");
    char *index = st_join(dir, "model.safetensors.index.json");
    int rc;
    if (!single || !index) {
        st_err(err, errlen, "%s: out of memory", dir);
        rc = -1;
    } else if (access(single, F_OK) == 0) {
        rc = st_open_file(single, out, err, errlen);
    } else if (access(index, F_OK) == 0) {
        rc = st_open_index(dir, index, out, err, errlen);
    } else {
        st_err(err, errlen,
               "%s: no model.safetensors or model.safetensors.index.json in this "
               "directory",
               dir);
        rc = -1;
    }
    free(single);
    free(index);
    return rc;
}
