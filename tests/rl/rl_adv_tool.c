/*
 * tests/rl/rl_adv_tool.c — prints engine/rl advantages for rewards read from stdin, for
 * the numpy cross-check (check_numpy.py).
 * usage: rl_adv_tool MODE G EPS < rewards   (one reward per whitespace-separated token)
 * MODE: grpo-group, grpo-batch, grpo-none, grpo-group-biased, rloo. Prints one advantage
 * per line (%.9g). Exit 2 on bad usage, 1 on an engine/rl error (message on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rl/advantage.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: rl_adv_tool MODE G EPS < rewards\n");
        return 2;
    }
    const char *mode = argv[1];
    int G = atoi(argv[2]);
    float eps = (float)atof(argv[3]);
    int n = 0, cap = 1024;
    float *R = malloc(cap * sizeof *R), x;
    while (R && scanf("%f", &x) == 1) {
        if (n == cap) {
            float *r2 = realloc(R, (cap *= 2) * sizeof *R);
            if (!r2) break;
            R = r2;
        }
        R[n++] = x;
    }
    float *A = malloc((n ? n : 1) * sizeof *A);
    if (!R || !A) return 1;
    char err[512];
    rl_groups g = {.n = n, .group_size = G};
    rl_grpo_params p = rl_grpo_defaults();
    p.eps = eps;
    int rc;
    if (!strcmp(mode, "rloo")) {
        rc = rl_rloo_advantages(A, R, &g, err, sizeof err);
    } else {
        if (!strcmp(mode, "grpo-group"))
            p.scale = RL_SCALE_GROUP;
        else if (!strcmp(mode, "grpo-batch"))
            p.scale = RL_SCALE_BATCH;
        else if (!strcmp(mode, "grpo-none"))
            p.scale = RL_SCALE_NONE;
        else if (!strcmp(mode, "grpo-group-biased"))
            p.scale = RL_SCALE_GROUP, p.unbiased_std = 0;
        else {
            fprintf(stderr, "rl_adv_tool: unknown MODE %s\n", mode);
            return 2;
        }
        rc = rl_grpo_advantages(A, NULL, NULL, R, &g, &p, err, sizeof err);
    }
    if (rc) {
        fprintf(stderr, "rl_adv_tool: %s\n", err);
        return 1;
    }
    for (int i = 0; i < n; i++)
        printf("%.9g\n", A[i]);
    free(R), free(A);
    return 0;
}
