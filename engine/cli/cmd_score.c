/*
 * engine/cli/cmd_score.c — `rlvr score`: scores JSON lines with one or more rewards.
 *
 *   rlvr score --reward SPEC [--reward SPEC ...] [--input FILE] [--workers N]
 *              [--deadline SECONDS] [--batch N] [--info]
 *
 * SPEC is a built-in name or a .so path, optionally followed by ':' and a JSON config
 * (e.g. format:{"weight":0.1}). Each input line is a JSON object with "prompt",
 * "completion", "answer" and any other fields (passed to the rewards as the row's extra
 * JSON; an integer "group_id" groups lines, consecutive lines of one group). Each line is
 * written back with "reward" (weighted total), "status" and "rewards" (per component; a
 * component that is not ok is null), plus "reward_info" with --info.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/reward/reward_host.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: rlvr score --reward SPEC [--reward SPEC ...] [--input FILE] [--workers N]\n"
            "                  [--deadline SECONDS] [--batch N] [--info]\n"
            "  SPEC       built-in name (math_answer, format, countdown, length, code) or a\n"
            "             path to a .so plugin, optionally followed by ':' and a JSON config,\n"
            "             e.g. format:{\"weight\":0.1}  (host keys: weight, isolation)\n"
            "  --input    JSON lines with prompt, completion, answer (default: stdin)\n"
            "  --workers  worker threads (default: number of CPUs)\n"
            "  --deadline seconds per batch before unscored items time out (default 600)\n"
            "  --batch    lines per batch (default 256; groups are never split)\n"
            "  --info     add per-component details as \"reward_info\"\n");
}

typedef struct {
    cJSON *obj;
    char *prompt, *completion, *answer, *extra;
    long long group;
} row;

static char *field_text(cJSON *obj, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return strdup("");
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    return cJSON_PrintUnformatted(v);
}

static void row_free(row *r) {
    cJSON_Delete(r->obj);
    free(r->prompt);
    free(r->completion);
    free(r->answer);
    free(r->extra);
    memset(r, 0, sizeof *r);
}

static int flush_batch(reward_host *h, row *rows, size_t n, double deadline, int want_info,
                       char **names, int64_t step) {
    if (n == 0) return 0;
    rlvr_item *items = calloc(n, sizeof *items);
    if (!items) return -1;
    for (size_t i = 0; i < n; i++) {
        items[i].prompt = rows[i].prompt;
        items[i].prompt_len = strlen(rows[i].prompt);
        items[i].completion = rows[i].completion;
        items[i].completion_len = strlen(rows[i].completion);
        items[i].answer = rows[i].answer;
        items[i].answer_len = strlen(rows[i].answer);
        items[i].extra_json = rows[i].extra;
        items[i].group_id = rows[i].group;
    }
    char err[1024] = "";
    reward_job *j = reward_host_submit(h, items, n, step, (uint64_t)step, deadline, err,
                                       sizeof err);
    free(items);
    if (!j) {
        fprintf(stderr, "rlvr score: %s\n", err);
        return -1;
    }
    const reward_result *r = reward_job_wait(j);
    const int nr = (int)r->n_rewards;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = rows[i].obj;
        cJSON_DeleteItemFromObjectCaseSensitive(o, "reward");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "rewards");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "reward_info");
        cJSON_AddNumberToObject(o, "reward", r->total[i]);
        cJSON_AddStringToObject(o, "status", reward_status_name(r->item_status[i]));
        cJSON *comp = cJSON_AddObjectToObject(o, "rewards");
        cJSON *info = want_info ? cJSON_AddObjectToObject(o, "reward_info") : NULL;
        for (int c = 0; c < nr; c++) {
            size_t k = i * (size_t)nr + (size_t)c;
            if (r->status[k] == RLVR_STATUS_OK)
                cJSON_AddNumberToObject(comp, names[c], r->scores[k]);
            else
                cJSON_AddNullToObject(comp, names[c]);
            if (info) {
                cJSON *ci = r->info[k] ? cJSON_Parse(r->info[k]) : cJSON_CreateObject();
                if (!ci) ci = cJSON_CreateObject();
                cJSON_AddStringToObject(ci, "status", reward_status_name(r->status[k]));
                cJSON_AddItemToObject(info, names[c], ci);
            }
        }
        char *line = cJSON_PrintUnformatted(o);
        if (line) {
            fputs(line, stdout);
            fputc('\n', stdout);
            free(line);
        }
        row_free(&rows[i]);
    }
    reward_job_free(j);
    return fflush(stdout) == 0 ? 0 : -1;
}

int cmd_score(int argc, char **argv) {
    const char *specs_txt[64];
    int n_specs = 0, workers = 0, want_info = 0;
    long batch = 256;
    double deadline = 600.0;
    const char *input = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--info")) {
            want_info = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "rlvr score: option '%s' expects a value\n\n", a);
            usage(stderr);
            return 2;
        }
        const char *v = argv[++i];
        char *end = NULL;
        if (!strcmp(a, "--reward")) {
            if (n_specs >= 64) {
                fprintf(stderr, "rlvr score: at most 64 --reward options\n");
                return 2;
            }
            specs_txt[n_specs++] = v;
        } else if (!strcmp(a, "--input")) {
            input = v;
        } else if (!strcmp(a, "--workers")) {
            workers = (int)strtol(v, &end, 10);
            if (!end || *end || workers < 1 || workers > 1024) {
                fprintf(stderr, "rlvr score: --workers '%s': expected an integer in [1, 1024]\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--deadline")) {
            deadline = strtod(v, &end);
            if (!end || *end || !(deadline > 0) || !isfinite(deadline)) {
                fprintf(stderr, "rlvr score: --deadline '%s': expected a positive number of "
                                "seconds\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--batch")) {
            batch = strtol(v, &end, 10);
            if (!end || *end || batch < 1 || batch > 1000000) {
                fprintf(stderr, "rlvr score: --batch '%s': expected an integer in [1, 1000000]\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "rlvr score: unknown option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (n_specs == 0) {
        fprintf(stderr, "rlvr score: expected at least one --reward SPEC\n\n");
        usage(stderr);
        return 2;
    }
    reward_spec specs[64];
    char *bufs[64] = {0};
    char err[2048] = "";
    int rc = 1;
    reward_host *h = NULL;
    char **names = NULL;
    row *rows = NULL;
    size_t rows_cap = 0, n = 0;
    FILE *in = stdin;
    char *line = NULL;
    for (int i = 0; i < n_specs; i++) {
        if (reward_spec_parse(specs_txt[i], &specs[i], &bufs[i], err, sizeof err)) {
            fprintf(stderr, "rlvr score: %s\n", err);
            rc = 2;
            goto out;
        }
    }
    if (input) {
        in = fopen(input, "r");
        if (!in) {
            fprintf(stderr, "rlvr score: cannot open --input %s: %s\n", input, strerror(errno));
            goto out;
        }
    }
    reward_host_opts opts = {0};
    opts.n_workers = workers;
    h = reward_host_create(specs, n_specs, &opts, err, sizeof err);
    if (!h) {
        fprintf(stderr, "rlvr score: %s\n", err);
        goto out;
    }
    /* Component names; a repeated name gets "#2", "#3". */
    names = calloc((size_t)n_specs, sizeof *names);
    if (!names) goto out;
    for (int c = 0; c < n_specs; c++) {
        const char *nm = reward_host_reward_name(h, c);
        int dup = 1;
        for (int k = 0; k < c; k++)
            if (!strcmp(reward_host_reward_name(h, k), nm)) dup++;
        size_t l = strlen(nm) + 16;
        names[c] = malloc(l);
        if (!names[c]) goto out;
        if (dup > 1) snprintf(names[c], l, "%s#%d", nm, dup);
        else snprintf(names[c], l, "%s", nm);
    }
    rows_cap = (size_t)batch + 1;
    rows = calloc(rows_cap, sizeof *rows);
    if (!rows) goto out;
    size_t cap = 0;
    long long lineno = 0;
    int64_t step = 0;
    const char *src = input ? input : "<stdin>";
    ssize_t got;
    while ((got = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        cJSON *o = cJSON_Parse(line);
        if (!o || !cJSON_IsObject(o)) {
            fprintf(stderr, "rlvr score: %s:%lld: not a JSON object (expected one object per "
                            "line with \"completion\")\n", src, lineno);
            cJSON_Delete(o);
            goto out;
        }
        cJSON *comp = cJSON_GetObjectItemCaseSensitive(o, "completion");
        if (!cJSON_IsString(comp)) {
            fprintf(stderr, "rlvr score: %s:%lld: field \"completion\" %s (expected a string)\n",
                    src, lineno, comp ? "is not a string" : "is missing");
            cJSON_Delete(o);
            goto out;
        }
        cJSON *gid = cJSON_GetObjectItemCaseSensitive(o, "group_id");
        long long group = lineno;
        if (gid) {
            if (!cJSON_IsNumber(gid) || gid->valuedouble != floor(gid->valuedouble)) {
                fprintf(stderr, "rlvr score: %s:%lld: field \"group_id\" must be an integer\n",
                        src, lineno);
                cJSON_Delete(o);
                goto out;
            }
            group = (long long)gid->valuedouble;
        }
        /* Keep groups whole: flush before a new group once the batch is full. */
        if (n >= (size_t)batch && rows[n - 1].group != group) {
            if (flush_batch(h, rows, n, deadline, want_info, names, step++)) goto out;
            n = 0;
        }
        if (n >= rows_cap) {
            row *nr = realloc(rows, 2 * rows_cap * sizeof *rows);
            if (!nr) goto out;
            rows = nr;
            memset(rows + rows_cap, 0, rows_cap * sizeof *rows);
            rows_cap *= 2;
        }
        row *r = &rows[n];
        memset(r, 0, sizeof *r);
        r->obj = o;
        r->group = group;
        r->prompt = field_text(o, "prompt");
        r->completion = strdup(comp->valuestring);
        r->answer = field_text(o, "answer");
        cJSON *ex = cJSON_Duplicate(o, 1);
        if (ex) {
            cJSON_DeleteItemFromObjectCaseSensitive(ex, "prompt");
            cJSON_DeleteItemFromObjectCaseSensitive(ex, "completion");
            cJSON_DeleteItemFromObjectCaseSensitive(ex, "answer");
            r->extra = cJSON_PrintUnformatted(ex);
            cJSON_Delete(ex);
        }
        n++;
        if (!r->prompt || !r->completion || !r->answer || !r->extra) {
            fprintf(stderr, "rlvr score: out of memory at %s:%lld\n", src, lineno);
            goto out;
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "rlvr score: error reading %s: %s\n", src, strerror(errno));
        goto out;
    }
    if (flush_batch(h, rows, n, deadline, want_info, names, step)) goto out;
    n = 0;
    rc = 0;
out:
    if (rows) {
        for (size_t i = 0; i < n; i++) row_free(&rows[i]);
        free(rows);
    }
    free(line);
    if (names)
        for (int c = 0; c < n_specs; c++) free(names[c]);
    free(names);
    reward_host_free(h);
    if (in && in != stdin) fclose(in);
    for (int i = 0; i < n_specs; i++) free(bufs[i]);
    return rc;
}
