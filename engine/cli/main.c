/*
 * engine/cli/main.c — `rlvr <command> [options]`: dispatches to the subcommands of
 * commands.h. The only place (with the cmd_*.c files) allowed to exit the process.
 *
 * Runtime tuning read only when the libraries load, so main() sets it and re-executes
 * itself once (a user's own settings are always respected):
 *  - Debian's OpenBLAS does not recognise AVX-512 CPUs and falls back to its slowest
 *    kernels: OPENBLAS_CORETYPE=SKYLAKEX when the CPU has AVX-512;
 *  - libgomp's idle threads spin ~300k iterations between parallel regions, which on a
 *    busy or small machine steals the cores the next region needs (measured 5x slower
 *    generation with 2 threads under load): GOMP_SPINCOUNT=1000 unless GOMP_SPINCOUNT or
 *    OMP_WAIT_POLICY is set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/cli/commands.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} rlvr_command;

static void usage(FILE *f, const rlvr_command *cmds, int n) {
    fprintf(f, "usage: rlvr <command> [options]   (rlvr <command> --help for details)\n\n"
               "commands:\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "  %-10s %s%s\n", cmds[i].name, cmds[i].help,
                cmds[i].fn ? "" : " [not built]");
}

static void ensure_fast_runtime(char **argv) {
    if (getenv("RLVR_NO_BLAS_REEXEC")) return; /* already done (or switched off) */
    int change = 0;
    if (!getenv("OPENBLAS_CORETYPE")) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) {
            setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 1);
            change = 1;
        }
    }
    if (!getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY")) {
        setenv("GOMP_SPINCOUNT", "1000", 1);
        change = 1;
    }
    if (!change) return;
    setenv("RLVR_NO_BLAS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: go on with the libraries as they loaded. */
}

int main(int argc, char **argv) {
    const rlvr_command cmds[] = {
        {"inspect", cmd_inspect, "architecture, parameter count, dtypes, memory of a model"},
        {"logprobs", cmd_logprobs, "log-probabilities of token ids under a model (JSON lines)"},
        {"tokenize", cmd_tokenize, "encode text to ids or decode ids to text (JSON lines)"},
        {"template", cmd_template, "render chat messages with a chat template (JSON lines)"},
        {"score", cmd_score, "score completions with reward functions (JSON lines)"},
        {"generate", cmd_generate, "sample groups of completions from a model (JSON lines)"},
        {"train", cmd_train, "run reinforcement fine-tuning from a config"},
        {"eval", cmd_eval, "pass@1, pass@k, maj@k of a model on a dataset with rewards"},
        {"sft", cmd_sft, "supervised fine-tuning on prompt/completion pairs"},
        {"plot", cmd_plot, "plot metrics.jsonl as an SVG chart"},
        {"export", cmd_export, "export a checkpoint as a Hugging Face model directory"},
    };
    const int n = (int)(sizeof cmds / sizeof cmds[0]);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout, cmds, n);
        return argc < 2 ? 2 : 0;
    }
    ensure_fast_runtime(argv);
    for (int i = 0; i < n; i++) {
        if (strcmp(argv[1], cmds[i].name) != 0) continue;
        if (!cmds[i].fn) {
            fprintf(stderr, "rlvr: command '%s' is not built into this binary\n", argv[1]);
            return 2;
        }
        return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "rlvr: unknown command '%s'\n\n", argv[1]);
    usage(stderr, cmds, n);
    return 2;
}
