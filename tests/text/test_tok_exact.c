/*
 * tests/text/test_tok_exact.c — rlvr's tokenizer against the PyPI `tokenizers` package
 * on the committed corpus (tests/text/fixtures): every string must encode to exactly the
 * ids HF gave (100%), decode (with and without skip_special) to exactly HF's text, random
 * id sequences must decode like HF, decode(encode(x)) must give back the normalized x,
 * the streaming decoder must agree with tok_decode, and four threads encoding at once
 * must get the same ids.
 *
 * usage: test_tok_exact TOKENIZER_DIR FIXTURES_DIR NAME [--roundtrip nfc|raw|skip]
 */
#include <pthread.h>

#include "engine/text/tokenizer.h"
#include "engine/text/utf8.h"
#include "tests/text/test_util.h"

static cJSON **corpus, **ids_rows;
static size_t n_corpus;
static tok_tokenizer *tok;

static int check_decode(const int32_t *ids, size_t n, const char *hex_plain,
                        const char *hex_skip, size_t line, const char *what) {
    int ok = 1;
    for (int skip = 0; skip < 2; skip++) {
        size_t el;
        char *exp = tu_unhex(skip ? hex_skip : hex_plain, &el);
        char *txt, err[512];
        size_t tl;
        if (tok_decode(tok, ids, n, skip, &txt, &tl, err, sizeof err)) {
            TU_CHECK(0, "%s %zu: decode failed: %s", what, line, err);
            free(exp);
            return 0;
        }
        int same = tl == el && !memcmp(txt, exp, el);
        TU_CHECK(same, "%s %zu: decode(skip_special=%d) differs from HF: got '%.80s' want '%.80s'",
                 what, line, skip, txt, exp);
        ok &= same;
        /* Streaming: push one id at a time; the pieces must concatenate to the same. */
        tok_stream *st;
        tok_stream_create(tok, skip, &st, err, sizeof err);
        char *acc = malloc(tl * 2 + 64);
        size_t al = 0, acap = tl * 2 + 64;
        for (size_t i = 0; i <= n; i++) {
            const char *piece;
            size_t pl;
            if (i < n) tok_stream_push(st, ids[i], &piece, &pl, err, sizeof err);
            else tok_stream_flush(st, &piece, &pl, err, sizeof err);
            if (al + pl > acap) acc = realloc(acc, acap = (al + pl) * 2);
            memcpy(acc + al, piece, pl);
            al += pl;
            /* Held-back text is only ever an incomplete UTF-8 tail: what was emitted so
             * far is always well-formed. */
            TU_CHECK(utf8_valid(acc, al), "%s %zu: stream emitted invalid UTF-8", what, line);
        }
        TU_CHECK(al == tl && !memcmp(acc, txt, tl), "%s %zu: stream decode differs from decode",
                 what, line);
        free(acc);
        tok_stream_free(st);
        free(txt);
        free(exp);
    }
    return ok;
}

typedef struct {
    int thread;
    int mismatches;
} thread_arg;

static void *encode_all(void *p) {
    thread_arg *a = p;
    for (size_t k = 0; k < n_corpus; k++) {
        size_t i = (k * 7 + (size_t)a->thread * 131) % n_corpus; /* different orders */
        size_t bl, want_n, n;
        char *b = tu_unhex(cJSON_GetObjectItem(corpus[i], "hex")->valuestring, &bl);
        int32_t *want = tu_ids(cJSON_GetObjectItem(ids_rows[i], "ids"), &want_n), *ids;
        char err[256];
        if (tok_encode(tok, b, bl, &ids, &n, err, sizeof err) || n != want_n ||
            memcmp(ids, want, n * sizeof *ids))
            a->mismatches++;
        else free(ids);
        free(b);
        free(want);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s TOKENIZER_DIR FIXTURES_DIR NAME [--roundtrip nfc|raw|skip]\n",
                argv[0]);
        return 2;
    }
    const char *roundtrip = argc >= 6 && !strcmp(argv[4], "--roundtrip") ? argv[5] : "skip";
    char err[1024], path[4096];
    if (tok_load(argv[1], &tok, err, sizeof err)) {
        fprintf(stderr, "load failed: %s\n", err);
        return 1;
    }
    snprintf(path, sizeof path, "%s/corpus.jsonl", argv[2]);
    corpus = tu_jsonl(path, &n_corpus);
    size_t n_ids;
    snprintf(path, sizeof path, "%s/ids_%s.jsonl", argv[2], argv[3]);
    ids_rows = tu_jsonl(path, &n_ids);
    if (n_ids != n_corpus || n_corpus < 400) {
        fprintf(stderr, "fixture mismatch: %zu strings, %zu id rows\n", n_corpus, n_ids);
        return 1;
    }
    size_t exact = 0, rt_ok = 0, rt_n = 0, total_ids = 0;
    for (size_t i = 0; i < n_corpus; i++) {
        size_t bl, want_n, n;
        char *b = tu_unhex(cJSON_GetObjectItem(corpus[i], "hex")->valuestring, &bl);
        int32_t *want = tu_ids(cJSON_GetObjectItem(ids_rows[i], "ids"), &want_n), *ids;
        total_ids += want_n;
        if (tok_encode(tok, b, bl, &ids, &n, err, sizeof err)) {
            TU_CHECK(0, "line %zu: encode failed: %s", i + 1, err);
            free(b);
            free(want);
            continue;
        }
        if (n == want_n && !memcmp(ids, want, n * sizeof *ids)) {
            exact++;
        } else if (tu_failures++ < 12) {
            fprintf(stderr, "FAIL line %zu: ids differ for '%.100s'\n", i + 1, b);
            tu_print_ids("rlvr", ids, n);
            tu_print_ids("HF  ", want, want_n);
        }
        check_decode(want, want_n, cJSON_GetObjectItem(ids_rows[i], "dec")->valuestring,
                     cJSON_GetObjectItem(ids_rows[i], "dec_skip")->valuestring, i + 1, "line");
        if (strcmp(roundtrip, "skip") != 0) {
            /* decode(encode(x)) = normalizer(x), x with invalid UTF-8 repaired first. */
            char *fixed = NULL, *exp, *txt;
            size_t fl = 0, fc = 0, el, tl;
            utf8_lossy_append(b, bl, &fixed, &fl, &fc);
            if (!strcmp(roundtrip, "nfc")) utf8_nfc(fixed, fl, &exp, &el);
            else {
                exp = malloc(fl + 1); /* the text may hold NUL bytes: no strdup */
                memcpy(exp, fixed, fl + 1);
                el = fl;
            }
            tok_decode(tok, ids, n, 0, &txt, &tl, err, sizeof err);
            rt_n++;
            if (tl == el && !memcmp(txt, exp, el)) rt_ok++;
            else TU_CHECK(0, "line %zu: round trip differs: '%.80s' vs '%.80s'", i + 1, txt, exp);
            free(fixed);
            free(exp);
            free(txt);
        }
        free(ids);
        free(b);
        free(want);
    }
    printf("%s: %zu/%zu strings encode exactly as HF (%zu ids)\n", argv[3], exact, n_corpus,
           total_ids);
    if (rt_n) printf("%s: round trip %zu/%zu\n", argv[3], rt_ok, rt_n);

    size_t n_dec;
    snprintf(path, sizeof path, "%s/decode_%s.jsonl", argv[2], argv[3]);
    cJSON **dec = tu_jsonl(path, &n_dec);
    size_t dec_ok = 0;
    for (size_t i = 0; i < n_dec; i++) {
        size_t n;
        int32_t *ids = tu_ids(cJSON_GetObjectItem(dec[i], "ids"), &n);
        dec_ok += check_decode(ids, n, cJSON_GetObjectItem(dec[i], "dec")->valuestring,
                               cJSON_GetObjectItem(dec[i], "dec_skip")->valuestring, i + 1,
                               "random ids");
        free(ids);
    }
    printf("%s: %zu/%zu random id sequences decode as HF\n", argv[3], dec_ok, n_dec);
    tu_jsonl_free(dec, n_dec);

    pthread_t th[4];
    thread_arg args[4];
    for (int k = 0; k < 4; k++) {
        args[k] = (thread_arg){k, 0};
        pthread_create(&th[k], NULL, encode_all, &args[k]);
    }
    int mism = 0;
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        mism += args[k].mismatches;
    }
    TU_CHECK(mism == 0, "%d mismatches when encoding from 4 threads at once", mism);

    tu_jsonl_free(corpus, n_corpus);
    tu_jsonl_free(ids_rows, n_ids);
    tok_free(tok);
    TU_CHECK(exact == n_corpus, "%zu of %zu strings differ", n_corpus - exact, n_corpus);
    if (tu_failures) fprintf(stderr, "%d failures\n", tu_failures);
    return tu_failures ? 1 : 0;
}
