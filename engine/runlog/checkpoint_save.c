/*
 * engine/runlog/checkpoint_save.c — writing a checkpoint directory (see checkpoint.h):
 * weights, tokenizer files, trainer state, then the COMPLETE marker.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/runlog/checkpoint.h"
#include "engine/runlog/ckpt_internal.h"

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Rejects what would make an unreadable or ambiguous checkpoint, before writing. */
static int check_args(const checkpoint_save_args *a, char *err, size_t errlen) {
    if (!a->model) {
        snprintf(err, errlen, "checkpoint_save: no model given");
        return -1;
    }
    if (a->step < 0) {
        snprintf(err, errlen, "checkpoint_save: step %ld (expected >= 0)", a->step);
        return -1;
    }
    if (a->weights_dtype != ST_F32 && a->weights_dtype != ST_BF16 && a->weights_dtype != ST_F16) {
        snprintf(err, errlen, "checkpoint_save: weights dtype %d (expected F32, BF16 or F16)",
                 a->weights_dtype);
        return -1;
    }
    for (int i = 0; i < a->n_blobs; i++) {
        if (!ckpt_name_ok(a->blobs[i].name)) {
            snprintf(err, errlen, "checkpoint_save: blob name \"%.80s\" (expected 1..63 bytes of "
                     "A-Z a-z 0-9 _ . -)", a->blobs[i].name ? a->blobs[i].name : "(null)");
            return -1;
        }
        if (a->blobs[i].len && !a->blobs[i].data) {
            snprintf(err, errlen, "checkpoint_save: blob \"%s\" has no data", a->blobs[i].name);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(a->blobs[i].name, a->blobs[j].name)) {
                snprintf(err, errlen, "checkpoint_save: blob \"%s\" given twice", a->blobs[i].name);
                return -1;
            }
    }
    for (int i = 0; i < a->n_scalars; i++) {
        const checkpoint_scalar *s = &a->scalars[i];
        if (!ckpt_name_ok(s->name) || !isfinite(s->value)) {
            snprintf(err, errlen, "checkpoint_save: scalar \"%.80s\" = %g (expected a name of "
                     "1..63 bytes of A-Z a-z 0-9 _ . - and a finite value)",
                     s->name ? s->name : "(null)", s->value);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(s->name, a->scalars[j].name)) {
                snprintf(err, errlen, "checkpoint_save: scalar \"%s\" given twice", s->name);
                return -1;
            }
    }
    static const char *reserved[] = {"config.json", CKPT_STATE_ST, CKPT_STATE_JSON, CKPT_MARKER,
                                     "model.safetensors", "model.safetensors.index.json"};
    for (int i = 0; i < a->n_tokenizer_files; i++) {
        const char *b = a->tokenizer_files[i] ? base_name(a->tokenizer_files[i]) : "";
        int bad = !*b || !strcmp(b, ".") || !strcmp(b, "..") || !strncmp(b, "model-", 6);
        for (size_t r = 0; r < sizeof reserved / sizeof *reserved; r++) bad |= !strcmp(b, reserved[r]);
        for (int j = 0; j < i; j++) bad |= !strcmp(b, base_name(a->tokenizer_files[j]));
        if (bad) {
            snprintf(err, errlen, "checkpoint_save: tokenizer file \"%s\": its name is empty, "
                     "repeated or one the checkpoint itself writes",
                     a->tokenizer_files[i] ? a->tokenizer_files[i] : "(null)");
            return -1;
        }
    }
    return 0;
}

static int copy_file(const char *src, const char *dir, char *err, size_t errlen) {
    char *data = NULL;
    size_t len = 0;
    if (fio_read_file(src, &data, &len, err, errlen)) return -1;
    char dst[4096];
    int rc = ckpt_join(dst, sizeof dst, dir, base_name(src), err, errlen) ||
             fio_write_file(dst, data, len, err, errlen) ? -1 : 0;
    free(data);
    return rc;
}

static int write_state_json(const char *dir, const checkpoint_save_args *a, char *err,
                            size_t errlen) {
    cJSON *o = cJSON_CreateObject();
    cJSON *sc = cJSON_CreateObject(), *bl = cJSON_CreateArray();
    if (!o || !sc || !bl) {
        cJSON_Delete(o);
        cJSON_Delete(sc);
        cJSON_Delete(bl);
        snprintf(err, errlen, "checkpoint_save: out of memory");
        return -1;
    }
    cJSON_AddStringToObject(o, "format", CKPT_FORMAT);
    cJSON_AddNumberToObject(o, "version", CKPT_VERSION);
    cJSON_AddNumberToObject(o, "step", (double)a->step);
    cJSON_AddNumberToObject(o, "optimizer_step", a->opt ? a->opt->step : 0);
    cJSON_AddBoolToObject(o, "has_optimizer", a->opt != NULL);
    cJSON_AddNumberToObject(o, "n_weights", (double)a->model->n_weights);
    cJSON_AddStringToObject(o, "weights_dtype", st_dtype_name((st_dtype)a->weights_dtype));
    if (a->opt) {
        cJSON *oc = cJSON_AddObjectToObject(o, "optimizer");
        if (oc) {
            cJSON_AddNumberToObject(oc, "beta1", a->opt->cfg.beta1);
            cJSON_AddNumberToObject(oc, "beta2", a->opt->cfg.beta2);
            cJSON_AddNumberToObject(oc, "eps", a->opt->cfg.eps);
            cJSON_AddNumberToObject(oc, "weight_decay", a->opt->cfg.weight_decay);
            cJSON_AddNumberToObject(oc, "max_grad_norm", a->opt->cfg.max_grad_norm);
        }
    }
    for (int i = 0; i < a->n_scalars; i++)
        cJSON_AddNumberToObject(sc, a->scalars[i].name, a->scalars[i].value);
    cJSON_AddItemToObject(o, "scalars", sc);
    for (int i = 0; i < a->n_blobs; i++) cJSON_AddItemToArray(bl, cJSON_CreateString(a->blobs[i].name));
    cJSON_AddItemToObject(o, "blobs", bl);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) {
        snprintf(err, errlen, "checkpoint_save: out of memory");
        return -1;
    }
    char path[4096];
    int rc = ckpt_join(path, sizeof path, dir, CKPT_STATE_JSON, err, errlen) ||
             fio_write_file(path, text, strlen(text), err, errlen) ? -1 : 0;
    free(text);
    return rc;
}

static int write_state_st(const char *dir, const checkpoint_save_args *a, char *err,
                          size_t errlen) {
    const model *m = a->model;
    rlvr_backend *be = m->be;
    ckpt_tensor *t = calloc((size_t)a->n_blobs + 3, sizeof *t);
    float *host_w = NULL, *dev_w = NULL;
    int n = 0, rc = -1;
    if (!t) goto oom;
    if (a->opt) {
        t[n++] = (ckpt_tensor){"optimizer.m", (int64_t)m->n_weights, a->opt->m, be};
        t[n++] = (ckpt_tensor){"optimizer.v", (int64_t)m->n_weights, a->opt->v, be};
    }
    if (a->weights_dtype != ST_F32) {
        /* The rounded model files cannot restore the fp32 weights: keep them here. */
        if (m->master) {
            t[n++] = (ckpt_tensor){"model.master", (int64_t)m->n_weights, m->master, be};
        } else {
            host_w = malloc(m->n_weights * sizeof(float));
            dev_w = be->alloc(be, m->n_weights * sizeof(float));
            if (!host_w || !dev_w) goto oom;
            for (int i = 0; i < m->n_params; i++) model_get_param(m, i, host_w + m->params[i].offset);
            be->to_device(be, dev_w, host_w, m->n_weights * sizeof(float));
            t[n++] = (ckpt_tensor){"model.master", (int64_t)m->n_weights, dev_w, be};
        }
    }
    char names[64][80];
    char (*bn)[80] = a->n_blobs <= 64 ? names : malloc((size_t)a->n_blobs * sizeof *bn);
    if (!bn) goto oom;
    for (int i = 0; i < a->n_blobs; i++) {
        snprintf(bn[i], sizeof bn[i], "blob.%s", a->blobs[i].name);
        t[n++] = (ckpt_tensor){bn[i], (int64_t)a->blobs[i].len, a->blobs[i].data, NULL};
    }
    char path[4096];
    rc = ckpt_join(path, sizeof path, dir, CKPT_STATE_ST, err, errlen) ||
         ckpt_write_state(path, t, n, err, errlen) ? -1 : 0;
    if (bn != names) free(bn);
    goto done;
oom:
    snprintf(err, errlen, "checkpoint_save: out of memory writing the trainer state");
done:
    free(t);
    free(host_w);
    if (dev_w) be->free(be, dev_w);
    return rc;
}

int checkpoint_save(const char *run_dir, const checkpoint_save_args *a, char *path_out,
                    size_t path_len, char *err, size_t errlen) {
    if (check_args(a, err, errlen)) return -1;
    char ckdir[4096], dir[4096], part[4200], marker[4300];
    snprintf(ckdir, sizeof ckdir, "%s", run_dir);
    if ((size_t)snprintf(dir, sizeof dir, "%s/step-%06ld", ckdir, a->step) >= sizeof dir - 64) {
        snprintf(err, errlen, "checkpoint_save: run directory path too long: %.200s", run_dir);
        return -1;
    }
    snprintf(part, sizeof part, "%s%s", dir, CKPT_PARTIAL);
    /* Everything is written into step-N.partial/ (never taken for a checkpoint), marked
     * COMPLETE there, then renamed to step-N/: a failed or interrupted save leaves any
     * earlier checkpoint of the same step untouched. */
    if (fio_mkdirs(ckdir, err, errlen) || ckpt_fsync_dir(run_dir, err, errlen)) return -1;
    if (ckpt_remove_dir(part, err, errlen) || fio_mkdirs(part, err, errlen) ||
        ckpt_fsync_dir(ckdir, err, errlen))
        return -1;
    int ok = model_save(a->model, part, a->weights_dtype, a->max_shard_bytes, err, errlen) == 0;
    for (int i = 0; ok && i < a->n_tokenizer_files; i++)
        ok = copy_file(a->tokenizer_files[i], part, err, errlen) == 0;
    ok = ok && write_state_st(part, a, err, errlen) == 0 && write_state_json(part, a, err, errlen) == 0;
    const char *be_err = a->model->be->error(a->model->be);
    if (ok && be_err) {
        snprintf(err, errlen, "checkpoint_save: %s: reading state from %s: %s", dir,
                 a->model->be->name, be_err);
        ok = 0;
    }
    /* Every file above was fsynced and renamed with a directory fsync: mark complete. */
    char text[64];
    int tn = snprintf(text, sizeof text, "rlvr checkpoint step %ld\n", a->step);
    ok = ok && ckpt_join(marker, sizeof marker, part, CKPT_MARKER, err, errlen) == 0 &&
         fio_write_file(marker, text, (size_t)tn, err, errlen) == 0;
    if (!ok) {
        char e2[256];
        ckpt_remove_dir(part, e2, sizeof e2); /* best effort; prune removes leftovers */
        return -1;
    }
    /* An older save of this step goes (marker first), then the new one takes its name. */
    if (ckpt_remove_dir(dir, err, errlen)) return -1;
    if (rename(part, dir) != 0) {
        snprintf(err, errlen, "checkpoint_save: cannot rename %s to %s: %s", part, dir,
                 strerror(errno));
        return -1;
    }
    if (ckpt_fsync_dir(ckdir, err, errlen)) return -1;
    if (path_out && path_len) snprintf(path_out, path_len, "%s", dir);
    return 0;
}
