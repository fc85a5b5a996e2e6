/*
 * tests/io/test_st_bad_input.c — every malformed safetensors file or model directory
 * gets a clear error (the test asserts on a substring of the message) and no crash;
 * run under AddressSanitizer in CI. Ends with a seeded mutation loop over a valid file.
 * Usage: test_st_bad_input WORKDIR
 */
#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "tests/common/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static char work[1024];

/* Writes u64 length (hlen_field, or the real header length when UINT64_MAX), the header
 * text, then data_len bytes of data. Plain stdio: these are scratch files. */
static const char *raw_file(const char *name, const char *header, uint64_t hlen_field,
                            size_t data_len) {
    static char path[1200];
    snprintf(path, sizeof path, "%s/%s", work, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    uint64_t n = hlen_field == UINT64_MAX ? strlen(header) : hlen_field;
    for (int i = 0; i < 8; i++)
        fputc((int)((n >> (8 * i)) & 0xff), f);
    fputs(header, f);
    for (size_t i = 0; i < data_len; i++)
        fputc((int)(i & 0xff), f);
    fclose(f);
    return path;
}

/* Opens path, expecting failure with substr in the message and a NULL set. */
static void expect_bad(const char *path, const char *substr, int line) {
    char err[512] = "";
    st_set *s = (st_set *)1;
    int rc = st_open_file(path, &s, err, sizeof err);
    if (rc != -1 || s != NULL || !strstr(err, substr) || !strstr(err, work)) {
        fprintf(stderr,
                "line %d: %s: expected error containing \"%s\" (and the path), got "
                "rc=%d err=\"%s\"\n",
                line, path, substr, rc, err);
        check_failures++;
        if (rc == 0 && s) st_close(s);
    }
}
#define EXPECT_BAD(path, substr) expect_bad((path), (substr), __LINE__)

#define T(name, dt, shape, b, e)                                                               \
    "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_files(void) {
    char err[512] = "";
    st_set *s = NULL;
    /* a valid handcrafted file: entries out of offset order, zero-size tensors, padding */
    const char *ok = raw_file(
        "ok.safetensors",
        "{" T("b", "F32", "[2]", 8, 16) "," T("a", "F32", "[2]", 0, 8) "," T(
            "z", "BF16", "[0,3]", 16, 16) "," T("y", "I8", "[0]", 16,
                                                16) ",\"__metadata__\":{\"format\":\"pt\"}}   ",
        UINT64_MAX, 16);
    CHECK_OK(st_open_file(ok, &s, err, sizeof err), err);
    if (s) {
        CHECK(st_count(s) == 4 && st_find(s, "a") && st_find(s, "b") && st_find(s, "y"));
        CHECK((const unsigned char *)st_find(s, "b")->data ==
              (const unsigned char *)st_find(s, "a")->data + 8);
        st_close(s);
    }

    /* sizes and the header length */
    EXPECT_BAD(raw_file("hlen0.safetensors", "", 0, 0), "header is not a JSON object");
    {
        char path[1200];
        snprintf(path, sizeof path, "%s/five.safetensors", work);
        CHECK_OK(fio_write_file(path, "\x10\0\0\0\0", 5, err, sizeof err), err);
        EXPECT_BAD(path, "5 bytes, too short for the 8-byte header length");
        CHECK_OK(fio_write_file(path, "", 0, err, sizeof err), err);
        EXPECT_BAD(path, "0 bytes, too short");
    }
    EXPECT_BAD(raw_file("hlen_past_end.safetensors", "{}", 1000, 0),
               "header length 1000 runs past the end of the file");
    EXPECT_BAD(raw_file("hlen_huge.safetensors", "{}", 100000001, 0),
               "header length 100000001 exceeds the 100 MB limit");
    EXPECT_BAD(raw_file("hlen_max.safetensors", "{}", UINT64_MAX - 1, 0), "exceeds the 100 MB");

    /* truncated: a valid file cut short */
    {
        static float v[64];
        st_write_tensor wt = {.name = "w", .ndim = 2, .shape = {8, 8}, .data = v};
        char path[1200];
        snprintf(path, sizeof path, "%s/trunc.safetensors", work);
        CHECK_OK(st_write_file(path, &wt, 1, ST_F32, err, sizeof err), err);
        char *raw;
        size_t len;
        CHECK_OK(fio_read_file(path, &raw, &len, err, sizeof err), err);
        uint64_t hlen = (unsigned char)raw[0] | (uint64_t)(unsigned char)raw[1] << 8;
        free(raw);
        CHECK(truncate(path, (off_t)(8 + hlen + 100)) == 0);
        EXPECT_BAD(path, "tensor 'w' data_offsets end 256 is past the end of the data section "
                         "(100 bytes; truncated file?)");
        CHECK(truncate(path, (off_t)(8 + hlen / 2)) == 0);
        EXPECT_BAD(path, "runs past the end of the file");
    }

    /* the header itself */
    EXPECT_BAD(raw_file("array.safetensors", "[1,2]", UINT64_MAX, 0),
               "header is not a JSON object");
    EXPECT_BAD(raw_file("string.safetensors", "\"abc\"", UINT64_MAX, 0), "not a JSON object");
    EXPECT_BAD(raw_file("blank.safetensors", "        ", UINT64_MAX, 0), "not a JSON object");
    EXPECT_BAD(raw_file("badjson.safetensors", "{\"a\":", UINT64_MAX, 0), "not valid JSON");
    EXPECT_BAD(raw_file("after.safetensors", "{} x", UINT64_MAX, 0),
               "text after the JSON object");
    EXPECT_BAD(raw_file("utf8.safetensors", "{\"\xc3\x28\":1}", UINT64_MAX, 0),
               "not valid UTF-8");
    EXPECT_BAD(raw_file("entry_not_obj.safetensors", "{\"a\":5}", UINT64_MAX, 0),
               "tensor 'a': expected an object");
    EXPECT_BAD(raw_file("meta_num.safetensors", "{\"__metadata__\":{\"k\":1}}", UINT64_MAX, 0),
               "'__metadata__' key 'k' is not a string");
    EXPECT_BAD(raw_file("meta_arr.safetensors", "{\"__metadata__\":[]}", UINT64_MAX, 0),
               "'__metadata__' must be an object of strings");

    /* the fields of one entry */
    EXPECT_BAD(raw_file("dtype.safetensors", "{" T("w", "Q4", "[2]", 0, 8) "}", UINT64_MAX, 8),
               "tensor 'w': unknown dtype 'Q4'");
    EXPECT_BAD(raw_file("nodtype.safetensors", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}",
                        UINT64_MAX, 8),
               "tensor 'w': field 'dtype' missing");
    EXPECT_BAD(
        raw_file("negdim.safetensors", "{" T("w", "F32", "[-2]", 0, 8) "}", UINT64_MAX, 8),
        "tensor 'w': shape[0] is not a non-negative integer");
    EXPECT_BAD(
        raw_file("fracdim.safetensors", "{" T("w", "F32", "[2,1.5]", 0, 8) "}", UINT64_MAX, 8),
        "shape[1] is not a non-negative integer");
    EXPECT_BAD(raw_file("ndim.safetensors", "{" T("w", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}",
                        UINT64_MAX, 4),
               "shape has 9 dimensions");
    EXPECT_BAD(raw_file("offs.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}",
                        UINT64_MAX, 8),
               "tensor 'w': field 'data_offsets' must be [begin, end]");
    EXPECT_BAD(
        raw_file("backwards.safetensors", "{" T("w", "F32", "[2]", 8, 0) "}", UINT64_MAX, 8),
        "end before begin");
    EXPECT_BAD(
        raw_file("nbytes.safetensors", "{" T("w", "F32", "[3]", 0, 8) "}", UINT64_MAX, 8),
        "tensor 'w': data_offsets [0, 8] hold 8 bytes but shape x dtype F32 needs 12 "
        "bytes");
    EXPECT_BAD(raw_file("overflow.safetensors",
                        "{" T("w", "F32", "[4294967296,4294967296,4294967296]", 0, 8) "}",
                        UINT64_MAX, 8),
               "tensor 'w': shape product times dtype size");
    EXPECT_BAD(raw_file("overflow2.safetensors",
                        "{" T("w", "F64", "[2147483648,2147483648,2]", 0, 8) "}", UINT64_MAX,
                        8),
               "overflows 64 bits");

    /* the offsets as a whole */
    EXPECT_BAD(raw_file("dup.safetensors",
                        "{" T("a", "F32", "[2]", 0, 8) "," T("a", "F32", "[2]", 8, 16) "}",
                        UINT64_MAX, 16),
               "duplicate tensor name 'a'");
    EXPECT_BAD(raw_file("dup_same.safetensors",
                        "{" T("a", "F32", "[2]", 0, 8) "," T("a", "F32", "[2]", 0, 8) "}",
                        UINT64_MAX, 8),
               "duplicate tensor name 'a'");
    EXPECT_BAD(raw_file("dupmeta.safetensors", "{\"__metadata__\":{},\"__metadata__\":{}}",
                        UINT64_MAX, 0),
               "duplicate key '__metadata__'");
    EXPECT_BAD(raw_file("overlap.safetensors",
                        "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 4, 12) "}",
                        UINT64_MAX, 12),
               "tensor 'b' data_offsets [4, 12] overlap tensor 'a'");
    EXPECT_BAD(raw_file("gap.safetensors",
                        "{" T("a", "F32", "[2]", 0, 8) "," T("b", "F32", "[2]", 12, 20) "}",
                        UINT64_MAX, 20),
               "gap of 4 bytes before tensor 'b'");
    EXPECT_BAD(
        raw_file("start.safetensors", "{" T("a", "F32", "[2]", 4, 12) "}", UINT64_MAX, 12),
        "gap of 4 bytes before tensor 'a'");
    EXPECT_BAD(
        raw_file("trailing.safetensors", "{" T("a", "F32", "[2]", 0, 8) "}", UINT64_MAX, 12),
        "4 trailing bytes after the last tensor");
    EXPECT_BAD(raw_file("trailing_empty.safetensors", "{}", UINT64_MAX, 3), "3 trailing bytes");
    EXPECT_BAD(
        raw_file("short.safetensors", "{" T("a", "F32", "[4]", 0, 16) "}", UINT64_MAX, 12),
        "tensor 'a' data_offsets end 16 is past the end of the data section (12 bytes");

    /* not a file at all */
    {
        char path[1200];
        snprintf(path, sizeof path, "%s/missing.safetensors", work);
        EXPECT_BAD(path, "cannot open");
        EXPECT_BAD(work, "not a regular file");
    }
}

/* ---- sharded directories ------------------------------------------------------------- */
static void write_text(const char *dir, const char *name, const char *text) {
    char path[1300], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK_OK(fio_write_file(path, text, strlen(text), err, sizeof err), err);
}

static void expect_dir_bad(const char *dir, const char *substr, int line) {
    char err[512] = "";
    st_set *s = (st_set *)1;
    int rc = st_open_dir(dir, &s, err, sizeof err);
    if (rc != -1 || s != NULL || !strstr(err, substr)) {
        fprintf(stderr, "line %d: %s: expected error containing \"%s\", got rc=%d err=\"%s\"\n",
                line, dir, substr, rc, err);
        check_failures++;
        if (rc == 0 && s) st_close(s);
    }
}
#define EXPECT_DIR_BAD(dir, substr) expect_dir_bad((dir), (substr), __LINE__)

static void test_dirs(void) {
    char err[512] = "", dir[1100];
    static float v[6] = {1, 2, 3, 4, 5, 6};
    st_write_tensor ts[3] = {{.name = "a", .ndim = 1, .shape = {2}, .data = v},
                             {.name = "b", .ndim = 1, .shape = {2}, .data = v + 2},
                             {.name = "c", .ndim = 1, .shape = {2}, .data = v + 4}};
    snprintf(dir, sizeof dir, "%s/shards", work);
    CHECK_OK(st_write_dir(dir, ts, 3, ST_F32, 8, err, sizeof err), err); /* 3 shards */
    st_set *s = NULL;
    CHECK_OK(st_open_dir(dir, &s, err, sizeof err), err);
    CHECK(s && st_count(s) == 3);
    st_close(s);

    const char *S1 = "model-00001-of-00003.safetensors",
               *S2 = "model-00002-of-00003.safetensors";
    char idx[1024];
    snprintf(idx, sizeof idx,
             "{\"weight_map\":{\"a\":\"%s\",\"b\":\"%s\",\"c\":\"model-00009-of-"
             "00009.safetensors\"}}",
             S1, S2);
    write_text(dir, "model.safetensors.index.json", idx);
    EXPECT_DIR_BAD(dir, "names shard 'model-00009-of-00009.safetensors', but");
    snprintf(idx, sizeof idx, "{\"weight_map\":{\"a\":\"%s\",\"b\":\"%s\",\"zz\":\"%s\"}}", S1,
             S2, S2);
    write_text(dir, "model.safetensors.index.json", idx);
    EXPECT_DIR_BAD(dir,
                   "weight_map puts tensor 'zz' in shard 'model-00002-of-00003.safetensors', "
                   "but that shard has no such tensor");
    snprintf(idx, sizeof idx, "{\"weight_map\":{\"a\":\"%s\",\"b\":\"%s\"}}", S2, S1);
    write_text(dir, "model.safetensors.index.json", idx);
    EXPECT_DIR_BAD(dir,
                   "weight_map puts tensor 'a' in shard 'model-00002-of-00003.safetensors', "
                   "but it is in");
    write_text(dir, "model.safetensors.index.json", "{\"metadata\":{}}");
    EXPECT_DIR_BAD(dir, "field 'weight_map' missing");
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\":{\"a\":\"../x\"}}");
    EXPECT_DIR_BAD(dir, "weight_map['a'] must be a shard file name");
    write_text(dir, "model.safetensors.index.json", "[]");
    EXPECT_DIR_BAD(dir, "model.safetensors.index.json: not a JSON object");
    /* a tensor present in two shards */
    snprintf(idx, sizeof idx, "{\"weight_map\":{\"a\":\"%s\",\"b\":\"%s\"}}", S1, S2);
    write_text(dir, "model.safetensors.index.json", idx);
    {
        char p[1300];
        snprintf(p, sizeof p, "%s/%s", dir, S2);
        st_write_tensor two[2] = {ts[1], ts[0]};
        CHECK_OK(st_write_file(p, two, 2, ST_F32, err, sizeof err), err);
    }
    EXPECT_DIR_BAD(dir, "tensor 'a' appears in two files");
    /* a shard that is itself broken names the shard */
    {
        char p[1300];
        snprintf(p, sizeof p, "%s/%s", dir, S2);
        CHECK(truncate(p, 12) == 0);
    }
    EXPECT_DIR_BAD(dir, "model-00002-of-00003.safetensors: header length");

    char empty[1100];
    snprintf(empty, sizeof empty, "%s/empty_dir", work);
    CHECK_OK(fio_mkdirs(empty, err, sizeof err), err);
    EXPECT_DIR_BAD(empty, "no model.safetensors or model.safetensors.index.json");
}

/* ---- bad arguments to the writer ----------------------------------------------------- */
static void test_writer_args(void) {
    char err[512] = "", path[1100];
    snprintf(path, sizeof path, "%s/w.safetensors", work);
    static float v[4];
    st_write_tensor ok = {.name = "a", .ndim = 1, .shape = {4}, .data = v};
    CHECK_ERR(st_write_file(path, &ok, 1, ST_I64, err, sizeof err), -1, err,
              "cannot write dtype I64 (expected F32, BF16 or F16)");
    st_write_tensor dup[2] = {ok, ok};
    CHECK_ERR(st_write_file(path, dup, 2, ST_F32, err, sizeof err), -1, err,
              "tensor name 'a' given twice");
    CHECK_ERR(st_write_dir(path, dup, 2, ST_F32, 0, err, sizeof err), -1, err,
              "tensor name 'a' given twice");
    st_write_tensor neg = {.name = "n", .ndim = 2, .shape = {4, -1}, .data = v};
    CHECK_ERR(st_write_file(path, &neg, 1, ST_BF16, err, sizeof err), -1, err,
              "tensor 'n': shape[1] = -1 is negative");
    st_write_tensor meta = {.name = "__metadata__", .ndim = 1, .shape = {4}, .data = v};
    CHECK_ERR(st_write_file(path, &meta, 1, ST_F32, err, sizeof err), -1, err, "reserved");
    CHECK(access(path, F_OK) != 0); /* nothing written on error */
}

/* ---- seeded mutations of a valid file: never crash, always a verdict ------------------ */
static void test_mutations(void) {
    char err[512] = "", path[1100], mpath[1100];
    snprintf(path, sizeof path, "%s/base.safetensors", work);
    snprintf(mpath, sizeof mpath, "%s/mutant.safetensors", work);
    static float v[40];
    for (int i = 0; i < 40; i++)
        v[i] = (float)i;
    st_write_tensor ts[3] = {{.name = "x.weight", .ndim = 2, .shape = {4, 5}, .data = v},
                             {.name = "x.bias", .ndim = 1, .shape = {5}, .data = v + 20},
                             {.name = "y", .ndim = 3, .shape = {1, 3, 5}, .data = v + 25}};
    CHECK_OK(st_write_file(path, ts, 3, ST_BF16, err, sizeof err), err);
    char *base;
    size_t len;
    CHECK_OK(fio_read_file(path, &base, &len, err, sizeof err), err);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int opened = 0, rejected = 0;
    unsigned char *m = malloc(len + 16);
    for (int it = 0; it < 3000; it++) {
        memcpy(m, base, len);
        size_t mlen = len;
        int edits = 1 + it % 3;
        for (int e = 0; e < edits; e++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)((rng >> 33) % len);
            int kind = (int)((rng >> 20) % 4);
            if (kind == 0)
                m[pos] ^= (unsigned char)(1u << ((rng >> 8) % 8));
            else if (kind == 1)
                m[pos] = "{}[],:\"0123456789-.e "[(rng >> 10) % 21];
            else if (kind == 2)
                mlen = pos; /* truncate */
            else
                mlen = len + (size_t)((rng >> 12) % 16); /* extend */
        }
        FILE *f = fopen(mpath, "wb");
        if (!f) break;
        fwrite(m, 1, mlen, f);
        fclose(f);
        st_set *s = NULL;
        err[0] = '\0';
        if (st_open_file(mpath, &s, err, sizeof err) == 0) {
            opened++;
            /* whatever was accepted is internally consistent */
            for (int i = 0; i < st_count(s); i++) {
                const st_tensor *t = st_get(s, i);
                volatile unsigned char sink = 0;
                for (size_t b = 0; b < t->nbytes; b++)
                    sink ^= ((const unsigned char *)t->data)[b];
                (void)sink;
            }
            st_close(s);
        } else {
            rejected++;
            CHECK(strstr(err, "mutant.safetensors") != NULL);
        }
    }
    free(m);
    free(base);
    CHECK(rejected > 1000);
    printf("mutations: %d opened (harmless edits), %d rejected with a message\n", opened,
           rejected);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_st_bad_input WORKDIR\n");
        return 2;
    }
    char err[512] = "";
    snprintf(work, sizeof work, "%s/bad_input", argv[1]);
    CHECK_OK(fio_mkdirs(work, err, sizeof err), err);
    test_files();
    test_dirs();
    test_writer_args();
    test_mutations();
    if (check_failures)
        fprintf(stderr, "test_st_bad_input: %d failures\n", check_failures);
    else
        printf("test_st_bad_input: ok\n");
    return check_failures ? 1 : 0;
}
