/*
 * tests/text/test_chat_template.c — chat templates against transformers'
 * apply_chat_template: for each fixture directory the template is auto-detected from its
 * tokenizer_config.json and every conversation of chat_<name>.jsonl (with and without the
 * generation prompt, qwen3 also with enable_thinking unset/false/true) must render to
 * exactly transformers' text. Also custom and none templates, and the errors for bad
 * templates and bad messages.
 *
 * usage: test_chat_template FIXTURES_DIR
 */
#include <time.h>
#include <unistd.h>

#include "engine/text/chat_template.h"
#include "tests/text/test_util.h"

static void parity(const char *fx, const char *name, const char *want_kind) {
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/%s", fx, name);
    tok_tokenizer *t;
    if (tok_load(path, &t, err, sizeof err)) {
        TU_CHECK(0, "%s: %s", name, err);
        return;
    }
    chat_template *tpl;
    if (chat_template_auto(t, &tpl, err, sizeof err)) {
        TU_CHECK(0, "%s: auto: %s", name, err);
        tok_free(t);
        return;
    }
    TU_CHECK(!strcmp(chat_template_name(tpl), want_kind), "%s: detected %s, want %s", name,
             chat_template_name(tpl), want_kind);
    snprintf(path, sizeof path, "%s/chat_%s.jsonl", fx, name);
    size_t n, ok = 0;
    cJSON **rows = tu_jsonl(path, &n);
    for (size_t i = 0; i < n; i++) {
        chat_message *m;
        size_t nm;
        if (chat_messages_from_json(cJSON_GetObjectItem(rows[i], "messages"), "messages", &m, &nm,
                                    err, sizeof err)) {
            TU_CHECK(0, "%s row %zu: %s", name, i + 1, err);
            continue;
        }
        const cJSON *et = cJSON_GetObjectItem(rows[i], "enable_thinking");
        chat_render_opts o = {cJSON_IsTrue(cJSON_GetObjectItem(rows[i], "add_generation_prompt")),
                              cJSON_IsBool(et) ? cJSON_IsTrue(et) : -1};
        char *text;
        size_t len;
        const char *want = cJSON_GetObjectItem(rows[i], "text")->valuestring;
        if (chat_template_render(tpl, m, nm, &o, &text, &len, err, sizeof err)) {
            TU_CHECK(0, "%s row %zu: render: %s", name, i + 1, err);
        } else {
            int same = !strcmp(text, want) && len == strlen(want);
            ok += same;
            TU_CHECK(same, "%s row %zu differs:\n--- rlvr\n%s\n--- transformers\n%s\n---", name,
                     i + 1, text, want);
            free(text);
        }
        free(m);
    }
    printf("%s (%s): %zu/%zu conversations render exactly as transformers\n", name,
           chat_template_name(tpl), ok, n);
    tu_jsonl_free(rows, n);
    chat_template_free(tpl);
    tok_free(t);
}

static void render_expect(const chat_template *tpl, const char *messages_json, int gen,
                          const char *want) {
    cJSON *j = cJSON_Parse(messages_json);
    chat_message *m;
    size_t n;
    char err[512], *text;
    size_t len;
    TU_CHECK(!chat_messages_from_json(j, "messages", &m, &n, err, sizeof err), "%s", err);
    chat_render_opts o = {gen, -1};
    if (chat_template_render(tpl, m, n, &o, &text, &len, err, sizeof err)) {
        TU_CHECK(0, "render: %s", err);
    } else {
        TU_CHECK(!strcmp(text, want), "render gave '%s', want '%s'", text, want);
        free(text);
    }
    free(m);
    cJSON_Delete(j);
}

static void expect_msg_error(const char *json, const char *needle) {
    cJSON *j = cJSON_Parse(json);
    chat_message *m;
    size_t n;
    char err[512] = "";
    TU_CHECK(chat_messages_from_json(j, "messages", &m, &n, err, sizeof err) != 0 &&
                 strstr(err, needle),
             "messages %s: want error with '%s', got '%s'", json, needle, err);
    cJSON_Delete(j);
}

static void custom_and_none(void) {
    char err[512];
    cJSON *cfg = cJSON_Parse("{\"bos\":\"<s>\",\"system_prefix\":\"[SYS] \",\"system_suffix\":"
                             "\"\\n\",\"user_prefix\":\"User: \",\"user_suffix\":\"\\n\","
                             "\"assistant_prefix\":\"Bot: \",\"assistant_suffix\":\"</s>\\n\","
                             "\"generation_prompt\":\"Bot:\",\"default_system\":\"Be brief.\"}");
    chat_template *tpl;
    TU_CHECK(!chat_template_from_json(cfg, "config.chat_template", &tpl, err, sizeof err), "%s",
             err);
    render_expect(tpl, "[{\"role\":\"user\",\"content\":\"hi\"}]", 1,
                  "<s>[SYS] Be brief.\nUser: hi\nBot:");
    render_expect(tpl,
                  "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"q\"},"
                  "{\"role\":\"assistant\",\"content\":\"a\"}]",
                  0, "<s>[SYS] S\nUser: q\nBot: a</s>\n");
    render_expect(tpl, "\"plain string prompt\"", 1, "<s>[SYS] Be brief.\nUser: plain string prompt\nBot:");
    {
        cJSON *j = cJSON_Parse("[{\"role\":\"tool\",\"content\":\"x\"}]");
        chat_message *m;
        size_t n;
        char *text;
        size_t len;
        chat_messages_from_json(j, "messages", &m, &n, err, sizeof err);
        chat_render_opts o = {1, -1};
        TU_CHECK(chat_template_render(tpl, m, n, &o, &text, &len, err, sizeof err) != 0 &&
                     strstr(err, "'tool'"),
                 "custom template with a tool role: %s", err);
        free(m);
        cJSON_Delete(j);
    }
    chat_template_free(tpl);
    cJSON_Delete(cfg);

    cfg = cJSON_Parse("{\"user_prefix\":\"U\",\"assistant_prefx\":\"typo\"}");
    TU_CHECK(chat_template_from_json(cfg, "config.chat_template", &tpl, err, sizeof err) != 0 &&
                 strstr(err, "assistant_prefx") && strstr(err, "config.chat_template"),
             "custom template typo: %s", err);
    cJSON_Delete(cfg);
    cfg = cJSON_Parse("{\"user_prefix\":5}");
    TU_CHECK(chat_template_from_json(cfg, "cfg", &tpl, err, sizeof err) != 0 &&
                 strstr(err, "user_prefix"),
             "custom template number: %s", err);
    cJSON_Delete(cfg);

    TU_CHECK(!chat_template_builtin("none", NULL, &tpl, err, sizeof err), "%s", err);
    render_expect(tpl, "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"}]",
                  1, "ab");
    render_expect(tpl, "\"just text\"", 1, "just text");
    chat_template_free(tpl);
    TU_CHECK(chat_template_builtin("jinja", NULL, &tpl, err, sizeof err) != 0 &&
                 strstr(err, "'jinja'") && strstr(err, "chatml"),
             "unknown template name: %s", err);
    TU_CHECK(chat_template_resolve("/nonexistent/tpl.json", NULL, &tpl, err, sizeof err) != 0 &&
                 strstr(err, "/nonexistent/tpl.json"),
             "missing template file: %s", err);

    expect_msg_error("{\"role\":\"user\"}", "expected a string or an array");
    expect_msg_error("[{\"role\":\"user\"}]", "messages[0]: missing \"content\"");
    expect_msg_error("[{\"content\":\"x\"}]", "messages[0]: missing \"role\"");
    expect_msg_error("[{\"role\":\"user\",\"content\":null}]", "messages[0].content");
    expect_msg_error("[{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[]}]",
                     "messages[0].tool_calls");
    expect_msg_error("[\"hi\"]", "messages[0]");
}

/* Llama 3.1+ detection: the date the template renders by default (a literal
 * date_string, or today's date where it calls strftime_now, as transformers does), and
 * tool messages refused. */
static void llama31_dates(const char *fx) {
    char dir[] = "/tmp/rlvr_chat_l31_XXXXXX", path[512], err[1024];
    if (!mkdtemp(dir)) return;
    char src[4096];
    snprintf(src, sizeof src, "%s/llama31/tokenizer.json", fx);
    size_t len;
    char *data = tu_read(src, &len);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);
    char today[64];
    const time_t now = time(NULL);
    struct tm tmv;
    localtime_r(&now, &tmv);
    strftime(today, sizeof today, "%d %b %Y", &tmv);
    const char *cases[][2] = {
        {"{\"bos_token\": \"<|begin_of_text|>\", \"chat_template\": \"<|start_header_id|>"
         "<|eot_id|>{%- set date_string = \\\"5 Jan 2025\\\" %}Cutting Knowledge Date\"}",
         "5 Jan 2025"},
        {"{\"bos_token\": \"<|begin_of_text|>\", \"chat_template\": \"<|start_header_id|>"
         "<|eot_id|>{{ strftime_now('%d %b %Y') }} Cutting Knowledge Date\"}",
         today},
    };
    chat_message msgs[2] = {{"system", "  sys  ", NULL}, {"user", "hi", NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        f = fopen(path, "wb");
        fputs(cases[i][0], f);
        fclose(f);
        tok_tokenizer *t;
        chat_template *tpl;
        TU_CHECK(!tok_load(dir, &t, err, sizeof err), "%s", err);
        if (chat_template_auto(t, &tpl, err, sizeof err)) {
            TU_CHECK(0, "llama3.1 date case %zu: %s", i, err);
            tok_free(t);
            continue;
        }
        char want[256], *text;
        size_t n;
        snprintf(want, sizeof want,
                 "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting "
                 "Knowledge Date: December 2023\nToday Date: %s\n\nsys<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
                 cases[i][1]);
        chat_render_opts o = {0, -1};
        TU_CHECK(!chat_template_render(tpl, msgs, 2, &o, &text, &n, err, sizeof err), "%s", err);
        TU_CHECK(!strcmp(text, want), "llama3.1 date case %zu:\n%s\nwant\n%s", i, text, want);
        free(text);
        chat_message tool[2] = {{"user", "q", NULL}, {"tool", "{}", NULL}};
        TU_CHECK(chat_template_render(tpl, tool, 2, &o, &text, &n, err, sizeof err) != 0 &&
                     strstr(err, "messages[1].role"),
                 "llama3.1 must refuse tool messages, got '%s'", err);
        chat_template_free(tpl);
        tok_free(t);
    }
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    rmdir(dir);
}

/* Detection refuses templates it cannot render exactly. */
static void detection_errors(const char *fx) {
    char dir[] = "/tmp/rlvr_chat_detect_XXXXXX", path[512], err[1024];
    if (!mkdtemp(dir)) return;
    char src[4096];
    snprintf(src, sizeof src, "%s/gpt2/tokenizer.json", fx);
    size_t len;
    char *data = tu_read(src, &len);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
    free(data);
    const char *cases[][2] = {
        {"{\"chat_template\": \"{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}\"}",
         "not one of the built-in formats"},
        {"{}", "no chat_template"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        f = fopen(path, "wb");
        fputs(cases[i][0], f);
        fclose(f);
        tok_tokenizer *t;
        chat_template *tpl;
        TU_CHECK(!tok_load(dir, &t, err, sizeof err), "%s", err);
        TU_CHECK(chat_template_resolve("auto", t, &tpl, err, sizeof err) != 0 &&
                     strstr(err, cases[i][1]),
                 "detection case %zu: want '%s', got '%s'", i, cases[i][1], err);
        tok_free(t);
    }
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    parity(argv[1], "qwen3", "qwen3");
    parity(argv[1], "llama3", "llama3");
    parity(argv[1], "llama31", "llama3.1");
    parity(argv[1], "gpt2", "chatml");
    parity(argv[1], "gpt2_variant", "chatml");
    custom_and_none();
    detection_errors(argv[1]);
    llama31_dates(argv[1]);
    if (tu_failures) fprintf(stderr, "%d failures\n", tu_failures);
    return tu_failures ? 1 : 0;
}
