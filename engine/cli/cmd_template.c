/*
 * engine/cli/cmd_template.c — `rlvr template`: render chat messages with a template.
 *   rlvr template --tokenizer PATH --template NAME   {"messages": [...]} -> {"text": "..."}
 * NAME: auto (from tokenizer_config.json), chatml, llama3, llama3.1, qwen3, none, or the
 * path of a JSON file with a custom prefix/suffix template. "messages" is an array of
 * {"role", "content"} objects or a plain string (one user message); a line may also set
 * "enable_thinking" (qwen3) and "add_generation_prompt" (default: on, as for rollouts).
 * Exit status: 0, 1 for a bad line/file (the message names the line), 2 for bad arguments.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/commands.h"
#include "engine/text/chat_template.h"

void cli_json_string(FILE *f, const char *s, size_t n);
int cli_json_has_nul_escape(const char *line);

static void usage(FILE *f) {
    fprintf(f,
            "usage: rlvr template --tokenizer PATH [--template NAME] [--no-generation-prompt]\n"
            "                     [--enable-thinking true|false]\n"
            "  reads {\"messages\": [{\"role\": ..., \"content\": ...}, ...]} (or a string) per "
            "line\n"
            "  from stdin and writes {\"text\": \"...\"}\n"
            "  --tokenizer PATH       tokenizer.json or its directory (tokenizer_config.json "
            "beside it)\n"
            "  --template NAME        auto (default), chatml, llama3, llama3.1, qwen3, none, or\n"
            "                         FILE.json (custom: bos, system_/user_/assistant_prefix\n"
            "                         and _suffix, generation_prompt, default_system)\n"
            "  --no-generation-prompt do not append the assistant prompt\n"
            "  --enable-thinking B    qwen3: false adds the empty think block\n");
}

int cmd_template(int argc, char **argv) {
    const char *path = NULL, *name = "auto";
    chat_render_opts base = {1, -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(a, "--template") && i + 1 < argc) {
            name = argv[++i];
        } else if (!strcmp(a, "--no-generation-prompt")) {
            base.add_generation_prompt = 0;
        } else if (!strcmp(a, "--enable-thinking") && i + 1 < argc &&
                   (!strcmp(argv[i + 1], "true") || !strcmp(argv[i + 1], "false"))) {
            base.enable_thinking = !strcmp(argv[++i], "true");
        } else {
            fprintf(stderr, "rlvr template: unexpected argument '%s'%s\n", a,
                    !strcmp(a, "--enable-thinking") ? " (expected true or false after it)"
                    : a[0] == '-' && i + 1 >= argc ? " (expected a value after it)"
                                                   : "");
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "rlvr template: --tokenizer PATH is required\n");
        usage(stderr);
        return 2;
    }
    char err[1024];
    tok_tokenizer *t;
    if (tok_load(path, &t, err, sizeof err)) {
        fprintf(stderr, "rlvr template: %s\n", err);
        return 1;
    }
    chat_template *tpl;
    if (chat_template_resolve(name, t, &tpl, err, sizeof err)) {
        fprintf(stderr, "rlvr template: %s\n", err);
        tok_free(t);
        return strchr(name, '/') || strstr(name, ".json") || !strcmp(name, "auto") ? 1 : 2;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int status = 0;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        if (got == 1 && line[0] == '\n') continue;
        char where[64];
        snprintf(where, sizeof where, "stdin line %zu: messages", lineno);
        cJSON *j = cJSON_Parse(line);
        chat_message *m = NULL;
        size_t n;
        chat_render_opts o = base;
        const cJSON *gp = j ? cJSON_GetObjectItemCaseSensitive(j, "add_generation_prompt") : NULL;
        const cJSON *et = j ? cJSON_GetObjectItemCaseSensitive(j, "enable_thinking") : NULL;
        if (cJSON_IsBool(gp)) o.add_generation_prompt = cJSON_IsTrue(gp);
        if (cJSON_IsBool(et)) o.enable_thinking = cJSON_IsTrue(et);
        char *text;
        size_t len;
        if (!j || !cJSON_IsObject(j)) {
            fprintf(stderr, "rlvr template: stdin line %zu: expected a JSON object "
                            "{\"messages\": [...]}\n", lineno);
            status = 1;
        } else if (cli_json_has_nul_escape(line)) {
            fprintf(stderr, "rlvr template: stdin line %zu: \\u0000 is not supported\n", lineno);
            status = 1;
        } else if (chat_messages_from_json(cJSON_GetObjectItemCaseSensitive(j, "messages"), where,
                                           &m, &n, err, sizeof err) ||
                   chat_template_render(tpl, m, n, &o, &text, &len, err, sizeof err)) {
            if (!strncmp(err, "stdin", 5)) fprintf(stderr, "rlvr template: %s\n", err);
            else fprintf(stderr, "rlvr template: stdin line %zu: %s\n", lineno, err);
            status = 1;
        } else {
            fputs("{\"text\": ", stdout);
            cli_json_string(stdout, text, len);
            fputs("}\n", stdout);
            fflush(stdout);
            free(text);
        }
        free(m);
        cJSON_Delete(j);
        if (status) break;
    }
    free(line);
    chat_template_free(tpl);
    tok_free(t);
    return status;
}
