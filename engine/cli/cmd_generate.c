/*
 * engine/cli/cmd_generate.c — `rlvr generate`: G sampled completions per prompt.
 * Public interface (scripts depend on it):
 *   rlvr generate --model DIR [--tokenizer PATH] --input prompts.jsonl -n G
 *       [--temperature T --top-p P --top-k K --min-p M --max-new-tokens N --stop STR
 *        --seed S --template NAME]
 * reads JSON lines with "prompt" (a string: one user message) or "messages" (a list of
 * {role, content}) — or "prompt_ids" (token ids, no template) — and writes one JSON
 * line per completion: prompt_index, sample_index, prompt_ids (the templated prompt),
 * ids, text, logprobs, finish_reason. Progress (tokens/s) goes to stderr on a terminal.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cli/cli_util.h"
#include "engine/cli/commands.h"
#include "engine/model/builtin.h"
#include "engine/rollout/sampler.h"
#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"

static const char *USAGE =
    "usage: rlvr generate --model MODEL [--tokenizer PATH] --input FILE -n G\n"
    "         [--temperature T] [--top-p P] [--top-k K] [--min-p M] [--max-new-tokens N]\n"
    "         [--stop STR]... [--stop-id ID]... [--seed S] [--template NAME]\n"
    "         [--repetition-penalty R] [--device cpu|cuda] [--threads N] [--kv-cache-mb MB]\n"
    "         [--stats]\n"
    "  MODEL      a Hugging Face model directory or builtin:NAME\n"
    "  PATH       tokenizer.json or its directory (default: the model directory when it\n"
    "             has a tokenizer.json; \"\" for none: prompt_ids input only)\n"
    "  FILE       JSON lines with \"prompt\" (string), \"messages\" ([{role, content}]) or\n"
    "             \"prompt_ids\" ([ids], used as is); '-' reads stdin\n"
    "  NAME       chat template: auto (default when the tokenizer has one), chatml, llama3,\n"
    "             llama3.1, qwen3, none, or a JSON file with a custom template\n"
    "  Defaults: -n 1, temperature 1 (0 = greedy), top-p 1, top-k 0 (off), min-p 0,\n"
    "  max-new-tokens 256, seed 0; EOS ids from generation_config.json / tokenizer_config.\n"
    "  Output: one JSON line per completion {prompt_index, sample_index, prompt_ids, ids,\n"
    "  text, logprobs, finish_reason}; logprobs are log softmax(logits/T) of each token.\n"
    "  --stats prints one JSON line of timings and cache use to stderr at the end.\n";

typedef struct {
    int32_t *ids;
    int n;
} prompt_ids;

static void write_completion(FILE *out, const prompt_ids *p, const completion *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt_index", c->prompt_index);
    cJSON_AddNumberToObject(o, "sample_index", c->sample_index);
    cJSON *pi = cJSON_AddArrayToObject(o, "prompt_ids");
    for (int i = 0; i < p->n; i++) cJSON_AddItemToArray(pi, cJSON_CreateNumber(p->ids[i]));
    cJSON *ids = cJSON_AddArrayToObject(o, "ids");
    for (int i = 0; i < c->n; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(c->ids[i]));
    if (c->text) cJSON_AddStringToObject(o, "text", c->text);
    else cJSON_AddNullToObject(o, "text");
    cJSON *lp = cJSON_AddArrayToObject(o, "logprobs");
    for (int i = 0; i < c->n; i++) cJSON_AddItemToArray(lp, cJSON_CreateNumber(c->logprobs[i]));
    cJSON_AddStringToObject(o, "finish_reason", finish_reason_name(c->finish));
    char *s = cJSON_PrintUnformatted(o);
    fprintf(out, "%s\n", s);
    free(s);
    cJSON_Delete(o);
}

/* One input line → token ids (template applied). Prints an error naming the line. */
static int line_to_ids(const char *line, const char *src, long lineno, const tok_tokenizer *tok,
                       const chat_template *tpl, int V, prompt_ids *out) {
    char err[1024];
    cJSON *j = cJSON_Parse(line);
    int rc = -1;
    if (!j || !cJSON_IsObject(j)) {
        fprintf(stderr, "rlvr generate: %s:%ld: not a JSON object\n", src, lineno);
        goto done;
    }
    const cJSON *pids = cJSON_GetObjectItemCaseSensitive(j, "prompt_ids");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages");
    if (!msgs) msgs = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    if (pids) {
        if (!cJSON_IsArray(pids)) {
            fprintf(stderr, "rlvr generate: %s:%ld: \"prompt_ids\" must be an array of ids\n", src,
                    lineno);
            goto done;
        }
        out->n = cJSON_GetArraySize(pids);
        out->ids = malloc((size_t)(out->n + 1) * sizeof(int32_t));
        int i = 0;
        for (const cJSON *v = pids->child; v; v = v->next, i++) {
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= V ||
                v->valuedouble != (int)v->valuedouble) {
                fprintf(stderr, "rlvr generate: %s:%ld: prompt_ids[%d] is not a token id in [0, %d)\n",
                        src, lineno, i, V);
                goto done;
            }
            out->ids[i] = (int32_t)v->valuedouble;
        }
        rc = 0;
        goto done;
    }
    if (!msgs) {
        fprintf(stderr, "rlvr generate: %s:%ld: expected \"prompt\" (string), \"messages\" (list) or "
                        "\"prompt_ids\"\n", src, lineno);
        goto done;
    }
    if (!tok) {
        fprintf(stderr, "rlvr generate: %s:%ld: text prompts need a tokenizer (--tokenizer PATH)\n",
                src, lineno);
        goto done;
    }
    chat_message *m = NULL;
    size_t nm = 0;
    char *text = NULL;
    size_t len = 0;
    char where[64];
    snprintf(where, sizeof where, "%s:%ld", src, lineno);
    chat_render_opts o = {.add_generation_prompt = 1, .enable_thinking = -1};
    if (chat_messages_from_json(msgs, where, &m, &nm, err, sizeof err) ||
        chat_template_render(tpl, m, nm, &o, &text, &len, err, sizeof err)) {
        fprintf(stderr, "rlvr generate: %s\n", err);
        free(m);
        goto done;
    }
    free(m);
    size_t n = 0;
    if (tok_encode(tok, text, len, &out->ids, &n, err, sizeof err)) {
        fprintf(stderr, "rlvr generate: %s:%ld: %s\n", src, lineno, err);
        free(text);
        goto done;
    }
    free(text);
    out->n = (int)n;
    rc = 0;
done:
    cJSON_Delete(j);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    const char *model_spec = NULL, *tok_path = NULL, *input = NULL, *device = "cpu",
               *tpl_name = NULL, *v = NULL;
    int G = 1, threads = 0, kv_mb = 1024, want_stats = 0;
    sampling_params p = sampling_params_default();
    const char **stops = calloc((size_t)argc + 1, sizeof *stops);
    int32_t *stop_ids = calloc((size_t)argc + 1, sizeof *stop_ids);
    int n_stops = 0, n_stop_ids = 0;
    for (int i = 1; i < argc; i++) {
        int r = 0, bad = 0, x;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--stats")) {
            want_stats = 1;
            continue;
        }
        if ((r = cli_opt(argc, argv, &i, "--model", &model_spec)) ||
            (r = cli_opt(argc, argv, &i, "--tokenizer", &tok_path)) ||
            (r = cli_opt(argc, argv, &i, "--input", &input)) ||
            (r = cli_opt(argc, argv, &i, "--device", &device)) ||
            (r = cli_opt(argc, argv, &i, "--template", &tpl_name))) {
            if (r < 0) return 2;
        } else if ((r = cli_opt(argc, argv, &i, "-n", &v))) {
            bad = r < 0 || cli_int("generate", "-n", v, 1, 512, &G);
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            bad = r < 0 || cli_int("generate", "--threads", v, 1, 4096, &threads);
        } else if ((r = cli_opt(argc, argv, &i, "--kv-cache-mb", &v))) {
            bad = r < 0 || cli_int("generate", "--kv-cache-mb", v, 1, 1 << 20, &kv_mb);
        } else if ((r = cli_opt(argc, argv, &i, "--temperature", &v))) {
            bad = r < 0 || cli_float("generate", "--temperature", v, 0.0f, 100.0f, &p.temperature);
        } else if ((r = cli_opt(argc, argv, &i, "--top-p", &v))) {
            bad = r < 0 || cli_float("generate", "--top-p", v, 1e-6f, 1.0f, &p.top_p);
        } else if ((r = cli_opt(argc, argv, &i, "--min-p", &v))) {
            bad = r < 0 || cli_float("generate", "--min-p", v, 0.0f, 1.0f, &p.min_p);
        } else if ((r = cli_opt(argc, argv, &i, "--repetition-penalty", &v))) {
            bad = r < 0 || cli_float("generate", "--repetition-penalty", v, 1e-3f, 100.0f,
                                     &p.repetition_penalty);
        } else if ((r = cli_opt(argc, argv, &i, "--top-k", &v))) {
            bad = r < 0 || cli_int("generate", "--top-k", v, 0, 1 << 30, &p.top_k);
        } else if ((r = cli_opt(argc, argv, &i, "--max-new-tokens", &v))) {
            bad = r < 0 || cli_int("generate", "--max-new-tokens", v, 1, 1 << 20, &p.max_new_tokens);
        } else if ((r = cli_opt(argc, argv, &i, "--seed", &v))) {
            bad = r < 0 || cli_int("generate", "--seed", v, 0, 0x7fffffff, &x);
            p.seed = (uint64_t)x;
        } else if ((r = cli_opt(argc, argv, &i, "--stop", &v))) {
            if (r < 0) return 2;
            if (!*v) {
                fprintf(stderr, "rlvr generate: --stop expects a non-empty string\n");
                return 2;
            }
            stops[n_stops++] = v;
        } else if ((r = cli_opt(argc, argv, &i, "--stop-id", &v))) {
            bad = r < 0 || cli_int("generate", "--stop-id", v, 0, 0x7fffffff, &x);
            stop_ids[n_stop_ids++] = x;
        } else {
            fprintf(stderr, "rlvr generate: unknown argument '%s'\n%s", argv[i], USAGE);
            return 2;
        }
        if (bad) return 2;
    }
    if (!model_spec || !input) {
        fprintf(stderr, "rlvr generate: --model and --input are required\n%s", USAGE);
        return 2;
    }
    char err[2048];
    int rc = 1;
    FILE *in = strcmp(input, "-") ? fopen(input, "r") : stdin;
    if (!in) {
        fprintf(stderr, "rlvr generate: cannot open --input %s: %m\n", input);
        return 1;
    }
    rlvr_backend *be = rlvr_backend_create(device, threads, err, sizeof err);
    model *m = NULL;
    tok_tokenizer *tok = NULL;
    chat_template *tpl = NULL;
    sampler *s = NULL;
    prompt_ids *ps = NULL;
    int np = 0, cap = 0;
    if (!be || model_open(model_spec, be, &m, err, sizeof err)) {
        fprintf(stderr, "rlvr generate: %s\n", err);
        goto done;
    }
    if (!tok_path && strncmp(model_spec, "builtin:", 8) != 0) {
        /* the model directory's tokenizer when it has one; else ids-only prompts */
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/tokenizer.json", model_spec);
        if (access(probe, R_OK) == 0) tok_path = model_spec;
    }
    if (tok_path && !*tok_path) tok_path = NULL; /* --tokenizer "": none */
    if (tok_path) {
        if (tok_load(tok_path, &tok, err, sizeof err)) {
            fprintf(stderr, "rlvr generate: %s\n", err);
            goto done;
        }
        if (tok_vocab_size(tok) > m->cfg.vocab_size) {
            fprintf(stderr, "rlvr generate: the tokenizer has %d ids but the model's vocabulary is %d\n",
                    tok_vocab_size(tok), m->cfg.vocab_size);
            goto done;
        }
        const char *name = tpl_name ? tpl_name : tok_chat_template_source(tok) ? "auto" : "none";
        if (chat_template_resolve(name, tok, &tpl, err, sizeof err)) {
            fprintf(stderr, "rlvr generate: %s\n", err);
            goto done;
        }
        p.n_eos_ids = tok_eos_ids(tok, &p.eos_ids);
    } else if (n_stops) {
        fprintf(stderr, "rlvr generate: --stop needs a tokenizer (--tokenizer PATH)\n");
        goto done;
    }
    p.stop_strings = stops;
    p.n_stop_strings = n_stops;
    p.stop_ids = stop_ids;
    p.n_stop_ids = n_stop_ids;
    /* read every prompt first: a bad line fails before any work */
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0, n;
    const char *src = strcmp(input, "-") ? input : "<stdin>";
    while ((n = cli_getline(&line, &lcap, in)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (np == cap) {
            cap = cap ? cap * 2 : 64;
            prompt_ids *r = realloc(ps, (size_t)cap * sizeof *ps);
            if (!r) goto done;
            ps = r;
        }
        memset(&ps[np], 0, sizeof ps[np]);
        if (line_to_ids(line, src, lineno, tok, tpl, m->cfg.vocab_size, &ps[np])) {
            free(ps[np].ids);
            free(line);
            goto done;
        }
        np++;
    }
    free(line);
    if (sampler_create(m, tok, (size_t)kv_mb << 20, &s, err, sizeof err)) {
        fprintf(stderr, "rlvr generate: %s\n", err);
        goto done;
    }
    const int progress = isatty(STDERR_FILENO), chunk = 16;
    long tokens = 0, prompt_tokens = 0;
    double secs = 0, prefill_s = 0, decode_s = 0;
    size_t kv_peak = 0, kv_budget = 0;
    int max_active = 0;
    long share_units = 0, share_rows = 0;
    for (int c0 = 0; c0 < np; c0 += chunk) {
        const int cn = np - c0 < chunk ? np - c0 : chunk;
        prompt_ref refs[16];
        for (int i = 0; i < cn; i++) refs[i] = (prompt_ref){ps[c0 + i].ids, ps[c0 + i].n, c0 + i};
        completion *cs = NULL;
        sampler_stats st;
        if (sampler_generate(s, refs, cn, G, &p, &cs, &st, err, sizeof err)) {
            fprintf(stderr, "rlvr generate: %s\n", err);
            goto done;
        }
        for (int i = 0; i < cn * G; i++) write_completion(stdout, &ps[cs[i].prompt_index], &cs[i]);
        fflush(stdout);
        completions_free(cs, cn * G);
        tokens += st.generated_tokens;
        prompt_tokens += st.prompt_tokens;
        secs += st.total_s;
        prefill_s += st.prefill_s;
        decode_s += st.decode_s;
        if (st.kv_bytes_peak > kv_peak) kv_peak = st.kv_bytes_peak;
        kv_budget = st.kv_bytes_budget;
        if (st.max_active > max_active) max_active = st.max_active;
        share_units += st.share_units;
        share_rows += st.share_rows;
        if (progress)
            fprintf(stderr, "\rgenerate: %d/%d prompts, %ld tokens, %.1f tok/s   ", c0 + cn, np,
                    tokens, secs > 0 ? tokens / secs : 0.0);
    }
    if (progress) fprintf(stderr, "\n");
    if (want_stats)
        fprintf(stderr,
                "{\"prompts\": %d, \"samples_per_prompt\": %d, \"prompt_tokens\": %ld, "
                "\"generated_tokens\": %ld, \"seconds\": %.4f, \"tokens_per_s\": %.1f, "
                "\"prefill_s\": %.4f, \"decode_s\": %.4f, \"kv_budget_mib\": %.1f, "
                "\"kv_peak_mib\": %.2f, \"max_decode_batch\": %d, \"shared_prefix_units\": %ld, "
                "\"shared_prefix_rows\": %ld, \"device\": \"%s\"}\n",
                np, G, prompt_tokens, tokens, secs, secs > 0 ? tokens / secs : 0.0, prefill_s,
                decode_s, kv_budget / 1048576.0, kv_peak / 1048576.0, max_active, share_units,
                share_rows, be->name);
    rc = 0;
done:
    for (int i = 0; i < np; i++) free(ps[i].ids);
    free(ps);
    free(stops);
    free(stop_ids);
    sampler_free(s);
    chat_template_free(tpl);
    tok_free(tok);
    model_free(m);
    if (be) be->destroy(be);
    if (in != stdin) fclose(in);
    return rc;
}
