/*
 * engine/train/trainer.c — setting up a run, the step loop, metrics, checkpoints and
 * resume (see trainer.h; one step is trainer_step.c).
 *
 * Resume is bit-identical on the CPU because everything a step depends on is either
 * saved (weights as F32 masters, AdamW moments and step, data cursor, adaptive β) or a
 * pure function of (seed, step, prompt index, sample index) — the sampler's RNG.
 *
 * Data-parallel (t->world > 1): every rank builds the same trainer; rank 0 alone writes
 * the run directory (config.json, reference/, metrics, samples, TensorBoard, progress,
 * checkpoints) and the others wait at a barrier after each checkpoint. By default the
 * optimizer state is replicated (the same summed gradients on every rank), so rank 0's
 * checkpoint is every rank's state and a resume, with this or another world size,
 * restores it on every rank.
 *
 * ZeRO-1 (dist.zero1, world > 1): rank r holds the AdamW moments of its contiguous shard
 * [lo, hi) of the flat weight vector only (dist_shard_range). An update reduce-scatters
 * the gradients (rank r gets the sum of its shard), takes the global norm from the
 * all-reduced squared norms of the shards, runs AdamW on the shard (split at the decay
 * boundary when the shard straddles it), and all-gathers the updated weights (the fp32
 * masters when the backend keeps them, then rounded to the act dtype on every rank; the
 * same rounding the AdamW kernel applies). Checkpoints: every rank writes its moments to
 * CKPT_DIR/zero1-step-N/optimizer-rank<r>.safetensors ("optimizer.m", "optimizer.v",
 * F32 [hi - lo], written atomically), then after a barrier rank 0's checkpoint_save copies
 * these files into the checkpoint's .partial directory before its COMPLETE marker (so the
 * checkpoint is complete with every shard or not at all) and removes the staging
 * directory; trainer_state.json records "zero1_world_size" and "optimizer_step" in its
 * scalars. A resume with any world size, zero1 or not, reads from the shard files the
 * ranges it now holds (re-sharding), and a replicated checkpoint resumes into zero1 too.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/model/builtin.h"
#include "engine/runlog/checkpoint.h"
#include "engine/train/evaluate.h"
#include "engine/train/trainer_internal.h"

long trainer_step(const trainer *t) { return t->step; }

static int make_template(trainer *t, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    switch (c->template_.name) {
    case TC_TEMPLATE_AUTO:
        if (!tok_chat_template_source(t->tok))
            return chat_template_builtin("none", NULL, &t->tpl, err, errlen);
        return chat_template_auto(t->tok, &t->tpl, err, errlen);
    case TC_TEMPLATE_CHATML: return chat_template_builtin("chatml", NULL, &t->tpl, err, errlen);
    case TC_TEMPLATE_QWEN3: return chat_template_builtin("qwen3", NULL, &t->tpl, err, errlen);
    case TC_TEMPLATE_LLAMA3:
        return chat_template_builtin("llama3", tok_bos_token(t->tok), &t->tpl, err, errlen);
    case TC_TEMPLATE_LLAMA31:
        return chat_template_builtin("llama3.1", tok_bos_token(t->tok), &t->tpl, err, errlen);
    case TC_TEMPLATE_NONE: return chat_template_builtin("none", NULL, &t->tpl, err, errlen);
    case TC_TEMPLATE_CUSTOM: {
        cJSON *j = train_config_custom_template_json(c);
        int rc = chat_template_from_json(j, "template.custom", &t->tpl, err, errlen);
        cJSON_Delete(j);
        return rc;
    }
    }
    return -1;
}

static int make_rewards(trainer *t, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    reward_spec *specs = calloc((size_t)c->n_rewards, sizeof *specs);
    char **cfgs = calloc((size_t)c->n_rewards, sizeof *cfgs);
    int rc = -1;
    if (!specs || !cfgs) goto done;
    for (int i = 0; i < c->n_rewards; i++) {
        const tc_reward *r = &c->rewards[i];
        cJSON *o = cJSON_Parse(r->config_json ? r->config_json : "{}");
        if (!o) goto done;
        if (r->isolation == TC_ISOLATION_PROCESS && !cJSON_GetObjectItem(o, "isolation"))
            cJSON_AddStringToObject(o, "isolation", "process");
        cfgs[i] = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        specs[i] = (reward_spec){r->name, cfgs[i], r->weight};
    }
    reward_host_opts ro = {0};
    t->rewards = reward_host_create(specs, c->n_rewards, &ro, err, errlen);
    rc = t->rewards ? 0 : -1;
done:
    for (int i = 0; cfgs && i < c->n_rewards; i++) cJSON_free(cfgs[i]);
    free(cfgs);
    free(specs);
    return rc;
}

/* ---- ZeRO-1: the update and the optimizer shards of checkpoints --------------------- */

int trainer_update(trainer *t, double lr, double *grad_norm, char *err, size_t errlen) {
    rlvr_backend *be = t->be;
    model *m = t->policy;
    if (!t->zero1) { /* replicated: summed gradients everywhere, the same AdamW step */
        if ((t->world > 1 || dist_device_nccl(t->comm)) &&
            dist_allreduce_backend_f32(t->comm, be, m->grads, m->n_weights, err, errlen))
            return -1;
        return optim_step(&t->opt, m, (float)lr, 1.0f, grad_norm, err, errlen);
    }
    const size_t lo = t->opt.lo, hi = t->opt.hi, n = m->n_weights;
    if (dist_reduce_scatter_backend_f32(t->comm, be, m->grads, n, err, errlen)) return -1;
    double ss = be->sumsq(be, m->grads + lo, hi - lo); /* this shard's part of |g|² */
    if (dist_allreduce_f64(t->comm, &ss, 1, DIST_SUM, err, errlen)) return -1;
    const double norm = sqrt(ss);
    *grad_norm = norm;
    if (!isfinite(norm)) {
        snprintf(err, errlen, "optimizer: gradient norm is %g; update skipped", norm);
        return -1;
    }
    if (optim_update(&t->opt, m, m->grads + lo, (float)lr, optim_clip_scale(&t->opt, norm, 1.0f),
                     err, errlen))
        return -1;
    if (m->master) { /* exact fp32 weights travel; every rank rounds them the same way */
        if (dist_allgather_backend(t->comm, be, m->master, n, sizeof(float), err, errlen))
            return -1;
        be->cast_f32_to_act(be, m->weights, m->master, n);
    } else if (dist_allgather_backend(t->comm, be, m->weights, n, be->act_size, err, errlen)) {
        return -1;
    }
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "ZeRO-1 update on %s: %s", be->name, e);
        return -1;
    }
    return 0;
}

static void shard_path(char *buf, size_t len, const char *dir, int rank) {
    snprintf(buf, len, "%s/optimizer-rank%d.safetensors", dir, rank);
}

static void zero1_stage_dir(const trainer *t, char *buf, size_t len) {
    snprintf(buf, len, "%s/zero1-step-%06ld", t->ckpt_dir, t->step);
}

/* Writes this rank's moments to the staging directory (every rank). */
static int zero1_write_shard(trainer *t, char *err, size_t errlen) {
    char dir[4200], path[4300];
    zero1_stage_dir(t, dir, sizeof dir);
    shard_path(path, sizeof path, dir, t->rank);
    const size_t k = t->opt.hi - t->opt.lo;
    float *h = malloc(2 * k * sizeof(float));
    if (!h) {
        snprintf(err, errlen, "checkpoint: out of host memory for %zu optimizer values", 2 * k);
        return -1;
    }
    t->be->to_host(t->be, h, t->opt.m, k * sizeof(float));
    t->be->to_host(t->be, h + k, t->opt.v, k * sizeof(float));
    st_write_tensor ts[2] = {{"optimizer.m", 1, {(int64_t)k}, h},
                             {"optimizer.v", 1, {(int64_t)k}, h + k}};
    const char *be_err = t->be->error(t->be);
    int rc = -1;
    if (be_err)
        snprintf(err, errlen, "checkpoint: reading the optimizer shard on %s: %s", t->be->name,
                 be_err);
    else if (!fio_mkdirs(dir, err, errlen))
        rc = st_write_file(path, ts, 2, ST_F32, err, errlen);
    free(h);
    return rc;
}

/* Removes the staging directory and the shard files in it (rank 0, after the save). */
static void zero1_remove_stage(trainer *t) {
    char dir[4200], path[4300];
    zero1_stage_dir(t, dir, sizeof dir);
    for (int r = 0; r < t->world; r++) {
        shard_path(path, sizeof path, dir, r);
        unlink(path);
    }
    rmdir(dir);
}

/* 1 when the checkpoint directory holds sharded optimizer state. */
static int checkpoint_is_zero1(const char *dir) {
    char path[4300];
    shard_path(path, sizeof path, dir, 0);
    return access(path, F_OK) == 0;
}

/* Restores the moments of the weights this rank's optimizer holds ([opt.lo, opt.hi): a
 * shard, or all of them) from a checkpoint written with ZeRO-1 on any world size, or from
 * a replicated one. */
static int zero1_load(trainer *t, const checkpoint *ck, char *err, size_t errlen) {
    rlvr_backend *be = t->be;
    const model *m = t->policy;
    const size_t n = m->n_weights, lo = t->opt.lo, hi = t->opt.hi;
    const char *dir = checkpoint_dir(ck);
    double zw = 0, ostep = 0;
    if (checkpoint_get_scalar(ck, "zero1_world_size", &zw, err, errlen)) {
        /* a replicated checkpoint: take this rank's slice of the whole state */
        optimizer full;
        if (optim_create(&full, m, &t->opt.cfg, err, errlen)) return -1;
        int rc = checkpoint_load_optimizer(ck, &full, m, err, errlen);
        if (!rc) {
            be->copy(be, t->opt.m, full.m + lo, (hi - lo) * sizeof(float));
            be->copy(be, t->opt.v, full.v + lo, (hi - lo) * sizeof(float));
            t->opt.step = full.step;
        }
        optim_free(&full, m);
        return rc;
    }
    if (zw < 1 || zw > 1 << 24 || zw != floor(zw) ||
        checkpoint_get_scalar(ck, "optimizer_step", &ostep, err, errlen) || ostep < 0 ||
        ostep > 2147483647.0) {
        if (zw < 1 || zw > 1 << 24 || zw != floor(zw))
            snprintf(err, errlen, "%s: trainer_state.json scalar zero1_world_size = %g: expected "
                     "a world size >= 1", dir, zw);
        return -1;
    }
    const int W0 = (int)zw;
    for (int q = 0; q < W0; q++) { /* the old shards that overlap [lo, hi) */
        size_t qlo, qhi;
        dist_shard_range(n, W0, q, &qlo, &qhi);
        const size_t a = qlo > lo ? qlo : lo, b = qhi < hi ? qhi : hi;
        if (a >= b) continue;
        char path[4300];
        shard_path(path, sizeof path, dir, q);
        st_set *st = NULL;
        if (st_open_file(path, &st, err, errlen)) return -1;
        const char *names[2] = {"optimizer.m", "optimizer.v"};
        float *dst[2] = {t->opt.m, t->opt.v};
        for (int i = 0; i < 2; i++) {
            const st_tensor *x = st_find(st, names[i]);
            if (!x || x->dtype != ST_F32 || x->numel != (int64_t)(qhi - qlo)) {
                snprintf(err, errlen,
                         "%s: tensor \"%s\": expected F32 [%zu] (rank %d's shard of %zu weights "
                         "over %d ranks)%s",
                         path, names[i], qhi - qlo, q, n, W0, x ? "" : "; it is missing");
                st_close(st);
                return -1;
            }
            be->to_device(be, dst[i] + (a - lo), (const float *)x->data + (a - qlo),
                          (b - a) * sizeof(float));
        }
        st_close(st);
    }
    t->opt.step = (int)ostep;
    const char *e = be->error(be);
    if (e) {
        snprintf(err, errlen, "%s: loading optimizer shards on %s: %s", dir, be->name, e);
        return -1;
    }
    return 0;
}

/* Restores the newest complete checkpoint of the run. */
static int resume(trainer *t, char *err, size_t errlen) {
    char dir[4096];
    long step = 0;
    int found = checkpoint_latest(t->ckpt_dir, dir, sizeof dir, &step, err, errlen);
    if (found < 0) return -1;
    if (found == 0) {
        snprintf(err, errlen, "--resume: no complete checkpoint under %s", t->ckpt_dir);
        return -1;
    }
    checkpoint *ck = NULL;
    const int whole = !t->zero1 && !checkpoint_is_zero1(dir);
    if (checkpoint_load(dir, t->policy, whole ? &t->opt : NULL, &ck, err, errlen)) return -1;
    const void *data;
    size_t len;
    int rc = -1;
    char *text = NULL;
    if (!whole && zero1_load(t, ck, err, errlen)) goto done;
    if (checkpoint_get_blob(ck, "data_cursor", &data, &len, err, errlen)) goto done;
    text = strndup(data, len);
    dataset_cursor cur;
    if (!text || dataset_cursor_from_json(text, dir, &cur, err, errlen) ||
        dataset_set_cursor(t->data, &cur, err, errlen))
        goto done;
    free(text);
    text = NULL;
    if (checkpoint_get_blob(ck, "kl_controller", &data, &len, err, errlen)) goto done;
    text = strndup(data, len);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    int bad = !j || rl_kl_ctl_from_json(&t->kl, j, err, errlen);
    cJSON_Delete(j);
    if (bad) goto done;
    if (t->crit.m) {
        if (checkpoint_get_blob(ck, "critic", &data, &len, err, errlen) ||
            critic_state_load(&t->crit, data, len, err, errlen))
            goto done;
    }
    if (t->ref) { /* the reference is the run's initial weights, saved once */
        char ref_dir[4200];
        snprintf(ref_dir, sizeof ref_dir, "%s/reference", t->run_dir);
        model *ref = NULL;
        if (model_load(ref_dir, t->be, &ref, err, errlen)) goto done;
        model_free(t->ref);
        t->ref = ref;
    }
    t->step = step;
    rc = 0;
done:
    free(text);
    checkpoint_close(ck);
    return rc;
}

static int save_checkpoint(trainer *t, char *err, size_t errlen) {
    char (*shards)[4300] = NULL; /* [world] ZeRO-1 shard files (rank 0) */
    const char *tok_files[3];
    const char **files = tok_files; /* tokenizer files, then the shard files */
    void *crit_state = NULL;
    size_t crit_len = 0;
    dataset_cursor cur = dataset_get_cursor(t->data);
    char *cursor = dataset_cursor_to_json(&cur);
    cJSON *klj = rl_kl_ctl_to_json(&t->kl);
    char *kl = klj ? cJSON_PrintUnformatted(klj) : NULL;
    cJSON_Delete(klj);
    char *cfg = train_config_to_json(&t->cfg);
    int rc = -1;
    if (!cursor || !kl || !cfg) {
        snprintf(err, errlen, "checkpoint: out of host memory");
        goto done;
    }
    int n_tok = 0;
    char paths[3][4200];
    const char *tp = tok_path(t->tok);
    if (tp) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", tp);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
        const char *names[3] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json"};
        for (int i = 0; i < 3; i++) {
            snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
            FILE *f = fopen(paths[i], "r");
            if (f) {
                fclose(f);
                tok_files[n_tok++] = paths[i];
            }
        }
    }
    files = tok_files;
    if (t->zero1) { /* every rank stages its optimizer shard; rank 0 copies them in */
        if (zero1_write_shard(t, err, errlen) || dist_barrier(t->comm, err, errlen)) goto done;
        if (t->rank == 0) {
            shards = malloc((size_t)t->world * sizeof *shards);
            files = malloc(((size_t)t->world + 3) * sizeof *files);
            if (!shards || !files) goto oom;
            for (int i = 0; i < n_tok; i++) files[i] = tok_files[i];
            char dir[4200];
            zero1_stage_dir(t, dir, sizeof dir);
            for (int r = 0; r < t->world; r++) {
                shard_path(shards[r], sizeof shards[r], dir, r);
                files[n_tok + r] = shards[r];
            }
        }
    }
    if (t->rank != 0) { /* rank 0 writes the (replicated) state; wait until it is done */
        rc = dist_barrier(t->comm, err, errlen);
        goto done;
    }
    if (t->crit.m && critic_state_bytes(&t->crit, &crit_state, &crit_len, err, errlen)) goto done;
    checkpoint_blob blobs[4] = {{"data_cursor", cursor, strlen(cursor)},
                                {"kl_controller", kl, strlen(kl)},
                                {"resolved_config", cfg, strlen(cfg)},
                                {"critic", crit_state, crit_len}};
    /* with ZeRO-1 the optimizer state is the shard files (copied in with the tokenizer's) */
    checkpoint_save_args a = {.step = t->step, .model = t->policy,
                              .opt = t->zero1 ? NULL : &t->opt,
                              .weights_dtype = t->cfg.model.dtype == TC_DTYPE_F32 ? ST_F32
                                               : t->cfg.model.dtype == TC_DTYPE_F16 ? ST_F16
                                                                                   : ST_BF16,
                              .tokenizer_files = files,
                              .n_tokenizer_files = n_tok + (t->zero1 ? t->world : 0),
                              .blobs = blobs, .n_blobs = t->crit.m ? 4 : 3};
    checkpoint_scalar scalars[3] = {{"world_size", (double)t->world},
                                    {"zero1_world_size", (double)t->world},
                                    {"optimizer_step", (double)t->opt.step}};
    if (t->world > 1) {
        a.scalars = scalars;
        a.n_scalars = t->zero1 ? 3 : 1;
    }
    char out[4096];
    const int saved = checkpoint_save(t->ckpt_dir, &a, out, sizeof out, err, errlen);
    if (t->zero1) zero1_remove_stage(t); /* copied into the checkpoint, or failed */
    if (saved ||
        checkpoint_prune(t->ckpt_dir, t->cfg.checkpoint.keep_last, err, errlen) < 0 ||
        metrics_log_sync(t->metrics, err, errlen) ||
        (t->samples && samples_log_sync(t->samples, err, errlen)) ||
        (t->tb && tfevents_sync(t->tb, err, errlen)))
        goto done;
    if (t->world > 1 && dist_barrier(t->comm, err, errlen)) goto done;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "checkpoint: out of host memory");
done:
    free(shards);
    if (files != tok_files) free((void *)files);
    free(crit_state);
    free(cursor);
    cJSON_free(kl);
    free(cfg);
    return rc;
}

int trainer_create(const train_config *cfg, int want_resume, trainer **out, char *err,
                   size_t errlen) {
    return trainer_create_dist(cfg, want_resume, NULL, out, err, errlen);
}

/* What a data-parallel run cannot do (yet), refused up front with the reason. */
static int check_dist(const train_config *c, int world, char *err, size_t errlen) {
    if (world <= 1) return 0;
    const int P = c->schedule.prompts_per_step;
    const int mb = c->algorithm.mini_batch_size > 0 && c->algorithm.mini_batch_size < P
                       ? c->algorithm.mini_batch_size
                       : P;
    if (mb < world || (P % mb != 0 && P % mb < world)) {
        snprintf(err, errlen,
                 "schedule.prompts_per_step = %d, algorithm.mini_batch_size = %d with %d ranks: "
                 "every mini-batch must have at least one prompt group per rank (mini-batches "
                 "of %d groups, the last of %d); raise them or use fewer ranks",
                 P, c->algorithm.mini_batch_size, world, mb, P % mb ? P % mb : mb);
        return -1;
    }
    return 0;
}

/* The dist section on the communicator the launcher gave (the environment variables
 * RLVR_DIST_TIMEOUT_S and RLVR_DIST win over dist.timeout_s and dist.backend). */
static int apply_dist_config(trainer *t, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    const char *env_to = getenv("RLVR_DIST_TIMEOUT_S"), *env_kind = getenv("RLVR_DIST");
    if (!env_to || !*env_to) dist_set_timeout(t->comm, c->dist.timeout_s);
    t->zero1 = c->dist.zero1 && t->world > 1;
    if (env_kind && *env_kind) return 0;
    if (c->dist.backend == TC_DIST_MPI) dist_set_device_nccl(t->comm, 0);
    if (c->dist.backend == TC_DIST_NCCL && t->world > 1 && !dist_device_nccl(t->comm)) {
        snprintf(err, errlen,
                 "dist.backend = \"nccl\" with %d ranks: the communicator is %s; NCCL needs "
                 "model.device = \"cuda\" (it is \"%s\") and an rlvr built with NCCL; use "
                 "\"auto\" or \"mpi\"",
                 t->world, dist_kind_name(t->comm),
                 c->model.device == TC_DEVICE_CUDA ? "cuda" : "cpu");
        return -1;
    }
    return 0;
}

int trainer_create_dist(const train_config *cfg, int want_resume, dist_comm *comm, trainer **out,
                        char *err, size_t errlen) {
    *out = NULL;
    trainer *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "trainer: out of host memory");
        return -1;
    }
    /* take a private copy of the config through its JSON form */
    char *json = train_config_to_json(cfg);
    if (!json || train_config_parse(json, "resolved config", NULL, 0, &t->cfg, err, errlen)) {
        free(json);
        free(t);
        return -1;
    }
    free(json);
    const train_config *c = &t->cfg;
    t->comm = comm;
    t->rank = dist_rank(comm);
    t->world = dist_size(comm);
    t->t_start = runlog_mono_time();
    if (check_dist(c, t->world, err, errlen)) goto fail;
    if (apply_dist_config(t, err, errlen)) goto fail;
    if (train_config_check_files(c, err, errlen)) goto fail;
    snprintf(t->run_dir, sizeof t->run_dir, "%s", c->logging.run_dir);
    snprintf(t->ckpt_dir, sizeof t->ckpt_dir, "%s", c->checkpoint.dir);
    if (fio_mkdirs(t->run_dir, err, errlen) || fio_mkdirs(t->ckpt_dir, err, errlen)) goto fail;
#ifdef RLVR_HAVE_CUDA
    if (c->model.device == TC_DEVICE_CUDA && t->world > 1) /* one rank per GPU */
        t->be = rlvr_cuda_backend_create(dist_device_index(comm), err, errlen);
    else
#endif
        t->be = rlvr_backend_create(c->model.device == TC_DEVICE_CUDA ? "cuda" : "cpu",
                                    c->model.threads, err, errlen);
    if (!t->be) goto fail;
    if (model_open(c->model.path, t->be, &t->policy, err, errlen) ||
        model_enable_grads(t->policy, err, errlen))
        goto fail;
    const int want_ref = c->algorithm.kl.coef > 0 || c->algorithm.kl.adaptive.enabled;
    if (want_ref && model_open(c->model.path, t->be, &t->ref, err, errlen)) goto fail;
    if (tok_load(c->tokenizer.path, &t->tok, err, errlen)) goto fail;
    if (tok_vocab_size(t->tok) > t->policy->cfg.vocab_size) {
        snprintf(err, errlen, "tokenizer %s has %d ids but the model's vocabulary is %d",
                 c->tokenizer.path, tok_vocab_size(t->tok), t->policy->cfg.vocab_size);
        goto fail;
    }
    const int32_t *eos;
    t->n_eos = tok_eos_ids(t->tok, &eos);
    t->eos = malloc(((size_t)t->n_eos + 1) * sizeof(int32_t));
    if (!t->eos) goto fail;
    memcpy(t->eos, eos, (size_t)t->n_eos * sizeof(int32_t));
    if (make_template(t, err, errlen)) goto fail;
    dataset_opts dop = dataset_opts_default();
    dop.prompt_field = c->data.prompt_field;
    dop.messages_field = c->data.messages_field;
    dop.answer_field = c->data.answer_field;
    dop.on_bad_line = c->data.on_bad_line == TC_BAD_LINE_SKIP ? DATASET_SKIP_BAD_LINES
                                                              : DATASET_STOP_ON_BAD_LINE;
    dop.shuffle = c->data.shuffle;
    dop.seed = c->data.shuffle_seed;
    dop.epochs = c->data.epochs;
    if (dataset_load(c->data.train, &dop, &t->data, err, errlen)) goto fail;
    if (dataset_skipped(t->data))
        fprintf(stderr, "rlvr train: skipped %d bad line(s) of %s (first: %s)\n",
                dataset_skipped(t->data), c->data.train, dataset_first_skip(t->data));
    if (c->eval.every > 0 && c->data.eval) {
        dataset_opts eop = dop;
        eop.shuffle = 0;
        eop.epochs = 0;
        if (dataset_load(c->data.eval, &eop, &t->eval_data, err, errlen)) goto fail;
    }
    t->cache = calloc((size_t)dataset_size(t->data), sizeof *t->cache);
    if (!t->cache) goto fail;
    if (make_rewards(t, err, errlen)) goto fail;
    if (sampler_create(t->policy, t->tok, (size_t)c->rollout.kv_cache_mb << 20, &t->smp, err,
                       errlen))
        goto fail;
    optim_config oc = {(float)c->optimizer.betas[0], (float)c->optimizer.betas[1],
                       (float)c->optimizer.eps, (float)c->optimizer.weight_decay,
                       (float)c->optimizer.max_grad_norm};
    if (t->zero1) {
        size_t lo, hi;
        dist_shard_range(t->policy->n_weights, t->world, t->rank, &lo, &hi);
        if (optim_create_range(&t->opt, t->policy, &oc, lo, hi, err, errlen)) goto fail;
        fprintf(stderr,
                "rlvr train: rank %d/%d: ZeRO-1: AdamW state of weights [%zu, %zu): %zu bytes "
                "(replicated: %zu)\n",
                t->rank, t->world, lo, hi, optim_state_bytes(&t->opt),
                t->policy->n_weights * 2 * sizeof(float));
    } else if (optim_create(&t->opt, t->policy, &oc, err, errlen)) {
        goto fail;
    }
    t->has_opt = 1;
    if (c->algorithm.advantage == TC_ADV_PPO &&
        critic_create(c->model.path, t->be, &oc, &t->crit, err, errlen))
        goto fail;
    if (rl_kl_ctl_init(&t->kl, c->algorithm.kl.coef, c->algorithm.kl.adaptive.enabled,
                       c->algorithm.kl.adaptive.target, c->algorithm.kl.adaptive.horizon, err,
                       errlen))
        goto fail;
    if (want_resume) {
        if (resume(t, err, errlen)) goto fail;
    } else if (t->ref && t->rank == 0) { /* keep the initial weights: the reference survives a resume */
        char ref_dir[4200];
        snprintf(ref_dir, sizeof ref_dir, "%s/reference", t->run_dir);
        if (model_save(t->ref, ref_dir, ST_F32, 0, err, errlen)) goto fail;
    }
    if (t->rank != 0) { /* rank 0 writes the run directory */
        if (dist_barrier(comm, err, errlen)) goto fail;
        *out = t;
        return 0;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", t->run_dir);
    if (train_config_write(c, path, err, errlen)) goto fail;
    const long keep = want_resume ? t->step : -1;
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->run_dir);
    if (metrics_log_open(&t->metrics, path, keep, err, errlen)) goto fail;
    if (c->logging.samples_every > 0) {
        snprintf(path, sizeof path, "%s/samples.jsonl", t->run_dir);
        if (samples_log_open(&t->samples, path, c->logging.samples_every, keep, err, errlen))
            goto fail;
    }
    if (c->logging.tensorboard && tfevents_open(&t->tb, t->run_dir, keep, err, errlen)) goto fail;
    if (t->world > 1 && dist_barrier(comm, err, errlen)) goto fail;
    *out = t;
    return 0;
fail:
    trainer_free(t);
    return -1;
}

void trainer_free(trainer *t) {
    if (!t) return;
    metrics_log_close(t->metrics);
    samples_log_close(t->samples);
    tfevents_close(t->tb);
    if (t->be) {
        float *bufs[] = {t->ls.old_lp, t->ls.ref_lp, t->ls.adv, t->ls.w, t->ls.loss,
                         t->ls.kl, t->ls.clipped, t->ls.dlogp, t->ls.dent};
        for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) t->be->free(t->be, bufs[k]);
    }
    if (t->has_opt) optim_free(&t->opt, t->policy);
    critic_free(&t->crit);
    sampler_free(t->smp);
    reward_host_free(t->rewards);
    if (t->cache && t->data)
        for (int i = 0; i < dataset_size(t->data); i++) {
            free(t->cache[i].ids);
            free(t->cache[i].text);
        }
    free(t->cache);
    dataset_free(t->data);
    dataset_free(t->eval_data);
    chat_template_free(t->tpl);
    tok_free(t->tok);
    free(t->eos);
    model_free(t->ref);
    model_free(t->policy);
    if (t->be) t->be->destroy(t->be);
    train_config_free(&t->cfg);
    free(t);
}

/* eval.every: pass@1 / pass@k / maj@k on data.eval into the step's metrics. Sampling as
 * in training (same temperature and limits), seed fixed so evaluations compare. */
static int run_eval(trainer *t, metrics_rec *r, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    sampling_params sp = {0};
    sp.temperature = (float)c->rollout.temperature;
    sp.top_k = c->rollout.top_k;
    sp.top_p = (float)c->rollout.top_p;
    sp.min_p = (float)c->rollout.min_p;
    sp.repetition_penalty = (float)c->rollout.repetition_penalty;
    sp.max_new_tokens = c->rollout.max_new_tokens;
    sp.eos_ids = t->eos;
    sp.n_eos_ids = t->n_eos;
    sp.stop_ids = c->rollout.stop_ids;
    sp.n_stop_ids = c->rollout.n_stop_ids;
    sp.stop_strings = (const char *const *)c->rollout.stop;
    sp.n_stop_strings = c->rollout.n_stop;
    sp.seed = c->seed ^ 0x5eedULL;
    double deadline = 1.0;
    for (int i = 0; i < c->n_rewards; i++)
        if (c->rewards[i].timeout_s > deadline) deadline = c->rewards[i].timeout_s;
    eval_request rq = {t->tok, t->tpl, t->smp, t->rewards, t->eval_data, c->eval.max_prompts,
                       c->eval.n, c->eval.k, sp, deadline};
    eval_result res;
    const double t0 = runlog_mono_time();
    if (evaluate(&rq, &res, err, errlen)) return -1;
    metrics_rec_add(r, "eval/pass@1", res.pass1);
    metrics_rec_add(r, "eval/pass@k", res.pass_k);
    metrics_rec_add(r, "eval/maj@k", res.maj_k);
    metrics_rec_add(r, "eval/mean_length", res.mean_len);
    metrics_rec_add(r, "time/eval", runlog_mono_time() - t0);
    return 0;
}

int trainer_run(trainer *t, char *err, size_t errlen) {
    const train_config *c = &t->cfg;
    static const char *const keys[] = {"reward/mean", "reward/accuracy", "kl/mean", "len/mean",
                                       "time/step"};
    const progress_mode pm = c->logging.progress == TC_PROGRESS_ON    ? PROGRESS_TTY
                             : c->logging.progress == TC_PROGRESS_OFF ? PROGRESS_LINES
                                                                     : PROGRESS_AUTO;
    const int lead = t->rank == 0; /* rank 0 alone logs */
    if (lead)
        progress_init(&t->prog, stderr, pm, t->step, c->schedule.steps,
                      c->logging.progress == TC_PROGRESS_OFF ? 0 : 10, keys, 5);
    metrics_rec r;
    metrics_rec_init(&r);
    int rc = 0;
    while (c->schedule.steps == 0 || t->step < c->schedule.steps) {
        metrics_rec_begin(&r, t->step + 1);
        int s = trainer_do_step(t, &r, err, errlen);
        if (s < 0) {
            rc = -1;
            break;
        }
        if (s == 1) break; /* data exhausted */
        t->step++;
        if (c->algorithm.ref_resync_steps > 0 && t->ref && t->step % c->algorithm.ref_resync_steps == 0)
            t->be->copy(t->be, t->ref->weights, t->policy->weights,
                        t->policy->n_weights * t->be->act_size);
        if (lead && t->eval_data && t->step % c->eval.every == 0 && run_eval(t, &r, err, errlen)) {
            rc = -1;
            break;
        }
        if (lead && c->logging.metrics_every > 0 && t->step % c->logging.metrics_every == 0) {
            if (metrics_log_write(t->metrics, &r, err, errlen) ||
                (t->tb && tfevents_write(t->tb, &r, err, errlen))) {
                rc = -1;
                break;
            }
        }
        if (lead) progress_update(&t->prog, t->step, &r);
        if (c->checkpoint.every > 0 && t->step % c->checkpoint.every == 0 &&
            save_checkpoint(t, err, errlen)) {
            rc = -1;
            break;
        }
    }
    if (lead) progress_finish(&t->prog);
    metrics_rec_free(&r);
    if (rc == 0 && (c->checkpoint.every == 0 || t->step % c->checkpoint.every != 0))
        rc = save_checkpoint(t, err, errlen); /* always end with a checkpoint */
    return rc;
}
