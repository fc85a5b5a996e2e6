/*
 * engine/text/tokenizer.h — Hugging Face `tokenizer.json` byte-level BPE tokenizers
 * (Qwen2/2.5/3, Llama 3, GPT-2 style such as SmolLM2), exact to the id.
 *
 * Supported tokenizer.json content (anything else is refused at load time with an
 * error naming the unsupported type and its place in the file):
 *   model         BPE (merges as "a b" strings or ["a","b"] pairs; ignore_merges;
 *                 unk_token/fuse_unk); no dropout, byte_fallback, subword prefixes.
 *   normalizer    null, NFC, Sequence of those.
 *   pre_tokenizer Split (Regex or String pattern, behavior Isolated, invert false),
 *                 Digits, ByteLevel (add_prefix_space, use_regex) — Sequence of those,
 *                 with exactly one ByteLevel, last.
 *   decoder       ByteLevel.   post_processor: ignored (add_special_tokens=False).
 *   added_tokens  special / lstrip / rstrip / normalized flags (single_word refused).
 *
 * Semantics are those of the PyPI `tokenizers` package with add_special_tokens=False:
 * text is split on added tokens first (leftmost-longest; normalized=false tokens on the
 * raw text, normalized=true tokens on the normalized text), then normalized,
 * pre-tokenized with the file's regexes (run by PCRE2 as written), mapped to the
 * byte-level alphabet and merged lowest rank first.
 *
 * Invalid UTF-8 given to tok_encode is repaired first, each maximal ill-formed subpart
 * becoming U+FFFD: the ids are those HF gives for bytes.decode("utf-8", "replace").
 * tok_decode joins token bytes and repairs invalid UTF-8 the same way (HF's ByteLevel
 * decoder does String::from_utf8_lossy). Ids that are not in the vocabulary are skipped
 * when decoding, as HF does.
 *
 * Thread safety: a loaded tok_tokenizer is immutable except for its word cache, which
 * is split into shards each guarded by its own mutex. tok_encode, tok_decode and all
 * accessors may be called from any number of threads at once on one tokenizer.
 * tok_free must not race with any of them. A tok_stream belongs to one thread at a time.
 *
 * Errors: functions return 0 on success and -1 on failure with a message in err
 * (errlen bytes) naming the file, the field, the value and what was expected.
 */
#ifndef RLVR_TEXT_TOKENIZER_H
#define RLVR_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_tokenizer tok_tokenizer;

/* Loads path (a tokenizer.json file, or a directory holding one). Also reads
 * tokenizer_config.json (bos/eos/pad tokens, chat_template) and generation_config.json
 * (eos_token_id, int or list) beside it when present. */
int tok_load(const char *path, tok_tokenizer **out, char *err, size_t errlen);
void tok_free(tok_tokenizer *t);

/* Encodes len bytes of text (add_special_tokens=False: nothing is inserted). *ids is
 * malloc'ed (free() it); *n_ids its length. */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int32_t **ids,
               size_t *n_ids, char *err, size_t errlen);

/* Decodes ids to UTF-8 text; skip_special drops added tokens marked special. *text is
 * malloc'ed and NUL-terminated, *len excludes the NUL. */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
               char **text, size_t *len, char *err, size_t errlen);

/* Streaming decoder for the sampler: push ids one at a time and get the text that became
 * complete. Bytes of a UTF-8 character still missing continuation bytes are held back
 * until they arrive; anything that can no longer become valid is emitted as U+FFFD.
 * The concatenation of all pushes and the final flush equals tok_decode of all ids. */
typedef struct tok_stream tok_stream;
int tok_stream_create(const tok_tokenizer *t, int skip_special, tok_stream **out, char *err,
                      size_t errlen);
/* *text points into the stream (valid until the next call), *len may be 0. */
int tok_stream_push(tok_stream *s, int32_t id, const char **text, size_t *len, char *err,
                    size_t errlen);
/* Emits what is held back (an incomplete character becomes U+FFFD) and resets. */
int tok_stream_flush(tok_stream *s, const char **text, size_t *len, char *err, size_t errlen);
void tok_stream_free(tok_stream *s);

/* One more than the highest id of the vocabulary and the added tokens. */
int tok_vocab_size(const tok_tokenizer *t);
/* EOS ids: generation_config.json's eos_token_id (int or list) when present, else
 * tokenizer_config.json's eos_token. Returns the count (0 when none); *ids stays owned
 * by the tokenizer. */
int tok_eos_ids(const tok_tokenizer *t, const int32_t **ids);
/* PAD / BOS ids from tokenizer_config.json (pad_token, bos_token), -1 when none. */
int32_t tok_pad_id(const tok_tokenizer *t);
int32_t tok_bos_id(const tok_tokenizer *t);
/* The token's text as written in tokenizer.json (byte-level alphabet for model tokens,
 * the content for added tokens), NULL for an id not in the vocabulary. */
const char *tok_id_to_piece(const tok_tokenizer *t, int32_t id);
/* The id of a token written as in tokenizer.json (added token content or model token),
 * -1 when none. */
int32_t tok_piece_to_id(const tok_tokenizer *t, const char *piece);
/* 1 when id is an added token marked special. */
int tok_is_special(const tok_tokenizer *t, int32_t id);
/* tokenizer_config.json's chat_template (the "default" one when it is a list), its
 * bos_token text, and the path tokenizer.json was read from; NULL when absent. */
const char *tok_chat_template_source(const tok_tokenizer *t);
const char *tok_bos_token(const tok_tokenizer *t);
const char *tok_path(const tok_tokenizer *t);

#endif
