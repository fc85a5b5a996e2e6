/*
 * tests/io/test_fileio.c — atomic writes leave either the old or the new file and no
 * temporary behind; reads return exact bytes; errors name the path.
 * Usage: test_fileio WORKDIR
 */
#include "engine/io/fileio.h"
#include "tests/common/check.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_fileio WORKDIR\n");
        return 2;
    }
    char err[512] = "", dir[1024], path[1100], sub[1100];
    snprintf(dir, sizeof dir, "%s/fileio", argv[1]);
    CHECK_OK(fio_mkdirs(dir, err, sizeof err), err);
    CHECK_OK(fio_mkdirs(dir, err, sizeof err), err); /* exists: still fine */

    /* write, overwrite, read back */
    snprintf(path, sizeof path, "%s/a.bin", dir);
    const char first[] = "first version\n";
    unsigned char second[300];
    for (int i = 0; i < 300; i++)
        second[i] = (unsigned char)(i * 7);
    CHECK_OK(fio_write_file(path, first, sizeof first - 1, err, sizeof err), err);
    CHECK_OK(fio_write_file(path, second, sizeof second, err, sizeof err), err);
    char *data = NULL;
    size_t len = 0;
    CHECK_OK(fio_read_file(path, &data, &len, err, sizeof err), err);
    CHECK(len == sizeof second && data && memcmp(data, second, len) == 0 && data[len] == '\0');
    free(data);
    CHECK(count_tmp_files(dir) == 0);

    /* an aborted write leaves the old file untouched and no temporary */
    fio_atomic a;
    CHECK_OK(fio_atomic_open(&a, path, err, sizeof err), err);
    fputs("half written", a.f);
    fflush(a.f);
    CHECK(count_tmp_files(dir) == 1);
    fio_atomic_abort(&a);
    CHECK(a.path == NULL && a.tmp_path == NULL && a.f == NULL);
    CHECK(count_tmp_files(dir) == 0);
    CHECK_OK(fio_read_file(path, &data, &len, err, sizeof err), err);
    CHECK(len == sizeof second && memcmp(data, second, len) == 0);
    free(data);

    /* streaming write through open/commit */
    snprintf(sub, sizeof sub, "%s/x/y/z", dir);
    CHECK_OK(fio_mkdirs(sub, err, sizeof err), err);
    snprintf(path, sizeof path, "%s/x/y/z/stream.txt", dir);
    CHECK_OK(fio_atomic_open(&a, path, err, sizeof err), err);
    for (int i = 0; i < 1000; i++)
        fprintf(a.f, "%d\n", i);
    CHECK_OK(fio_atomic_commit(&a, err, sizeof err), err);
    CHECK(a.path == NULL && a.tmp_path == NULL);
    CHECK_OK(fio_read_file(path, &data, &len, err, sizeof err), err);
    CHECK(len == 3890 && strncmp(data, "0\n1\n2\n", 6) == 0);
    free(data);

    /* empty file */
    snprintf(path, sizeof path, "%s/empty", dir);
    CHECK_OK(fio_write_file(path, "", 0, err, sizeof err), err);
    CHECK_OK(fio_read_file(path, &data, &len, err, sizeof err), err);
    CHECK(len == 0 && data && data[0] == '\0');
    free(data);

    /* errors name the path */
    snprintf(path, sizeof path, "%s/does-not-exist", dir);
    CHECK_ERR(fio_read_file(path, &data, &len, err, sizeof err), -1, err, "does-not-exist");
    CHECK(data == NULL);
    snprintf(path, sizeof path, "%s/no/such/dir/f", dir);
    CHECK_ERR(fio_write_file(path, "x", 1, err, sizeof err), -1, err, "no/such/dir/f");
    snprintf(path, sizeof path, "%s/a.bin/sub", dir); /* a.bin is a file */
    CHECK_ERR(fio_mkdirs(path, err, sizeof err), -1, err, "a.bin");

    if (check_failures)
        fprintf(stderr, "test_fileio: %d failures\n", check_failures);
    else
        printf("test_fileio: ok\n");
    return check_failures ? 1 : 0;
}
