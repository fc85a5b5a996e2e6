/*
 * tests/io/test_st_roundtrip.c — safetensors write -> read round trips in F32, BF16 and
 * F16 (single file and sharded directory), the fp32 -> bf16/f16 rounding against
 * hand-computed bit patterns, and a file written by the reference Python library
 * (committed fixture).
 * Usage: test_st_roundtrip WORKDIR FIXTURE_DIR
 */
#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "tests/common/check.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- scalar conversions against values worked out by hand -------------------------- */
static void test_conversions(void) {
    /* bf16 keeps the top 16 bits of the f32 pattern, rounding the low 16 to even. */
    CHECK(st_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(st_f32_to_bf16(-2.5f) == 0xc020);
    CHECK(st_f32_to_bf16(from_bits(0x3f808000)) == 0x3f80); /* 1 + 2^-8: tie -> even 0x3f80 */
    CHECK(st_f32_to_bf16(from_bits(0x3f818000)) == 0x3f82); /* 1 + 3*2^-8: tie -> even */
    CHECK(st_f32_to_bf16(from_bits(0x3f808001)) == 0x3f81); /* just above the tie */
    CHECK(st_f32_to_bf16(from_bits(0x3f807fff)) == 0x3f80); /* just below the tie */
    CHECK(st_f32_to_bf16(3.140625f) == 0x4049);             /* exact in bf16 */
    CHECK(st_f32_to_bf16(0.1f) == 0x3dcd);                  /* 0x3dcccccd rounds up */
    CHECK(st_f32_to_bf16(from_bits(0x7f7fffff)) == 0x7f80); /* FLT_MAX rounds to inf */
    CHECK(st_f32_to_bf16(INFINITY) == 0x7f80);
    CHECK(st_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(st_f32_to_bf16(-0.0f) == 0x8000);
    CHECK(st_f32_to_bf16(from_bits(0x00000001)) == 0x0000); /* tiny subnormal -> 0 */
    /* NaN stays NaN: a signalling NaN with only low payload bits must not become inf */
    uint16_t nb = st_f32_to_bf16(from_bits(0x7f800001));
    CHECK((nb & 0x7f80) == 0x7f80 && (nb & 0x7f) != 0);
    nb = st_f32_to_bf16(from_bits(0xffc00000));
    CHECK(nb == 0xffc0);
    CHECK(st_bf16_to_f32(0x3f80) == 1.0f && st_bf16_to_f32(0xc020) == -2.5f);
    CHECK(isnan(st_bf16_to_f32(0x7fc1)));

    /* f16: 1 sign, 5 exponent (bias 15), 10 mantissa bits */
    CHECK(st_f32_to_f16(1.0f) == 0x3c00);
    CHECK(st_f32_to_f16(-2.0f) == 0xc000);
    CHECK(st_f32_to_f16(65504.0f) == 0x7bff); /* largest finite */
    CHECK(st_f32_to_f16(65519.0f) == 0x7bff); /* below the tie */
    CHECK(st_f32_to_f16(65520.0f) == 0x7c00); /* tie with odd 0x7bff -> inf */
    CHECK(st_f32_to_f16(1e6f) == 0x7c00);
    CHECK(st_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK(st_f32_to_f16(ldexpf(1.0f, -14)) == 0x0400);     /* smallest normal */
    CHECK(st_f32_to_f16(ldexpf(1.0f, -24)) == 0x0001);     /* smallest subnormal */
    CHECK(st_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000);     /* half of it: tie -> even 0 */
    CHECK(st_f32_to_f16(ldexpf(1.5f, -25)) == 0x0001);     /* above the tie */
    CHECK(st_f32_to_f16(ldexpf(3.0f, -25)) == 0x0002);     /* 1.5 units: tie -> even 2 */
    CHECK(st_f32_to_f16(ldexpf(1023.0f, -24)) == 0x03ff);  /* largest subnormal */
    CHECK(st_f32_to_f16(ldexpf(2047.0f, -25)) == 0x0400);  /* rounds up into the normals */
    CHECK(st_f32_to_f16(from_bits(0x3f801000)) == 0x3c00); /* 1 + 2^-11: tie -> even */
    CHECK(st_f32_to_f16(from_bits(0x3f803000)) == 0x3c02); /* 1 + 3*2^-11: tie -> even */
    CHECK(st_f32_to_f16(0.1f) == 0x2e66);
    CHECK(st_f32_to_f16(-0.0f) == 0x8000);
    uint16_t nh = st_f32_to_f16(from_bits(0x7f800001));
    CHECK((nh & 0x7c00) == 0x7c00 && (nh & 0x3ff) != 0);
    CHECK(st_f16_to_f32(0x3c00) == 1.0f && st_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(st_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    CHECK(st_f16_to_f32(0x8000) == 0.0f && signbit(st_f16_to_f32(0x8000)));
    CHECK(isinf(st_f16_to_f32(0xfc00)) && st_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(st_f16_to_f32(0x7e00)));

    /* every f16 and bf16 value survives f16 -> f32 -> f16 bit for bit (NaN: stays NaN) */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = st_f16_to_f32((uint16_t)h);
        if (isnan(f))
            bad += !isnan(st_f16_to_f32(st_f32_to_f16(f)));
        else
            bad += st_f32_to_f16(f) != h;
        float g = st_bf16_to_f32((uint16_t)h);
        if (isnan(g))
            bad += !isnan(st_bf16_to_f32(st_f32_to_bf16(g)));
        else
            bad += st_f32_to_bf16(g) != h;
    }
    CHECK(bad == 0);
}

/* ---- single-file round trip ---------------------------------------------------------- */
#define NA (3 * 5 * 7)
#define NB 11

static float expected(float x, st_dtype dt) {
    if (dt == ST_BF16) return st_bf16_to_f32(st_f32_to_bf16(x));
    if (dt == ST_F16) return st_f16_to_f32(st_f32_to_f16(x));
    return x;
}

static int same_float(float a, float b) {
    return to_bits(a) == to_bits(b) || (isnan(a) && isnan(b));
}

static void test_file_roundtrip(const char *work, st_dtype dt) {
    static float a[NA], b[NB], sc[1] = {-3.25f};
    for (int i = 0; i < NA; i++)
        a[i] = sinf(0.37f * (float)i) * 10.0f + 1e-3f * (float)i;
    /* hand-picked values: their bf16 bit patterns are asserted below */
    const float hand[NB] = {1.0f,
                            from_bits(0x3f808000),
                            from_bits(0x3f818000),
                            from_bits(0x3f808001),
                            -2.5f,
                            0.1f,
                            from_bits(0x7f800001),
                            INFINITY,
                            -0.0f,
                            65520.0f,
                            ldexpf(1.0f, -24)};
    memcpy(b, hand, sizeof hand);
    st_write_tensor ts[4] = {
        {.name = "model.layers.0.mlp.up_proj.weight", .ndim = 3, .shape = {3, 5, 7}, .data = a},
        {.name = "b \"quoted\" \\ name", .ndim = 1, .shape = {NB}, .data = b},
        {.name = "scalar", .ndim = 0, .data = sc},
        {.name = "empty", .ndim = 2, .shape = {0, 9}, .data = NULL},
    };
    char err[512] = "", path[1024];
    snprintf(path, sizeof path, "%s/rt_%s.safetensors", work, st_dtype_name(dt));
    CHECK_OK(st_write_file(path, ts, 4, dt, err, sizeof err), err);

    /* raw layout: header length multiple of 8, metadata first, data right after */
    char *raw = NULL;
    size_t len = 0;
    CHECK_OK(fio_read_file(path, &raw, &len, err, sizeof err), err);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | (unsigned char)raw[i];
    size_t esz = st_dtype_size(dt);
    CHECK(hlen % 8 == 0);
    CHECK(strncmp(raw + 8, "{\"__metadata__\":{\"format\":\"pt\"}", 31) == 0);
    CHECK(len == 8 + hlen + (NA + NB + 1) * esz);
    if (dt == ST_BF16 && len == 8 + hlen + (NA + NB + 1) * esz) {
        const uint16_t want[NB] = {0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc020, 0x3dcd,
                                   0,      0x7f80, 0x8000, 0x4780, 0x3380};
        for (int i = 0; i < NB; i++) {
            uint16_t got;
            memcpy(&got, raw + 8 + hlen + NA * 2 + 2 * i, 2);
            if (i == 6)
                CHECK((got & 0x7f80) == 0x7f80 && (got & 0x7f)); /* NaN */
            else
                CHECK(got == want[i]);
        }
    }
    free(raw);

    st_set *s = NULL;
    CHECK_OK(st_open_file(path, &s, err, sizeof err), err);
    if (!s) return;
    CHECK(st_count(s) == 4);
    CHECK(st_metadata(s, "format") && strcmp(st_metadata(s, "format"), "pt") == 0);
    for (int k = 0; k < 4; k++) {
        const st_tensor *t = st_find(s, ts[k].name);
        CHECK(t && t == st_get(s, k) && t->dtype == dt && t->ndim == ts[k].ndim);
        if (!t) continue;
        CHECK(strcmp(t->file, path) == 0);
        int64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == ts[k].shape[d]);
            numel *= ts[k].shape[d];
        }
        CHECK(t->numel == numel && t->nbytes == (size_t)numel * esz);
        float *got = malloc(sizeof(float) * (size_t)(numel + 1));
        CHECK_OK(st_to_f32(t, got, err, sizeof err), err);
        int bad = 0;
        for (int64_t i = 0; i < numel; i++)
            bad += !same_float(got[i], expected(ts[k].data[i], dt));
        CHECK(bad == 0);
        free(got);
    }
    CHECK(st_find(s, "missing") == NULL && st_get(s, 4) == NULL && st_get(s, -1) == NULL);
    /* f32 source 0.1 read back as bf16 is 0.10009765625 exactly */
    if (dt == ST_BF16) {
        float got[NB];
        CHECK_OK(st_to_f32(st_find(s, ts[1].name), got, err, sizeof err), err);
        CHECK(got[5] == 0.10009765625f && got[9] == 65536.0f && got[10] == ldexpf(1.0f, -24));
    }
    st_close(s);
}

/* ---- sharded directory round trip --------------------------------------------------- */
static void test_dir_roundtrip(const char *work) {
    enum { NT = 7 };
    static float data[NT][64];
    st_write_tensor ts[NT];
    char names[NT][32];
    for (int k = 0; k < NT; k++) {
        for (int i = 0; i < 64; i++)
            data[k][i] = (float)(k * 100 + i) * 0.5f;
        snprintf(names[k], sizeof names[k], "layer.%d.weight", k);
        ts[k] = (st_write_tensor){
            .name = names[k], .ndim = 2, .shape = {8, 8 - (k % 3)}, .data = data[k]};
    }
    char err[512] = "", dir[1024], p[1200];
    snprintf(dir, sizeof dir, "%s/sharded_model", work);
    /* bf16: tensors of 128, 112, 96 bytes; 250-byte shards hold two each -> 4 shards */
    CHECK_OK(st_write_dir(dir, ts, NT, ST_BF16, 250, err, sizeof err), err);
    snprintf(p, sizeof p, "%s/model-00004-of-00004.safetensors", dir);
    CHECK(access(p, F_OK) == 0);
    snprintf(p, sizeof p, "%s/model-00005-of-00005.safetensors", dir);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    char *idx = NULL;
    size_t len;
    CHECK_OK(fio_read_file(p, &idx, &len, err, sizeof err), err);
    /* total_size = sum of tensor bytes: 8 * (8+7+6+8+7+6+8) * 2 */
    CHECK(idx && strstr(idx, "\"total_size\": 800"));
    CHECK(idx && strstr(idx, "\"layer.6.weight\": \"model-00004-of-00004.safetensors\""));
    free(idx);

    st_set *s = NULL;
    CHECK_OK(st_open_dir(dir, &s, err, sizeof err), err);
    if (s) {
        CHECK(st_count(s) == NT);
        for (int k = 0; k < NT; k++) {
            const st_tensor *t = st_find(s, names[k]);
            CHECK(t && t->dtype == ST_BF16 && t->shape[1] == 8 - (k % 3));
            if (!t) continue;
            float got[64];
            CHECK_OK(st_to_f32(t, got, err, sizeof err), err);
            int bad = 0;
            for (int i = 0; i < t->numel; i++)
                bad += got[i] != expected(data[k][i], ST_BF16);
            CHECK(bad == 0);
        }
        CHECK(strstr(st_find(s, "layer.0.weight")->file, "model-00001-of-00004") != NULL);
        CHECK(strstr(st_find(s, "layer.6.weight")->file, "model-00004-of-00004") != NULL);
        st_close(s);
    }

    /* saving again unsharded replaces the shards and the index */
    CHECK_OK(st_write_dir(dir, ts, NT, ST_F32, 0, err, sizeof err), err);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    CHECK(access(p, F_OK) != 0);
    snprintf(p, sizeof p, "%s/model-00001-of-00004.safetensors", dir);
    CHECK(access(p, F_OK) != 0);
    CHECK_OK(st_open_dir(dir, &s, err, sizeof err), err);
    if (s) {
        CHECK(st_count(s) == NT && st_find(s, "layer.3.weight")->dtype == ST_F32);
        CHECK(strstr(st_find(s, "layer.3.weight")->file, "/model.safetensors") != NULL);
        st_close(s);
    }
    /* and sharding once more removes model.safetensors (transformers would prefer it) */
    CHECK_OK(st_write_dir(dir, ts, NT, ST_F16, 300, err, sizeof err), err);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    CHECK(access(p, F_OK) != 0);
    CHECK_OK(st_open_dir(dir, &s, err, sizeof err), err);
    if (s) {
        CHECK(st_count(s) == NT && st_find(s, "layer.3.weight")->dtype == ST_F16);
        st_close(s);
    }
}

/* ---- a file written by the reference Python library --------------------------------- */
static void test_python_fixture(const char *fixdir) {
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/py_small.safetensors", fixdir);
    st_set *s = NULL;
    CHECK_OK(st_open_file(path, &s, err, sizeof err), err);
    if (!s) return;
    CHECK(st_count(s) == 6);
    CHECK(st_metadata(s, "note") && strcmp(st_metadata(s, "note"), "rlvr fixture") == 0);
    const char *names[3] = {"w.f32", "w.bf16", "w.f16"};
    const st_dtype dts[3] = {ST_F32, ST_BF16, ST_F16};
    const int64_t numels[3] = {15, 12, 7};
    for (int k = 0; k < 3; k++) {
        const st_tensor *t = st_find(s, names[k]);
        CHECK(t && t->dtype == dts[k] && t->numel == numels[k]);
        if (!t) continue;
        float got[16];
        CHECK_OK(st_to_f32(t, got, err, sizeof err), err);
        for (int i = 0; i < t->numel; i++)
            CHECK(got[i] == (float)(i - 7) * 0.375f);
    }
    const st_tensor *t = st_find(s, "w.bf16");
    CHECK(t && t->ndim == 3 && t->shape[0] == 2 && t->shape[1] == 3 && t->shape[2] == 2);
    t = st_find(s, "scalar");
    float v = 0;
    CHECK(t && t->ndim == 0 && t->numel == 1);
    if (t) CHECK_OK(st_to_f32(t, &v, err, sizeof err), err);
    CHECK(v == 2.5f);
    t = st_find(s, "empty");
    CHECK(t && t->numel == 0 && t->nbytes == 0 && t->shape[0] == 0 && t->shape[1] == 4);
    t = st_find(s, "ids");
    CHECK(t && t->dtype == ST_I64 && t->numel == 4);
    if (t) {
        int64_t ids[4];
        memcpy(ids, t->data, sizeof ids);
        CHECK(ids[0] == 1 && ids[3] == 4);
        float f[4];
        CHECK_ERR(st_to_f32(t, f, err, sizeof err), -1, err,
                  "tensor 'ids': dtype I64 cannot be converted to fp32");
    }
    st_close(s);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: test_st_roundtrip WORKDIR FIXTURE_DIR\n");
        return 2;
    }
    char err[512] = "";
    CHECK_OK(fio_mkdirs(argv[1], err, sizeof err), err);
    test_conversions();
    test_file_roundtrip(argv[1], ST_F32);
    test_file_roundtrip(argv[1], ST_BF16);
    test_file_roundtrip(argv[1], ST_F16);
    test_dir_roundtrip(argv[1]);
    test_python_fixture(argv[2]);
    if (check_failures)
        fprintf(stderr, "test_st_roundtrip: %d failures\n", check_failures);
    else
        printf("test_st_roundtrip: ok\n");
    return check_failures ? 1 : 0;
}
