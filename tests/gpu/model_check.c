/*
 * tests/gpu/model_check.c — the whole model on two backends (default cpu vs cuda) on
 * the same weights and the same packed batch: next-token log-probabilities, entropies
 * and every parameter gradient, compared within bf16 tolerances.
 *
 * usage: model_check [--model SPEC] [--lens 1,17,128,300] [--a cpu] [--b cuda]
 *                    [--logp-tol 0.02] [--grad-tol 0.05] [--json FILE]
 * Errors: logp/entropy as ||a−b||/||a|| and max |a−b|; gradients as the worst
 * per-parameter ||g_a − g_b|| / ||g_a||. Exit 1 when over tolerance.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/builtin.h"

static void rel_err(const float *a, const float *b, size_t n, double *rel, double *maxabs) {
    double num = 0, den = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)a[i] * a[i];
        if (fabs(d) > mx || isnan(d)) mx = isnan(d) ? INFINITY : fabs(d);
    }
    *rel = sqrt(num) / fmax(sqrt(den), 1e-30);
    if (isnan(*rel)) *rel = INFINITY;
    *maxabs = mx;
}

int main(int argc, char **argv) {
    const char *spec = "builtin:qwen2.5-0.5b", *lens_s = "1,17,128,300", *dev_a = "cpu",
               *dev_b = "cuda", *json = NULL;
    double logp_tol = 0.02, grad_tol = 0.05;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) spec = argv[i + 1];
        else if (!strcmp(argv[i], "--lens")) lens_s = argv[i + 1];
        else if (!strcmp(argv[i], "--a")) dev_a = argv[i + 1];
        else if (!strcmp(argv[i], "--b")) dev_b = argv[i + 1];
        else if (!strcmp(argv[i], "--logp-tol")) logp_tol = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--grad-tol")) grad_tol = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--json")) json = argv[i + 1];
        else {
            fprintf(stderr, "model_check: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    int lens[64], B = 0, T = 0;
    for (const char *p = lens_s; *p && B < 64;) {
        lens[B] = atoi(p);
        T += lens[B++];
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    char err[2048];
    rlvr_backend *be[2];
    model *m[2];
    const char *devs[2] = {dev_a, dev_b};
    for (int k = 0; k < 2; k++) {
        be[k] = rlvr_backend_create(devs[k], 0, err, sizeof err);
        if (!be[k] || model_open(spec, be[k], &m[k], err, sizeof err) ||
            model_enable_grads(m[k], err, sizeof err)) {
            fprintf(stderr, "model_check: %s: %s\n", devs[k], err);
            return 1;
        }
    }
    const model_config *c = &m[0]->cfg;
    int32_t *ids = malloc(T * sizeof *ids), offs[65];
    float *w = malloc(T * sizeof(float));
    srand(7);
    offs[0] = 0;
    for (int b = 0; b < B; b++) offs[b + 1] = offs[b] + lens[b];
    for (int t = 0; t < T; t++) {
        ids[t] = rand() % c->vocab_size;
        w[t] = (float)rand() / RAND_MAX - 0.5f;
    }
    model_batch batch = {.T = T, .B = B, .ids = ids, .offsets = offs};
    float *lp[2], *ent[2];
    for (int k = 0; k < 2; k++) {
        lp[k] = malloc(T * sizeof(float));
        ent[k] = malloc(T * sizeof(float));
        float *dl = be[k]->alloc(be[k], T * sizeof(float));
        be[k]->to_device(be[k], dl, w, T * sizeof(float));
        if (model_forward(m[k], &batch, 1.0f, 1, err, sizeof err) ||
            model_backward(m[k], dl, NULL, err, sizeof err)) {
            fprintf(stderr, "model_check: %s: %s\n", devs[k], err);
            return 1;
        }
        be[k]->to_host(be[k], lp[k], model_logp(m[k]), T * sizeof(float));
        be[k]->to_host(be[k], ent[k], model_entropy(m[k]), T * sizeof(float));
        be[k]->free(be[k], dl);
    }
    double lp_rel, lp_max, ent_rel, ent_max;
    rel_err(lp[0], lp[1], T, &lp_rel, &lp_max);
    rel_err(ent[0], ent[1], T, &ent_rel, &ent_max);
    double worst = 0;
    int worst_i = 0;
    size_t maxn = 0;
    for (int i = 0; i < m[0]->n_params; i++)
        if (m[0]->params[i].numel > maxn) maxn = m[0]->params[i].numel;
    float *ga = malloc(maxn * sizeof(float)), *gb = malloc(maxn * sizeof(float));
    for (int i = 0; i < m[0]->n_params; i++) {
        double rel, mx;
        model_get_grad(m[0], i, ga);
        model_get_grad(m[1], i, gb);
        rel_err(ga, gb, m[0]->params[i].numel, &rel, &mx);
        if (rel > worst) {
            worst = rel;
            worst_i = i;
        }
    }
    int ok = lp_rel <= logp_tol && ent_rel <= logp_tol && worst <= grad_tol;
    printf("model_check %s %s vs %s, T=%d B=%d: logp rel %.3g (max abs %.3g), entropy rel %.3g "
           "(max abs %.3g), worst grad rel %.3g (%s) -> %s\n",
           spec, dev_a, dev_b, T, B, lp_rel, lp_max, ent_rel, ent_max, worst,
           m[0]->params[worst_i].name, ok ? "PASS" : "FAIL");
    if (json) {
        FILE *f = fopen(json, "w");
        if (f) {
            fprintf(f, "{\"model\": \"%s\", \"a\": \"%s\", \"b\": \"%s\", \"T\": %d, \"logp_rel\": %.6g, "
                       "\"logp_max_abs\": %.6g, \"entropy_rel\": %.6g, \"grad_worst_rel\": %.6g, "
                       "\"grad_worst_param\": \"%s\", \"pass\": %s}\n",
                    spec, dev_a, dev_b, T, lp_rel, lp_max, ent_rel, worst,
                    m[0]->params[worst_i].name, ok ? "true" : "false");
            fclose(f);
        }
    }
    for (int k = 0; k < 2; k++) {
        model_free(m[k]);
        be[k]->destroy(be[k]);
        free(lp[k]);
        free(ent[k]);
    }
    free(ga);
    free(gb);
    free(ids);
    free(w);
    return ok ? 0 : 1;
}
