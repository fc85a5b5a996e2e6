/*
 * engine/runlog/plot_svg.h — an SVG line chart of chosen metrics from a metrics.jsonl
 * (metrics.h), e.g. reward mean and accuracy over steps; no plotting library needed and
 * any browser shows it.
 *
 * Each key becomes one <polyline> (with a <title> naming the key) whose points are the
 * lines of the file holding that key as a number, in file order: x = the line's "step"
 * (its 0-based line index when absent), y = the value. null values (NaN/inf) and lines
 * without the key are left out. All series share one y axis spanning their values. A
 * last line with no newline that does not parse (a run still writing it) is ignored;
 * any other line that is not a JSON object is an error naming the file and line.
 *
 * The SVG is written atomically (engine/io/fileio.h). Errors: 0 on success, -1 with a
 * message in err (errlen bytes).
 */
#ifndef RLVR_RUNLOG_PLOT_SVG_H
#define RLVR_RUNLOG_PLOT_SVG_H

#include <stddef.h>

typedef struct {
    const char *title; /* chart title; NULL: the metrics file's name */
    int width, height; /* pixels; 0: 800 x 450 */
} plot_svg_opts;

/* Keys to chart when none are given: every key of the file whose name contains
 * "reward" or "acc", in order of first appearance. *keys (malloc'ed strings in a
 * malloc'ed array; free with plot_svg_free_keys) may be empty (n = 0). */
int plot_svg_default_keys(const char *metrics_path, char ***keys, int *n, char *err,
                          size_t errlen);
void plot_svg_free_keys(char **keys, int n);

/* Charts keys[0..n_keys) of metrics_path into out_path. A key with no numeric value in
 * the file is an error (it names the key and the keys the file does have). */
int plot_svg_write(const char *metrics_path, const char *const *keys, int n_keys,
                   const char *out_path, const plot_svg_opts *opts, char *err, size_t errlen);

#endif
