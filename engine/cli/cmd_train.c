/*
 * engine/cli/cmd_train.c — `rlvr train`: reinforcement fine-tuning from a JSON config.
 *   rlvr train --config FILE [--set section.key=value]...
 *   rlvr train --resume RUN_DIR [--set ...]     continue from RUN_DIR's newest complete
 *                                               checkpoint with RUN_DIR/config.json
 * Under mpirun (or another MPI/PMI launcher) every rank runs this command and the step is
 * data-parallel (docs/multinode.md). An error on any rank takes the whole job down
 * (dist_abort) with a non-zero status, so no rank is left waiting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/cli_util.h"
#include "engine/cli/commands.h"
#include "engine/dist/comm.h"
#include "engine/train/trainer.h"

static const char *USAGE =
    "usage: rlvr train --config FILE [--set section.key=value]...\n"
    "       rlvr train --resume RUN_DIR [--set section.key=value]...\n"
    "  FILE     the run configuration (JSON; every key in docs/config.md)\n"
    "  --set    override one key, VALUE parsed as JSON else taken as a string\n"
    "           (e.g. --set rollout.G=4 --set optimizer.lr=1e-5)\n"
    "  --resume continue a run from its newest complete checkpoint\n"
    "Writes RUN_DIR (logging.run_dir): config.json, metrics.jsonl, samples.jsonl,\n"
    "checkpoints/step-N/ (a Hugging Face model directory + trainer state).\n"
    "Data-parallel: mpirun -np N rlvr train --config FILE (one rank per GPU or CPU\n"
    "share; RLVR_DIST_TIMEOUT_S bounds every wait for another rank; docs/multinode.md).\n";

int cmd_train(int argc, char **argv) {
    const char *config = NULL, *resume_dir = NULL, *v = NULL;
    const char **sets = calloc((size_t)argc + 2, sizeof *sets);
    int n_sets = 0;
    if (!sets) return 1;
    for (int i = 1; i < argc; i++) {
        int r;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            free(sets);
            return 0;
        }
        if ((r = cli_opt(argc, argv, &i, "--config", &config)) ||
            (r = cli_opt(argc, argv, &i, "--resume", &resume_dir))) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = cli_opt(argc, argv, &i, "--set", &v))) {
            if (r < 0) return 2;
            if (!strchr(v, '=')) {
                fprintf(stderr, "rlvr train: --set '%s': expected section.key=value\n", v);
                free(sets);
                return 2;
            }
            sets[n_sets++] = v;
            continue;
        }
        if (argv[i][0] != '-' && !config && !resume_dir) {
            config = argv[i];
            continue;
        }
        fprintf(stderr, "rlvr train: unexpected argument '%s'\n%s", argv[i], USAGE);
        free(sets);
        return 2;
    }
    if (!!config == !!resume_dir) {
        fprintf(stderr, "rlvr train: give exactly one of --config FILE or --resume RUN_DIR\n%s",
                USAGE);
        free(sets);
        return 2;
    }
    char path[4096], err[8192];
    if (resume_dir) {
        snprintf(path, sizeof path, "%s/config.json", resume_dir);
        config = path;
        /* the run directory is where we were told to resume */
        static char set_run_dir[4200];
        snprintf(set_run_dir, sizeof set_run_dir, "logging.run_dir=\"%s\"", resume_dir);
        sets[n_sets++] = set_run_dir;
    }
    train_config cfg;
    if (train_config_load(config, sets, n_sets, &cfg, err, sizeof err)) {
        fprintf(stderr, "rlvr train: %s\n", err);
        free(sets);
        return 1;
    }
    free(sets);
    dist_opts dop = dist_opts_default();
    dop.want_gpu = cfg.model.device == TC_DEVICE_CUDA;
    dist_comm *comm = NULL;
    if (dist_init(&dop, &comm, err, sizeof err)) {
        fprintf(stderr, "rlvr train: %s\n", err);
        train_config_free(&cfg);
        return 1;
    }
    const int world = dist_size(comm), rank = dist_rank(comm);
    char who[32] = "";
    if (world > 1) snprintf(who, sizeof who, "rank %d/%d: ", rank, world);
    trainer *t = NULL;
    int rc = 1;
    if (trainer_create_dist(&cfg, resume_dir != NULL, comm, &t, err, sizeof err)) {
        fprintf(stderr, "rlvr train: %s%s\n", who, err);
    } else if (trainer_run(t, err, sizeof err)) {
        fprintf(stderr, "rlvr train: %sstep %ld: %s\n", who, trainer_step(t) + 1, err);
    } else {
        if (rank == 0)
            fprintf(stderr, "rlvr train: done after %ld steps (%d rank%s, %s); run directory %s\n",
                    trainer_step(t), world, world > 1 ? "s" : "", dist_kind_name(comm),
                    cfg.logging.run_dir);
        rc = 0;
    }
    if (rc && world > 1) { /* the other ranks may be waiting for this one: stop them all */
        fprintf(stderr, "rlvr train: %sstopping all %d ranks\n", who, world);
        dist_abort(comm, 1);
    }
    trainer_free(t);
    train_config_free(&cfg);
    dist_free(comm);
    return rc;
}
