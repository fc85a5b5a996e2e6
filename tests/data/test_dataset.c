/*
 * tests/data/test_dataset.c — the JSONL dataset: parsing (prompt / messages, answers
 * kept as written, extra fields byte for byte), every bad-line error naming file and
 * line, skip mode with its count, the documented shuffle (golden orders computed by an
 * independent Python transcription of the algorithm in dataset.h), epochs, and a cursor
 * that resumes to exactly the same prompts.
 * Usage: test_dataset FIXTURES_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/data/dataset.h"
#include "engine/io/fileio.h"
#include "tests/common/check.h"

static char tmpdir[] = "/tmp/rlvr_data_XXXXXX";

static const char *tmp_file(const char *name, const char *text, size_t len) {
    static char path[600];
    char err[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    if (fio_write_file(path, text, len, err, sizeof(err)) != 0) CHECK(0, "%s", err);
    return path;
}

static void test_good(const char *fx) {
    char path[600], err[1024];
    snprintf(path, sizeof(path), "%s/good.jsonl", fx);
    dataset *ds;
    dataset_opts o = dataset_opts_default();
    if (dataset_load(path, &o, &ds, err, sizeof(err)) != 0) {
        CHECK(0, "%s", err);
        return;
    }
    CHECK(dataset_size(ds) == 6, "n %d", dataset_size(ds));
    CHECK(dataset_skipped(ds) == 0 && !strcmp(dataset_first_skip(ds), ""), "no skips");
    const data_example *e = dataset_get(ds, 0);
    CHECK(e->line == 1 && !strcmp(e->prompt, "What is 2+3?") &&
              !strcmp(e->prompt_json, "\"What is 2+3?\"") && !e->is_messages,
          "ex0 prompt");
    CHECK(e->has_answer && !strcmp(e->answer, "5"), "ex0 answer '%s'", e->answer);
    CHECK(!strcmp(e->extra_json, "{\"id\":1}"), "ex0 extra %s", e->extra_json);
    e = dataset_get(ds, 1);
    CHECK(e->line == 3 && e->is_messages && e->prompt == NULL, "ex1 messages");
    CHECK(!strcmp(e->prompt_json, "[{\"role\": \"system\", \"content\": \"Be brief.\"}, "
                                  "{\"role\": \"user\", \"content\": \"Half of 1?\"}]"),
          "ex1 prompt_json %s", e->prompt_json);
    CHECK(!strcmp(e->answer, "0.50"), "number answer kept as written: '%s'", e->answer);
    CHECK(!strcmp(e->extra_json, "{\"meta\":{\"level\": [1, 2], \"tag\": \"fr\\u00e9\"},"
                                 "\"id\":2}"),
          "ex1 extra %s", e->extra_json);
    e = dataset_get(ds, 2);
    CHECK(e->line == 5 &&
              !strcmp(e->prompt, "Nombre premier apr\xc3\xa8s 7 ? \xe2\x80\x94 r\xc3\xa9ponds"),
          "escapes decoded, UTF-8 kept: %s", e->prompt);
    CHECK(!strcmp(e->answer, "11") && !strcmp(e->extra_json, "{\"id\":3,\"extra\":null}"),
          "ex2 %s %s", e->answer, e->extra_json);
    e = dataset_get(ds, 3);
    CHECK(!e->has_answer && !strcmp(e->answer, "") &&
              !strcmp(e->extra_json, "{\"source\":\"hand-written\"}"),
          "ex3 no answer");
    e = dataset_get(ds, 4);
    CHECK(e->line == 7 && !strcmp(e->prompt, "crlf line") && !strcmp(e->extra_json, "{}"),
          "crlf line");
    e = dataset_get(ds, 5);
    CHECK(e->line == 8 && !strcmp(e->answer, "12345678901234567890"),
          "big integer answer kept exactly: %s", e->answer);
    CHECK(dataset_get(ds, 6) == NULL && dataset_get(ds, -1) == NULL, "bounds");
    dataset_free(ds);
}

typedef struct {
    const char *text;
    const char *needle; /* after "FILE:LINE: " */
    int line;
} bad_case;

static void test_bad_lines(void) {
    static const bad_case cases[] = {
        {"{\"prompt\": \"a\"}\n{\"prompt\": \"b\", \n", "invalid JSON at column", 2},
        {"[1, 2]\n",
         "the line is a list; expected a JSON object with \"prompt\" or "
         "\"messages\"",
         1},
        {"\"just text\"\n", "the line is a string", 1},
        {"{\"answer\": \"1\"}\n",
         "missing prompt: expected \"prompt\" (a string) or "
         "\"messages\"",
         1},
        {"{\"prompt\": 3}\n", "\"prompt\" is a number; expected a string", 1},
        {"{\"prompt\": \"\"}\n", "\"prompt\" is empty", 1},
        {"{\"prompt\": \"a\", \"messages\": []}\n", "both \"prompt\" and \"messages\"", 1},
        {"{\"messages\": \"hi\"}\n", "\"messages\" is a string; expected a list", 1},
        {"{\"messages\": []}\n", "\"messages\" is an empty list", 1},
        {"{\"messages\": [3]}\n", "messages[0] is a number; expected an object", 1},
        {"{\"messages\": [{\"role\": \"user\"}]}\n", "messages[0]: missing \"content\"", 1},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 5}]}\n",
         "messages[0].content is a number; expected a string", 1},
        {"{\"messages\": [{\"role\": \"usr\", \"content\": \"x\"}]}\n",
         "messages[0].role \"usr\" is not allowed", 1},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\", \"name\": \"bob\"}]}\n",
         "messages[0].name: unknown message field", 1},
        {"{\"prompt\": \"a\", \"answer\": true}\n",
         "\"answer\" is a boolean; expected a "
         "string or a number",
         1},
        {"{\"prompt\": \"a\", \"answer\": [1]}\n", "\"answer\" is a list", 1},
        {"{\"prompt\": \"a\", \"answer\": null}\n", "\"answer\" is null", 1},
        {"{\"prompt\": \"a\"} {\"prompt\": \"b\"}\n",
         "invalid JSON: text after the object at column 17", 1},
        {"{\"prompt\": \"a\", \"prompt\": \"b\"}\n", "duplicate key \"prompt\"", 1},
        {"\n\n{\"prompt\": \"caf\xc3\"}\n", "invalid UTF-8 at byte 16", 3},
        {"{\"prompt\": \"\xed\xa0\x80\"}\n", "invalid UTF-8", 1}, /* a surrogate */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const char *path = tmp_file("bad.jsonl", cases[i].text, strlen(cases[i].text));
        char want[1200], err[1024];
        snprintf(want, sizeof(want), "%s:%d: %s", path, cases[i].line, cases[i].needle);
        dataset *ds;
        int rc = dataset_load(path, NULL, &ds, err, sizeof(err));
        CHECK(rc != 0 && strstr(err, want), "case %zu: want '%s'\n  got '%s'", i, want,
              rc ? err : "success");
        if (rc == 0) dataset_free(ds);
    }
    /* a NUL byte inside a line */
    const char nul[] = "{\"prompt\": \"a\"}\n{\"prompt\": \"b\0\"}\n";
    const char *path = tmp_file("nul.jsonl", nul, sizeof(nul) - 1);
    char err[1024];
    dataset *ds;
    CHECK(dataset_load(path, NULL, &ds, err, sizeof(err)) != 0 &&
              strstr(err, ":2: contains a NUL byte"),
          "%s", err);
    path = tmp_file("empty.jsonl", "\n  \n", 4);
    CHECK(dataset_load(path, NULL, &ds, err, sizeof(err)) != 0 &&
              strstr(err, "no examples (the file has no non-blank line)"),
          "%s", err);
    CHECK(dataset_load("/nonexistent/x.jsonl", NULL, &ds, err, sizeof(err)) != 0 &&
              strstr(err, "/nonexistent/x.jsonl"),
          "%s", err);
    /* all lines bad in skip mode */
    path = tmp_file("allbad.jsonl", "{\n[\n", 4);
    dataset_opts o = dataset_opts_default();
    o.on_bad_line = DATASET_SKIP_BAD_LINES;
    CHECK(dataset_load(path, &o, &ds, err, sizeof(err)) != 0 &&
              strstr(err, "no usable examples (2 bad lines skipped; first: ") &&
              strstr(err, "allbad.jsonl:1: invalid JSON"),
          "%s", err);
    /* a BOM at the start is accepted */
    path = tmp_file("bom.jsonl", "\xEF\xBB\xBF{\"prompt\": \"a\"}\n", 19);
    if (dataset_load(path, NULL, &ds, err, sizeof(err)) == 0) {
        CHECK(!strcmp(dataset_get(ds, 0)->prompt, "a"), "BOM");
        dataset_free(ds);
    } else {
        CHECK(0, "BOM: %s", err);
    }
}

static void test_skip_and_fields(const char *fx) {
    char path[600], err[1024];
    snprintf(path, sizeof(path), "%s/mixed.jsonl", fx);
    dataset *ds;
    CHECK(dataset_load(path, NULL, &ds, err, sizeof(err)) != 0 &&
              strstr(err, "mixed.jsonl:2: invalid JSON"),
          "stop mode: %s", err);
    dataset_opts o = dataset_opts_default();
    o.on_bad_line = DATASET_SKIP_BAD_LINES;
    if (dataset_load(path, &o, &ds, err, sizeof(err)) != 0) {
        CHECK(0, "%s", err);
        return;
    }
    CHECK(dataset_size(ds) == 3 && dataset_skipped(ds) == 3, "n %d skipped %d",
          dataset_size(ds), dataset_skipped(ds));
    CHECK(strstr(dataset_first_skip(ds), "mixed.jsonl:2: invalid JSON") != NULL, "%s",
          dataset_first_skip(ds));
    CHECK(dataset_get(ds, 0)->line == 1 && dataset_get(ds, 1)->line == 3 &&
              dataset_get(ds, 2)->line == 6,
          "kept lines");
    dataset_free(ds);

    /* other field names */
    const char *text = "{\"question\": \"2*4?\", \"solution\": \"8\", \"prompt\": \"extra\"}\n";
    const char *p = tmp_file("fields.jsonl", text, strlen(text));
    o = dataset_opts_default();
    o.prompt_field = "question";
    o.answer_field = "solution";
    if (dataset_load(p, &o, &ds, err, sizeof(err)) == 0) {
        const data_example *e = dataset_get(ds, 0);
        CHECK(!strcmp(e->prompt, "2*4?") && !strcmp(e->answer, "8") &&
                  !strcmp(e->extra_json, "{\"prompt\":\"extra\"}"),
              "renamed fields");
        dataset_free(ds);
    } else {
        CHECK(0, "%s", err);
    }
    text = "{\"prompt\": \"x\"}\n";
    p = tmp_file("fields2.jsonl", text, strlen(text));
    CHECK(dataset_load(p, &o, &ds, err, sizeof(err)) != 0 &&
              strstr(err, "missing prompt: expected \"question\""),
          "%s", err);
}

// ---------------------------------------------------------------------------------------
// order

static void test_order(void) {
    /* golden orders from a Python transcription of the documented algorithm */
    static const int g42_0[10] = {6, 9, 0, 7, 1, 3, 8, 4, 5, 2};
    static const int g42_1[10] = {9, 3, 1, 2, 8, 4, 0, 7, 5, 6};
    static const int g7_0[10] = {4, 7, 9, 6, 0, 1, 2, 3, 8, 5};
    static const int g12345_3[16] = {8, 12, 13, 6, 11, 1, 14, 5, 9, 2, 3, 0, 7, 15, 4, 10};
    int p[16];
    dataset_epoch_order(42, 0, 1, p, 10);
    CHECK(!memcmp(p, g42_0, sizeof(g42_0)), "seed 42 epoch 0");
    dataset_epoch_order(42, 1, 1, p, 10);
    CHECK(!memcmp(p, g42_1, sizeof(g42_1)), "seed 42 epoch 1");
    dataset_epoch_order(7, 0, 1, p, 10);
    CHECK(!memcmp(p, g7_0, sizeof(g7_0)), "seed 7 epoch 0");
    dataset_epoch_order(12345, 3, 1, p, 16);
    CHECK(!memcmp(p, g12345_3, sizeof(g12345_3)), "seed 12345 epoch 3");
    dataset_epoch_order(42, 5, 0, p, 10);
    for (int i = 0; i < 10; i++)
        CHECK(p[i] == i, "no shuffle: identity");
    /* every permutation of 5 items shows up over many epochs, none far from 1/120 */
    int seen[5 * 5 * 5 * 5 * 5] = {0};
    for (int e = 0; e < 12000; e++) {
        dataset_epoch_order(99, e, 1, p, 5);
        int code = 0;
        for (int i = 0; i < 5; i++)
            code = code * 5 + p[i];
        seen[code]++;
    }
    int distinct = 0, lo = 1 << 30, hi = 0;
    for (int c = 0; c < 3125; c++)
        if (seen[c]) {
            distinct++;
            if (seen[c] < lo) lo = seen[c];
            if (seen[c] > hi) hi = seen[c];
        }
    CHECK(distinct == 120 && lo > 60 && hi < 140, "distinct %d, counts %d..%d", distinct, lo,
          hi);
}

static dataset *load_n(int n, int shuffle, uint64_t seed, int epochs) {
    char *text = malloc((size_t)n * 40 + 1), err[1024];
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += (size_t)sprintf(text + o, "{\"prompt\": \"p%d\"}\n", i);
    const char *path = tmp_file("n.jsonl", text, o);
    free(text);
    dataset_opts opts = dataset_opts_default();
    opts.shuffle = shuffle;
    opts.seed = seed;
    opts.epochs = epochs;
    dataset *ds = NULL;
    if (dataset_load(path, &opts, &ds, err, sizeof(err)) != 0) CHECK(0, "%s", err);
    return ds;
}

static void test_batches_and_cursor(void) {
    char err[1024];
    /* 10 examples, 2 epochs, batches of 4: 4 + 4 + 4 (across the boundary) + 4 + 4 + 0 */
    dataset *ds = load_n(10, 1, 42, 2);
    if (!ds) return;
    int idx[64], all[64], total = 0, got;
    while ((got = dataset_next_batch(ds, 4, idx, err, sizeof(err))) > 0) {
        memcpy(all + total, idx, sizeof(int) * (size_t)got);
        total += got;
    }
    CHECK(got == 0 && total == 20 && dataset_exhausted(ds), "total %d", total);
    static const int g42_0[10] = {6, 9, 0, 7, 1, 3, 8, 4, 5, 2};
    static const int g42_1[10] = {9, 3, 1, 2, 8, 4, 0, 7, 5, 6};
    CHECK(!memcmp(all, g42_0, sizeof(g42_0)) && !memcmp(all + 10, g42_1, sizeof(g42_1)),
          "batches follow the epoch orders");
    dataset_free(ds);

    /* the same seed twice gives the same stream; another seed another one */
    dataset *a = load_n(37, 1, 5, 0), *b = load_n(37, 1, 5, 0), *c = load_n(37, 1, 6, 0);
    int ia[200], ib[200], ic[200];
    dataset_next_batch(a, 200, ia, err, sizeof(err));
    dataset_next_batch(b, 200, ib, err, sizeof(err));
    dataset_next_batch(c, 200, ic, err, sizeof(err));
    CHECK(!memcmp(ia, ib, sizeof(ia)), "same seed, same order");
    CHECK(memcmp(ia, ic, sizeof(ia)) != 0, "other seed, other order");
    CHECK(!dataset_exhausted(a), "no epoch limit");
    dataset_free(a), dataset_free(b), dataset_free(c);

    /* resume: 7 batches of 5 uninterrupted vs 3 + checkpoint + 4 after a reload */
    dataset *u = load_n(13, 1, 2024, 0);
    int ref[35], res[35];
    for (int s = 0; s < 7; s++)
        dataset_next_batch(u, 5, ref + 5 * s, err, sizeof(err));
    dataset *r = load_n(13, 1, 2024, 0);
    for (int s = 0; s < 3; s++)
        dataset_next_batch(r, 5, res + 5 * s, err, sizeof(err));
    dataset_cursor cur = dataset_get_cursor(r);
    CHECK(cur.epoch == 1 && cur.position == 2 && cur.n_examples == 13, "cursor %ld %ld",
          (long)cur.epoch, (long)cur.position);
    char *json = dataset_cursor_to_json(&cur);
    dataset_free(r);
    r = load_n(13, 1, 2024, 0);
    dataset_cursor back;
    CHECK(dataset_cursor_from_json(json, "ckpt/data.json", &back, err, sizeof(err)) == 0, "%s",
          err);
    CHECK(dataset_set_cursor(r, &back, err, sizeof(err)) == 0, "%s", err);
    for (int s = 3; s < 7; s++)
        dataset_next_batch(r, 5, res + 5 * s, err, sizeof(err));
    CHECK(!memcmp(ref, res, sizeof(ref)), "resumed run sees the same prompts");
    free(json);

    /* restoring on a different file is refused */
    dataset *other = load_n(14, 1, 2024, 0);
    CHECK(dataset_set_cursor(other, &back, err, sizeof(err)) != 0 &&
              strstr(err, "the data differs from the checkpoint's (checkpoint: 13 examples"),
          "%s", err);
    dataset_free(other);
    dataset_cursor bad = back;
    bad.position = 13;
    CHECK(dataset_set_cursor(r, &bad, err, sizeof(err)) != 0 &&
              strstr(err, "cursor (epoch 1, position 13) is out of range"),
          "%s", err);
    CHECK(dataset_cursor_from_json("{\"epoch\": 1}", "ckpt/data.json", &bad, err,
                                   sizeof(err)) != 0 &&
              strstr(err, "ckpt/data.json: data cursor \"position\" is missing"),
          "%s", err);
    CHECK(dataset_cursor_from_json("{\"epoch\":0,\"position\":0,\"n_examples\":1,"
                                   "\"fingerprint\":\"-00000000000000f\"}",
                                   "c", &bad, err, sizeof(err)) != 0 &&
              strstr(err, "not 16 hex digits"),
          "%s", err);
    CHECK(dataset_cursor_from_json("nope", "c", &bad, err, sizeof(err)) != 0 &&
              strstr(err, "c: data cursor is not a JSON object"),
          "%s", err);
    CHECK(dataset_next_batch(r, -1, idx, err, sizeof(err)) == -1 &&
              strstr(err, "batch size -1"),
          "%s", err);
    dataset_free(r);
    dataset_free(u);

    /* no shuffle: file order, epochs repeat it */
    ds = load_n(3, 0, 1, 2);
    got = dataset_next_batch(ds, 10, idx, err, sizeof(err));
    CHECK(got == 6 && idx[0] == 0 && idx[2] == 2 && idx[3] == 0 && idx[5] == 2, "file order");
    dataset_free(ds);
}

/* Every prefix of the good fixture, and byte corruptions of it, load or fail with a
 * file:line message in both modes; never a crash (run under ASan). */
static void test_robustness(const char *fx) {
    char path[600], err[1024];
    snprintf(path, sizeof(path), "%s/good.jsonl", fx);
    char *text;
    size_t n;
    if (fio_read_file(path, &text, &n, err, sizeof(err)) != 0) {
        CHECK(0, "%s", err);
        return;
    }
    char *buf = malloc(n + 1);
    static const char subst[] = "\"{}[],:0\\\x80\xff";
    for (size_t k = 0; k < 2 * n; k++) {
        size_t len = n;
        memcpy(buf, text, n);
        if (k < n)
            len = k; /* a prefix */
        else
            buf[k - n] = subst[(k - n) % (sizeof(subst) - 1)]; /* one byte changed */
        const char *p = tmp_file("r.jsonl", buf, len);
        for (int mode = 0; mode < 2; mode++) {
            dataset_opts o = dataset_opts_default();
            o.on_bad_line = mode;
            dataset *ds;
            if (dataset_load(p, &o, &ds, err, sizeof(err)) == 0) {
                for (int i = 0; i < dataset_size(ds); i++)
                    CHECK(dataset_get(ds, i)->prompt_json && dataset_get(ds, i)->extra_json,
                          "complete example");
                dataset_free(ds);
            } else {
                CHECK(strstr(err, p) == err, "message names the file: %s", err);
            }
        }
    }
    free(buf);
    free(text);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_good(argv[1]);
    test_bad_lines();
    test_skip_and_fields(argv[1]);
    test_order();
    test_batches_and_cursor();
    test_robustness(argv[1]);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", tmpdir);
    if (check_failures) {
        fprintf(stderr, "%d check(s) failed\n", check_failures);
        return 1;
    }
    printf("dataset: all checks passed\n");
    return 0;
}
