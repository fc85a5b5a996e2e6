/*
 * engine/runlog/checkpoint_dir.c — finding the newest complete checkpoint of a run and
 * pruning old and interrupted ones.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/runlog/checkpoint.h"
#include "engine/runlog/ckpt_internal.h"

typedef struct {
    long step;
    int complete;
    int partial;   /* step-N.partial: a save that failed or was interrupted */
    char name[32]; /* the directory's own name (at most "step-" + 18 digits + ".partial") */
} ckpt_entry;

static int cmp_entry(const void *a, const void *b) {
    long x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
    return x < y ? -1 : x > y;
}

/* Lists CKPT_DIR/step-* directories sorted by step; *n = 0 when there is no
 * checkpoint directory. */
static int list_checkpoints(const char *run_dir, ckpt_entry **out, int *n, char *err,
                            size_t errlen) {
    *out = NULL;
    *n = 0;
    char ckdir[4096];
    snprintf(ckdir, sizeof ckdir, "%s", run_dir);
    DIR *d = opendir(ckdir);
    if (!d) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: cannot list: %s", ckdir, strerror(errno));
        return -1;
    }
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long step;
        const int kind = ckpt_parse_name(e->d_name, &step);
        if (!kind) continue;
        char path[4400];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", ckdir, e->d_name);
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            ckpt_entry *ne = realloc(*out, (size_t)cap * sizeof *ne);
            if (!ne) {
                closedir(d);
                free(*out);
                *out = NULL;
                snprintf(err, errlen, "%s: out of memory", ckdir);
                return -1;
            }
            *out = ne;
        }
        snprintf(path, sizeof path, "%s/%s/%s", ckdir, e->d_name, CKPT_MARKER);
        (*out)[*n].step = step;
        memcpy((*out)[*n].name, e->d_name, strlen(e->d_name) + 1); /* <= 31 bytes, parsed */
        (*out)[*n].partial = kind == 2;
        (*out)[*n].complete = kind == 1 && stat(path, &st) == 0 && S_ISREG(st.st_mode);
        (*n)++;
    }
    closedir(d);
    if (*n) qsort(*out, (size_t)*n, sizeof **out, cmp_entry);
    return 0;
}

static void ckpt_path(char *buf, size_t len, const char *run_dir, const ckpt_entry *e) {
    snprintf(buf, len, "%s/%s", run_dir, e->name);
}

int checkpoint_latest(const char *run_dir, char *path, size_t path_len, long *step, char *err,
                      size_t errlen) {
    ckpt_entry *e;
    int n;
    if (list_checkpoints(run_dir, &e, &n, err, errlen)) return -1;
    int found = 0;
    for (int i = n - 1; i >= 0 && !found; i--) {
        if (!e[i].complete) continue;
        found = 1;
        if (path && path_len) ckpt_path(path, path_len, run_dir, &e[i]);
        if (step) *step = e[i].step;
    }
    free(e);
    return found;
}

int checkpoint_prune(const char *run_dir, int keep_last, char *err, size_t errlen) {
    if (keep_last < 0) {
        snprintf(err, errlen, "checkpoint_prune: keep_last = %d (expected >= 0; 0 keeps all)",
                 keep_last);
        return -1;
    }
    ckpt_entry *e;
    int n;
    if (list_checkpoints(run_dir, &e, &n, err, errlen)) return -1;
    long newest = -1;
    int kept = 0;
    char *remove = calloc((size_t)n + 1, 1);
    if (!remove) {
        free(e);
        snprintf(err, errlen, "checkpoint_prune: out of memory");
        return -1;
    }
    for (int i = n - 1; i >= 0; i--) {
        if (e[i].complete) {
            if (newest < 0) newest = e[i].step;
            if (keep_last > 0 && kept >= keep_last) remove[i] = 1;
            kept++;
        } else if (e[i].partial || newest >= 0) {
            remove[i] = 1; /* a failed save, or interrupted with a newer complete one */
        }
    }
    int removed = 0, rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (!remove[i]) continue;
        char path[4400];
        ckpt_path(path, sizeof path, run_dir, &e[i]);
        if (ckpt_remove_dir(path, err, errlen)) rc = -1;
        else removed++;
    }
    free(remove);
    free(e);
    if (rc == 0 && removed) {
        char ckdir[4096];
        snprintf(ckdir, sizeof ckdir, "%s", run_dir);
        rc = ckpt_fsync_dir(ckdir, err, errlen);
    }
    return rc ? -1 : removed;
}
