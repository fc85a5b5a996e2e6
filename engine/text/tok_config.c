/*
 * engine/text/tok_config.c — the special ids and the chat template from the files that
 * sit beside tokenizer.json: tokenizer_config.json (bos_token, eos_token, pad_token as a
 * string or {"content": ...}; chat_template as a string or a list of {name, template})
 * and generation_config.json (eos_token_id as an int or a list; pad_token_id as a
 * fallback for PAD). Both files are optional.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/text/tok_internal.h"

static cJSON *read_json(const char *dir, const char *name, char *file, size_t filelen,
                        int *absent, char *err, size_t errlen) {
    snprintf(file, filelen, "%s/%s", dir, name);
    *absent = access(file, F_OK) != 0;
    if (*absent) return NULL;
    char *data;
    size_t len;
    if (tok_read_file(file, &data, &len, err, errlen)) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!j) {
        tok_errf(err, errlen, "%s: not valid JSON (error near byte %zu)", file,
                 end ? (size_t)(end - data) : 0);
    } else if (!cJSON_IsObject(j)) {
        tok_errf(err, errlen, "%s: expected a JSON object at the top level", file);
        cJSON_Delete(j);
        j = NULL;
    }
    free(data);
    return j;
}

/* A token field: string, {"content": string} or null/absent (*text = NULL). */
static int token_text(const cJSON *cfg, const char *key, const char *file, const char **text,
                      char *err, size_t errlen) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, key);
    *text = NULL;
    if (!j || cJSON_IsNull(j)) return 0;
    if (cJSON_IsObject(j)) j = cJSON_GetObjectItemCaseSensitive(j, "content");
    if (!cJSON_IsString(j))
        return tok_errf(err, errlen,
                        "%s: %s: expected a string or {\"content\": string} or null", file,
                        key);
    *text = j->valuestring;
    return 0;
}

static int token_id(const tok_tokenizer *t, const cJSON *cfg, const char *key,
                    const char *file, int32_t *id, const char **text, char *err,
                    size_t errlen) {
    if (token_text(cfg, key, file, text, err, errlen)) return -1;
    if (!*text) return 0;
    *id = tok_piece_to_id(t, *text);
    if (*id < 0)
        return tok_errf(err, errlen, "%s: %s: '%s' is not a token of %s", file, key, *text,
                        t->path);
    return 0;
}

static int check_id(const tok_tokenizer *t, const cJSON *j, const char *file, const char *key,
                    int32_t *id, char *err, size_t errlen) {
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(int64_t)j->valuedouble ||
        j->valuedouble < 0 || j->valuedouble >= t->vocab_size)
        return tok_errf(err, errlen, "%s: %s: expected token ids in 0..%d", file, key,
                        t->vocab_size - 1);
    *id = (int32_t)j->valuedouble;
    return 0;
}

int tok_load_configs(tok_tokenizer *t, char *err, size_t errlen) {
    char file[4096];
    int absent;
    int32_t cfg_eos = -1;
    cJSON *cfg = read_json(t->dir, "tokenizer_config.json", file, sizeof file, &absent, err,
                           errlen);
    if (!cfg && !absent) return -1;
    if (cfg) {
        const char *s;
        if (token_id(t, cfg, "eos_token", file, &cfg_eos, &s, err, errlen) ||
            token_id(t, cfg, "pad_token", file, &t->pad_id, &s, err, errlen) ||
            token_id(t, cfg, "bos_token", file, &t->bos_id, &s, err, errlen)) {
            cJSON_Delete(cfg);
            return -1;
        }
        if (s && !(t->bos_token = strdup(s))) goto oom;
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
        if (cJSON_IsString(ct)) {
            if (!(t->chat_template = strdup(ct->valuestring))) goto oom;
        } else if (cJSON_IsArray(ct)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, ct) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
                const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(e, "template");
                if (cJSON_IsString(name) && cJSON_IsString(tpl) &&
                    !strcmp(name->valuestring, "default")) {
                    if (!(t->chat_template = strdup(tpl->valuestring))) goto oom;
                }
            }
        } else if (ct && !cJSON_IsNull(ct)) {
            tok_errf(err, errlen,
                     "%s: chat_template: expected a string or a list of {name, template}",
                     file);
            cJSON_Delete(cfg);
            return -1;
        }
        cJSON_Delete(cfg);
        cfg = NULL;
    }
    cJSON *gen = read_json(t->dir, "generation_config.json", file, sizeof file, &absent, err,
                           errlen);
    if (!gen && !absent) return -1;
    const cJSON *eos = gen ? cJSON_GetObjectItemCaseSensitive(gen, "eos_token_id") : NULL;
    if (eos && !cJSON_IsNull(eos)) {
        int n = cJSON_IsArray(eos) ? cJSON_GetArraySize(eos) : 1;
        t->eos = calloc((size_t)n + 1, sizeof *t->eos);
        if (!t->eos) goto oom_gen;
        if (cJSON_IsArray(eos)) {
            const cJSON *e;
            cJSON_ArrayForEach(e, eos) {
                if (check_id(t, e, file, "eos_token_id", &t->eos[t->n_eos++], err, errlen)) {
                    cJSON_Delete(gen);
                    return -1;
                }
            }
        } else if (check_id(t, eos, file, "eos_token_id", &t->eos[t->n_eos++], err, errlen)) {
            cJSON_Delete(gen);
            return -1;
        }
    } else if (cfg_eos >= 0) {
        t->eos = malloc(sizeof *t->eos);
        if (!t->eos) goto oom_gen;
        t->eos[0] = cfg_eos;
        t->n_eos = 1;
    }
    const cJSON *pad = gen ? cJSON_GetObjectItemCaseSensitive(gen, "pad_token_id") : NULL;
    if (t->pad_id < 0 && pad && !cJSON_IsNull(pad) &&
        check_id(t, pad, file, "pad_token_id", &t->pad_id, err, errlen)) {
        cJSON_Delete(gen);
        return -1;
    }
    cJSON_Delete(gen);
    return 0;
oom_gen:
    cJSON_Delete(gen);
    return tok_errf(err, errlen, "out of memory");
oom:
    cJSON_Delete(cfg);
    return tok_errf(err, errlen, "out of memory");
}
