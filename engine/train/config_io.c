/*
 * engine/train/config_io.c — a resolved train_config as JSON (what the run directory
 * keeps), comparing and freeing configs, checking the files a config names, and the
 * custom chat template as the JSON object engine/text expects.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "engine/io/fileio.h"
#include "engine/train/config_internal.h"

#define AT(base, off, T) ((T *)((char *)(base) + (off)))

// ---------------------------------------------------------------------------------------
// to JSON

static int add_rows(const tc_field *rows, const void *base, cJSON *obj);

/* A number in the shortest text that reads back as the same double (cJSON's own
 * printer keeps 15 digits when they compare equal within a tolerance, which loses
 * large seeds). */
static cJSON *num_json(double x) {
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    return cJSON_CreateRaw(buf);
}

static cJSON *value_json(const tc_field *f, const void *base) {
    const void *p = (const char *)base + f->off;
    switch (f->type) {
    case TCF_BOOL:
        return cJSON_CreateBool(*(const int *)p);
    case TCF_TRIBOOL:
        return *(const int *)p < 0 ? cJSON_CreateNull() : cJSON_CreateBool(*(const int *)p);
    case TCF_INT:
    case TCF_ENUM:
        if (f->type == TCF_ENUM) return cJSON_CreateString(f->names[*(const int *)p]);
        return cJSON_CreateNumber(*(const int *)p);
    case TCF_SEED:
        return num_json((double)*(const uint64_t *)p);
    case TCF_NUM: {
        double x = *(const double *)p;
        return isnan(x) ? cJSON_CreateNull() : num_json(x);
    }
    case TCF_PAIR: {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; a && i < 2; i++)
            cJSON_AddItemToArray(a, num_json(((const double *)p)[i]));
        return a;
    }
    case TCF_STR: {
        const char *s = *(char *const *)p;
        return s ? cJSON_CreateString(s) : cJSON_CreateNull();
    }
    case TCF_JSONOBJ:
        return cJSON_Parse(*(char *const *)p);
    case TCF_STRS: {
        cJSON *a = cJSON_CreateArray();
        int n = *(const int *)((const char *)base + f->off2);
        char *const *list = *(char *const *const *)p;
        for (int i = 0; a && i < n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(list[i]));
        return a;
    }
    case TCF_IDS: {
        cJSON *a = cJSON_CreateArray();
        int n = *(const int *)((const char *)base + f->off2);
        const int32_t *ids = *(int32_t *const *)p;
        for (int i = 0; a && i < n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(ids[i]));
        return a;
    }
    case TCF_SECTION: {
        cJSON *o = cJSON_CreateObject();
        if (o && add_rows(f->sub, base, o) != 0) cJSON_Delete(o), o = NULL;
        return o;
    }
    case TCF_REWARDS: {
        cJSON *a = cJSON_CreateArray();
        int n = *(const int *)((const char *)base + f->off2);
        const tc_reward *r = *(tc_reward *const *)p;
        for (int i = 0; a && i < n; i++) {
            cJSON *o = cJSON_CreateObject();
            if (!o || add_rows(f->sub, &r[i], o) != 0) {
                cJSON_Delete(o);
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, o);
        }
        return a;
    }
    }
    return NULL;
}

static int add_rows(const tc_field *rows, const void *base, cJSON *obj) {
    for (const tc_field *f = rows; f->key; f++) {
        /* template.custom appears only when it is the chosen template */
        if (f->sub && strcmp(f->key, "custom") == 0 &&
            ((const train_config *)base)->template_.name != TC_TEMPLATE_CUSTOM)
            continue;
        cJSON *v = value_json(f, base);
        if (!v) return -1;
        cJSON_AddItemToObject(obj, f->key, v);
    }
    return 0;
}

char *train_config_to_json(const train_config *cfg) {
    cJSON *root = cJSON_CreateObject();
    if (!root || add_rows(tc_schema, cfg, root) != 0) {
        cJSON_Delete(root);
        return NULL;
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}

int train_config_write(const train_config *cfg, const char *path, char *err, size_t errlen) {
    char *s = train_config_to_json(cfg);
    if (!s) {
        snprintf(err, errlen, "%s: out of memory serialising the config", path);
        return -1;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        snprintf(err, errlen, "%s: out of memory serialising the config", path);
        return -1;
    }
    t[n] = '\n', t[n + 1] = '\0';
    int rc = fio_write_file(path, t, n + 1, err, errlen);
    free(t);
    return rc;
}

cJSON *train_config_custom_template_json(const train_config *cfg) {
    const tc_field *tpl = tc_schema;
    while (tpl->key && strcmp(tpl->key, "template") != 0)
        tpl++;
    const tc_field *custom = tpl->sub;
    while (custom->key && strcmp(custom->key, "custom") != 0)
        custom++;
    cJSON *o = cJSON_CreateObject();
    for (const tc_field *f = custom->sub; o && f->key; f++) {
        const char *s = *(char *const *)((const char *)cfg + f->off);
        if (s && !cJSON_AddStringToObject(o, f->key, s)) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

// ---------------------------------------------------------------------------------------
// equality

static int str_eq(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int num_eq(double a, double b) {
    return (isnan(a) && isnan(b)) || a == b;
}

static int rows_equal(const tc_field *rows, const void *a, const void *b, const char *prefix,
                      char *diff, size_t difflen) {
    for (const tc_field *f = rows; f->key; f++) {
        char path[300];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", f->key);
        const char *pa = (const char *)a + f->off, *pb = (const char *)b + f->off;
        int eq = 1;
        int na = f->off2 ? *(const int *)((const char *)a + f->off2) : 0;
        int nb = f->off2 ? *(const int *)((const char *)b + f->off2) : 0;
        switch (f->type) {
        case TCF_BOOL:
        case TCF_TRIBOOL:
        case TCF_INT:
        case TCF_ENUM:
            eq = *(const int *)pa == *(const int *)pb;
            break;
        case TCF_SEED:
            eq = *(const uint64_t *)pa == *(const uint64_t *)pb;
            break;
        case TCF_NUM:
            eq = num_eq(*(const double *)pa, *(const double *)pb);
            break;
        case TCF_PAIR:
            eq = num_eq(((const double *)pa)[0], ((const double *)pb)[0]) &&
                 num_eq(((const double *)pa)[1], ((const double *)pb)[1]);
            break;
        case TCF_STR:
        case TCF_JSONOBJ:
            eq = str_eq(*(char *const *)pa, *(char *const *)pb);
            break;
        case TCF_STRS:
            eq = na == nb;
            for (int i = 0; eq && i < na; i++)
                eq = str_eq((*(char *const *const *)pa)[i], (*(char *const *const *)pb)[i]);
            break;
        case TCF_IDS:
            eq = na == nb && (na == 0 || memcmp(*(int32_t *const *)pa, *(int32_t *const *)pb,
                                                sizeof(int32_t) * (size_t)na) == 0);
            break;
        case TCF_SECTION:
            if (!rows_equal(f->sub, a, b, path, diff, difflen)) return 0;
            break;
        case TCF_REWARDS:
            if (na != nb) {
                eq = 0;
                break;
            }
            for (int i = 0; i < na; i++) {
                char p[64];
                snprintf(p, sizeof(p), "rewards[%d]", i);
                if (!rows_equal(f->sub, &(*(tc_reward *const *)pa)[i],
                                &(*(tc_reward *const *)pb)[i], p, diff, difflen))
                    return 0;
            }
            break;
        }
        if (!eq) {
            if (diff && difflen) snprintf(diff, difflen, "%s", path);
            return 0;
        }
    }
    return 1;
}

int train_config_equal(const train_config *a, const train_config *b, char *diff,
                       size_t difflen) {
    if (diff && difflen) diff[0] = '\0';
    return rows_equal(tc_schema, a, b, "", diff, difflen);
}

// ---------------------------------------------------------------------------------------
// free

static void free_rows(const tc_field *rows, void *base) {
    for (const tc_field *f = rows; f->key; f++) {
        void *p = (char *)base + f->off;
        switch (f->type) {
        case TCF_STR:
        case TCF_JSONOBJ:
            free(*(char **)p);
            break;
        case TCF_STRS: {
            int n = *(int *)((char *)base + f->off2);
            for (int i = 0; i < n; i++)
                free((*(char ***)p)[i]);
            free(*(char ***)p);
            break;
        }
        case TCF_IDS:
            free(*(int32_t **)p);
            break;
        case TCF_SECTION:
            free_rows(f->sub, base);
            break;
        case TCF_REWARDS: {
            int n = *(int *)((char *)base + f->off2);
            tc_reward *r = *(tc_reward **)p;
            for (int i = 0; r && i < n; i++)
                free_rows(f->sub, &r[i]);
            free(r);
            break;
        }
        default:
            break;
        }
    }
}

void train_config_free(train_config *cfg) {
    if (!cfg) return;
    free_rows(tc_schema, cfg);
    memset(cfg, 0, sizeof(*cfg));
}

// ---------------------------------------------------------------------------------------
// files named by the config

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int need_file_in_dir(const char *key, const char *dir, const char *file, char *err,
                            size_t errlen) {
    if (!is_dir(dir)) {
        snprintf(err, errlen, "%s: \"%s\" is not a directory; expected a directory with %s",
                 key, dir, file);
        return -1;
    }
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    if (!is_file(p)) {
        snprintf(err, errlen, "%s: \"%s\" has no %s", key, dir, file);
        return -1;
    }
    return 0;
}

int train_config_check_files(const train_config *cfg, char *err, size_t errlen) {
    if (strncmp(cfg->model.path, "builtin:", 8) != 0 &&
        need_file_in_dir("model.path", cfg->model.path, "config.json", err, errlen) != 0)
        return -1;
    if (cfg->tokenizer.path && need_file_in_dir("tokenizer.path", cfg->tokenizer.path,
                                                "tokenizer.json", err, errlen) != 0)
        return -1;
    if (!is_file(cfg->data.train)) {
        snprintf(err, errlen,
                 "data.train: \"%s\" is not a readable file; expected a JSONL "
                 "file of prompts",
                 cfg->data.train);
        return -1;
    }
    if (cfg->data.eval && !is_file(cfg->data.eval)) {
        snprintf(err, errlen,
                 "data.eval: \"%s\" is not a readable file; expected a JSONL "
                 "file of prompts",
                 cfg->data.eval);
        return -1;
    }
    for (int i = 0; i < cfg->n_rewards; i++) {
        const char *n = cfg->rewards[i].name;
        size_t l = strlen(n);
        int is_path = strchr(n, '/') || (l > 3 && strcmp(n + l - 3, ".so") == 0);
        if (is_path && !is_file(n)) {
            snprintf(err, errlen,
                     "rewards[%d].name: plugin \"%s\" does not exist; expected "
                     "a built-in reward name or the path of a .so",
                     i, n);
            return -1;
        }
    }
    return 0;
}
