/*
 * tests/integration/train_steps.c — N AdamW steps on one fixed packed batch with the
 * objective loss = −mean next-token log-probability (memorising the batch), through
 * model_forward/model_backward/optim_step. Used two ways:
 *   - as a test (ctest): the loss must fall by at least --min-drop (fraction);
 *   - by tests/gpu/model_checks.sh on cpu and cuda, comparing the two loss curves.
 * usage: train_steps [--model SPEC] [--device cpu|cuda] [--steps N] [--lr LR]
 *                    [--lens 5,31,64] [--min-drop F]
 * Prints one JSON line {"device", "losses": [...], "grad_norms": [...]}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model/builtin.h"
#include "engine/train/optimizer.h"

int main(int argc, char **argv) {
    const char *spec = "builtin:tiny-qwen2", *device = "cpu", *lens_s = "5,31,64";
    int steps = 10;
    float lr = 1e-3f, min_drop = 0.0f;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) spec = argv[i + 1];
        else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--lr")) lr = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--lens")) lens_s = argv[i + 1];
        else if (!strcmp(argv[i], "--min-drop")) min_drop = (float)atof(argv[i + 1]);
        else {
            fprintf(stderr, "train_steps: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (steps < 1 || steps > 10000) return 2;
    char err[2048];
    rlvr_backend *be = rlvr_backend_create(device, 0, err, sizeof err);
    model *m = NULL;
    optimizer opt;
    optim_config oc = optim_default_config();
    if (!be || model_open(spec, be, &m, err, sizeof err) || model_enable_grads(m, err, sizeof err) ||
        optim_create(&opt, m, &oc, err, sizeof err)) {
        fprintf(stderr, "train_steps: %s\n", err);
        return 1;
    }
    int lens[64], B = 0, T = 0;
    for (const char *p = lens_s; p && *p && B < 64; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        lens[B] = atoi(p);
        T += lens[B++];
    }
    int32_t *ids = malloc(T * sizeof *ids), offs[65] = {0};
    float *w = malloc(T * sizeof(float));
    srand(11);
    for (int b = 0; b < B; b++) offs[b + 1] = offs[b] + lens[b];
    int n_targets = T - B;
    for (int t = 0; t < T; t++) ids[t] = rand() % m->cfg.vocab_size;
    for (int b = 0; b < B; b++)
        for (int t = offs[b]; t < offs[b + 1]; t++)
            w[t] = t + 1 < offs[b + 1] ? -1.0f / n_targets : 0.0f; /* d loss / d logp */
    float *dlogp = be->alloc(be, T * sizeof(float)), *lp = malloc(T * sizeof(float));
    be->to_device(be, dlogp, w, T * sizeof(float));
    model_batch batch = {.T = T, .B = B, .ids = ids, .offsets = offs};
    double *losses = malloc(steps * sizeof(double)), *norms = malloc(steps * sizeof(double));
    for (int s = 0; s < steps; s++) {
        model_zero_grads(m);
        if (model_forward(m, &batch, 1.0f, 1, err, sizeof err) ||
            model_backward(m, dlogp, NULL, err, sizeof err) ||
            optim_step(&opt, m, lr, 1.0f, &norms[s], err, sizeof err)) {
            fprintf(stderr, "train_steps: step %d: %s\n", s, err);
            return 1;
        }
        be->to_host(be, lp, model_logp(m), T * sizeof(float));
        double loss = 0;
        for (int t = 0; t < T; t++) loss += (double)w[t] * lp[t];
        losses[s] = loss;
    }
    printf("{\"device\": \"%s\", \"model\": \"%s\", \"losses\": [", be->name, spec);
    for (int s = 0; s < steps; s++) printf("%s%.6f", s ? ", " : "", losses[s]);
    printf("], \"grad_norms\": [");
    for (int s = 0; s < steps; s++) printf("%s%.6f", s ? ", " : "", norms[s]);
    printf("]}\n");
    int ok = losses[steps - 1] <= losses[0] * (1.0 - min_drop);
    if (!ok)
        fprintf(stderr, "train_steps: loss went %.4f -> %.4f, expected a drop of %.0f%%\n", losses[0],
                losses[steps - 1], min_drop * 100);
    optim_free(&opt, m);
    be->free(be, dlogp);
    model_free(m);
    be->destroy(be);
    free(ids);
    free(w);
    free(lp);
    free(losses);
    free(norms);
    return ok ? 0 : 1;
}
