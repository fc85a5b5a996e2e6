/*
 * engine/cli/cmd_eval.c — `rlvr eval --model DIR --data FILE --reward SPEC -n K`:
 * pass@1, unbiased pass@k, maj@k and mean length of a model on a prompt dataset
 * (engine/train/evaluate.h says how correctness and answers are defined), printed as a
 * table and written as JSON (--out, atomically).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cli/cli_util.h"
#include "engine/cli/commands.h"
#include "engine/io/fileio.h"
#include "engine/model/builtin.h"
#include "engine/train/evaluate.h"

static const char *USAGE =
    "usage: rlvr eval --model DIR --data FILE --reward SPEC [--reward SPEC]... [-n N]\n"
    "         [--k K] [--temperature T] [--top-p P] [--max-new-tokens M] [--template NAME]\n"
    "         [--tokenizer PATH] [--max-prompts N] [--seed S] [--out FILE.json]\n"
    "         [--device cpu|cuda] [--threads N] [--stop STR]...\n"
    "  N samples per prompt (default 1), K for pass@k and maj@k (default N); an item is\n"
    "  correct when the first reward scores >= 1. Defaults: temperature 1 (0 = greedy),\n"
    "  256 new tokens, template auto/none as for generate.\n";

int cmd_eval(int argc, char **argv) {
    const char *model_spec = NULL, *data = NULL, *tok_path = NULL, *tpl_name = NULL,
               *out_path = NULL, *device = "cpu", *v = NULL;
    const char **specs = calloc((size_t)argc + 1, sizeof *specs);
    const char **stops = calloc((size_t)argc + 1, sizeof *stops);
    int n_specs = 0, n_stops = 0, n = 1, k = 0, max_prompts = 0, threads = 0, seed = 0;
    sampling_params sp = sampling_params_default();
    for (int i = 1; i < argc; i++) {
        int r = 0, bad = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if ((r = cli_opt(argc, argv, &i, "--model", &model_spec)) ||
            (r = cli_opt(argc, argv, &i, "--data", &data)) ||
            (r = cli_opt(argc, argv, &i, "--tokenizer", &tok_path)) ||
            (r = cli_opt(argc, argv, &i, "--template", &tpl_name)) ||
            (r = cli_opt(argc, argv, &i, "--out", &out_path)) ||
            (r = cli_opt(argc, argv, &i, "--device", &device))) {
            bad = r < 0;
        } else if ((r = cli_opt(argc, argv, &i, "--reward", &v))) {
            bad = r < 0;
            if (!bad) specs[n_specs++] = v;
        } else if ((r = cli_opt(argc, argv, &i, "--stop", &v))) {
            bad = r < 0;
            if (!bad) stops[n_stops++] = v;
        } else if ((r = cli_opt(argc, argv, &i, "-n", &v))) {
            bad = r < 0 || cli_int("eval", "-n", v, 1, 4096, &n);
        } else if ((r = cli_opt(argc, argv, &i, "--k", &v))) {
            bad = r < 0 || cli_int("eval", "--k", v, 1, 4096, &k);
        } else if ((r = cli_opt(argc, argv, &i, "--max-prompts", &v))) {
            bad = r < 0 || cli_int("eval", "--max-prompts", v, 0, 1 << 30, &max_prompts);
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            bad = r < 0 || cli_int("eval", "--threads", v, 1, 4096, &threads);
        } else if ((r = cli_opt(argc, argv, &i, "--seed", &v))) {
            bad = r < 0 || cli_int("eval", "--seed", v, 0, 0x7fffffff, &seed);
        } else if ((r = cli_opt(argc, argv, &i, "--temperature", &v))) {
            bad = r < 0 || cli_float("eval", "--temperature", v, 0.0f, 100.0f, &sp.temperature);
        } else if ((r = cli_opt(argc, argv, &i, "--top-p", &v))) {
            bad = r < 0 || cli_float("eval", "--top-p", v, 1e-6f, 1.0f, &sp.top_p);
        } else if ((r = cli_opt(argc, argv, &i, "--max-new-tokens", &v))) {
            bad = r < 0 || cli_int("eval", "--max-new-tokens", v, 1, 1 << 20, &sp.max_new_tokens);
        } else {
            fprintf(stderr, "rlvr eval: unknown argument '%s'\n%s", argv[i], USAGE);
            return 2;
        }
        if (bad) return 2;
    }
    if (!model_spec || !data || n_specs == 0) {
        fprintf(stderr, "rlvr eval: --model, --data and at least one --reward are required\n%s",
                USAGE);
        return 2;
    }
    if (k == 0) k = n;
    if (k > n) {
        fprintf(stderr, "rlvr eval: --k %d exceeds -n %d\n", k, n);
        return 2;
    }
    char err[4096];
    int rc = 1;
    rlvr_backend *be = rlvr_backend_create(device, threads, err, sizeof err);
    model *m = NULL;
    tok_tokenizer *tok = NULL;
    chat_template *tpl = NULL;
    dataset *ds = NULL;
    sampler *smp = NULL;
    reward_host *rh = NULL;
    reward_spec *rs = calloc((size_t)n_specs, sizeof *rs);
    char **bufs = calloc((size_t)n_specs, sizeof *bufs);
    if (!be || model_open(model_spec, be, &m, err, sizeof err)) goto fail;
    if (!tok_path) tok_path = model_spec;
    if (tok_load(tok_path, &tok, err, sizeof err)) goto fail;
    const char *name = tpl_name ? tpl_name : tok_chat_template_source(tok) ? "auto" : "none";
    if (chat_template_resolve(name, tok, &tpl, err, sizeof err)) goto fail;
    dataset_opts dop = dataset_opts_default();
    dop.shuffle = 0;
    if (dataset_load(data, &dop, &ds, err, sizeof err)) goto fail;
    for (int i = 0; i < n_specs; i++)
        if (reward_spec_parse(specs[i], &rs[i], &bufs[i], err, sizeof err)) goto fail;
    reward_host_opts ro = {0};
    if (!(rh = reward_host_create(rs, n_specs, &ro, err, sizeof err))) goto fail;
    if (sampler_create(m, tok, 512u << 20, &smp, err, sizeof err)) goto fail;
    sp.n_eos_ids = tok_eos_ids(tok, &sp.eos_ids);
    sp.stop_strings = stops;
    sp.n_stop_strings = n_stops;
    sp.seed = (uint64_t)seed;
    eval_request rq = {tok, tpl, smp, rh, ds, max_prompts, n, k, sp, 120.0};
    eval_result res;
    if (evaluate(&rq, &res, err, sizeof err)) goto fail;
    printf("%-12s %s\n%-12s %s\n%-12s %d x %d samples (T=%g)\n", "model", model_spec, "data",
           data, "prompts", res.n_prompts, n, sp.temperature);
    printf("%-12s %.4f\n%-12s %.4f\n%-12s %.4f\n%-12s %.2f tokens\n%-12s %.4f\n", "pass@1",
           res.pass1, "pass@k", res.pass_k, "maj@k", res.maj_k, "mean length", res.mean_len,
           "mean reward", res.reward_mean);
    if (out_path) {
        char json[1024];
        int len = snprintf(json, sizeof json,
                           "{\"model\": \"%s\", \"data\": \"%s\", \"prompts\": %d, \"n\": %d, "
                           "\"k\": %d, \"temperature\": %g, \"pass@1\": %.6f, \"pass@k\": %.6f, "
                           "\"maj@k\": %.6f, \"mean_length\": %.4f, \"mean_reward\": %.6f}\n",
                           model_spec, data, res.n_prompts, n, k, sp.temperature, res.pass1,
                           res.pass_k, res.maj_k, res.mean_len, res.reward_mean);
        if (fio_write_file(out_path, json, (size_t)len, err, sizeof err)) goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "rlvr eval: %s\n", err);
done:
    sampler_free(smp);
    reward_host_free(rh);
    for (int i = 0; i < n_specs; i++) free(bufs[i]);
    free(bufs);
    free(rs);
    free(specs);
    free(stops);
    dataset_free(ds);
    chat_template_free(tpl);
    tok_free(tok);
    model_free(m);
    if (be) be->destroy(be);
    return rc;
}
