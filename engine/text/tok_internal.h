/*
 * engine/text/tok_internal.h — the tokenizer's internal structures, shared by the
 * files of engine/text only (load, added-token split, pre-tokenizer, BPE, decode).
 */
#ifndef RLVR_TEXT_TOK_INTERNAL_H
#define RLVR_TEXT_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/text/strmap.h"
#include "engine/text/tokenizer.h"

/* Formats an error message into err (when err/errlen allow). Returns -1. */
int tok_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads a whole file into a NUL-terminated malloc'ed buffer. 0, or -1 with err. */
int tok_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen);

/* ---------------------------------------------------------------- added tokens --- */
typedef struct {
    int32_t id;
    char *content; /* as written in the file */
    size_t len;
    char *match; /* the text matched: content, NFC-normalised when normalized=true */
    size_t match_len;
    uint8_t special, lstrip, rstrip, normalized;
} tok_added;

/* A set of added tokens matched leftmost-longest (the normalized=false ones on raw
 * text, the normalized=true ones on normalized text). Candidates are bucketed by first
 * byte, longest first. */
typedef struct {
    uint32_t bucket_off[257]; /* candidates of first byte b: cand[bucket_off[b]..[b+1]) */
    int32_t *cand;            /* indices into tok_tokenizer.added */
    size_t n;
} tok_added_set;

/* --------------------------------------------------------------- pre-tokenizer --- */
typedef struct {
    pcre2_code *re; /* compiled with PCRE2_UTF | PCRE2_UCP, JIT when available */
} tok_split_step;

/* ------------------------------------------------------------------ word cache --- */
#define TOK_CACHE_SHARDS 64
#define TOK_CACHE_SHARD_SLOTS 2048 /* kept at most half full */
#define TOK_CACHE_MAX_WORD 256     /* bytes; longer words are not cached */
typedef struct {
    uint64_t hash;
    uint32_t klen, nids;
    /* followed by int32_t ids[nids], then the key bytes */
} tok_cache_entry;
typedef struct {
    pthread_mutex_t mu;
    tok_cache_entry **slots; /* [TOK_CACHE_SHARD_SLOTS] */
    size_t count;
} tok_cache_shard;

/* ------------------------------------------------------------------- tokenizer --- */
struct tok_tokenizer {
    char *path; /* tokenizer.json */
    char *dir;  /* its directory */

    int nfc; /* normalizer: NFC (1) or none (0) */

    tok_split_step *splits; /* Split / Digits steps before the ByteLevel step */
    size_t n_splits;
    int bl_add_prefix_space; /* ByteLevel pre-tokenizer options */
    pcre2_code *bl_re;       /* the GPT-2 regex when ByteLevel.use_regex, else NULL */

    /* BPE model */
    tok_strmap vocab; /* token text as in the file -> id (model tokens) */
    tok_strmap raw;   /* raw bytes -> id, for model tokens made of byte-level chars */
    tok_pairmap merges;
    int32_t byte_id[256]; /* id of the single-byte token, -1 when absent */
    int ignore_merges;
    int32_t unk_id; /* -1 when no unk_token */
    int fuse_unk;

    tok_added *added;
    size_t n_added;
    tok_added_set raw_set, norm_set;
    tok_strmap added_map; /* content -> id */

    /* per id tables, [vocab_size] */
    int32_t vocab_size;
    char **piece;      /* text as in the file, NULL for ids not in the vocabulary */
    uint32_t *dec_off; /* decoded bytes of id i: dec_bytes[dec_off[i] .. dec_off[i+1]) */
    char *dec_bytes;
    uint8_t *special; /* 1 for special added tokens */
    uint8_t *present; /* 1 for ids in the vocabulary or added tokens */

    int32_t *eos;
    int n_eos;
    int32_t pad_id, bos_id;
    char *chat_template;
    char *bos_token;

    tok_cache_shard cache[TOK_CACHE_SHARDS];
};

/* Growable id vector. */
typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_ids;
int tok_ids_push(tok_ids *a, int32_t id);
int tok_ids_append(tok_ids *a, const int32_t *ids, size_t n);

/* Per-call scratch space of tok_encode (never shared between threads). */
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    char *wbuf; /* prefix-space words */
    size_t wcap;
    /* BPE symbols */
    int32_t *sym_id, *sym_prev, *sym_next;
    size_t sym_cap;
    struct tok_heap_item *heap;
    size_t heap_cap;
} tok_scratch;
void tok_scratch_free(tok_scratch *sc);

/* tok_config.c: reads tokenizer_config.json and generation_config.json beside t->path
 * (when present) and sets eos/pad/bos, chat_template and bos_token. */
int tok_load_configs(tok_tokenizer *t, char *err, size_t errlen);

/* tok_added.c */
int tok_added_build(tok_tokenizer *t, char *err, size_t errlen);
/* Finds the leftmost-longest match of set in s[from..n): 1 with [*ms, *me) and the
 * index into t->added, 0 when none. */
int tok_added_find(const tok_tokenizer *t, const tok_added_set *set, const char *s, size_t n,
                   size_t from, size_t *ms, size_t *me, int32_t *k);
/* Byte length of the run of White_Space characters ending at s+n / starting at s. */
size_t tok_ws_suffix_len(const char *s, size_t n);
size_t tok_ws_prefix_len(const char *s, size_t n);

/* tok_pretok.c: pre-tokenizes a normalized segment and BPE-encodes each word. */
int tok_pretok_encode(const tok_tokenizer *t, const char *s, size_t n, tok_scratch *sc,
                      tok_ids *out, char *err, size_t errlen);
/* Compiles a pre-tokenizer regex; NULL with err on failure. */
pcre2_code *tok_regex_compile(const char *pattern, size_t len, int literal, char *err,
                              size_t errlen);

/* tok_bpe.c: encodes one pre-tokenized word (raw bytes) with the cache. */
int tok_bpe_word(const tok_tokenizer *t, const char *w, size_t n, tok_scratch *sc,
                 tok_ids *out);
void tok_cache_init(tok_tokenizer *t);
void tok_cache_free(tok_tokenizer *t);

#endif
