/*
 * tests/runlog/test_runlog_checkpoint.c — checkpoints of builtin:tiny-qwen2 after two
 * AdamW steps: saved, loaded into fresh objects and compared bit for bit (weights, m,
 * v, step, blobs, scalars), in F32 and in BF16 (whose exact weights come back from the
 * fp32 copy in the trainer state); a directory without COMPLETE (a crash mid-write) is
 * ignored by checkpoint_latest and refused by checkpoint_open; pruning keeps the last K
 * and removes stale incomplete ones; bad arguments and mismatched models get messages.
 * usage: test_runlog_checkpoint SCRATCH_DIR
 */
/* the checkpoint functions take the checkpoint directory; here the run dir itself */
#define ckroot run
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/model/builtin.h"
#include "engine/runlog/checkpoint.h"
#include "test_util.h"

static char err[2048];

#define OK(call) CHECK((call) == 0, "%s", err)

/* Two AdamW steps on a fixed packed batch so that m, v and the weights are non-trivial. */
static void train_two_steps(model *m, optimizer *o) {
    int32_t ids[12], offs[3] = {0, 5, 12};
    for (int i = 0; i < 12; i++) ids[i] = (i * 37 + 5) % m->cfg.vocab_size;
    float w[12];
    for (int t = 0; t < 12; t++) w[t] = (t == 4 || t == 11) ? 0.0f : -0.1f;
    rlvr_backend *be = m->be;
    float *dlogp = be->alloc(be, sizeof w);
    be->to_device(be, dlogp, w, sizeof w);
    model_batch b = {.T = 12, .B = 2, .ids = ids, .offsets = offs};
    for (int s = 0; s < 2; s++) {
        double norm;
        model_zero_grads(m);
        OK(model_forward(m, &b, 1.0f, 1, err, sizeof err));
        OK(model_backward(m, dlogp, NULL, err, sizeof err));
        OK(optim_step(o, m, 1e-2f, 1.0f, &norm, err, sizeof err));
    }
    be->free(be, dlogp);
}

static float *host_weights(const model *m) {
    float *h = malloc(m->n_weights * sizeof(float));
    for (int i = 0; i < m->n_params; i++) model_get_param(m, i, h + m->params[i].offset);
    return h;
}

static float *host_copy(const model *m, const float *dev) {
    float *h = malloc(m->n_weights * sizeof(float));
    m->be->to_host(m->be, h, dev, m->n_weights * sizeof(float));
    return h;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Saves, loads into fresh objects, compares everything bit for bit. */
static void round_trip(rlvr_backend *be, const char *run, model *m, optimizer *o, int dtype) {
    unsigned char rng[40];
    for (int i = 0; i < 40; i++) rng[i] = (unsigned char)(i * 7 + 1);
    const char *cfg_json = "{\"algorithm\": {\"name\": \"grpo\"}}";
    checkpoint_blob blobs[] = {{"rng", rng, sizeof rng},
                               {"config.json", cfg_json, strlen(cfg_json)},
                               {"empty", NULL, 0}};
    checkpoint_scalar scalars[] = {{"data.cursor", 123456789.0}, {"kl.beta", 0.0400000000000000008},
                                   {"lr", 3.0e-6}};
    char tok[4096];
    snprintf(tok, sizeof tok, "%s/tokenizer.json", run);
    OK(fio_mkdirs(run, err, sizeof err));
    OK(fio_write_file(tok, "{\"version\": \"1.0\"}", 18, err, sizeof err));
    const char *toks[] = {tok};
    checkpoint_save_args a = {.step = 2, .model = m, .opt = o, .weights_dtype = dtype,
                              .tokenizer_files = toks, .n_tokenizer_files = 1,
                              .blobs = blobs, .n_blobs = 3, .scalars = scalars, .n_scalars = 3};
    char path[4096];
    OK(checkpoint_save(ckroot, &a, path, sizeof path, err, sizeof err));
    char f[4400];
    const char *files[] = {"config.json", "model.safetensors", "tokenizer.json",
                           "trainer_state.safetensors", "trainer_state.json", "COMPLETE"};
    for (int i = 0; i < 6; i++) {
        snprintf(f, sizeof f, "%s/%s", path, files[i]);
        CHECK(exists(f), "missing %s", f);
    }
    CHECK(strstr(path, "/step-000002") != NULL, "path %s", path);
    long step = -1;
    char latest[4096];
    CHECK(checkpoint_latest(ckroot, latest, sizeof latest, &step, err, sizeof err) == 1 && step == 2 &&
              !strcmp(latest, path), "latest %s step %ld", latest, step);

    /* Fresh objects: a differently-seeded model and a zeroed optimizer. */
    model *m2 = NULL;
    optimizer o2;
    optim_config oc = optim_default_config();
    OK(model_open("builtin:tiny-qwen2", be, &m2, err, sizeof err));
    model_init_random(m2, 99);
    OK(optim_create(&o2, m2, &oc, err, sizeof err));
    checkpoint *c = NULL;
    OK(checkpoint_load(latest, m2, &o2, &c, err, sizeof err));
    if (c) {
        CHECK(checkpoint_step(c) == 2, "step");
        float *w1 = host_weights(m), *w2 = host_weights(m2);
        float *m1 = host_copy(m, o->m), *mm2 = host_copy(m2, o2.m);
        float *v1 = host_copy(m, o->v), *v2 = host_copy(m2, o2.v);
        const size_t nb = m->n_weights * sizeof(float);
        CHECK(!memcmp(w1, w2, nb), "weights differ (dtype %s)", st_dtype_name((st_dtype)dtype));
        CHECK(!memcmp(m1, mm2, nb), "m differs");
        CHECK(!memcmp(v1, v2, nb), "v differs");
        int nonzero = 0;
        for (size_t i = 0; i < m->n_weights; i++) nonzero += v1[i] != 0.0f;
        CHECK(nonzero > (int)(m->n_weights / 2), "v should be mostly non-zero after 2 steps");
        CHECK(o2.step == 2 && o->step == 2, "optimizer step %d", o2.step);
        free(w1), free(w2), free(m1), free(mm2), free(v1), free(v2);
        const void *d;
        size_t len;
        OK(checkpoint_get_blob(c, "rng", &d, &len, err, sizeof err));
        CHECK(len == sizeof rng && !memcmp(d, rng, len), "rng blob");
        OK(checkpoint_get_blob(c, "config.json", &d, &len, err, sizeof err));
        CHECK(len == strlen(cfg_json) && !memcmp(d, cfg_json, len), "config blob");
        OK(checkpoint_get_blob(c, "empty", &d, &len, err, sizeof err));
        CHECK(len == 0, "empty blob");
        CHECK(checkpoint_get_blob(c, "nope", &d, &len, err, sizeof err) == -1 &&
                  strstr(err, "\"nope\""), "%s", err);
        double v;
        for (int i = 0; i < 3; i++) {
            OK(checkpoint_get_scalar(c, scalars[i].name, &v, err, sizeof err));
            CHECK(v == scalars[i].value, "scalar %s: %.17g", scalars[i].name, v);
        }
        CHECK(checkpoint_get_scalar(c, "nope", &v, err, sizeof err) == -1, "missing scalar");
        checkpoint_close(c);
    }
    /* The model directory alone loads as a model (what transformers would read). */
    model *m3 = NULL;
    OK(model_load(path, be, &m3, err, sizeof err));
    if (m3) {
        float *w1 = host_weights(m), *w3 = host_weights(m3);
        int same = 1;
        for (size_t i = 0; i < m->n_weights; i++)
            same &= dtype == ST_F32 ? w1[i] == w3[i] : st_bf16_to_f32(st_f32_to_bf16(w1[i])) == w3[i];
        CHECK(same, "model_load of the checkpoint directory");
        free(w1), free(w3);
        model_free(m3);
    }
    optim_free(&o2, m2);
    model_free(m2);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    test_fresh_dir(argv[1]);
    rlvr_backend *be = rlvr_backend_create("cpu", 1, err, sizeof err);
    model *m = NULL;
    optimizer o;
    optim_config oc = optim_default_config();
    if (!be || model_open("builtin:tiny-qwen2", be, &m, err, sizeof err) ||
        model_enable_grads(m, err, sizeof err) || optim_create(&o, m, &oc, err, sizeof err)) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    train_two_steps(m, &o);
    char run[4096], path[4400];

    /* ---- F32 and BF16 round trips ---- */
    snprintf(run, sizeof run, "%s/f32", argv[1]);
    round_trip(be, run, m, &o, ST_F32);
    snprintf(run, sizeof run, "%s/bf16", argv[1]);
    round_trip(be, run, m, &o, ST_BF16);

    /* ---- crash simulation, latest, prune ---- */
    snprintf(run, sizeof run, "%s/prune", argv[1]);
    long step = -1;
    CHECK(checkpoint_latest(ckroot, path, sizeof path, &step, err, sizeof err) == 0, "no run dir yet");
    checkpoint_blob blob = {"cursor", "abc", 3};
    checkpoint_save_args a = {.model = m, .opt = &o, .weights_dtype = ST_F32, .blobs = &blob, .n_blobs = 1};
    for (long s = 10; s <= 50; s += 10) {
        a.step = s;
        OK(checkpoint_save(ckroot, &a, NULL, 0, err, sizeof err));
    }
    /* step 60 interrupted: everything but the marker */
    a.step = 60;
    OK(checkpoint_save(ckroot, &a, path, sizeof path, err, sizeof err));
    snprintf(path, sizeof path, "%s/step-000060/COMPLETE", run);
    CHECK(unlink(path) == 0, "unlink marker");
    /* step 25 interrupted early: a lone directory with a partial temp file */
    snprintf(path, sizeof path, "%s/step-000025", run);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/step-000025/model.safetensors.tmp.1", run);
    fio_write_file(path, "xx", 2, err, sizeof err);
    snprintf(path, sizeof path, "%s/not-a-checkpoint", run);
    mkdir(path, 0755);
    char latest[4096];
    CHECK(checkpoint_latest(ckroot, latest, sizeof latest, &step, err, sizeof err) == 1 && step == 50,
          "latest complete should be 50, got %ld", step);
    checkpoint *c = NULL;
    snprintf(path, sizeof path, "%s/step-000060", run);
    CHECK(checkpoint_open(path, &c, err, sizeof err) == -1 && strstr(err, "COMPLETE"), "%s", err);
    int removed = checkpoint_prune(ckroot, 2, err, sizeof err);
    CHECK(removed == 4, "removed %d (10, 20, 25, 30)", removed);
    const long kept[] = {40, 50, 60}, gone[] = {10, 20, 25, 30};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/step-%06ld", run, kept[i]);
        CHECK(exists(path), "kept %s", path);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/step-%06ld", run, gone[i]);
        CHECK(!exists(path), "removed %s", path);
    }
    snprintf(path, sizeof path, "%s/not-a-checkpoint", run);
    CHECK(exists(path), "foreign directories are left alone");
    CHECK(checkpoint_prune(ckroot, 0, err, sizeof err) == 0, "keep all");
    CHECK(checkpoint_prune(ckroot, -1, err, sizeof err) == -1 && strstr(err, "keep_last"), "%s", err);
    /* Re-saving the interrupted step replaces it and it becomes the latest. */
    a.step = 60;
    OK(checkpoint_save(ckroot, &a, NULL, 0, err, sizeof err));
    CHECK(checkpoint_latest(ckroot, latest, sizeof latest, &step, err, sizeof err) == 1 && step == 60, "60");
    CHECK(checkpoint_prune(ckroot, 1, err, sizeof err) == 2, "keep 1");

    /* ---- bad input ---- */
    checkpoint_blob bad_blob = {"has space", "x", 1};
    a.blobs = &bad_blob;
    CHECK(checkpoint_save(ckroot, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, "has space"), "%s", err);
    checkpoint_blob dup[] = {{"a", "x", 1}, {"a", "y", 1}};
    a.blobs = dup;
    a.n_blobs = 2;
    CHECK(checkpoint_save(ckroot, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, "twice"), "%s", err);
    a.n_blobs = 0;
    const char *badtok[] = {"/tmp/config.json"};
    a.tokenizer_files = badtok;
    a.n_tokenizer_files = 1;
    CHECK(checkpoint_save(ckroot, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, "config.json"), "%s", err);
    const char *missing[] = {"/nonexistent/tokenizer.json"};
    a.tokenizer_files = missing;
    CHECK(checkpoint_save(ckroot, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, "/nonexistent/tokenizer.json"),
          "%s", err);
    CHECK(checkpoint_latest(ckroot, latest, sizeof latest, &step, err, sizeof err) == 1 && step == 60,
          "a failed save leaves the latest complete checkpoint alone");
    snprintf(path, sizeof path, "%s/step-000060/model.safetensors", run);
    CHECK(exists(path), "the step-60 checkpoint survived a failed save of step 60");
    snprintf(path, sizeof path, "%s/step-000060.partial", run);
    CHECK(!exists(path), "a failed save cleans up its .partial directory");
    snprintf(path, sizeof path, "%s/step-000070.partial", run);
    mkdir(path, 0755); /* a save killed before its rename */
    snprintf(path, sizeof path, "%s/step-000070.partial/COMPLETE", run);
    OK(fio_write_file(path, "x", 1, err, sizeof err));
    CHECK(checkpoint_latest(ckroot, latest, sizeof latest, &step, err, sizeof err) == 1 && step == 60,
          ".partial directories are never the latest (%ld)", step);
    CHECK(checkpoint_prune(ckroot, 1, err, sizeof err) == 1, "prune removes the .partial: %s", err);
    snprintf(path, sizeof path, "%s/step-000070.partial", run);
    CHECK(!exists(path), ".partial removed");
    a.n_tokenizer_files = 0;
    checkpoint_scalar nan_scalar = {"beta", 0.0 / 0.0};
    a.scalars = &nan_scalar;
    a.n_scalars = 1;
    CHECK(checkpoint_save(ckroot, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, "beta"), "%s", err);
    a.n_scalars = 0;
    a.weights_dtype = ST_I32;
    CHECK(checkpoint_save(ckroot, &a, NULL, 0, err, sizeof err) == -1 && strstr(err, "dtype"), "%s", err);
    /* A model of another shape is refused with the counts. */
    model_config cfg = m->cfg;
    cfg.num_layers += 1;
    model *other = NULL;
    OK(model_create(&cfg, be, &other, err, sizeof err));
    if (other) {
        CHECK(checkpoint_open(latest, &c, err, sizeof err) == 0, "%s", err);
        CHECK(checkpoint_load_model(c, other, err, sizeof err) == -1 && strstr(err, "weights"), "%s", err);
        checkpoint_close(c);
        model_free(other);
    }
    /* A damaged trainer_state.json names the file and field. */
    snprintf(path, sizeof path, "%s/trainer_state.json", latest);
    const char *bad_json = "{\"format\": \"rlvr-checkpoint\", \"version\": 1, \"step\": -3}";
    OK(fio_write_file(path, bad_json, strlen(bad_json), err, sizeof err));
    CHECK(checkpoint_open(latest, &c, err, sizeof err) == -1 && strstr(err, "\"step\"") &&
              strstr(err, "trainer_state.json"), "%s", err);
    OK(fio_write_file(path, "{\"format\": \"x\"}", 15, err, sizeof err));
    CHECK(checkpoint_open(latest, &c, err, sizeof err) == -1 && strstr(err, "format"), "%s", err);

    optim_free(&o, m);
    model_free(m);
    be->destroy(be);
    if (check_failures) fprintf(stderr, "%d failures\n", check_failures);
    else printf("runlog checkpoint: ok\n");
    return check_failures ? 1 : 0;
}
