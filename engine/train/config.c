/*
 * engine/train/config.c — validating a config JSON tree into a train_config: defaults
 * from the schema table, every key checked (unknown, duplicate, type, range), then the
 * defaults that depend on other keys, then the cross-field checks. All problems are
 * reported together, one per line.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/io/fileio.h"
#include "engine/train/config_internal.h"

_Static_assert(sizeof(tc_advantage) == sizeof(int), "enums are stored as int");

#define AT(base, off, T) ((T *)((char *)(base) + (off)))
#define MAX_SEED 9007199254740992.0 /* 2^53: the largest exact integer in a JSON double */

// ---------------------------------------------------------------------------------------
// defaults

static char *dup_or_null(const char *s) {
    return s ? strdup(s) : NULL;
}

static void set_defaults(const tc_field *rows, void *base) {
    for (const tc_field *f = rows; f->key; f++) {
        switch (f->type) {
        case TCF_BOOL:
        case TCF_TRIBOOL:
        case TCF_INT:
        case TCF_ENUM:
            *AT(base, f->off, int) = (int)f->def;
            break;
        case TCF_SEED:
            *AT(base, f->off, uint64_t) = (uint64_t)f->def;
            break;
        case TCF_NUM:
            *AT(base, f->off, double) = f->def;
            break;
        case TCF_PAIR:
            AT(base, f->off, double)[0] = f->def;
            AT(base, f->off, double)[1] = f->def2;
            break;
        case TCF_STR:
            *AT(base, f->off, char *) = dup_or_null(f->def_s);
            break;
        case TCF_JSONOBJ:
            *AT(base, f->off, char *) = strdup("{}");
            break;
        case TCF_SECTION:
            set_defaults(f->sub, base);
            break;
        case TCF_STRS:
        case TCF_IDS:
        case TCF_REWARDS:
            break; /* empty lists: the struct is zeroed */
        }
    }
}

// ---------------------------------------------------------------------------------------
// one value

static const char *type_word(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsArray(v)) return "a list";
    if (cJSON_IsObject(v)) return "an object";
    return "an invalid value";
}

static void err_type(tc_errs *e, const tc_field *f, const char *path, const cJSON *v) {
    char val[80], allowed[300];
    tc_value_text(v, val, sizeof(val));
    tc_allowed_text(f, allowed, sizeof(allowed));
    tc_err(e, "%s: %s is %s; expected %s", path, val, type_word(v), allowed);
}

static void err_range(tc_errs *e, const tc_field *f, const char *path, const cJSON *v) {
    char val[80], allowed[300];
    tc_value_text(v, val, sizeof(val));
    tc_allowed_text(f, allowed, sizeof(allowed));
    tc_err(e, "%s: %s is out of range; expected %s", path, val, allowed);
}

static int in_range(const tc_field *f, double x) {
    if (!isfinite(x)) return 0;
    if ((f->flags & TCF_LO_OPEN) ? !(x > f->lo) : !(x >= f->lo)) return 0;
    if ((f->flags & TCF_HI_OPEN) ? !(x < f->hi) : !(x <= f->hi)) return 0;
    return 1;
}

/* An integer-valued number within [lo, hi]; 0 when it is not (error reported). */
static int get_int(tc_errs *e, const tc_field *f, const char *path, const cJSON *v, double lo,
                   double hi, double *out) {
    if (!cJSON_IsNumber(v)) return err_type(e, f, path, v), 0;
    double x = v->valuedouble;
    if (!isfinite(x) || x != floor(x)) {
        char val[80], allowed[300];
        tc_value_text(v, val, sizeof(val));
        tc_allowed_text(f, allowed, sizeof(allowed));
        tc_err(e, "%s: %s is not an integer; expected %s", path, val, allowed);
        return 0;
    }
    if (x < lo || x > hi) return err_range(e, f, path, v), 0;
    *out = x;
    return 1;
}

static void parse_rows(const tc_field *rows, const cJSON *obj, const char *prefix, void *base,
                       tc_errs *e);

static void parse_rewards(const tc_field *f, const cJSON *v, const char *path, void *base,
                          tc_errs *e) {
    int n = cJSON_GetArraySize(v);
    if (!cJSON_IsArray(v) || n == 0) {
        char val[80];
        tc_value_text(v, val, sizeof(val));
        tc_err(e, "%s: %s is %s; expected %s", path, val,
               cJSON_IsArray(v) ? "an empty list" : type_word(v), f->what);
        return;
    }
    tc_reward *r = calloc((size_t)n, sizeof(*r));
    if (!r) {
        tc_err(e, "%s: out of memory", path);
        return;
    }
    *AT(base, f->off, tc_reward *) = r;
    *AT(base, f->off2, int) = n;
    int i = 0;
    for (const cJSON *el = v->child; el; el = el->next, i++) {
        set_defaults(f->sub, &r[i]);
        char p[320];
        snprintf(p, sizeof(p), "%s[%d]", path, i);
        if (!cJSON_IsObject(el)) {
            char val[80];
            tc_value_text(el, val, sizeof(val));
            tc_err(e,
                   "%s: %s is %s; expected a reward object {\"name\", \"weight\", "
                   "\"config\", \"isolation\", \"timeout_s\"}",
                   p, val, type_word(el));
            continue;
        }
        parse_rows(f->sub, el, p, &r[i], e);
        /* the reward host reads weight/isolation from the plugin config; keep one place */
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(el, "config");
        static const char *const host_keys[] = {"weight", "isolation"};
        for (int k = 0; k < 2 && cJSON_IsObject(cfg); k++)
            if (cJSON_GetObjectItemCaseSensitive(cfg, host_keys[k]))
                tc_err(e, "%s.config.%s: set it as %s.%s, not inside config", p, host_keys[k],
                       p, host_keys[k]);
    }
}

static void parse_value(const tc_field *f, const cJSON *v, const char *path, void *base,
                        tc_errs *e) {
    double x;
    if (cJSON_IsNull(v) && (f->flags & TCF_NULLABLE)) {
        switch (f->type) {
        case TCF_TRIBOOL:
            *AT(base, f->off, int) = -1;
            return;
        case TCF_NUM:
            *AT(base, f->off, double) = NAN;
            return;
        case TCF_STR:
            free(*AT(base, f->off, char *));
            *AT(base, f->off, char *) = NULL;
            return;
        default:
            break;
        }
    }
    switch (f->type) {
    case TCF_BOOL:
    case TCF_TRIBOOL:
        if (!cJSON_IsBool(v)) return err_type(e, f, path, v);
        *AT(base, f->off, int) = cJSON_IsTrue(v) ? 1 : 0;
        return;
    case TCF_INT:
        if (get_int(e, f, path, v, f->lo, f->hi, &x)) *AT(base, f->off, int) = (int)x;
        return;
    case TCF_SEED:
        if (get_int(e, f, path, v, 0, MAX_SEED, &x)) *AT(base, f->off, uint64_t) = (uint64_t)x;
        return;
    case TCF_NUM:
        if (!cJSON_IsNumber(v)) return err_type(e, f, path, v);
        if (!in_range(f, v->valuedouble)) return err_range(e, f, path, v);
        *AT(base, f->off, double) = v->valuedouble;
        return;
    case TCF_PAIR: {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2) return err_type(e, f, path, v);
        for (int i = 0; i < 2; i++) {
            const cJSON *el = cJSON_GetArrayItem(v, i);
            if (!cJSON_IsNumber(el)) return err_type(e, f, path, v);
            if (!in_range(f, el->valuedouble)) return err_range(e, f, path, v);
        }
        for (int i = 0; i < 2; i++)
            AT(base, f->off, double)[i] = cJSON_GetArrayItem(v, i)->valuedouble;
        return;
    }
    case TCF_STR:
        if (!cJSON_IsString(v)) return err_type(e, f, path, v);
        if ((f->flags & TCF_NONEMPTY) && v->valuestring[0] == '\0')
            return tc_err(e, "%s: \"\" is empty; expected a non-empty string", path);
        free(*AT(base, f->off, char *));
        *AT(base, f->off, char *) = strdup(v->valuestring);
        return;
    case TCF_ENUM: {
        if (!cJSON_IsString(v)) return err_type(e, f, path, v);
        int best = -1, best_d = 1 << 30;
        for (int i = 0; f->names[i]; i++) {
            if (strcmp(v->valuestring, f->names[i]) == 0) {
                *AT(base, f->off, int) = i;
                return;
            }
            int d = tc_edit_distance(v->valuestring, f->names[i]);
            if (d < best_d) best_d = d, best = i;
        }
        char val[80], allowed[300], hint[96] = "";
        tc_value_text(v, val, sizeof(val));
        tc_allowed_text(f, allowed, sizeof(allowed));
        if (best >= 0 && best_d <= 2)
            snprintf(hint, sizeof(hint), " (did you mean \"%s\"?)", f->names[best]);
        tc_err(e, "%s: %s is not allowed; expected %s%s", path, val, allowed, hint);
        return;
    }
    case TCF_STRS: {
        if (!cJSON_IsArray(v)) return err_type(e, f, path, v);
        int n = cJSON_GetArraySize(v);
        for (const cJSON *el = v->child; el; el = el->next)
            if (!cJSON_IsString(el) || el->valuestring[0] == '\0')
                return err_type(e, f, path, v);
        char **list = n ? calloc((size_t)n, sizeof(char *)) : NULL;
        if (n && !list) return tc_err(e, "%s: out of memory", path);
        int i = 0;
        for (const cJSON *el = v->child; el; el = el->next)
            list[i++] = strdup(el->valuestring);
        *AT(base, f->off, char **) = list;
        *AT(base, f->off2, int) = n;
        return;
    }
    case TCF_IDS: {
        if (!cJSON_IsArray(v)) return err_type(e, f, path, v);
        int n = cJSON_GetArraySize(v), i = 0;
        int32_t *ids = n ? calloc((size_t)n, sizeof(int32_t)) : NULL;
        if (n && !ids) return tc_err(e, "%s: out of memory", path);
        for (const cJSON *el = v->child; el; el = el->next, i++) {
            char p[320];
            snprintf(p, sizeof(p), "%s[%d]", path, i);
            if (!get_int(e, f, p, el, f->lo, f->hi, &x)) {
                free(ids);
                return;
            }
            ids[i] = (int32_t)x;
        }
        *AT(base, f->off, int32_t *) = ids;
        *AT(base, f->off2, int) = n;
        return;
    }
    case TCF_JSONOBJ: {
        if (!cJSON_IsObject(v)) return err_type(e, f, path, v);
        char *s = cJSON_PrintUnformatted(v);
        if (!s) return tc_err(e, "%s: out of memory", path);
        free(*AT(base, f->off, char *));
        *AT(base, f->off, char *) = s;
        return;
    }
    case TCF_SECTION:
        if (!cJSON_IsObject(v)) return err_type(e, f, path, v);
        parse_rows(f->sub, v, path, base, e);
        return;
    case TCF_REWARDS:
        parse_rewards(f, v, path, base, e);
        return;
    }
}

static void parse_rows(const tc_field *rows, const cJSON *obj, const char *prefix, void *base,
                       tc_errs *e) {
    char path[300];
    for (const cJSON *c = obj->child; c; c = c->next) {
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", c->string);
        for (const cJSON *d = obj->child; d != c; d = d->next)
            if (strcmp(d->string, c->string) == 0) {
                tc_err(e, "%s: duplicate key (given more than once)", path);
                break;
            }
        const tc_field *f = rows;
        while (f->key && strcmp(f->key, c->string) != 0)
            f++;
        if (!f->key) {
            char hint[700];
            tc_suggest(rows, prefix, c->string, hint, sizeof(hint));
            tc_err(e, "unknown key %s; %s", path, hint);
        }
    }
    for (const tc_field *f = rows; f->key; f++) {
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", f->key);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->key);
        if (!v) {
            if (f->flags & TCF_REQUIRED) {
                char allowed[300];
                tc_allowed_text(f, allowed, sizeof(allowed));
                tc_err(e, "missing required key %s (expected %s)", path, allowed);
            } else if (f->type == TCF_SECTION) {
                /* a missing section may still hold required keys */
                for (const tc_field *g = f->sub; g->key; g++)
                    if (g->flags & TCF_REQUIRED)
                        tc_err(e, "missing required key %s.%s", path, g->key);
            }
            continue;
        }
        parse_value(f, v, path, base, e);
    }
}

// ---------------------------------------------------------------------------------------
// derived defaults and cross-field checks

/* The value at a dotted path of the tree, NULL when absent. */
static const cJSON *lookup(const cJSON *root, const char *dotted) {
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", dotted);
    const cJSON *cur = root;
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg && cur;
         seg = strtok_r(NULL, ".", &save))
        cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, seg) : NULL;
    return cur;
}

static void resolve(const cJSON *root, train_config *c) {
    if (!lookup(root, "tokenizer.path") && strncmp(c->model.path, "builtin:", 8) != 0)
        c->tokenizer.path = strdup(c->model.path);
    if (!lookup(root, "data.shuffle_seed")) c->data.shuffle_seed = c->seed;
    int dr = c->algorithm.advantage == TC_ADV_DRGRPO;
    if (!lookup(root, "algorithm.std_scope"))
        c->algorithm.std_scope = dr ? TC_STD_NONE : TC_STD_GROUP;
    if (!lookup(root, "algorithm.loss_agg"))
        c->algorithm.loss_agg = dr ? TC_AGG_SEQ_MEAN_TOKEN_SUM_NORM : TC_AGG_TOKEN_MEAN;
    if (!lookup(root, "algorithm.clip_high")) c->algorithm.clip_high = c->algorithm.clip_low;
    if (!lookup(root, "algorithm.overlong.buffer")) {
        int b = c->rollout.max_new_tokens / 5;
        c->algorithm.overlong.buffer = b < 1 ? 1 : b;
    }
    if (!lookup(root, "checkpoint.dir")) {
        size_t n = strlen(c->logging.run_dir) + sizeof("/checkpoints");
        c->checkpoint.dir = malloc(n);
        if (c->checkpoint.dir)
            snprintf(c->checkpoint.dir, n, "%s/checkpoints", c->logging.run_dir);
    }
}

static int needs_group(tc_advantage a) {
    return a == TC_ADV_GRPO || a == TC_ADV_DRGRPO || a == TC_ADV_RLOO ||
           a == TC_ADV_REINFORCEPP_BASELINE;
}

static void cross_check(const cJSON *root, const train_config *c, tc_errs *e) {
    const char *adv = tc_advantage_name(c->algorithm.advantage);
    if (strncmp(c->model.path, "builtin:", 8) == 0) {
        if (c->model.path[8] == '\0')
            tc_err(e, "model.path: \"builtin:\" names no model; expected builtin:NAME "
                      "(e.g. builtin:tiny-qwen3)");
        if (!c->tokenizer.path)
            tc_err(e,
                   "tokenizer.path: missing; model.path \"%s\" is a built-in model with "
                   "no tokenizer files, so tokenizer.path must name a directory with "
                   "tokenizer.json",
                   c->model.path);
    }
    if (needs_group(c->algorithm.advantage) && c->rollout.G < 2)
        tc_err(e,
               "rollout.G: %d is too small for algorithm.advantage \"%s\", whose "
               "baseline is the group; expected G >= 2",
               c->rollout.G, adv);
    if (c->algorithm.dynamic_sampling.enabled && c->rollout.G < 2)
        tc_err(e,
               "rollout.G: %d is too small for algorithm.dynamic_sampling (it drops "
               "groups whose rewards are all equal); expected G >= 2",
               c->rollout.G);
    if (c->rollout.temperature == 0 && c->rollout.G >= 2)
        tc_err(e,
               "rollout.temperature: 0 (greedy) makes all %d completions of a group "
               "identical; expected a temperature > 0 for training",
               c->rollout.G);
    if (c->algorithm.advantage == TC_ADV_PPO && isnan(c->algorithm.critic_lr))
        tc_err(e, "algorithm.critic_lr: missing; algorithm.advantage \"ppo\" trains a "
                  "critic and needs its learning rate (e.g. 1e-5)");
    if (c->algorithm.advantage == TC_ADV_DRGRPO && c->algorithm.std_scope != TC_STD_NONE)
        tc_err(e,
               "algorithm.std_scope: \"%s\" contradicts algorithm.advantage \"drgrpo\" "
               "(Dr.GRPO does not divide by the std); expected \"none\", or use "
               "advantage \"grpo\" with std_scope \"%s\"",
               tc_std_scope_name(c->algorithm.std_scope),
               tc_std_scope_name(c->algorithm.std_scope));
    if (c->algorithm.dual_clip != 0 && !(c->algorithm.dual_clip > 1))
        tc_err(e,
               "algorithm.dual_clip: %g is not allowed; expected 0 (off) or a number > 1 "
               "(3 is usual)",
               c->algorithm.dual_clip);
    if (c->algorithm.kl.adaptive.enabled && !(c->algorithm.kl.coef > 0))
        tc_err(e, "algorithm.kl.adaptive.enabled: the adaptive controller scales "
                  "algorithm.kl.coef, which is 0; expected algorithm.kl.coef > 0");
    if (c->algorithm.overlong.mode == TC_OVERLONG_PENALTY &&
        c->algorithm.overlong.buffer > c->rollout.max_new_tokens)
        tc_err(e,
               "algorithm.overlong.buffer: %d is larger than rollout.max_new_tokens %d; "
               "expected 1 <= buffer <= max_new_tokens",
               c->algorithm.overlong.buffer, c->rollout.max_new_tokens);
    int mb = c->algorithm.mini_batch_size, pps = c->schedule.prompts_per_step;
    if (mb > 0 && (mb > pps || pps % mb != 0))
        tc_err(e,
               "algorithm.mini_batch_size: %d does not divide schedule.prompts_per_step "
               "%d; expected 0 (the whole batch) or a divisor of it",
               mb, pps);
    if (c->schedule.steps > 0 && c->schedule.warmup_steps > c->schedule.steps)
        tc_err(e, "schedule.warmup_steps: %d is more than schedule.steps %d",
               c->schedule.warmup_steps, c->schedule.steps);
    if (c->schedule.steps == 0 && c->data.epochs == 0)
        tc_err(e, "schedule.steps: 0 with data.epochs 0 never ends; expected steps > 0 "
                  "or epochs > 0");
    if (c->eval.every > 0 && !c->data.eval)
        tc_err(e, "eval.every: %d needs data.eval (a held-out JSONL file)", c->eval.every);
    if (c->eval.k > c->eval.n)
        tc_err(e, "eval.k: %d is more than eval.n %d (samples per prompt); expected k <= n",
               c->eval.k, c->eval.n);
    int custom_given = lookup(root, "template.custom") != NULL;
    if (c->template_.name == TC_TEMPLATE_CUSTOM && !custom_given)
        tc_err(e, "template.custom: missing; template.name \"custom\" needs an object of "
                  "prefix/suffix strings (bos, system_prefix, ..., generation_prompt)");
    if (c->template_.name != TC_TEMPLATE_CUSTOM && custom_given)
        tc_err(e,
               "template.custom: only used with template.name \"custom\" (name is "
               "\"%s\")",
               tc_template_name(c->template_.name));
}

// ---------------------------------------------------------------------------------------
// entry points

int train_config_from_json(const cJSON *root, const char *where, train_config *cfg, char *err,
                           size_t errlen) {
    tc_errs e = {.buf = err, .cap = errlen, .where = where ? where : "config"};
    if (err && errlen) err[0] = '\0';
    memset(cfg, 0, sizeof(*cfg));
    if (!cJSON_IsObject(root)) {
        tc_err(&e,
               "the config is %s; expected a JSON object with sections model, data, "
               "rewards, ...",
               type_word(root));
        return -1;
    }
    set_defaults(tc_schema, cfg);
    parse_rows(tc_schema, root, "", cfg, &e);
    if (e.count == 0) {
        resolve(root, cfg);
        cross_check(root, cfg, &e);
    }
    if (e.count > 0) {
        train_config_free(cfg);
        return -1;
    }
    return 0;
}

/* Line and column of byte offset off in text (1-based). */
static void line_col(const char *text, size_t off, int *line, int *col) {
    *line = 1, *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n')
            (*line)++, *col = 1;
        else
            (*col)++;
    }
}

int train_config_parse(const char *text, const char *where, const char *const *sets, int n_sets,
                       train_config *cfg, char *err, size_t errlen) {
    memset(cfg, 0, sizeof(*cfg));
    where = where ? where : "config";
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        int line, col;
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        line_col(text, off, &line, &col);
        snprintf(err, errlen, "%s: not valid JSON at line %d, column %d (near \"%.20s\")",
                 where, line, col, text + off);
        return -1;
    }
    for (int i = 0; i < n_sets; i++) {
        char e2[512];
        if (train_config_set(root, sets[i], e2, sizeof(e2)) != 0) {
            snprintf(err, errlen, "--set %s: %s", sets[i], e2);
            cJSON_Delete(root);
            return -1;
        }
    }
    int rc = train_config_from_json(root, where, cfg, err, errlen);
    cJSON_Delete(root);
    return rc;
}

int train_config_load(const char *path, const char *const *sets, int n_sets, train_config *cfg,
                      char *err, size_t errlen) {
    memset(cfg, 0, sizeof(*cfg));
    char *text = NULL;
    size_t len = 0;
    if (fio_read_file(path, &text, &len, err, errlen) != 0) return -1;
    if (strlen(text) != len) {
        snprintf(err, errlen, "%s: contains a NUL byte; expected JSON text", path);
        free(text);
        return -1;
    }
    int rc = train_config_parse(text, path, sets, n_sets, cfg, err, errlen);
    free(text);
    return rc;
}
