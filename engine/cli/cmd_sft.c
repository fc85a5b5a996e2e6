/*
 * engine/cli/cmd_sft.c — `rlvr sft`: supervised fine-tuning on {"prompt", "completion"}
 * JSON lines (engine/train/sft.h), saving a Hugging Face model directory with the
 * tokenizer files beside the weights (so `rlvr generate --model OUT` works).
 *
 * Each line's prompt ("prompt" string or "messages" list, as for rlvr train) is rendered
 * with the chat template (--template, default none) plus its generation prompt and
 * tokenised; the completion ("completion", a string or a number) is tokenised on its own
 * and the tokenizer's first EOS id appended — the same ids the sampler sees at rollout.
 *
 * The model is --model (a directory or builtin:NAME) or a fresh random one: --init
 * builtin:NAME with the vocabulary resized to the tokenizer's (--vocab-from, default the
 * tokenizer) and optional shape overrides. One JSON line per report on stdout
 * {"step", "loss", "lr", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"}; a summary on
 * stderr.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cli/cli_util.h"
#include "engine/cli/commands.h"
#include "engine/data/dataset.h"
#include "engine/io/fileio.h"
#include "engine/io/safetensors.h"
#include "engine/model/builtin.h"
#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"
#include "engine/train/sft.h"

static const char *USAGE =
    "usage: rlvr sft (--model MODEL | --init builtin:NAME [--vocab-from TOK] [shape])\n"
    "                [--tokenizer TOK] --data FILE --out DIR [--template NAME]\n"
    "                [--steps N | --epochs E] [--lr LR] [--warmup N] [--min-lr-ratio R]\n"
    "                [--batch-tokens N] [--weight-decay W] [--max-grad-norm G] [--seed S]\n"
    "                [--log-every K] [--threads N] [--device cpu|cuda] [--dtype F32|BF16]\n"
    "  MODEL       a Hugging Face model directory or builtin:NAME (its weights)\n"
    "  --init      a fresh random model of a built-in shape, vocabulary = the size of\n"
    "              --vocab-from (default: TOK); shape overrides: --hidden C\n"
    "              --intermediate I --layers L --heads H --kv-heads K --head-dim D\n"
    "  TOK         tokenizer.json or its directory (default: the model directory)\n"
    "  FILE        JSON lines {\"prompt\": \"...\" | \"messages\": [...], \"completion\": "
    "\"...\"}\n"
    "  DIR         output model directory: config.json, model.safetensors, tokenizer files\n"
    "  NAME        chat template: none (default), auto, chatml, llama3, llama3.1, qwen3, or a\n"
    "              JSON file\n"
    "  Loss: mean negative log-likelihood of the completion tokens (+ EOS), prompt tokens\n"
    "  masked; packed batches of at most --batch-tokens tokens, one AdamW step each;\n"
    "  linear warm-up then cosine to lr*min-lr-ratio.\n"
    "  Defaults: --epochs 1, --lr 1e-3, --warmup 10, --min-lr-ratio 0.1, --batch-tokens\n"
    "  4096, --weight-decay 0.01, --max-grad-norm 1, --seed 0 (order and --init weights),\n"
    "  --log-every 10, --dtype F32.\n"
    "  stdout: one JSON line per report {step, loss, lr, grad_norm, tokens, tokens_per_s,\n"
    "  elapsed_s}; loss is the mean over the steps since the previous report.\n";

typedef struct {
    const char *model, *init, *vocab_from, *tok, *data, *out, *tpl, *device, *dtype;
    int threads, hidden, inter, layers, heads, kv_heads, head_dim;
    sft_config cfg;
} sft_args;

static int parse_args(int argc, char **argv, sft_args *a) {
    memset(a, 0, sizeof *a);
    a->tpl = "none";
    a->device = "cpu";
    a->dtype = "F32";
    a->cfg = sft_default_config();
    for (int i = 1; i < argc; i++) {
        int r = 0, bad = 0, x;
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            exit(0);
        }
        if ((r = cli_opt(argc, argv, &i, "--model", &a->model)) ||
            (r = cli_opt(argc, argv, &i, "--init", &a->init)) ||
            (r = cli_opt(argc, argv, &i, "--vocab-from", &a->vocab_from)) ||
            (r = cli_opt(argc, argv, &i, "--tokenizer", &a->tok)) ||
            (r = cli_opt(argc, argv, &i, "--data", &a->data)) ||
            (r = cli_opt(argc, argv, &i, "--out", &a->out)) ||
            (r = cli_opt(argc, argv, &i, "--template", &a->tpl)) ||
            (r = cli_opt(argc, argv, &i, "--device", &a->device)) ||
            (r = cli_opt(argc, argv, &i, "--dtype", &a->dtype))) {
            bad = r < 0;
        } else if ((r = cli_opt(argc, argv, &i, "--steps", &v))) {
            bad = r < 0 || cli_int("sft", "--steps", v, 1, 10000000, &a->cfg.steps);
        } else if ((r = cli_opt(argc, argv, &i, "--epochs", &v))) {
            bad = r < 0 || cli_int("sft", "--epochs", v, 1, 1000000, &a->cfg.epochs);
        } else if ((r = cli_opt(argc, argv, &i, "--lr", &v))) {
            bad = r < 0 || cli_float("sft", "--lr", v, 1e-12f, 10.0f, &a->cfg.lr);
        } else if ((r = cli_opt(argc, argv, &i, "--warmup", &v))) {
            bad = r < 0 || cli_int("sft", "--warmup", v, 0, 10000000, &a->cfg.warmup_steps);
        } else if ((r = cli_opt(argc, argv, &i, "--min-lr-ratio", &v))) {
            bad = r < 0 ||
                  cli_float("sft", "--min-lr-ratio", v, 0.0f, 1.0f, &a->cfg.min_lr_ratio);
        } else if ((r = cli_opt(argc, argv, &i, "--batch-tokens", &v))) {
            bad =
                r < 0 || cli_int("sft", "--batch-tokens", v, 2, 1 << 24, &a->cfg.batch_tokens);
        } else if ((r = cli_opt(argc, argv, &i, "--weight-decay", &v))) {
            bad = r < 0 || cli_float("sft", "--weight-decay", v, 0.0f, 10.0f,
                                     &a->cfg.optim.weight_decay);
        } else if ((r = cli_opt(argc, argv, &i, "--max-grad-norm", &v))) {
            bad = r < 0 || cli_float("sft", "--max-grad-norm", v, 0.0f, 1e30f,
                                     &a->cfg.optim.max_grad_norm);
        } else if ((r = cli_opt(argc, argv, &i, "--seed", &v))) {
            bad = r < 0 || cli_int("sft", "--seed", v, 0, 0x7fffffff, &x);
            a->cfg.seed = (uint64_t)x;
        } else if ((r = cli_opt(argc, argv, &i, "--log-every", &v))) {
            bad = r < 0 || cli_int("sft", "--log-every", v, 1, 1 << 30, &a->cfg.report_every);
        } else if ((r = cli_opt(argc, argv, &i, "--threads", &v))) {
            bad = r < 0 || cli_int("sft", "--threads", v, 1, 4096, &a->threads);
        } else if ((r = cli_opt(argc, argv, &i, "--hidden", &v))) {
            bad = r < 0 || cli_int("sft", "--hidden", v, 1, 1 << 16, &a->hidden);
        } else if ((r = cli_opt(argc, argv, &i, "--intermediate", &v))) {
            bad = r < 0 || cli_int("sft", "--intermediate", v, 1, 1 << 18, &a->inter);
        } else if ((r = cli_opt(argc, argv, &i, "--layers", &v))) {
            bad = r < 0 || cli_int("sft", "--layers", v, 1, 1024, &a->layers);
        } else if ((r = cli_opt(argc, argv, &i, "--heads", &v))) {
            bad = r < 0 || cli_int("sft", "--heads", v, 1, 1024, &a->heads);
        } else if ((r = cli_opt(argc, argv, &i, "--kv-heads", &v))) {
            bad = r < 0 || cli_int("sft", "--kv-heads", v, 1, 1024, &a->kv_heads);
        } else if ((r = cli_opt(argc, argv, &i, "--head-dim", &v))) {
            bad = r < 0 || cli_int("sft", "--head-dim", v, 2, 1024, &a->head_dim);
        } else {
            fprintf(stderr, "rlvr sft: unknown argument '%s'\n%s", argv[i], USAGE);
            return -1;
        }
        if (bad) return -1;
    }
    if (!!a->model == !!a->init) {
        fprintf(stderr, "rlvr sft: give exactly one of --model and --init\n%s", USAGE);
        return -1;
    }
    if (a->init && strncmp(a->init, "builtin:", 8) != 0) {
        fprintf(stderr, "rlvr sft: --init '%s': expected builtin:NAME\n", a->init);
        return -1;
    }
    if (!a->init && (a->vocab_from || a->hidden || a->inter || a->layers || a->heads ||
                     a->kv_heads || a->head_dim)) {
        fprintf(stderr, "rlvr sft: --vocab-from and the shape options go with --init\n");
        return -1;
    }
    if (!a->data || !a->out) {
        fprintf(stderr, "rlvr sft: --data and --out are required\n%s", USAGE);
        return -1;
    }
    if (strcmp(a->dtype, "F32") && strcmp(a->dtype, "BF16")) {
        fprintf(stderr, "rlvr sft: --dtype '%s': expected F32 or BF16\n", a->dtype);
        return -1;
    }
    return 0;
}

/* The model to train: loaded, or a fresh random one of a built-in shape. */
static int open_model(const sft_args *a, rlvr_backend *be, model **m, char *err,
                      size_t errlen) {
    if (a->model) return model_open(a->model, be, m, err, errlen);
    model_config cfg;
    if (model_builtin_config(a->init + 8, &cfg, err, errlen)) return -1;
    const char *vf = a->vocab_from ? a->vocab_from : a->tok;
    if (!vf) {
        snprintf(err, errlen,
                 "--init needs --vocab-from or --tokenizer for the vocabulary size");
        return -1;
    }
    tok_tokenizer *t;
    if (tok_load(vf, &t, err, errlen)) return -1;
    cfg.vocab_size = tok_vocab_size(t);
    tok_free(t);
    if (a->hidden) cfg.hidden_size = a->hidden;
    if (a->inter) cfg.intermediate_size = a->inter;
    if (a->layers) cfg.num_layers = a->layers;
    if (a->heads) cfg.num_heads = a->heads;
    if (a->kv_heads) cfg.num_kv_heads = a->kv_heads;
    if (a->head_dim)
        cfg.head_dim = a->head_dim;
    else if (a->hidden || a->heads)
        cfg.head_dim = cfg.hidden_size / cfg.num_heads;
    if (cfg.head_dim < 2 || cfg.head_dim % 2 || cfg.num_heads % cfg.num_kv_heads) {
        snprintf(err, errlen,
                 "--init shape: head_dim %d must be even and >= 2 and heads %d a multiple of "
                 "kv-heads %d",
                 cfg.head_dim, cfg.num_heads, cfg.num_kv_heads);
        return -1;
    }
    snprintf(cfg.torch_dtype, sizeof cfg.torch_dtype, "%s",
             strcmp(a->dtype, "BF16") ? "float32" : "bfloat16");
    if (model_create(&cfg, be, m, err, errlen)) return -1;
    model_init_random(*m, a->cfg.seed);
    return 0;
}

typedef struct {
    sft_example *ex;
    int32_t **bufs;
    int n;
} sft_data;

static void data_free(sft_data *d) {
    for (int i = 0; i < d->n; i++)
        free(d->bufs[i]);
    free(d->bufs);
    free(d->ex);
}

/* The JSONL file into tokenised examples (prompt + generation prompt | completion + EOS). */
static int load_examples(const char *path, const tok_tokenizer *tok, const chat_template *tpl,
                         sft_data *d, char *err, size_t errlen) {
    const int32_t *eos;
    if (tok_eos_ids(tok, &eos) < 1) {
        snprintf(err, errlen,
                 "tokenizer %s has no EOS token (tokenizer_config.json eos_token or "
                 "generation_config.json eos_token_id); SFT appends it to every completion",
                 tok_path(tok));
        return -1;
    }
    dataset_opts o = dataset_opts_default();
    o.answer_field = "completion";
    o.shuffle = 0;
    dataset *ds;
    if (dataset_load(path, &o, &ds, err, errlen)) return -1;
    int n = dataset_size(ds), rc = -1;
    memset(d, 0, sizeof *d);
    d->ex = calloc((size_t)n, sizeof *d->ex);
    d->bufs = calloc((size_t)n, sizeof *d->bufs);
    if (!d->ex || !d->bufs) {
        snprintf(err, errlen, "out of memory reading %s", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const data_example *e = dataset_get(ds, i);
        char where[64], inner[1024];
        snprintf(where, sizeof where, "line %ld", e->line);
        if (!e->has_answer) {
            snprintf(err, errlen, "%s:%ld: missing \"completion\" (a string or a number)", path,
                     e->line);
            goto done;
        }
        cJSON *pj = cJSON_Parse(e->prompt_json);
        chat_message *msgs = NULL;
        size_t nm = 0;
        char *text = NULL;
        size_t tlen;
        int32_t *pids = NULL, *cids = NULL;
        size_t np = 0, nc = 0;
        chat_render_opts ro = {.add_generation_prompt = 1, .enable_thinking = -1};
        int bad =
            !pj || chat_messages_from_json(pj, where, &msgs, &nm, inner, sizeof inner) ||
            chat_template_render(tpl, msgs, nm, &ro, &text, &tlen, inner, sizeof inner) ||
            tok_encode(tok, text, tlen, &pids, &np, inner, sizeof inner) ||
            tok_encode(tok, e->answer, strlen(e->answer), &cids, &nc, inner, sizeof inner);
        if (!pj) snprintf(inner, sizeof inner, "prompt is not valid JSON");
        cJSON_Delete(pj);
        free(msgs);
        free(text);
        if (!bad && np == 0)
            snprintf(inner, sizeof inner, "the rendered prompt has no tokens"), bad = 1;
        if (bad) {
            free(pids);
            free(cids);
            snprintf(err, errlen, "%s:%ld: %s", path, e->line, inner);
            goto done;
        }
        int32_t *ids = malloc((np + nc + 1) * sizeof *ids);
        if (!ids) {
            free(pids);
            free(cids);
            snprintf(err, errlen, "out of memory reading %s", path);
            goto done;
        }
        memcpy(ids, pids, np * sizeof *ids);
        memcpy(ids + np, cids, nc * sizeof *ids);
        ids[np + nc] = eos[0];
        free(pids);
        free(cids);
        d->bufs[i] = ids;
        d->ex[i] = (sft_example){.ids = ids, .n = (int)(np + nc + 1), .n_prompt = (int)np};
        d->n = i + 1;
    }
    rc = 0;
done:
    dataset_free(ds);
    if (rc) {
        data_free(d);
        memset(d, 0, sizeof *d);
    }
    return rc;
}

/* Copies the tokenizer's files into the model directory (atomically each). */
static int copy_tokenizer_files(const tok_tokenizer *tok, const char *out, char *err,
                                size_t errlen) {
    static const char *FILES[] = {"tokenizer.json", "tokenizer_config.json",
                                  "generation_config.json", "special_tokens_map.json"};
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tok_path(tok));
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        char src[8192], dst[8192];
        snprintf(src, sizeof src, "%s/%s", dir, FILES[i]);
        snprintf(dst, sizeof dst, "%s/%s", out, FILES[i]);
        if (i == 0)
            snprintf(src, sizeof src, "%s", tok_path(tok));
        else if (access(src, R_OK) != 0)
            continue;
        char *buf;
        size_t len;
        if (fio_read_file(src, &buf, &len, err, errlen)) return -1;
        int rc = fio_write_file(dst, buf, len, err, errlen);
        free(buf);
        if (rc) return -1;
    }
    return 0;
}

static int report(void *ctx, const sft_progress *p) {
    (void)ctx;
    double tps = p->elapsed_s > 0 ? p->tokens / p->elapsed_s : 0;
    printf("{\"step\": %d, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6f, \"tokens\": %ld, "
           "\"tokens_per_s\": %.1f, \"elapsed_s\": %.3f}\n",
           p->step, p->loss_avg, (double)p->lr, p->grad_norm, p->tokens, tps, p->elapsed_s);
    fflush(stdout);
    if (isatty(2))
        fprintf(stderr, "\rsft step %d/%d  loss %.4f  lr %.2e  %.0f tok/s ", p->step,
                p->total_steps, p->loss_avg, (double)p->lr, tps);
    return 0;
}

int cmd_sft(int argc, char **argv) {
    sft_args a;
    if (parse_args(argc, argv, &a)) return 2;
    char err[4096];
    int rc = 1;
    rlvr_backend *be = rlvr_backend_create(a.device, a.threads, err, sizeof err);
    model *m = NULL;
    tok_tokenizer *tok = NULL;
    chat_template *tpl = NULL;
    sft_data d = {0};
    if (!be) goto fail;
    if (!a.tok && a.model && strncmp(a.model, "builtin:", 8) != 0) a.tok = a.model;
    if (!a.tok) a.tok = a.vocab_from;
    if (!a.tok) {
        snprintf(err, sizeof err, "--tokenizer is required (the model has no tokenizer.json)");
        goto fail;
    }
    if (tok_load(a.tok, &tok, err, sizeof err) || open_model(&a, be, &m, err, sizeof err) ||
        chat_template_resolve(a.tpl, tok, &tpl, err, sizeof err))
        goto fail;
    if (tok_vocab_size(tok) > m->cfg.vocab_size) {
        snprintf(err, sizeof err,
                 "the tokenizer %s has %d ids but the model's vocabulary is %d", tok_path(tok),
                 tok_vocab_size(tok), m->cfg.vocab_size);
        goto fail;
    }
    if (load_examples(a.data, tok, tpl, &d, err, sizeof err)) goto fail;
    int total;
    if (sft_plan(m, d.ex, d.n, &a.cfg, &total, err, sizeof err)) goto fail;
    fprintf(stderr, "rlvr sft: %d examples, %d steps, %s (%zu parameters, vocab %d)\n", d.n,
            total, a.model ? a.model : a.init, model_config_num_params(&m->cfg),
            m->cfg.vocab_size);
    sft_result res;
    if (sft_train(m, d.ex, d.n, &a.cfg, report, NULL, &res, err, sizeof err)) goto fail;
    if (isatty(2)) fputc('\n', stderr);
    st_dtype dt;
    st_dtype_parse(a.dtype, &dt);
    if (model_save(m, a.out, (int)dt, 0, err, sizeof err) ||
        copy_tokenizer_files(tok, a.out, err, sizeof err))
        goto fail;
    fprintf(stderr,
            "rlvr sft: %d steps, %ld tokens in %.1f s (%.0f tokens/s); loss %.4f -> %.4f; "
            "saved %s\n",
            res.steps, res.tokens, res.elapsed_s,
            res.elapsed_s > 0 ? res.tokens / res.elapsed_s : 0, res.first_loss, res.last_loss,
            a.out);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "rlvr sft: %s\n", err);
done:
    data_free(&d);
    chat_template_free(tpl);
    tok_free(tok);
    model_free(m);
    if (be) be->destroy(be);
    return rc;
}
