/*
 * tests/runlog/test_runlog_tfevents.c — CRC-32C against published vectors (RFC 3720
 * B.4 and the classic "123456789"), then TensorBoard event files checked from C: every
 * record's framing and both CRCs verified, and the protobuf of the first events decoded.
 * Leaves two runs for test_tensorboard.py to read with TensorBoard itself:
 *   SCRATCH/plain:  scalars "loss" = 1/(s+1) and "reward/mean" = s/10 at steps 0..9,
 *                   plus int metric "tokens" = 100*s
 *   SCRATCH/resume: steps 0..5 with loss = s, then a resumed writer (resume_step 2) with
 *                   loss = 100+s at steps 3..4 — TensorBoard must show 0,1,2,103,104.
 * usage: test_runlog_tfevents SCRATCH_DIR
 */
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/io/fileio.h"
#include "engine/runlog/crc32c.h"
#include "engine/runlog/tfevents.h"
#include "test_util.h"

static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint64_t varint(const unsigned char **p, const unsigned char *end) {
    uint64_t v = 0;
    for (int s = 0; *p < end && s < 64; s += 7) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7F) << s;
        if (!(b & 0x80)) break;
    }
    return v;
}

/* Verifies every frame of the file; returns the number of records (-1 on a bad one).
 * The first event's file_version and the step of record k (when k < 16) are returned. */
static int check_file(const char *path, char *version, long *steps) {
    char *data = NULL, err[512];
    size_t len = 0;
    if (fio_read_file(path, &data, &len, err, sizeof err)) return -1;
    const unsigned char *p = (const unsigned char *)data, *end = p + len;
    int n = 0;
    while (p < end) {
        if (end - p < 16) return -1;
        uint64_t dl = get_le(p, 8);
        if (crc32c_mask(crc32c(p, 8)) != get_le(p + 8, 4) || dl > (uint64_t)(end - p - 16)) return -1;
        const unsigned char *d = p + 12, *de = d + dl;
        if (crc32c_mask(crc32c(d, dl)) != get_le(de, 4)) return -1;
        for (const unsigned char *q = d; q < de;) { /* walk the Event's fields */
            uint64_t key = varint(&q, de);
            unsigned field = (unsigned)(key >> 3), wire = key & 7;
            if (wire == 0) {
                uint64_t v = varint(&q, de);
                if (field == 2 && n < 16) steps[n] = (long)v;
            } else if (wire == 1) {
                q += 8;
            } else if (wire == 2) {
                uint64_t l = varint(&q, de);
                if (field == 3 && n == 0) snprintf(version, 32, "%.*s", (int)l, (const char *)q);
                q += l;
            } else if (wire == 5) {
                q += 4;
            } else {
                return -1;
            }
        }
        p = de + 4;
        n++;
    }
    free(data);
    return n;
}

static int find_event_files(const char *dir, char names[][512], int max) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max)
        if (strstr(e->d_name, "tfevents") && snprintf(names[n], 512, "%s/%s", dir, e->d_name) < 512) n++;
    if (d) closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    test_fresh_dir(argv[1]);
    /* ---- CRC-32C vectors ---- */
    CHECK(crc32c("123456789", 9) == 0xE3069283u, "123456789: %08x", crc32c("123456789", 9));
    CHECK(crc32c("", 0) == 0, "empty");
    unsigned char buf[32];
    memset(buf, 0, 32);
    CHECK(crc32c(buf, 32) == 0x8A9136AAu, "32 zeros: %08x", crc32c(buf, 32));
    memset(buf, 0xFF, 32);
    CHECK(crc32c(buf, 32) == 0x62A8AB43u, "32 ones: %08x", crc32c(buf, 32));
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
    CHECK(crc32c(buf, 32) == 0x46DD794Eu, "ascending: %08x", crc32c(buf, 32));
    for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(31 - i);
    CHECK(crc32c(buf, 32) == 0x113FDB5Cu, "descending: %08x", crc32c(buf, 32));
    CHECK(crc32c_update(crc32c_update(0, "1234", 4), "56789", 5) == 0xE3069283u, "incremental");
    uint32_t c = 0xE3069283u;
    CHECK(crc32c_mask(c) == (((c >> 15) | (c << 17)) + 0xa282ead8u), "mask");

    /* ---- a plain run ---- */
    char dir[4096], err[512], names[8][512];
    snprintf(dir, sizeof dir, "%s/plain", argv[1]);
    mkdir(dir, 0755);
    tfevents *t;
    CHECK(tfevents_open(&t, dir, -1, err, sizeof err) == 0, "%s", err);
    metrics_rec r;
    metrics_rec_init(&r);
    for (long s = 0; s < 10; s++) {
        metrics_rec_begin(&r, s);
        metrics_rec_add(&r, "loss", 1.0 / (double)(s + 1));
        metrics_rec_add(&r, "reward/mean", (double)s / 10);
        metrics_rec_add_int(&r, "tokens", 100 * s);
        CHECK(tfevents_write(t, &r, err, sizeof err) == 0, "%s", err);
    }
    CHECK(tfevents_scalar(t, "eval/pass@1", 9, runlog_wall_time(), 0.25f, err, sizeof err) == 0, "%s", err);
    CHECK(tfevents_sync(t, err, sizeof err) == 0, "%s", err);
    CHECK(strstr(tfevents_path(t), "/events.out.tfevents.") != NULL, "name %s", tfevents_path(t));
    /* A second writer in the same second gets its own file. */
    tfevents *t2;
    CHECK(tfevents_open(&t2, dir, -1, err, sizeof err) == 0, "%s", err);
    CHECK(strcmp(tfevents_path(t), tfevents_path(t2)) != 0, "distinct files");
    char p2[512];
    snprintf(p2, sizeof p2, "%s", tfevents_path(t2));
    tfevents_close(t2);
    remove(p2);
    char version[32] = "";
    long steps[16] = {0};
    int n = check_file(tfevents_path(t), version, steps);
    CHECK(n == 12, "records %d", n);
    CHECK(!strcmp(version, "brain.Event:2"), "version '%s'", version);
    CHECK(steps[1] == 0 && steps[5] == 4 && steps[10] == 9, "steps %ld %ld %ld", steps[1], steps[5], steps[10]);
    tfevents_close(t);
    CHECK(find_event_files(dir, names, 8) == 1, "one file left");

    /* A bad metric name is refused, not written. */
    snprintf(dir, sizeof dir, "%s/bad", argv[1]);
    mkdir(dir, 0755);
    CHECK(tfevents_open(&t, dir, -1, err, sizeof err) == 0, "%s", err);
    metrics_rec_begin(&r, 1);
    metrics_rec_add(&r, "two words", 1);
    CHECK(tfevents_write(t, &r, err, sizeof err) == -1 && strstr(err, "two words"), "%s", err);
    tfevents_close(t);
    snprintf(dir, sizeof dir, "%s/missing/dir", argv[1]);
    CHECK(tfevents_open(&t, dir, -1, err, sizeof err) == -1 && strstr(err, dir), "%s", err);

    /* ---- a resumed run ---- */
    snprintf(dir, sizeof dir, "%s/resume", argv[1]);
    mkdir(dir, 0755);
    CHECK(tfevents_open(&t, dir, -1, err, sizeof err) == 0, "%s", err);
    for (long s = 0; s <= 5; s++) {
        metrics_rec_begin(&r, s);
        metrics_rec_add(&r, "loss", (double)s);
        CHECK(tfevents_write(t, &r, err, sizeof err) == 0, "%s", err);
    }
    tfevents_close(t);
    CHECK(tfevents_open(&t, dir, 2, err, sizeof err) == 0, "%s", err);
    for (long s = 3; s <= 4; s++) {
        metrics_rec_begin(&r, s);
        r.wall_time += 1.0; /* after the first file's events */
        metrics_rec_add(&r, "loss", 100.0 + (double)s);
        CHECK(tfevents_write(t, &r, err, sizeof err) == 0, "%s", err);
    }
    n = check_file(tfevents_path(t), version, steps);
    CHECK(n == 4 && steps[1] == 3 && steps[2] == 3 && steps[3] == 4, "resumed records %d, session step %ld", n, steps[1]);
    tfevents_close(t);
    metrics_rec_free(&r);

    if (check_failures) fprintf(stderr, "%d failures\n", check_failures);
    else printf("runlog tfevents: ok\n");
    return check_failures ? 1 : 0;
}
