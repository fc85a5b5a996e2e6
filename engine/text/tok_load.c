/*
 * engine/text/tok_load.c — reads and validates tokenizer.json: the BPE model (vocab,
 * merges), added tokens, normalizer, pre-tokenizer and decoder, and builds the lookup
 * tables used by encode and decode. Everything it does not support is refused with the
 * JSON path of the offending field.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/text/tok_internal.h"
#include "engine/text/utf8.h"

#define TOK_MAX_ID (1 << 24) /* ids above this are refused (tables are indexed by id) */

/* The pre-tokenizer regex of GPT-2's ByteLevel (use_regex=true), as the format fixes it. */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

int tok_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int tok_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return tok_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return tok_errf(err, errlen, "%s: out of memory reading the file", path);
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) free(buf);
        buf = nb;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return tok_errf(err, errlen, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return 0;
}

int tok_ids_push(tok_ids *a, int32_t id) {
    if (a->n == a->cap) {
        size_t c = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, c * sizeof *v);
        if (!v) return -1;
        a->v = v;
        a->cap = c;
    }
    a->v[a->n++] = id;
    return 0;
}

int tok_ids_append(tok_ids *a, const int32_t *ids, size_t n) {
    if (a->n + n > a->cap) {
        size_t c = a->cap ? a->cap : 64;
        while (c < a->n + n) c *= 2;
        int32_t *v = realloc(a->v, c * sizeof *v);
        if (!v) return -1;
        a->v = v;
        a->cap = c;
    }
    memcpy(a->v + a->n, ids, n * sizeof *ids);
    a->n += n;
    return 0;
}

/* ------------------------------------------------------------------- helpers --- */
typedef struct {
    const char *file;
    char *err;
    size_t errlen;
} load_ctx;

static const char *json_kind(const cJSON *j) {
    if (!j) return "missing";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    return "an object";
}

/* Optional boolean field: absent/null keeps *v. */
static int get_bool(load_ctx *c, const cJSON *obj, const char *path, const char *key, int *v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || cJSON_IsNull(j)) return 0;
    if (!cJSON_IsBool(j))
        return tok_errf(c->err, c->errlen, "%s: %s.%s: expected true or false, got %s", c->file,
                        path, key, json_kind(j));
    *v = cJSON_IsTrue(j);
    return 0;
}

/* Optional string field: absent/null gives NULL. */
static int get_str(load_ctx *c, const cJSON *obj, const char *path, const char *key,
                   const char **v) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    *v = NULL;
    if (!j || cJSON_IsNull(j)) return 0;
    if (!cJSON_IsString(j))
        return tok_errf(c->err, c->errlen, "%s: %s.%s: expected a string, got %s", c->file, path,
                        key, json_kind(j));
    *v = j->valuestring;
    return 0;
}

static int get_id(load_ctx *c, const cJSON *j, const char *path, int32_t *id) {
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(int64_t)j->valuedouble ||
        j->valuedouble < 0 || j->valuedouble >= TOK_MAX_ID)
        return tok_errf(c->err, c->errlen,
                        "%s: %s: expected a token id (an integer in 0..%d), got %s%s", c->file,
                        path, TOK_MAX_ID - 1, json_kind(j),
                        cJSON_IsNumber(j) ? " out of range or not an integer" : "");
    *id = (int32_t)j->valuedouble;
    return 0;
}

/* Token text (byte-level alphabet) -> raw bytes; returns the length, or -1 when a
 * character is not in the alphabet. out must hold strlen(s) bytes. */
static long bytelevel_to_raw(const char *s, size_t n, char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        size_t l = utf8_seq_len((const unsigned char *)s + i, n - i);
        if (!l) return -1;
        int32_t cp;
        utf8_decode(s + i, &cp);
        int b = utf8_cp_to_byte(cp);
        if (b < 0) return -1;
        out[o++] = (char)b;
        i += l;
    }
    return (long)o;
}

/* ----------------------------------------------------------------------- model --- */
static int parse_model(tok_tokenizer *t, const cJSON *root, load_ctx *c) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(m))
        return tok_errf(c->err, c->errlen, "%s: model: expected an object, got %s", c->file,
                        json_kind(m));
    const char *type;
    if (get_str(c, m, "model", "type", &type)) return -1;
    if (type && strcmp(type, "BPE") != 0)
        return tok_errf(c->err, c->errlen,
                        "%s: model.type: unsupported model type '%s' (rlvr supports byte-level "
                        "BPE only)",
                        c->file, type);
    const cJSON *drop = cJSON_GetObjectItemCaseSensitive(m, "dropout");
    if (drop && !cJSON_IsNull(drop) && !(cJSON_IsNumber(drop) && drop->valuedouble == 0))
        return tok_errf(c->err, c->errlen,
                        "%s: model.dropout: unsupported BPE dropout (expected null)", c->file);
    int byte_fallback = 0;
    if (get_bool(c, m, "model", "byte_fallback", &byte_fallback)) return -1;
    if (byte_fallback)
        return tok_errf(c->err, c->errlen,
                        "%s: model.byte_fallback: unsupported (SentencePiece-style byte "
                        "fallback); expected false",
                        c->file);
    const char *pre, *suf, *unk;
    if (get_str(c, m, "model", "continuing_subword_prefix", &pre) ||
        get_str(c, m, "model", "end_of_word_suffix", &suf) ||
        get_str(c, m, "model", "unk_token", &unk))
        return -1;
    if (pre && *pre)
        return tok_errf(c->err, c->errlen,
                        "%s: model.continuing_subword_prefix: unsupported value '%s' "
                        "(expected null or \"\")",
                        c->file, pre);
    if (suf && *suf)
        return tok_errf(c->err, c->errlen,
                        "%s: model.end_of_word_suffix: unsupported value '%s' (expected null "
                        "or \"\")",
                        c->file, suf);
    if (get_bool(c, m, "model", "fuse_unk", &t->fuse_unk) ||
        get_bool(c, m, "model", "ignore_merges", &t->ignore_merges))
        return -1;

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    if (!cJSON_IsObject(vocab))
        return tok_errf(c->err, c->errlen, "%s: model.vocab: expected an object, got %s",
                        c->file, json_kind(vocab));
    int nv = cJSON_GetArraySize(vocab);
    if (tok_strmap_init(&t->vocab, (size_t)nv) || tok_strmap_init(&t->raw, (size_t)nv))
        return tok_errf(c->err, c->errlen, "%s: out of memory", c->file);
    char *rawbuf = NULL;
    size_t rawcap = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        char path[96];
        snprintf(path, sizeof path, "model.vocab[\"%.60s\"]", e->string);
        int32_t id, old;
        if (get_id(c, e, path, &id)) goto fail;
        size_t kl = strlen(e->string);
        if (!utf8_valid(e->string, kl)) {
            tok_errf(c->err, c->errlen, "%s: %s: token is not valid UTF-8", c->file, path);
            goto fail;
        }
        int r = tok_strmap_put(&t->vocab, e->string, kl, id, &old);
        if (r < 0) goto oom;
        if (r == 1) {
            tok_errf(c->err, c->errlen, "%s: %s: token appears twice", c->file, path);
            goto fail;
        }
        if (id >= t->vocab_size) t->vocab_size = id + 1;
        if (kl > rawcap) {
            rawcap = kl * 2;
            char *nb = realloc(rawbuf, rawcap);
            if (!nb) goto oom;
            rawbuf = nb;
        }
        long rl = bytelevel_to_raw(e->string, kl, rawbuf);
        if (rl > 0 && tok_strmap_put(&t->raw, rawbuf, (size_t)rl, id, NULL) < 0) goto oom;
    }
    free(rawbuf);
    rawbuf = NULL;

    /* Single bytes. */
    for (int b = 0; b < 256; b++) {
        char s[4];
        size_t l = utf8_encode(utf8_byte_to_cp((unsigned char)b), s);
        if (!tok_strmap_get(&t->vocab, s, l, &t->byte_id[b])) t->byte_id[b] = -1;
    }
    t->unk_id = -1;
    if (unk && !tok_strmap_get(&t->vocab, unk, strlen(unk), &t->unk_id))
        return tok_errf(c->err, c->errlen,
                        "%s: model.unk_token: '%s' is not a token of model.vocab", c->file, unk);

    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(m, "merges");
    if (!cJSON_IsArray(merges))
        return tok_errf(c->err, c->errlen,
                        "%s: model.merges: expected an array of merges (\"a b\" strings or "
                        "[\"a\", \"b\"] pairs), got %s",
                        c->file, json_kind(merges));
    int nm = cJSON_GetArraySize(merges);
    if (tok_pairmap_init(&t->merges, (size_t)nm))
        return tok_errf(c->err, c->errlen, "%s: out of memory", c->file);
    char *cat = NULL;
    size_t catcap = 0;
    int rank = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (cJSON_IsString(e)) {
            const char *sp = strchr(e->valuestring, ' ');
            if (sp && !strchr(sp + 1, ' ') && sp != e->valuestring && sp[1]) {
                a = e->valuestring;
                al = (size_t)(sp - a);
                b = sp + 1;
                bl = strlen(b);
            }
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            a = cJSON_GetArrayItem(e, 0)->valuestring;
            b = cJSON_GetArrayItem(e, 1)->valuestring;
            al = strlen(a);
            bl = strlen(b);
        }
        if (!a) {
            free(cat);
            return tok_errf(c->err, c->errlen,
                            "%s: model.merges[%d]: expected \"left right\" (two tokens "
                            "separated by one space) or a [left, right] pair, got %s%s%.60s%s",
                            c->file, rank, json_kind(e), cJSON_IsString(e) ? " '" : "",
                            cJSON_IsString(e) ? e->valuestring : "", cJSON_IsString(e) ? "'" : "");
        }
        int32_t ia, ib, im, r_old, m_old;
        if (!tok_strmap_get(&t->vocab, a, al, &ia) || !tok_strmap_get(&t->vocab, b, bl, &ib)) {
            int left = !tok_strmap_get(&t->vocab, a, al, &ia);
            free(cat);
            return tok_errf(c->err, c->errlen,
                            "%s: model.merges[%d]: names token '%.*s' which is not in "
                            "model.vocab",
                            c->file, rank, (int)(left ? al : bl), left ? a : b);
        }
        if (al + bl > catcap) {
            catcap = (al + bl) * 2;
            char *nc = realloc(cat, catcap);
            if (!nc) {
                free(cat);
                goto oom;
            }
            cat = nc;
        }
        memcpy(cat, a, al);
        memcpy(cat + al, b, bl);
        if (!tok_strmap_get(&t->vocab, cat, al + bl, &im)) {
            tok_errf(c->err, c->errlen,
                     "%s: model.merges[%d]: merging '%.*s' and '%.*s' gives '%.*s', which is "
                     "not in model.vocab",
                     c->file, rank, (int)al, a, (int)bl, b, (int)(al + bl), cat);
            free(cat);
            return -1;
        }
        if (tok_pairmap_get(&t->merges, ia, ib, &r_old, &m_old)) {
            rank++;
            continue; /* a repeated merge keeps its first (lowest) rank */
        }
        if (tok_pairmap_put(&t->merges, ia, ib, rank, im) < 0) {
            free(cat);
            goto oom;
        }
        rank++;
    }
    free(cat);
    return 0;
oom:
    free(rawbuf);
    return tok_errf(c->err, c->errlen, "%s: out of memory", c->file);
fail:
    free(rawbuf);
    return -1;
}

/* ---------------------------------------------------------------- added tokens --- */
static int parse_added(tok_tokenizer *t, const cJSON *root, load_ctx *c, int32_t *new_max) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!arr || cJSON_IsNull(arr)) return 0;
    if (!cJSON_IsArray(arr))
        return tok_errf(c->err, c->errlen, "%s: added_tokens: expected an array, got %s",
                        c->file, json_kind(arr));
    int n = cJSON_GetArraySize(arr);
    t->added = calloc((size_t)n + 1, sizeof *t->added);
    if (!t->added || tok_strmap_init(&t->added_map, (size_t)n))
        return tok_errf(c->err, c->errlen, "%s: out of memory", c->file);
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, arr) {
        char path[48];
        snprintf(path, sizeof path, "added_tokens[%d]", i);
        if (!cJSON_IsObject(e))
            return tok_errf(c->err, c->errlen, "%s: %s: expected an object, got %s", c->file,
                            path, json_kind(e));
        tok_added *a = &t->added[t->n_added];
        char idpath[64];
        snprintf(idpath, sizeof idpath, "%s.id", path);
        if (get_id(c, cJSON_GetObjectItemCaseSensitive(e, "id"), idpath, &a->id)) return -1;
        const char *content;
        if (get_str(c, e, path, "content", &content)) return -1;
        if (!content || !*content)
            return tok_errf(c->err, c->errlen,
                            "%s: %s.content: expected a non-empty string", c->file, path);
        int special = 0, lstrip = 0, rstrip = 0, single = 0, normalized;
        if (get_bool(c, e, path, "special", &special)) return -1;
        normalized = !special;
        if (get_bool(c, e, path, "lstrip", &lstrip) || get_bool(c, e, path, "rstrip", &rstrip) ||
            get_bool(c, e, path, "single_word", &single) ||
            get_bool(c, e, path, "normalized", &normalized))
            return -1;
        if (single)
            return tok_errf(c->err, c->errlen,
                            "%s: %s.single_word: unsupported value true for '%s' (expected "
                            "false)",
                            c->file, path, content);
        a->len = strlen(content);
        if (!utf8_valid(content, a->len))
            return tok_errf(c->err, c->errlen, "%s: %s.content: not valid UTF-8", c->file, path);
        a->content = strdup(content);
        if (!a->content) return tok_errf(c->err, c->errlen, "%s: out of memory", c->file);
        a->special = (uint8_t)special;
        a->lstrip = (uint8_t)lstrip;
        a->rstrip = (uint8_t)rstrip;
        a->normalized = (uint8_t)normalized;
        /* Ids are assigned the way HF's AddedVocabulary does when it loads the file (the
         * "id" field is not trusted): a token of the model vocabulary keeps its model id;
         * any other gets the model's token count, or one more than the highest id given
         * so far that way when that is already past it. */
        int32_t old, mid;
        if (!tok_strmap_get(&t->added_map, a->content, a->len, &old)) {
            if (tok_strmap_get(&t->vocab, a->content, a->len, &mid)) {
                a->id = mid;
            } else {
                int32_t V = (int32_t)t->vocab.count;
                a->id = *new_max < 0 ? V : (*new_max >= V ? *new_max + 1 : V);
                *new_max = a->id;
            }
        }
        int r = tok_strmap_put(&t->added_map, a->content, a->len, a->id, &old);
        if (r < 0) return tok_errf(c->err, c->errlen, "%s: out of memory", c->file);
        if (r == 1) {
            /* HF keeps the first definition of a repeated content. */
            free(a->content);
            a->content = NULL;
            i++;
            continue;
        }
        if (a->id >= t->vocab_size) t->vocab_size = a->id + 1;
        t->n_added++;
        i++;
    }
    return 0;
}

/* ------------------------------------------------------------------ normalizer --- */
static int parse_normalizer(tok_tokenizer *t, const cJSON *j, const char *path, load_ctx *c) {
    if (!j || cJSON_IsNull(j)) return 0;
    if (!cJSON_IsObject(j))
        return tok_errf(c->err, c->errlen, "%s: %s: expected an object or null, got %s",
                        c->file, path, json_kind(j));
    const char *type;
    if (get_str(c, j, path, "type", &type)) return -1;
    if (type && !strcmp(type, "NFC")) {
        t->nfc = 1;
        return 0;
    }
    if (type && !strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "normalizers");
        if (!cJSON_IsArray(arr))
            return tok_errf(c->err, c->errlen, "%s: %s.normalizers: expected an array, got %s",
                            c->file, path, json_kind(arr));
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            char sub[128];
            snprintf(sub, sizeof sub, "%.80s.normalizers[%d]", path, i++);
            if (parse_normalizer(t, e, sub, c)) return -1;
        }
        return 0;
    }
    return tok_errf(c->err, c->errlen,
                    "%s: %s.type: unsupported normalizer '%s' (supported: NFC, Sequence)",
                    c->file, path, type ? type : "(missing)");
}

/* --------------------------------------------------------------- pre-tokenizer --- */
static int add_split(tok_tokenizer *t, const char *pat, size_t len, int literal,
                     const char *path, load_ctx *c) {
    char msg[256];
    pcre2_code *re = tok_regex_compile(pat, len, literal, msg, sizeof msg);
    if (!re)
        return tok_errf(c->err, c->errlen, "%s: %s: cannot compile the pattern: %s", c->file,
                        path, msg);
    tok_split_step *s = realloc(t->splits, (t->n_splits + 1) * sizeof *s);
    if (!s) {
        pcre2_code_free(re);
        return tok_errf(c->err, c->errlen, "%s: out of memory", c->file);
    }
    t->splits = s;
    t->splits[t->n_splits++].re = re;
    return 0;
}

static int parse_pretok(tok_tokenizer *t, const cJSON *j, const char *path, int *seen_bl,
                        load_ctx *c) {
    if (!cJSON_IsObject(j))
        return tok_errf(c->err, c->errlen, "%s: %s: expected an object, got %s", c->file, path,
                        json_kind(j));
    const char *type;
    if (get_str(c, j, path, "type", &type)) return -1;
    if (!type) return tok_errf(c->err, c->errlen, "%s: %s.type: missing", c->file, path);
    if (*seen_bl)
        return tok_errf(c->err, c->errlen,
                        "%s: %s: unsupported pre-tokenizer order: '%s' after ByteLevel "
                        "(ByteLevel must come last)",
                        c->file, path, type);
    if (!strcmp(type, "Sequence")) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "pretokenizers");
        if (!cJSON_IsArray(arr))
            return tok_errf(c->err, c->errlen, "%s: %s.pretokenizers: expected an array, got %s",
                            c->file, path, json_kind(arr));
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, arr) {
            char sub[160];
            snprintf(sub, sizeof sub, "%.100s.pretokenizers[%d]", path, i++);
            if (parse_pretok(t, e, sub, seen_bl, c)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "Split")) {
        const char *behavior;
        int invert = 0;
        if (get_str(c, j, path, "behavior", &behavior) ||
            get_bool(c, j, path, "invert", &invert))
            return -1;
        if (!behavior || strcmp(behavior, "Isolated") != 0)
            return tok_errf(c->err, c->errlen,
                            "%s: %s.behavior: unsupported Split behavior '%s' (expected "
                            "Isolated)",
                            c->file, path, behavior ? behavior : "(missing)");
        if (invert)
            return tok_errf(c->err, c->errlen,
                            "%s: %s.invert: unsupported value true (expected false)", c->file,
                            path);
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(j, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        char sub[160];
        snprintf(sub, sizeof sub, "%.100s.pattern", path);
        if (cJSON_IsString(re)) return add_split(t, re->valuestring, strlen(re->valuestring), 0, sub, c);
        if (cJSON_IsString(lit))
            return add_split(t, lit->valuestring, strlen(lit->valuestring), 1, sub, c);
        return tok_errf(c->err, c->errlen,
                        "%s: %s: expected {\"Regex\": \"...\"} or {\"String\": \"...\"}",
                        c->file, sub);
    }
    if (!strcmp(type, "Digits")) {
        int individual = 0;
        if (get_bool(c, j, path, "individual_digits", &individual)) return -1;
        /* HF splits on char::is_numeric (Nd, Nl, No): one piece per character or per run. */
        const char *p = individual ? "\\p{N}" : "\\p{N}+";
        return add_split(t, p, strlen(p), 0, path, c);
    }
    if (!strcmp(type, "ByteLevel")) {
        int aps = 1, use_regex = 1;
        if (get_bool(c, j, path, "add_prefix_space", &aps) ||
            get_bool(c, j, path, "use_regex", &use_regex))
            return -1;
        t->bl_add_prefix_space = aps;
        if (use_regex) {
            char msg[256];
            t->bl_re = tok_regex_compile(GPT2_PATTERN, strlen(GPT2_PATTERN), 0, msg, sizeof msg);
            if (!t->bl_re)
                return tok_errf(c->err, c->errlen, "%s: %s: GPT-2 regex: %s", c->file, path, msg);
        }
        *seen_bl = 1;
        return 0;
    }
    return tok_errf(c->err, c->errlen,
                    "%s: %s.type: unsupported pre-tokenizer '%s' (supported: Split, Digits, "
                    "ByteLevel, Sequence)",
                    c->file, path, type);
}

static int parse_decoder(const cJSON *j, load_ctx *c) {
    const char *type = NULL;
    if (cJSON_IsObject(j) && get_str(c, j, "decoder", "type", &type)) return -1;
    if (!type || strcmp(type, "ByteLevel") != 0)
        return tok_errf(c->err, c->errlen,
                        "%s: decoder: unsupported decoder %s%s%s (expected type ByteLevel)",
                        c->file, type ? "'" : "", type ? type : json_kind(j), type ? "'" : "");
    return 0;
}

/* ----------------------------------------------------------------- id tables --- */
static int build_tables(tok_tokenizer *t, load_ctx *c) {
    size_t V = (size_t)t->vocab_size;
    t->piece = calloc(V ? V : 1, sizeof *t->piece);
    t->special = calloc(V ? V : 1, 1);
    t->present = calloc(V ? V : 1, 1);
    t->dec_off = calloc(V + 1, sizeof *t->dec_off);
    if (!t->piece || !t->special || !t->present || !t->dec_off) goto oom;
    /* Model tokens: pieces point into the vocab arena copies. */
    for (size_t i = 0; i < t->vocab.cap; i++) {
        if (!t->vocab.hashes[i]) continue;
        int32_t id = t->vocab.vals[i];
        size_t l = t->vocab.klen[i];
        char *p = malloc(l + 1);
        if (!p) goto oom;
        memcpy(p, t->vocab.arena + t->vocab.koff[i], l);
        p[l] = 0;
        free(t->piece[id]);
        t->piece[id] = p;
        t->present[id] = 1;
    }
    for (size_t k = 0; k < t->n_added; k++) {
        tok_added *a = &t->added[k];
        char *p = strdup(a->content);
        if (!p) goto oom;
        free(t->piece[a->id]);
        t->piece[a->id] = p;
        t->present[a->id] = 1;
        t->special[a->id] = a->special;
    }
    /* Decoded bytes: byte-level chars mapped back; a piece with any other character
     * decodes to its own UTF-8 bytes (as HF's ByteLevel decoder does). */
    size_t total = 0;
    for (size_t i = 0; i < V; i++)
        if (t->piece[i]) total += strlen(t->piece[i]);
    t->dec_bytes = malloc(total + 1);
    if (!t->dec_bytes) goto oom;
    size_t off = 0;
    for (size_t i = 0; i < V; i++) {
        t->dec_off[i] = (uint32_t)off;
        if (!t->piece[i]) continue;
        size_t l = strlen(t->piece[i]);
        long rl = bytelevel_to_raw(t->piece[i], l, t->dec_bytes + off);
        if (rl < 0) {
            memcpy(t->dec_bytes + off, t->piece[i], l);
            rl = (long)l;
        }
        off += (size_t)rl;
    }
    t->dec_off[V] = (uint32_t)off;
    return 0;
oom:
    return tok_errf(c->err, c->errlen, "%s: out of memory", c->file);
}

/* ------------------------------------------------------------------------ load --- */
int tok_load(const char *path, tok_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    if (!path || !*path) return tok_errf(err, errlen, "tokenizer path is empty");
    struct stat st;
    if (stat(path, &st) != 0)
        return tok_errf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return tok_errf(err, errlen, "out of memory");
    t->pad_id = t->bos_id = t->unk_id = -1;
    size_t pl = strlen(path);
    if (S_ISDIR(st.st_mode)) {
        t->dir = strdup(path);
        t->path = malloc(pl + 16);
        if (t->path) snprintf(t->path, pl + 16, "%s/tokenizer.json", path);
    } else {
        t->path = strdup(path);
        const char *slash = strrchr(path, '/');
        t->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    }
    tok_cache_init(t);
    if (!t->path || !t->dir) {
        tok_free(t);
        return tok_errf(err, errlen, "out of memory");
    }
    char *data = NULL;
    size_t len;
    if (tok_read_file(t->path, &data, &len, err, errlen)) {
        tok_free(t);
        return -1;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - data) : 0, line = 1;
        for (size_t i = 0; i < off && i < len; i++) line += data[i] == '\n';
        tok_errf(err, errlen, "%s: not valid JSON (error near byte %zu, line %zu)", t->path, off,
                 line);
        free(data);
        tok_free(t);
        return -1;
    }
    free(data);
    load_ctx c = {t->path, err, errlen};
    int seen_bl = 0;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        tok_errf(err, errlen, "%s: expected a JSON object at the top level, got %s", t->path,
                 json_kind(root));
        goto done;
    }
    int32_t new_max = -1;
    if (parse_model(t, root, &c) || parse_added(t, root, &c, &new_max)) goto done;
    if (parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer",
                         &c))
        goto done;
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!pt || cJSON_IsNull(pt)) {
        tok_errf(err, errlen,
                 "%s: pre_tokenizer: missing; a byte-level BPE needs a ByteLevel pre-tokenizer",
                 t->path);
        goto done;
    }
    if (parse_pretok(t, pt, "pre_tokenizer", &seen_bl, &c)) goto done;
    if (!seen_bl) {
        tok_errf(err, errlen,
                 "%s: pre_tokenizer: no ByteLevel step; only byte-level BPE is supported",
                 t->path);
        goto done;
    }
    if (parse_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"), &c)) goto done;
    if (build_tables(t, &c) || tok_added_build(t, err, errlen) || tok_load_configs(t, err, errlen))
        goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void tok_free(tok_tokenizer *t) {
    if (!t) return;
    tok_cache_free(t);
    for (size_t i = 0; i < t->n_splits; i++) pcre2_code_free(t->splits[i].re);
    free(t->splits);
    if (t->bl_re) pcre2_code_free(t->bl_re);
    tok_strmap_free(&t->vocab);
    tok_strmap_free(&t->raw);
    tok_pairmap_free(&t->merges);
    for (size_t i = 0; t->added && t->added[i].content; i++) {
        if (t->added[i].match != t->added[i].content) free(t->added[i].match);
        free(t->added[i].content);
    }
    free(t->added);
    free(t->raw_set.cand);
    free(t->norm_set.cand);
    tok_strmap_free(&t->added_map);
    if (t->piece)
        for (int32_t i = 0; i < t->vocab_size; i++) free(t->piece[i]);
    free(t->piece);
    free(t->dec_off);
    free(t->dec_bytes);
    free(t->special);
    free(t->present);
    free(t->eos);
    free(t->chat_template);
    free(t->bos_token);
    free(t->path);
    free(t->dir);
    free(t);
}

/* ------------------------------------------------------------------- accessors --- */
int tok_vocab_size(const tok_tokenizer *t) { return t->vocab_size; }
int tok_eos_ids(const tok_tokenizer *t, const int32_t **ids) {
    *ids = t->eos;
    return t->n_eos;
}
int32_t tok_pad_id(const tok_tokenizer *t) { return t->pad_id; }
int32_t tok_bos_id(const tok_tokenizer *t) { return t->bos_id; }
const char *tok_id_to_piece(const tok_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->vocab_size ? t->piece[id] : NULL;
}
int32_t tok_piece_to_id(const tok_tokenizer *t, const char *piece) {
    int32_t id;
    size_t l = strlen(piece);
    if (t->added_map.cap && tok_strmap_get(&t->added_map, piece, l, &id)) return id;
    if (tok_strmap_get(&t->vocab, piece, l, &id)) return id;
    return -1;
}
int tok_is_special(const tok_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->vocab_size && t->special[id];
}
const char *tok_chat_template_source(const tok_tokenizer *t) { return t->chat_template; }
const char *tok_bos_token(const tok_tokenizer *t) { return t->bos_token; }
const char *tok_path(const tok_tokenizer *t) { return t->path; }
