/*
 * tests/train_config/test_train_config.c — the run configuration: defaults (TRL's GRPO
 * ones where they exist), every validation error (asserted by substring), --set
 * overrides, the resolved config round trip, file checks, the example config and the
 * docs listing every key.
 * Usage: test_train_config EXAMPLE_CONFIG DOCS_CONFIG_MD
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "engine/io/fileio.h"
#include "engine/train/config.h"
#include "tests/common/check.h"

static const char *BASE = "{\"model\": {\"path\": \"models/m\"},\n"
                          " \"data\": {\"train\": \"train.jsonl\"},\n"
                          " \"rewards\": [{\"name\": \"math_answer\"}]}";

/* Parses text with sets; expects success. */
static int ok_cfg(const char *text, const char *const *sets, int n, train_config *c) {
    char err[4096];
    int rc = train_config_parse(text, "cfg.json", sets, n, c, err, sizeof(err));
    CHECK(rc == 0, "expected success, got: %s", err);
    return rc;
}

/* Expects failure whose message contains every non-NULL needle. */
static void bad_cfg(int line, const char *text, const char *const *sets, int n, const char *n1,
                    const char *n2, const char *n3) {
    char err[4096];
    train_config c;
    int rc = train_config_parse(text, "cfg.json", sets, n, &c, err, sizeof(err));
    if (rc == 0) {
        check_failures++;
        fprintf(stderr, "FAIL line %d: expected an error containing '%s'\n", line, n1);
        train_config_free(&c);
        return;
    }
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i] && !strstr(err, needles[i])) {
            check_failures++;
            fprintf(stderr, "FAIL line %d: error lacks '%s':\n  %s\n", line, needles[i], err);
        }
    /* the struct is left zeroed on failure */
    CHECK(c.model.path == NULL && c.rewards == NULL, "line %d: cfg not zeroed", line);
}

/* One --set on BASE that must fail with the needles. */
#define BAD_SET(assign, n1, n2, n3)                                                            \
    do {                                                                                       \
        const char *s_[] = {assign};                                                           \
        bad_cfg(__LINE__, BASE, s_, 1, n1, n2, n3);                                            \
    } while (0)
#define BAD_SETS(arr, n1, n2, n3)                                                              \
    bad_cfg(__LINE__, BASE, arr, (int)(sizeof(arr) / sizeof(*arr)), n1, n2, n3)
#define BAD_TEXT(text, n1, n2, n3) bad_cfg(__LINE__, text, NULL, 0, n1, n2, n3)

// ---------------------------------------------------------------------------------------

static void test_defaults(void) {
    train_config c;
    if (ok_cfg(BASE, NULL, 0, &c)) return;
    /* TRL GRPOConfig defaults */
    CHECK(c.rollout.G == 8, "G %d", c.rollout.G);
    CHECK(c.rollout.temperature == 1.0 && c.rollout.top_p == 1.0 && c.rollout.top_k == 0 &&
              c.rollout.min_p == 0 && c.rollout.repetition_penalty == 1.0,
          "sampling defaults");
    CHECK(c.rollout.max_new_tokens == 256, "max_new_tokens %d", c.rollout.max_new_tokens);
    CHECK(c.optimizer.lr == 1e-6, "lr %g", c.optimizer.lr);
    CHECK(c.optimizer.betas[0] == 0.9 && c.optimizer.betas[1] == 0.999, "betas");
    CHECK(c.optimizer.eps == 1e-8 && c.optimizer.weight_decay == 0 &&
              c.optimizer.max_grad_norm == 1.0,
          "adamw defaults");
    CHECK(c.algorithm.kl.coef == 0 && c.algorithm.kl.estimator == TC_KL_K3 &&
              c.algorithm.kl.in == TC_KL_IN_LOSS && !c.algorithm.kl.adaptive.enabled,
          "kl defaults");
    CHECK(c.algorithm.clip_low == 0.2 && c.algorithm.clip_high == 0.2, "clip");
    CHECK(c.algorithm.advantage == TC_ADV_GRPO && c.algorithm.std_scope == TC_STD_GROUP &&
              c.algorithm.eps == 1e-4 && c.algorithm.loss_agg == TC_AGG_TOKEN_MEAN,
          "grpo defaults");
    CHECK(c.algorithm.ppo_epochs == 1 && c.algorithm.mini_batch_size == 0, "mu");
    CHECK(c.algorithm.dual_clip == 0 && c.algorithm.log_ratio_clamp == 20, "dual/clamp");
    CHECK(isnan(c.algorithm.critic_lr), "critic_lr not given");
    CHECK(c.algorithm.gamma == 1 && c.algorithm.lambda == 1 && c.algorithm.value_clip == 0.5,
          "gae");
    CHECK(c.algorithm.overlong.mode == TC_OVERLONG_NONE && c.algorithm.overlong.buffer == 51,
          "overlong buffer %d", c.algorithm.overlong.buffer);
    CHECK(c.algorithm.dynamic_sampling.max_tries == 10, "max_tries");
    CHECK(c.seed == 42 && c.data.shuffle_seed == 42 && c.data.shuffle == 1 &&
              c.data.epochs == 1 && c.data.on_bad_line == TC_BAD_LINE_STOP,
          "data defaults");
    CHECK(!strcmp(c.data.prompt_field, "prompt") &&
              !strcmp(c.data.messages_field, "messages") &&
              !strcmp(c.data.answer_field, "answer") && c.data.eval == NULL,
          "field names");
    CHECK(!strcmp(c.tokenizer.path, "models/m"), "tokenizer defaults to the model dir");
    CHECK(c.template_.name == TC_TEMPLATE_AUTO && c.template_.enable_thinking == -1 &&
              c.template_.system_prompt == NULL,
          "template");
    CHECK(c.model.dtype == TC_DTYPE_BF16 && c.model.device == TC_DEVICE_CPU &&
              c.model.threads == 0,
          "model");
    CHECK(c.n_rewards == 1 && !strcmp(c.rewards[0].name, "math_answer") &&
              c.rewards[0].weight == 1.0 && !strcmp(c.rewards[0].config_json, "{}") &&
              c.rewards[0].isolation == TC_ISOLATION_THREAD && c.rewards[0].timeout_s == 60,
          "reward defaults");
    CHECK(c.schedule.steps == 0 && c.schedule.prompts_per_step == 8 &&
              c.schedule.warmup_steps == 0 && c.schedule.kind == TC_SCHED_CONSTANT &&
              c.schedule.micro_batch_tokens == 8192,
          "schedule");
    CHECK(!strcmp(c.logging.run_dir, "runs/rlvr") &&
              !strcmp(c.checkpoint.dir, "runs/rlvr/checkpoints") && c.checkpoint.every == 100 &&
              c.checkpoint.keep_last == 3,
          "checkpoint dir %s", c.checkpoint.dir);
    CHECK(c.logging.metrics_every == 1 && c.logging.samples_every == 10 &&
              c.logging.samples_count == 4 && !c.logging.tensorboard &&
              c.logging.progress == TC_PROGRESS_AUTO,
          "logging");
    CHECK(c.eval.every == 0 && c.eval.n == 1 && c.eval.k == 1, "eval");
    CHECK(c.rollout.n_stop == 0 && c.rollout.n_stop_ids == 0 && c.rollout.kv_cache_mb == 1024,
          "stops");
    train_config_free(&c);
}

static void test_derived(void) {
    train_config c;
    const char *dr[] = {"algorithm.advantage=drgrpo", "seed=7", "logging.run_dir=out/r1"};
    if (ok_cfg(BASE, dr, 3, &c) == 0) {
        CHECK(c.algorithm.std_scope == TC_STD_NONE, "drgrpo: std none");
        CHECK(c.algorithm.loss_agg == TC_AGG_SEQ_MEAN_TOKEN_SUM_NORM, "drgrpo: sum-norm");
        CHECK(c.data.shuffle_seed == 7, "shuffle_seed follows seed");
        CHECK(!strcmp(c.checkpoint.dir, "out/r1/checkpoints"), "ckpt dir %s", c.checkpoint.dir);
        train_config_free(&c);
    }
    const char *ex[] = {"algorithm.clip_low=0.1",
                        "algorithm.clip_high=0.28",
                        "data.shuffle_seed=3",
                        "rollout.max_new_tokens=1000",
                        "algorithm.loss_agg=seq-mean-token-mean",
                        "tokenizer.path=tok"};
    if (ok_cfg(BASE, ex, 6, &c) == 0) {
        CHECK(c.algorithm.clip_low == 0.1 && c.algorithm.clip_high == 0.28, "clip-higher");
        CHECK(c.data.shuffle_seed == 3 && c.seed == 42, "explicit shuffle seed");
        CHECK(c.algorithm.overlong.buffer == 200, "buffer = max_new_tokens/5");
        CHECK(c.algorithm.loss_agg == TC_AGG_SEQ_MEAN_TOKEN_MEAN, "agg");
        CHECK(!strcmp(c.tokenizer.path, "tok"), "tokenizer");
        train_config_free(&c);
    }
    const char *lo[] = {"algorithm.clip_low=0.1"};
    if (ok_cfg(BASE, lo, 1, &c) == 0) {
        CHECK(c.algorithm.clip_high == 0.1, "clip_high defaults to clip_low");
        train_config_free(&c);
    }
}

static void test_unknown_keys(void) {
    BAD_SET("rollout.temprature=0.7", "cfg.json: unknown key rollout.temprature",
            "did you mean rollout.temperature?", NULL);
    BAD_SET("rollout.lr=1e-5", "unknown key rollout.lr", "did you mean optimizer.lr?", NULL);
    BAD_SET("algoritm.advantage=grpo", "unknown key algoritm", "did you mean algorithm?", NULL);
    BAD_SET("rollout.banana=1", "unknown key rollout.banana",
            "allowed keys in rollout: G, temperature", NULL);
    BAD_SET("rewards[0].wieght=2", "unknown key rewards[0].wieght",
            "did you mean rewards[0].weight?", NULL);
    BAD_SET("algorithm.kl.estimater=k2", "unknown key algorithm.kl.estimater",
            "did you mean algorithm.kl.estimator?", NULL);
    BAD_SET("optimizer.LR=1e-5", "did you mean optimizer.lr?", NULL, NULL);
    BAD_TEXT("{\"model\": {\"path\": \"m\", \"path\": \"n\"}, \"data\": {\"train\": \"t\"}, "
             "\"rewards\": [{\"name\": \"r\"}]}",
             "model.path: duplicate key", NULL, NULL);
    /* several problems are reported together */
    const char *two[] = {"rollout.temprature=1", "optimizer.lr=-1"};
    BAD_SETS(two, "unknown key rollout.temprature", "optimizer.lr: -1 is out of range", NULL);
}

static void test_types_and_ranges(void) {
    BAD_SET("algorithm.clip_high=abc", "cfg.json: algorithm.clip_high: \"abc\" is a string",
            "expected a number in [0, 100]", NULL);
    BAD_SET("algorithm.clip_high=-0.1", "algorithm.clip_high: -0.1 is out of range",
            "expected a number in [0, 100]", NULL);
    BAD_SET("rollout.top_p=1.5", "rollout.top_p: 1.5 is out of range",
            "expected a number in (0, 1]", NULL);
    BAD_SET("rollout.top_p=0", "rollout.top_p: 0 is out of range", NULL, NULL);
    BAD_SET("rollout.G=2.5", "rollout.G: 2.5 is not an integer",
            "expected an integer in [1, 4096]", NULL);
    BAD_SET("rollout.G=\"8\"", "rollout.G: \"8\" is a string", NULL, NULL);
    BAD_SET("rollout.G=0", "rollout.G: 0 is out of range", NULL, NULL);
    BAD_SET("algorithm.advantage=gpro", "algorithm.advantage: \"gpro\" is not allowed",
            "one of \"grpo\", \"drgrpo\", \"rloo\", \"reinforce++\"",
            "(did you mean \"grpo\"?)");
    BAD_SET("algorithm.loss_agg=mean", "algorithm.loss_agg: \"mean\" is not allowed",
            "\"token-mean\", \"seq-mean-token-mean\", \"seq-mean-token-sum-norm\"", NULL);
    BAD_SET("data.on_bad_line=ignore", "data.on_bad_line: \"ignore\" is not allowed",
            "\"stop\", \"skip\"", NULL);
    BAD_SET("logging.tensorboard=1", "logging.tensorboard: 1 is a number",
            "expected true or false", NULL);
    BAD_SET("template.enable_thinking=yes", "template.enable_thinking: \"yes\" is a string",
            "true, false or null", NULL);
    BAD_SET("optimizer.betas=[0.9]", "optimizer.betas: [0.9] is a list",
            "a list of two numbers in [0, 1)", NULL);
    BAD_SET("optimizer.betas=[0.9,1.5]", "optimizer.betas: [0.9,1.5] is out of range", NULL,
            NULL);
    BAD_SET("rollout.stop=[\"\"]", "rollout.stop", "a list of non-empty strings", NULL);
    BAD_SET("rollout.stop=\"</s>\"", "rollout.stop: \"</s>\" is a string",
            "a list of non-empty strings", NULL);
    BAD_SET("rollout.stop_ids=[1,-2]", "rollout.stop_ids[1]: -2 is out of range", NULL, NULL);
    BAD_SET("model.path=\"\"", "model.path: \"\" is empty", NULL, NULL);
    BAD_SET("model=\"x\"", "model: \"x\" is a string; expected an object", NULL, NULL);
    BAD_SET("seed=-1", "seed: -1 is out of range", "[0, 2^53]", NULL);
    BAD_SET("rewards[0].config=[1]", "rewards[0].config: [1] is a list; expected an object",
            NULL, NULL);
    BAD_SET("rewards[0].isolation=fork", "rewards[0].isolation: \"fork\" is not allowed",
            "\"thread\", \"process\"", NULL);
    BAD_SET("rewards[0].timeout_s=0", "rewards[0].timeout_s: 0 is out of range", NULL, NULL);
    BAD_SET("rewards=[]", "rewards: [] is an empty list", "non-empty list of reward objects",
            NULL);
    BAD_SET("rewards=[3]", "rewards[0]: 3 is a number; expected a reward object", NULL, NULL);
    BAD_SET("algorithm.critic_lr=0", "algorithm.critic_lr: 0 is out of range", "(0, 1] or null",
            NULL);
    BAD_TEXT("{\"data\": {\"train\": \"t\"}, \"rewards\": [{\"name\": \"r\"}]}",
             "missing required key model.path", NULL, NULL);
    BAD_TEXT("{\"model\": {\"path\": \"m\"}, \"data\": {\"train\": \"t\"}}",
             "missing required key rewards", NULL, NULL);
    BAD_TEXT("{\"model\": {\"path\": \"m\"}, \"data\": {\"train\": \"t\"}, \"rewards\": [{}]}",
             "missing required key rewards[0].name", NULL, NULL);
    BAD_TEXT("{\"model\": {\"path\": \"m\"},\n \"data\": {\"train\": \"t\"},\n \"rewards\": [}",
             "cfg.json: not valid JSON at line 3", NULL, NULL);
    BAD_TEXT("[1, 2]", "the config is a list; expected a JSON object", NULL, NULL);
}

static void test_cross_checks(void) {
    BAD_SET("rollout.G=1", "rollout.G: 1 is too small for algorithm.advantage \"grpo\"",
            "G >= 2", NULL);
    const char *rloo1[] = {"algorithm.advantage=rloo", "rollout.G=1"};
    BAD_SETS(rloo1, "too small for algorithm.advantage \"rloo\"", NULL, NULL);
    const char *rpp1[] = {"algorithm.advantage=reinforce++", "rollout.G=1"};
    train_config c;
    if (ok_cfg(BASE, rpp1, 2, &c) == 0) train_config_free(&c);
    BAD_SET("algorithm.advantage=ppo", "algorithm.critic_lr: missing",
            "\"ppo\" trains a critic", NULL);
    const char *ppo[] = {"algorithm.advantage=ppo", "algorithm.critic_lr=1e-5"};
    if (ok_cfg(BASE, ppo, 2, &c) == 0) {
        CHECK(c.algorithm.critic_lr == 1e-5, "critic_lr");
        train_config_free(&c);
    }
    const char *dr[] = {"algorithm.advantage=drgrpo", "algorithm.std_scope=group"};
    BAD_SETS(dr, "algorithm.std_scope: \"group\" contradicts algorithm.advantage \"drgrpo\"",
             NULL, NULL);
    BAD_SET("algorithm.dual_clip=0.5", "algorithm.dual_clip: 0.5 is not allowed",
            "0 (off) or a number > 1", NULL);
    BAD_SET("algorithm.kl.adaptive.enabled=true", "algorithm.kl.adaptive.enabled",
            "expected algorithm.kl.coef > 0", NULL);
    const char *mb[] = {"algorithm.mini_batch_size=3", "schedule.prompts_per_step=8"};
    BAD_SETS(mb, "algorithm.mini_batch_size: 3 does not divide schedule.prompts_per_step 8",
             NULL, NULL);
    const char *wu[] = {"schedule.steps=10", "schedule.warmup_steps=20"};
    BAD_SETS(wu, "schedule.warmup_steps: 20 is more than schedule.steps 10", NULL, NULL);
    BAD_SET("data.epochs=0", "schedule.steps: 0 with data.epochs 0 never ends", NULL, NULL);
    BAD_SET("eval.every=5", "eval.every: 5 needs data.eval", NULL, NULL);
    BAD_SET("eval.k=4", "eval.k: 4 is more than eval.n 1", NULL, NULL);
    BAD_SET("template.name=custom", "template.custom: missing", NULL, NULL);
    BAD_SET("template.custom.user_prefix=U:",
            "template.custom: only used with template.name "
            "\"custom\"",
            NULL, NULL);
    BAD_SET("model.path=builtin:tiny-qwen3", "tokenizer.path: missing",
            "built-in model with no tokenizer files", NULL);
    BAD_SET("model.path=builtin:", "model.path: \"builtin:\" names no model", NULL, NULL);
    BAD_SET("rollout.temperature=0", "rollout.temperature: 0 (greedy) makes all 8 completions",
            NULL, NULL);
    const char *ol[] = {"algorithm.overlong.mode=penalty", "algorithm.overlong.buffer=300"};
    BAD_SETS(ol, "algorithm.overlong.buffer: 300 is larger than rollout.max_new_tokens 256",
             NULL, NULL);
    BAD_SET("rewards[0].config={\"weight\":2}",
            "rewards[0].config.weight: set it as "
            "rewards[0].weight",
            NULL, NULL);
    const char *ds[] = {"algorithm.advantage=reinforce++", "rollout.G=1",
                        "algorithm.dynamic_sampling.enabled=true"};
    BAD_SETS(ds, "rollout.G: 1 is too small for algorithm.dynamic_sampling", NULL, NULL);
}

static void test_set(void) {
    train_config c;
    const char *sets[] = {"algorithm.kl.adaptive.enabled=true",
                          "algorithm.kl.coef=0.01",
                          "template.name=chatml",
                          "rollout.stop=[\"</answer>\", \"\\n\\n\"]",
                          "rewards[1].name=format",
                          "rewards.1.weight=0.5",
                          "rewards[0].config={\"tolerance\": 1e-6}",
                          "optimizer.lr=3e-6",
                          "template.system_prompt=You are a careful solver.",
                          "data.eval=held.jsonl",
                          "eval.every=5",
                          "eval.n=8",
                          "eval.k=4",
                          "model.threads=2",
                          "template.enable_thinking=false",
                          "logging.progress=off",
                          "model.device=cuda"};
    int n = (int)(sizeof(sets) / sizeof(*sets));
    if (ok_cfg(BASE, sets, n, &c) != 0) return;
    CHECK(c.algorithm.kl.adaptive.enabled == 1 && c.algorithm.kl.coef == 0.01, "nested set");
    CHECK(c.template_.name == TC_TEMPLATE_CHATML, "plain string value");
    CHECK(c.rollout.n_stop == 2 && !strcmp(c.rollout.stop[0], "</answer>") &&
              !strcmp(c.rollout.stop[1], "\n\n"),
          "JSON list value");
    CHECK(c.n_rewards == 2 && !strcmp(c.rewards[1].name, "format") &&
              c.rewards[1].weight == 0.5,
          "appended reward");
    CHECK(!strcmp(c.rewards[0].config_json, "{\"tolerance\":1e-06}"), "config object %s",
          c.rewards[0].config_json);
    CHECK(c.optimizer.lr == 3e-6, "number value");
    CHECK(!strcmp(c.template_.system_prompt, "You are a careful solver."), "string w/ spaces");
    CHECK(c.eval.every == 5 && c.eval.n == 8 && c.eval.k == 4 &&
              !strcmp(c.data.eval, "held.jsonl"),
          "eval section created");
    CHECK(c.template_.enable_thinking == 0, "tribool");
    CHECK(c.logging.progress == TC_PROGRESS_OFF && c.model.device == TC_DEVICE_CUDA, "enums");
    train_config_free(&c);

    /* direct use on a tree */
    cJSON *root = cJSON_Parse(BASE);
    char err[512];
    CHECK(train_config_set(root, "a.b.c=1", err, sizeof(err)) == 0, "%s", err);
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "a"), "b"), "c")
                  ->valuedouble == 1,
          "created nested objects");
    CHECK(train_config_set(root, "model.path=null", err, sizeof(err)) == 0 &&
              cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "path")),
          "null value");
    cJSON_Delete(root);

    BAD_SET("noequals", "--set noequals: expected KEY=VALUE", NULL, NULL);
    BAD_SET("=3", "expected KEY=VALUE", NULL, NULL);
    BAD_SET("model.path.x=1", "--set model.path.x=1: model.path is not an object", NULL, NULL);
    BAD_SET("rewards[5].name=x", "rewards has 1 elements; index 5 is past the end", NULL, NULL);
    BAD_SET("a..b=1", "bad key \"a..b\"", NULL, NULL);
    BAD_SET("rewards[x].name=1", "bad key", NULL, NULL);
    /* a value set on the command line is validated like the file's */
    BAD_SET("algorithm.clip_high=2e3", "algorithm.clip_high: 2000 is out of range", NULL, NULL);
}

static const char *FULL =
    "{\"model\": {\"path\": \"builtin:tiny-qwen3\", \"dtype\": \"f32\", \"threads\": 3},\n"
    " \"tokenizer\": {\"path\": \"tok\"},\n"
    " \"template\": {\"name\": \"custom\", \"enable_thinking\": true,\n"
    "   \"system_prompt\": \"Think.\",\n"
    "   \"custom\": {\"bos\": \"<s>\", \"user_prefix\": \"U: \", \"user_suffix\": \"\\n\",\n"
    "              \"assistant_prefix\": \"A: \", \"generation_prompt\": \"A: \"}},\n"
    " \"data\": {\"train\": \"t.jsonl\", \"eval\": \"e.jsonl\", \"shuffle\": false,\n"
    "          \"epochs\": 3, \"on_bad_line\": \"skip\", \"prompt_field\": \"question\"},\n"
    " \"rollout\": {\"G\": 4, \"temperature\": 0.7, \"top_k\": 50, \"top_p\": 0.95,\n"
    "             \"min_p\": 0.05, \"repetition_penalty\": 1.1, \"max_new_tokens\": 100,\n"
    "             \"stop\": [\"</answer>\"], \"stop_ids\": [7, 151645], \"kv_cache_mb\": 64},\n"
    " \"rewards\": [{\"name\": \"math_answer\", \"weight\": 2, \"config\": {\"a\": [1, "
    "{\"b\": null}]}},\n"
    "             {\"name\": \"./plugins/x.so\", \"isolation\": \"process\", \"timeout_s\": "
    "2.5}],\n"
    " \"algorithm\": {\"advantage\": \"ppo\", \"critic_lr\": 1e-5, \"std_scope\": \"batch\",\n"
    "   \"clip_low\": 0.2, \"clip_high\": 0.28, \"dual_clip\": 3,\n"
    "   \"kl\": {\"estimator\": \"k1\", \"coef\": 0.001, \"in\": \"reward\",\n"
    "          \"adaptive\": {\"enabled\": true, \"target\": 6, \"horizon\": 1000}},\n"
    "   \"entropy_coef\": 0.001, \"ppo_epochs\": 2, \"mini_batch_size\": 2,\n"
    "   \"dynamic_sampling\": {\"enabled\": true, \"max_tries\": 3},\n"
    "   \"overlong\": {\"mode\": \"penalty\", \"buffer\": 20},\n"
    "   \"gamma\": 0.99, \"lambda\": 0.95, \"value_clip\": 0.2, \"ref_resync_steps\": 50},\n"
    " \"optimizer\": {\"lr\": 2e-6, \"betas\": [0.9, 0.95], \"weight_decay\": 0.01},\n"
    " \"schedule\": {\"steps\": 100, \"prompts_per_step\": 4, \"warmup_steps\": 10,\n"
    "              \"kind\": \"cosine\", \"min_lr_ratio\": 0.1, \"micro_batch_tokens\": "
    "4096},\n"
    " \"checkpoint\": {\"every\": 25, \"keep_last\": 0},\n"
    " \"logging\": {\"run_dir\": \"r\", \"samples_every\": 0, \"tensorboard\": true,\n"
    "             \"progress\": \"on\"},\n"
    " \"eval\": {\"every\": 20, \"n\": 4, \"k\": 2, \"max_prompts\": 50},\n"
    " \"seed\": 9007199254740992}";

static void round_trip(const char *text) {
    train_config a, b;
    if (ok_cfg(text, NULL, 0, &a) != 0) return;
    char *json = train_config_to_json(&a);
    CHECK(json != NULL, "to_json");
    if (ok_cfg(json, NULL, 0, &b) == 0) {
        char diff[256];
        CHECK(train_config_equal(&a, &b, diff, sizeof(diff)), "round trip differs at %s", diff);
        char *json2 = train_config_to_json(&b);
        CHECK(json2 && !strcmp(json, json2), "serialisation is stable");
        free(json2);
        train_config_free(&b);
    }
    free(json);
    train_config_free(&a);
}

static void test_round_trip(const char *tmpdir) {
    round_trip(BASE);
    round_trip(FULL);
    /* doubles that 15 significant digits do not reproduce */
    round_trip("{\"model\": {\"path\": \"m\"}, \"data\": {\"train\": \"t\"},"
               " \"rewards\": [{\"name\": \"r\", \"weight\": 0.30000000000000004}],"
               " \"optimizer\": {\"lr\": 1.0000000000000002e-6},"
               " \"rollout\": {\"temperature\": 0.7000000000000001}}");
    train_config a, b;
    if (ok_cfg(FULL, NULL, 0, &a) != 0) return;
    CHECK(a.seed == 9007199254740992ULL && a.data.shuffle_seed == a.seed, "2^53 seed");
    CHECK(a.template_.enable_thinking == 1 && a.rollout.stop_ids[1] == 151645, "values");
    CHECK(!strcmp(a.rewards[0].config_json, "{\"a\":[1,{\"b\":null}]}"), "config %s",
          a.rewards[0].config_json);
    CHECK(a.rewards[1].isolation == TC_ISOLATION_PROCESS && a.rewards[1].timeout_s == 2.5,
          "reward 1");
    CHECK(!strcmp(a.checkpoint.dir, "r/checkpoints"), "ckpt");
    cJSON *tpl = train_config_custom_template_json(&a);
    char *t = cJSON_PrintUnformatted(tpl);
    CHECK(t && !strcmp(t, "{\"bos\":\"<s>\",\"user_prefix\":\"U: \",\"user_suffix\":\"\\n\","
                          "\"assistant_prefix\":\"A: \",\"generation_prompt\":\"A: \"}"),
          "custom template json %s", t);
    free(t);
    cJSON_Delete(tpl);
    /* written atomically and loaded back */
    char path[512], err[1024];
    snprintf(path, sizeof(path), "%s/resolved.json", tmpdir);
    CHECK(train_config_write(&a, path, err, sizeof(err)) == 0, "%s", err);
    if (train_config_load(path, NULL, 0, &b, err, sizeof(err)) == 0) {
        char diff[256];
        CHECK(train_config_equal(&a, &b, diff, sizeof(diff)), "file round trip: %s", diff);
        /* equal notices a change and names it */
        b.algorithm.kl.adaptive.horizon = 999;
        CHECK(!train_config_equal(&a, &b, diff, sizeof(diff)) &&
                  !strcmp(diff, "algorithm.kl.adaptive.horizon"),
              "diff %s", diff);
        b.algorithm.kl.adaptive.horizon = a.algorithm.kl.adaptive.horizon;
        free(b.rewards[1].name);
        b.rewards[1].name = strdup("other");
        CHECK(!train_config_equal(&a, &b, diff, sizeof(diff)) &&
                  !strcmp(diff, "rewards[1].name"),
              "diff %s", diff);
        train_config_free(&b);
    } else {
        CHECK(0, "load: %s", err);
    }
    /* --set on a loaded file */
    const char *s[] = {"rollout.G=16"};
    if (train_config_load(path, s, 1, &b, err, sizeof(err)) == 0) {
        CHECK(b.rollout.G == 16, "set after load");
        train_config_free(&b);
    }
    train_config_free(&a);
    CHECK(train_config_load("/nonexistent/cfg.json", NULL, 0, &b, err, sizeof(err)) != 0 &&
              strstr(err, "/nonexistent/cfg.json"),
          "missing config file: %s", err);
}

static void write_text(const char *path, const char *text) {
    char err[512];
    if (fio_write_file(path, text, strlen(text), err, sizeof(err)) != 0)
        CHECK(0, "write %s: %s", path, err);
}

static void test_check_files(const char *tmpdir) {
    char model[512], tok[512], train[512], cfgtext[4096], err[1024], plugin[600];
    snprintf(model, sizeof(model), "%s/model", tmpdir);
    snprintf(tok, sizeof(tok), "%s/tok", tmpdir);
    snprintf(train, sizeof(train), "%s/train.jsonl", tmpdir);
    fio_mkdirs(model, err, sizeof(err));
    fio_mkdirs(tok, err, sizeof(err));
    char p[600];
    snprintf(p, sizeof(p), "%s/config.json", model);
    write_text(p, "{}");
    write_text(train, "{\"prompt\": \"1+1\", \"answer\": \"2\"}\n");
    snprintf(plugin, sizeof(plugin), "%s/missing_plugin.so", tmpdir);
    struct {
        const char *tokpath, *trainpath, *evalpath, *reward, *needle;
    } cases[] = {
        {NULL, train, NULL, "math_answer", "tokenizer.path: \"%s\" has no tokenizer.json"},
        {tok, train, NULL, "math_answer", "tokenizer.path: \"%s\" has no tokenizer.json"},
        {tok, "/nonexistent/t.jsonl", NULL, "math_answer",
         "data.train: \"/nonexistent/t.jsonl\" is not a readable file"},
        {tok, train, "/nonexistent/e.jsonl", "math_answer",
         "data.eval: \"/nonexistent/e.jsonl\" is not a readable file"},
        {tok, train, NULL, plugin, "rewards[0].name: plugin \"%s\" does not exist"},
        {tok, train, NULL, "math_answer", NULL},
    };
    snprintf(p, sizeof(p), "%s/tokenizer.json", model);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        if (i == 1) {
            /* from here on the model dir also holds a tokenizer, tok gets one later */
            write_text(p, "{}");
        }
        if (i == 2) {
            char q[600];
            snprintf(q, sizeof(q), "%s/tokenizer.json", tok);
            write_text(q, "{}");
        }
        char tokjson[700] = "", evaljson[200] = "";
        if (cases[i].tokpath)
            snprintf(tokjson, sizeof(tokjson), "\"tokenizer\": {\"path\": \"%s\"},",
                     cases[i].tokpath);
        if (cases[i].evalpath)
            snprintf(evaljson, sizeof(evaljson), ", \"eval\": \"%s\"", cases[i].evalpath);
        snprintf(cfgtext, sizeof(cfgtext),
                 "{\"model\": {\"path\": \"%s\"}, %s \"data\": {\"train\": \"%s\"%s}, "
                 "\"rewards\": [{\"name\": \"%s\"}]}",
                 model, tokjson, cases[i].trainpath, evaljson, cases[i].reward);
        train_config c;
        if (i == 0) {
            /* first case: the model dir has no tokenizer.json, tokenizer defaults to it */
            if (ok_cfg(cfgtext, NULL, 0, &c) != 0) continue;
            char want[1024];
            snprintf(want, sizeof(want), cases[i].needle, model);
            CHECK(train_config_check_files(&c, err, sizeof(err)) != 0 && strstr(err, want),
                  "case %zu: %s", i, err);
            train_config_free(&c);
            continue;
        }
        if (ok_cfg(cfgtext, NULL, 0, &c) != 0) continue;
        int rc = train_config_check_files(&c, err, sizeof(err));
        if (!cases[i].needle) {
            CHECK(rc == 0, "case %zu should pass: %s", i, err);
        } else {
            char want[1024];
            snprintf(want, sizeof(want), cases[i].needle,
                     strstr(cases[i].needle, "plugin") ? plugin : tok);
            CHECK(rc != 0 && strstr(err, want), "case %zu: want '%s', got '%s'", i, want, err);
        }
        train_config_free(&c);
    }
    /* a model path that is not a directory */
    snprintf(cfgtext, sizeof(cfgtext),
             "{\"model\": {\"path\": \"%s\"}, \"data\": {\"train\": \"%s\"}, "
             "\"rewards\": [{\"name\": \"r\"}]}",
             train, train);
    train_config c;
    if (ok_cfg(cfgtext, NULL, 0, &c) == 0) {
        CHECK(train_config_check_files(&c, err, sizeof(err)) != 0 &&
                  strstr(err, "model.path: ") && strstr(err, "is not a directory"),
              "%s", err);
        train_config_free(&c);
    }
}

/* Every key path of the resolved config must be documented in docs/config.md as
 * `path` (list elements as rewards[].key). */
static void check_doc_keys(const cJSON *obj, const char *prefix, const char *doc) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        char path[300], quoted[320];
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", c->string);
        if (cJSON_IsObject(c) && strcmp(c->string, "config") != 0) {
            check_doc_keys(c, path, doc);
            continue;
        }
        if (cJSON_IsArray(c) && cJSON_IsObject(c->child)) {
            snprintf(path + strlen(path), sizeof(path) - strlen(path), "[]");
            check_doc_keys(c->child, path, doc);
            continue;
        }
        snprintf(quoted, sizeof(quoted), "`%s`", path);
        CHECK(strstr(doc, quoted) != NULL, "docs/config.md does not document %s", quoted);
    }
}

static void test_docs_and_example(const char *example, const char *docs) {
    train_config c;
    char err[4096];
    CHECK(train_config_load(example, NULL, 0, &c, err, sizeof(err)) == 0, "example: %s", err);
    train_config_free(&c);
    char *doc = NULL;
    size_t len;
    if (fio_read_file(docs, &doc, &len, err, sizeof(err)) != 0) {
        CHECK(0, "%s", err);
        return;
    }
    if (ok_cfg(FULL, NULL, 0, &c) == 0) {
        char *json = train_config_to_json(&c);
        cJSON *j = cJSON_Parse(json);
        check_doc_keys(j, "", doc);
        cJSON_Delete(j);
        free(json);
        train_config_free(&c);
    }
    free(doc);
}

/* Every prefix of a full config and every single-byte corruption of it is either
 * accepted or refused with a message; never a crash (run under ASan). */
static void test_robustness(void) {
    size_t n = strlen(FULL);
    char *buf = malloc(n + 1), err[4096];
    static const char subst[] = "\"{}[],:0-e.x\\";
    int refused = 0;
    for (size_t cut = 0; cut <= n; cut++) {
        memcpy(buf, FULL, cut);
        buf[cut] = '\0';
        train_config c;
        if (train_config_parse(buf, "cut.json", NULL, 0, &c, err, sizeof(err)) == 0)
            train_config_free(&c);
        else {
            refused++;
            CHECK(err[0] != '\0', "empty message at cut %zu", cut);
        }
    }
    CHECK(refused == (int)n, "only the whole text is valid (%d of %zu refused)", refused, n);
    for (size_t at = 0; at < n; at += 3) {
        memcpy(buf, FULL, n + 1);
        buf[at] = subst[at % (sizeof(subst) - 1)];
        train_config c;
        if (train_config_parse(buf, "mut.json", NULL, 0, &c, err, sizeof(err)) == 0)
            train_config_free(&c);
        else
            CHECK(strncmp(err, "mut.json: ", 10) == 0, "message names the file: %s", err);
    }
    free(buf);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s EXAMPLE_CONFIG DOCS_CONFIG_MD\n", argv[0]);
        return 2;
    }
    char tmpdir[] = "/tmp/rlvr_tc_XXXXXX";
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_derived();
    test_unknown_keys();
    test_types_and_ranges();
    test_cross_checks();
    test_set();
    test_round_trip(tmpdir);
    test_robustness();
    test_check_files(tmpdir);
    test_docs_and_example(argv[1], argv[2]);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmpdir);
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
        return 1;
    }
    printf("train_config: all checks passed\n");
    return 0;
}
