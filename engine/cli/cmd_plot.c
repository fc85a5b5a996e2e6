/*
 * engine/cli/cmd_plot.c — `rlvr plot`: an SVG line chart of metrics over steps from a
 * metrics.jsonl (engine/runlog/plot_svg.h), e.g. reward and accuracy of a run.
 *   rlvr plot --metrics RUN/metrics.jsonl --out RUN/plot.svg [--keys a,b,...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cli/cli_util.h"
#include "engine/cli/commands.h"
#include "engine/runlog/plot_svg.h"

static const char *USAGE =
    "usage: rlvr plot --metrics FILE --out FILE.svg [--keys K1,K2,...] [--title TEXT]\n"
    "                 [--width PX] [--height PX]\n"
    "  --metrics  a metrics.jsonl: one JSON object per line with \"step\" and numbers\n"
    "  --out      the SVG to write (atomically)\n"
    "  --keys     metrics to chart, one line each, sharing the y axis (default: every key\n"
    "             whose name contains \"reward\" or \"acc\")\n"
    "  --title    chart title (default: the metrics file's path); size default 800x450\n";

int cmd_plot(int argc, char **argv) {
    const char *metrics = NULL, *out = NULL, *keys_arg = NULL, *v;
    plot_svg_opts o = {0};
    for (int i = 1; i < argc; i++) {
        int r, bad = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if ((r = cli_opt(argc, argv, &i, "--metrics", &metrics)) ||
            (r = cli_opt(argc, argv, &i, "--out", &out)) ||
            (r = cli_opt(argc, argv, &i, "--keys", &keys_arg)) ||
            (r = cli_opt(argc, argv, &i, "--title", &o.title))) {
            bad = r < 0;
        } else if ((r = cli_opt(argc, argv, &i, "--width", &v))) {
            bad = r < 0 || cli_int("plot", "--width", v, 200, 20000, &o.width);
        } else if ((r = cli_opt(argc, argv, &i, "--height", &v))) {
            bad = r < 0 || cli_int("plot", "--height", v, 150, 20000, &o.height);
        } else {
            fprintf(stderr, "rlvr plot: unknown argument '%s'\n%s", argv[i], USAGE);
            return 2;
        }
        if (bad) return 2;
    }
    if (!metrics || !out) {
        fprintf(stderr, "rlvr plot: --metrics and --out are required\n%s", USAGE);
        return 2;
    }
    char err[4096];
    char **keys = NULL, *copy = NULL;
    int n = 0, rc = 1;
    if (keys_arg) {
        /* split on commas; empty names are refused */
        copy = strdup(keys_arg);
        keys = calloc(strlen(keys_arg) / 2 + 2, sizeof *keys);
        if (!copy || !keys) {
            fprintf(stderr, "rlvr plot: out of memory\n");
            goto done;
        }
        for (char *p = copy;;) {
            char *c = strchr(p, ',');
            if (c) *c = 0;
            if (!*p) {
                fprintf(stderr,
                        "rlvr plot: --keys '%s': expected comma-separated metric names\n",
                        keys_arg);
                rc = 2;
                goto done;
            }
            keys[n++] = p;
            if (!c) break;
            p = c + 1;
        }
    } else {
        if (plot_svg_default_keys(metrics, &keys, &n, err, sizeof err)) {
            fprintf(stderr, "rlvr plot: %s\n", err);
            return 1;
        }
        if (n == 0) {
            fprintf(stderr,
                    "rlvr plot: %s has no key containing \"reward\" or \"acc\"; name the "
                    "metrics with --keys\n",
                    metrics);
            goto done;
        }
    }
    if (plot_svg_write(metrics, (const char *const *)keys, n, out, &o, err, sizeof err)) {
        fprintf(stderr, "rlvr plot: %s\n", err);
        goto done;
    }
    fprintf(stderr, "rlvr plot: %d series -> %s\n", n, out);
    rc = 0;
done:
    if (keys_arg)
        free(keys);
    else
        plot_svg_free_keys(keys, n);
    free(copy);
    return rc;
}
