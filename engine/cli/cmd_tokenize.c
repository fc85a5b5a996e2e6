/*
 * engine/cli/cmd_tokenize.c — `rlvr tokenize`: JSON lines in, JSON lines out.
 *   rlvr tokenize --tokenizer PATH             {"text": "..."}  -> {"ids": [...]}
 *   rlvr tokenize --tokenizer PATH --decode    {"ids": [...]}   -> {"text": "..."}
 * Encoding inserts no special tokens (add_special_tokens=False). PATH is a tokenizer.json
 * file or a directory holding one. One output line per input line, flushed as it is
 * written, so a script can talk to it through a pipe. Exit status: 0, 1 for a bad input
 * line or tokenizer file (the message names the line), 2 for bad arguments.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/commands.h"
#include "engine/text/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: rlvr tokenize --tokenizer PATH [--decode [--skip-special]]\n"
               "  reads JSON lines from stdin:\n"
               "    encode: {\"text\": \"...\"}  ->  {\"ids\": [...]}   (no special tokens added)\n"
               "    decode: {\"ids\": [...]}     ->  {\"text\": \"...\"}\n"
               "  --tokenizer PATH   tokenizer.json, or a directory holding one\n"
               "  --decode           ids to text\n"
               "  --skip-special     with --decode: drop special tokens\n");
}

/* Writes s[0..n) as a JSON string, escaped as Python's json.dumps(ensure_ascii=False)
 * does (so outputs can be compared byte for byte); NUL bytes survive as \u0000. */
void cli_json_string(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\b') fputs("\\b", f);
        else if (c == '\f') fputs("\\f", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* 1 when the JSON text holds a \u0000 escape, which cJSON cannot keep in a string. */
int cli_json_has_nul_escape(const char *line) {
    for (const char *p = line; *p; p++) {
        if (*p != '\\') continue;
        if (p[1] == 'u' && !strncmp(p + 2, "0000", 4)) return 1;
        if (p[1]) p++; /* skip the escaped character (handles "\\\\u0000") */
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL;
    int decode = 0, skip = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--decode")) {
            decode = 1;
        } else if (!strcmp(argv[i], "--skip-special")) {
            skip = 1;
        } else {
            fprintf(stderr, "rlvr tokenize: unexpected argument '%s'%s\n", argv[i],
                    !strcmp(argv[i], "--tokenizer") ? " (expected a path after it)" : "");
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "rlvr tokenize: --tokenizer PATH is required\n");
        usage(stderr);
        return 2;
    }
    if (skip && !decode) {
        fprintf(stderr, "rlvr tokenize: --skip-special only applies with --decode\n");
        return 2;
    }
    char err[1024];
    tok_tokenizer *t;
    if (tok_load(path, &t, err, sizeof err)) {
        fprintf(stderr, "rlvr tokenize: %s\n", err);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int status = 0;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        if (got == 1 && line[0] == '\n') continue;
        cJSON *j = cJSON_Parse(line);
        const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, decode ? "ids" : "text") : NULL;
        if (!decode) {
            if (!cJSON_IsString(v) || cli_json_has_nul_escape(line)) {
                fprintf(stderr, "rlvr tokenize: stdin line %zu: expected {\"text\": string}%s\n",
                        lineno, cli_json_has_nul_escape(line) ? " without \\u0000" : "");
                status = 1;
                cJSON_Delete(j);
                break;
            }
            int32_t *ids;
            size_t n;
            if (tok_encode(t, v->valuestring, strlen(v->valuestring), &ids, &n, err,
                           sizeof err)) {
                fprintf(stderr, "rlvr tokenize: stdin line %zu: %s\n", lineno, err);
                status = 1;
                cJSON_Delete(j);
                break;
            }
            fputs("{\"ids\": [", stdout);
            for (size_t k = 0; k < n; k++) printf(k ? ", %d" : "%d", ids[k]);
            fputs("]}\n", stdout);
            free(ids);
        } else {
            int ok = cJSON_IsArray(v);
            size_t n = ok ? (size_t)cJSON_GetArraySize(v) : 0, k = 0;
            int32_t *ids = malloc((n + 1) * sizeof *ids);
            const cJSON *e;
            cJSON_ArrayForEach(e, v) {
                if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int32_t)e->valuedouble)
                    ok = 0;
                else ids[k++] = (int32_t)e->valuedouble;
            }
            if (!ok || !ids) {
                fprintf(stderr,
                        "rlvr tokenize: stdin line %zu: expected {\"ids\": [integers]}\n",
                        lineno);
                free(ids);
                cJSON_Delete(j);
                status = 1;
                break;
            }
            char *text;
            size_t len;
            if (tok_decode(t, ids, n, skip, &text, &len, err, sizeof err)) {
                fprintf(stderr, "rlvr tokenize: stdin line %zu: %s\n", lineno, err);
                free(ids);
                cJSON_Delete(j);
                status = 1;
                break;
            }
            fputs("{\"text\": ", stdout);
            cli_json_string(stdout, text, len);
            fputs("}\n", stdout);
            free(text);
            free(ids);
        }
        fflush(stdout);
        cJSON_Delete(j);
    }
    free(line);
    tok_free(t);
    return status;
}
