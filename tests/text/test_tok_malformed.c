/*
 * tests/text/test_tok_malformed.c — bad tokenizer files must be refused with a clear
 * message (file, field, value, expectation), never crash or hang: missing/ill-typed
 * fields, merges naming unknown tokens, unsupported models/normalizers/pre-tokenizers/
 * decoders, broken JSON, bad tokenizer_config.json / generation_config.json. Also checks
 * that the valid base file loads and encodes, and tok_encode/tok_decode edge inputs.
 * Labelled asan: scripts/test.sh runs it under AddressSanitizer too.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "engine/text/tokenizer.h"
#include "tests/text/test_util.h"

/* A tiny valid byte-level BPE: 256 byte tokens are added programmatically; merges
 * "a b" -> "ab", "ab c" -> "abc". */
static cJSON *base_tokenizer(void) {
    cJSON *root = cJSON_Parse(
        "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":300,\"content\":\"<|end|>\","
        "\"special\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
        "\"single_word\":false}],"
        "\"normalizer\":{\"type\":\"NFC\"},"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
        "\"pattern\":{\"Regex\":\"\\\\p{L}+|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
        "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"fuse_unk\":false,"
        "\"byte_fallback\":false,\"vocab\":{},\"merges\":[\"a b\",[\"ab\",\"c\"]]}}");
    cJSON *vocab = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "model"), "vocab");
    /* The byte-level alphabet: bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF stand for
     * themselves, the rest map to U+0100.. in order (test data, mirrors the format). */
    int k = 0;
    for (int b = 0; b < 256; b++) {
        int self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        int cp = self ? b : 0x100 + k++;
        char s[4];
        if (cp < 0x80) {
            s[0] = (char)cp;
            s[1] = 0;
        } else {
            s[0] = (char)(0xC0 | (cp >> 6));
            s[1] = (char)(0x80 | (cp & 0x3F));
            s[2] = 0;
        }
        cJSON_AddNumberToObject(vocab, s, b);
    }
    cJSON_AddNumberToObject(vocab, "ab", 256);
    cJSON_AddNumberToObject(vocab, "abc", 257);
    return root;
}

static char dir[256];

static void write_file(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

/* Loads dir; expects failure with every needle in the message. */
static void expect_fail(const char *what, const char *n1, const char *n2) {
    tok_tokenizer *t = NULL;
    char err[1024] = "";
    int r = tok_load(dir, &t, err, sizeof err);
    TU_CHECK(r != 0 && t == NULL, "%s: loaded but should have failed", what);
    TU_CHECK(!n1 || strstr(err, n1), "%s: message lacks '%s': %s", what, n1, err);
    TU_CHECK(!n2 || strstr(err, n2), "%s: message lacks '%s': %s", what, n2, err);
    TU_CHECK(strstr(err, "tokenizer") != NULL || strstr(err, "config") != NULL,
             "%s: message does not name the file: %s", what, err);
    if (r == 0) tok_free(t);
    printf("ok  %-44s -> %s\n", what, err);
}

typedef void (*mutator)(cJSON *root);

static void case_json(const char *what, mutator m, const char *n1, const char *n2) {
    cJSON *root = base_tokenizer();
    m(root);
    char *s = cJSON_PrintUnformatted(root);
    write_file("tokenizer.json", s);
    free(s);
    cJSON_Delete(root);
    expect_fail(what, n1, n2);
}

static cJSON *model(cJSON *r) { return cJSON_GetObjectItem(r, "model"); }
static cJSON *pretok(cJSON *r, int i) {
    return cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "pre_tokenizer"),
                                                  "pretokenizers"),
                              i);
}
static void set(cJSON *obj, const char *key, cJSON *v) {
    if (!cJSON_ReplaceItemInObject(obj, key, v)) cJSON_AddItemToObject(obj, key, v);
}

static void m_no_merges(cJSON *r) { cJSON_DeleteItemFromObject(model(r), "merges"); }
static void m_merges_obj(cJSON *r) { set(model(r), "merges", cJSON_CreateObject()); }
static void m_merge_unknown(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(model(r), "merges"), cJSON_CreateString("ab zz"));
}
static void m_merge_result(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(model(r), "merges"), cJSON_CreateString("c a"));
}
static void m_merge_three(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(model(r), "merges"), cJSON_CreateString("a b c"));
}
static void m_merge_number(cJSON *r) {
    cJSON_AddItemToArray(cJSON_GetObjectItem(model(r), "merges"), cJSON_CreateNumber(3));
}
static void m_vocab_string(cJSON *r) {
    set(cJSON_GetObjectItem(model(r), "vocab"), "ab", cJSON_CreateString("256"));
}
static void m_vocab_negative(cJSON *r) {
    set(cJSON_GetObjectItem(model(r), "vocab"), "ab", cJSON_CreateNumber(-4));
}
static void m_vocab_fraction(cJSON *r) {
    set(cJSON_GetObjectItem(model(r), "vocab"), "ab", cJSON_CreateNumber(2.5));
}
static void m_vocab_array(cJSON *r) { set(model(r), "vocab", cJSON_CreateArray()); }
static void m_no_model(cJSON *r) { cJSON_DeleteItemFromObject(r, "model"); }
static void m_wordpiece(cJSON *r) { set(model(r), "type", cJSON_CreateString("WordPiece")); }
static void m_unigram(cJSON *r) { set(model(r), "type", cJSON_CreateString("Unigram")); }
static void m_byte_fallback(cJSON *r) { set(model(r), "byte_fallback", cJSON_CreateTrue()); }
static void m_dropout(cJSON *r) { set(model(r), "dropout", cJSON_CreateNumber(0.1)); }
static void m_prefix(cJSON *r) {
    set(model(r), "continuing_subword_prefix", cJSON_CreateString("##"));
}
static void m_unk(cJSON *r) { set(model(r), "unk_token", cJSON_CreateString("<unk>")); }
static void m_nfkc(cJSON *r) {
    set(cJSON_GetObjectItem(r, "normalizer"), "type", cJSON_CreateString("NFKC"));
}
static void m_norm_seq(cJSON *r) {
    set(r, "normalizer", cJSON_Parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
                                     "{\"type\":\"Lowercase\"}]}"));
}
static void m_metaspace(cJSON *r) {
    set(r, "pre_tokenizer", cJSON_Parse("{\"type\":\"Metaspace\",\"replacement\":\"_\"}"));
}
static void m_no_pretok(cJSON *r) { set(r, "pre_tokenizer", cJSON_CreateNull()); }
static void m_removed(cJSON *r) { set(pretok(r, 0), "behavior", cJSON_CreateString("Removed")); }
static void m_invert(cJSON *r) { set(pretok(r, 0), "invert", cJSON_CreateTrue()); }
static void m_bad_regex(cJSON *r) {
    set(pretok(r, 0), "pattern", cJSON_Parse("{\"Regex\":\"(unclosed\"}"));
}
static void m_pattern_number(cJSON *r) { set(pretok(r, 0), "pattern", cJSON_CreateNumber(1)); }
static void m_bl_first(cJSON *r) {
    cJSON *seq = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "pre_tokenizer"), "pretokenizers");
    cJSON *split = cJSON_DetachItemFromArray(seq, 0);
    cJSON_AddItemToArray(seq, split);
}
static void m_no_bytelevel(cJSON *r) {
    cJSON *seq = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "pre_tokenizer"), "pretokenizers");
    cJSON_DeleteItemFromArray(seq, 1);
}
static void m_bool_string(cJSON *r) {
    set(pretok(r, 1), "add_prefix_space", cJSON_CreateString("yes"));
}
static void m_decoder(cJSON *r) { set(r, "decoder", cJSON_Parse("{\"type\":\"WordPiece\"}")); }
static void m_no_decoder(cJSON *r) { cJSON_DeleteItemFromObject(r, "decoder"); }
static void m_added_obj(cJSON *r) { set(r, "added_tokens", cJSON_CreateObject()); }
static void m_added_special(cJSON *r) {
    set(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "added_tokens"), 0), "special",
        cJSON_CreateString("yes"));
}
static void m_added_content(cJSON *r) {
    set(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "added_tokens"), 0), "content",
        cJSON_CreateNumber(5));
}
static void m_added_id(cJSON *r) {
    set(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "added_tokens"), 0), "id",
        cJSON_CreateString("300"));
}
static void m_single_word(cJSON *r) {
    set(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "added_tokens"), 0), "single_word",
        cJSON_CreateTrue());
}

static void check_valid(void) {
    cJSON *root = base_tokenizer();
    char *s = cJSON_PrintUnformatted(root);
    write_file("tokenizer.json", s);
    free(s);
    cJSON_Delete(root);
    tok_tokenizer *t;
    char err[512];
    if (tok_load(dir, &t, err, sizeof err)) {
        TU_CHECK(0, "valid base tokenizer failed to load: %s", err);
        return;
    }
    int32_t *ids;
    size_t n;
    /* "abc" merges to 257, " " is byte 32, "ab" merges to 256; the added token splits
     * first. Its id is the one HF assigns on load (the model's token count, 258), not the
     * file's 300. */
    TU_CHECK(!tok_encode(t, "abc ab<|end|>", 13, &ids, &n, err, sizeof err), "encode: %s", err);
    int32_t want[] = {257, 32, 256, 258};
    TU_CHECK(n == 4 && !memcmp(ids, want, sizeof want), "base encode gave %zu ids", n);
    free(ids);
    /* Empty input; input with NUL bytes; invalid UTF-8 is repaired to U+FFFD. */
    TU_CHECK(!tok_encode(t, "", 0, &ids, &n, err, sizeof err) && n == 0, "empty encode");
    free(ids);
    TU_CHECK(!tok_encode(t, "a\0b", 3, &ids, &n, err, sizeof err) && n == 3, "NUL encode");
    free(ids);
    TU_CHECK(!tok_encode(t, "\xff", 1, &ids, &n, err, sizeof err) && n == 3, "invalid UTF-8");
    free(ids);
    /* Decode: unknown and negative ids are skipped as HF does. */
    int32_t dec_ids[] = {257, -5, 99999, 258};
    char *txt;
    size_t tl;
    TU_CHECK(!tok_decode(t, dec_ids, 4, 0, &txt, &tl, err, sizeof err) &&
                 !strcmp(txt, "abc<|end|>"),
             "decode with unknown ids");
    free(txt);
    TU_CHECK(!tok_decode(t, dec_ids, 4, 1, &txt, &tl, err, sizeof err) && !strcmp(txt, "abc"),
             "decode skip_special");
    free(txt);
    TU_CHECK(tok_vocab_size(t) == 259, "vocab size %d", tok_vocab_size(t));
    TU_CHECK(tok_bos_id(t) == -1 && tok_pad_id(t) == -1, "bos/pad without config");
    TU_CHECK(!strcmp(tok_id_to_piece(t, 256), "ab") && tok_id_to_piece(t, 290) == NULL &&
                 tok_id_to_piece(t, -1) == NULL,
             "id_to_piece");
    /* Configs beside it. */
    write_file("tokenizer_config.json",
               "{\"eos_token\":{\"content\":\"<|end|>\"},\"pad_token\":\"abc\",\"bos_token\":null}");
    tok_free(t);
    TU_CHECK(!tok_load(dir, &t, err, sizeof err), "load with config: %s", err);
    const int32_t *eos;
    TU_CHECK(tok_eos_ids(t, &eos) == 1 && eos[0] == 258 && tok_pad_id(t) == 257, "config ids");
    tok_free(t);
    write_file("generation_config.json", "{\"eos_token_id\":[258,256]}");
    TU_CHECK(!tok_load(dir, &t, err, sizeof err), "load with generation config: %s", err);
    TU_CHECK(tok_eos_ids(t, &eos) == 2 && eos[0] == 258 && eos[1] == 256, "generation eos");
    tok_free(t);
    printf("ok  valid base tokenizer loads, encodes, decodes\n");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/rlvr_tok_malformed_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    check_valid();
    /* Config files: bad values are refused too. */
    write_file("generation_config.json", "{\"eos_token_id\":[258,99999]}");
    expect_fail("generation_config eos id out of range", "generation_config.json", "eos_token_id");
    write_file("generation_config.json", "{\"eos_token_id\": \"x\"}");
    expect_fail("generation_config eos id a string", "generation_config.json", "eos_token_id");
    remove_file("generation_config.json");
    write_file("tokenizer_config.json", "{\"eos_token\":\"<not-a-token>\"}");
    expect_fail("tokenizer_config eos not a token", "tokenizer_config.json", "<not-a-token>");
    write_file("tokenizer_config.json", "{\"pad_token\": 7}");
    expect_fail("tokenizer_config pad_token a number", "tokenizer_config.json", "pad_token");
    write_file("tokenizer_config.json", "{\"chat_template\": 7}");
    expect_fail("tokenizer_config chat_template a number", "tokenizer_config.json",
                "chat_template");
    write_file("tokenizer_config.json", "{\"eos_token\": ");
    expect_fail("tokenizer_config truncated", "tokenizer_config.json", "not valid JSON");
    remove_file("tokenizer_config.json");

    case_json("missing merges", m_no_merges, "model.merges", "expected an array");
    case_json("merges an object", m_merges_obj, "model.merges", "an object");
    case_json("merge names unknown token", m_merge_unknown, "model.merges[2]", "'zz'");
    case_json("merge result not in vocab", m_merge_result, "model.merges[2]", "'ca'");
    case_json("merge with three parts", m_merge_three, "model.merges[2]", "'a b c'");
    case_json("merge a number", m_merge_number, "model.merges[2]", "a number");
    case_json("vocab id a string", m_vocab_string, "model.vocab[\"ab\"]", "a string");
    case_json("vocab id negative", m_vocab_negative, "model.vocab[\"ab\"]", "integer");
    case_json("vocab id fraction", m_vocab_fraction, "model.vocab[\"ab\"]", "integer");
    case_json("vocab an array", m_vocab_array, "model.vocab", "an array");
    case_json("no model", m_no_model, "model", "missing");
    case_json("WordPiece model", m_wordpiece, "model.type", "'WordPiece'");
    case_json("Unigram model", m_unigram, "model.type", "'Unigram'");
    case_json("byte_fallback", m_byte_fallback, "model.byte_fallback", "unsupported");
    case_json("dropout", m_dropout, "model.dropout", "unsupported");
    case_json("subword prefix", m_prefix, "model.continuing_subword_prefix", "'##'");
    case_json("unk token not in vocab", m_unk, "model.unk_token", "'<unk>'");
    case_json("NFKC normalizer", m_nfkc, "normalizer.type", "'NFKC'");
    case_json("Lowercase in a Sequence", m_norm_seq, "normalizer.normalizers[1].type",
              "'Lowercase'");
    case_json("Metaspace pre-tokenizer", m_metaspace, "pre_tokenizer.type", "'Metaspace'");
    case_json("no pre-tokenizer", m_no_pretok, "pre_tokenizer", "ByteLevel");
    case_json("Split behavior Removed", m_removed, "pre_tokenizer.pretokenizers[0].behavior",
              "'Removed'");
    case_json("Split invert", m_invert, "pretokenizers[0].invert", "expected false");
    case_json("bad regex", m_bad_regex, "pretokenizers[0].pattern", "cannot compile");
    case_json("pattern a number", m_pattern_number, "pretokenizers[0].pattern", "Regex");
    case_json("ByteLevel not last", m_bl_first, "pretokenizers[1]", "ByteLevel must come last");
    case_json("no ByteLevel", m_no_bytelevel, "pre_tokenizer", "no ByteLevel");
    case_json("add_prefix_space a string", m_bool_string,
              "pre_tokenizer.pretokenizers[1].add_prefix_space", "true or false");
    case_json("WordPiece decoder", m_decoder, "decoder", "'WordPiece'");
    case_json("no decoder", m_no_decoder, "decoder", "missing");
    case_json("added_tokens an object", m_added_obj, "added_tokens", "an object");
    case_json("added special a string", m_added_special, "added_tokens[0].special", "a string");
    case_json("added content a number", m_added_content, "added_tokens[0].content", "a number");
    case_json("added id a string", m_added_id, "added_tokens[0].id", "a string");
    case_json("added single_word", m_single_word, "added_tokens[0].single_word", "<|end|>");

    write_file("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0");
    expect_fail("truncated JSON", "not valid JSON", "line 1");
    write_file("tokenizer.json", "");
    expect_fail("empty file", "not valid JSON", NULL);
    write_file("tokenizer.json", "[1, 2, 3]");
    expect_fail("top-level array", "top level", "an array");
    remove_file("tokenizer.json");
    expect_fail("directory without tokenizer.json", "tokenizer.json", "cannot open");
    rmdir(dir);
    {
        tok_tokenizer *t = NULL;
        char err[256];
        TU_CHECK(tok_load("/nonexistent/tokenizer.json", &t, err, sizeof err) && !t &&
                     strstr(err, "/nonexistent/tokenizer.json"),
                 "nonexistent path: %s", err);
    }
    if (tu_failures) fprintf(stderr, "%d failures\n", tu_failures);
    return tu_failures ? 1 : 0;
}
