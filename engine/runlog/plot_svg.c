/*
 * engine/runlog/plot_svg.c — metrics.jsonl → SVG line chart (see plot_svg.h): read the
 * series, pick "nice" axis ticks (1, 2, 5 × 10^k), map to pixels, write the SVG through
 * an atomic file.
 */
#include "engine/runlog/plot_svg.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/io/fileio.h"

typedef struct {
    double *x, *y;
    int n, cap;
} plot_series;

static int series_push(plot_series *s, double x, double y) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        double *nx = realloc(s->x, (size_t)cap * sizeof *nx);
        if (!nx) return -1;
        s->x = nx;
        double *ny = realloc(s->y, (size_t)cap * sizeof *ny);
        if (!ny) return -1;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
    return 0;
}

/* Calls fn(ctx, object, line_index) for every JSON object line of the file. */
typedef int (*line_fn)(void *ctx, const cJSON *obj, long index, char *err, size_t errlen);

static int each_line(const char *path, line_fn fn, void *ctx, char *err, size_t errlen) {
    char *data;
    size_t len;
    if (fio_read_file(path, &data, &len, err, errlen)) return -1;
    int rc = 0;
    long lineno = 0, index = 0;
    for (char *p = data; p < data + len && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(data + len - p));
        int last_open = nl == NULL; /* a line the writer may still be writing */
        char *end = nl ? nl : data + len;
        *end = 0;
        lineno++;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r')
            q++;
        if (*q) {
            cJSON *o = cJSON_Parse(p);
            if (!o || !cJSON_IsObject(o)) {
                if (!last_open) {
                    snprintf(err, errlen,
                             "%s:%ld: not a JSON object (expected one metrics record "
                             "per line)",
                             path, lineno);
                    rc = -1;
                }
            } else {
                rc = fn(ctx, o, index++, err, errlen);
            }
            cJSON_Delete(o);
        }
        p = end + 1;
    }
    free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------- */
/* Default keys                                                                         */

typedef struct {
    char **keys;
    int n, cap;
    int all; /* collect every numeric key (for error messages), not only reward/acc */
} key_set;

static int key_add(key_set *k, const char *name) {
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->keys[i], name)) return 0;
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 16;
        char **nk = realloc(k->keys, (size_t)cap * sizeof *nk);
        if (!nk) return -1;
        k->keys = nk;
        k->cap = cap;
    }
    if (!(k->keys[k->n] = strdup(name))) return -1;
    k->n++;
    return 0;
}

static int collect_keys(void *ctx, const cJSON *obj, long index, char *err, size_t errlen) {
    (void)index;
    key_set *k = ctx;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!c->string || !cJSON_IsNumber(c) || !strcmp(c->string, "step") ||
            !strcmp(c->string, "time"))
            continue;
        if (!k->all && !strstr(c->string, "reward") && !strstr(c->string, "acc")) continue;
        if (key_add(k, c->string)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

void plot_svg_free_keys(char **keys, int n) {
    for (int i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

int plot_svg_default_keys(const char *metrics_path, char ***keys, int *n, char *err,
                          size_t errlen) {
    key_set k = {0};
    if (each_line(metrics_path, collect_keys, &k, err, errlen)) {
        plot_svg_free_keys(k.keys, k.n);
        return -1;
    }
    *keys = k.keys;
    *n = k.n;
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Reading the series                                                                   */

typedef struct {
    const char *const *keys;
    int n_keys;
    plot_series *s;
} read_ctx;

static int read_points(void *ctx, const cJSON *obj, long index, char *err, size_t errlen) {
    read_ctx *r = ctx;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(obj, "step");
    double x = cJSON_IsNumber(st) ? st->valuedouble : (double)index;
    for (int i = 0; i < r->n_keys; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, r->keys[i]);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) continue;
        if (series_push(&r->s[i], x, v->valuedouble)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Drawing                                                                              */

/* A tick step of 1, 2 or 5 × 10^k giving about `want` intervals over span. */
static double nice_step(double span, int want) {
    double raw = span / want, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * p;
}

/* Widens [lo, hi] to whole tick steps (and a non-empty range). */
static void nice_range(double *lo, double *hi, double *step) {
    if (*hi - *lo < 1e-12 * (fabs(*lo) + fabs(*hi)) || *hi == *lo) {
        double pad = *lo != 0 ? fabs(*lo) * 0.5 : 1.0;
        *lo -= pad;
        *hi += pad;
    }
    *step = nice_step(*hi - *lo, 5);
    *lo = floor(*lo / *step) * *step;
    *hi = ceil(*hi / *step) * *step;
}

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            /* control characters are not allowed in XML 1.0 */
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
                fputc(' ', f);
            else
                fputc(*s, f);
        }
    }
}

static const char *COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                               "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static void draw(FILE *f, const char *title, const char *const *keys, const plot_series *s,
                 int n_keys, int W, int H) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int k = 0; k < n_keys; k++)
        for (int i = 0; i < s[k].n; i++) {
            x0 = fmin(x0, s[k].x[i]), x1 = fmax(x1, s[k].x[i]);
            y0 = fmin(y0, s[k].y[i]), y1 = fmax(y1, s[k].y[i]);
        }
    double xs, ys;
    nice_range(&x0, &x1, &xs);
    nice_range(&y0, &y1, &ys);
    /* plot area */
    double L = 70, R = W - 20.0, T = 40, B = H - 50.0 - 18.0 * ((n_keys + 2) / 3);
    if (B < T + 40) B = T + 40;
#define PX(v) (L + ((v)-x0) / (x1 - x0) * (R - L))
#define PY(v) (B - ((v)-y0) / (y1 - y0) * (B - T))
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            W, H, W, H);
    fputs("<title>", f);
    xml_text(f, title);
    fputs("</title>\n", f);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    fprintf(f, "<text x=\"%.1f\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">", W / 2.0);
    xml_text(f, title);
    fputs("</text>\n<g stroke=\"#dddddd\" stroke-width=\"1\">\n", f);
    for (double v = y0; v <= y1 + ys * 1e-6; v += ys)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", L, PY(v), R,
                PY(v));
    for (double v = x0; v <= x1 + xs * 1e-6; v += xs)
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PX(v), T, PX(v),
                B);
    fputs("</g>\n<g fill=\"#333333\">\n", f);
    for (double v = y0; v <= y1 + ys * 1e-6; v += ys)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", L - 6,
                PY(v) + 4, fabs(v) < ys * 1e-6 ? 0.0 : v);
    for (double v = x0; v <= x1 + xs * 1e-6; v += xs)
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", PX(v),
                B + 16, fabs(v) < xs * 1e-6 ? 0.0 : v);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n</g>\n",
            (L + R) / 2, B + 34);
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#333333\"/>\n",
            L, T, R - L, B - T);
    for (int k = 0; k < n_keys; k++) {
        const char *c = COLORS[k % (int)(sizeof COLORS / sizeof COLORS[0])];
        fprintf(f,
                "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" "
                "stroke-linejoin=\"round\" data-key=\"",
                c);
        xml_text(f, keys[k]);
        fputs("\" points=\"", f);
        for (int i = 0; i < s[k].n; i++)
            fprintf(f, "%s%.2f,%.2f", i ? " " : "", PX(s[k].x[i]), PY(s[k].y[i]));
        fputs("\"><title>", f);
        xml_text(f, keys[k]);
        fputs("</title></polyline>\n", f);
        /* legend, three per row under the axis label */
        double lx = L + (k % 3) * ((R - L) / 3), ly = B + 52 + 18.0 * (k / 3);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"3\"/>\n<text x=\"%.1f\" y=\"%.1f\">",
                lx, ly - 4, lx + 22, ly - 4, c, lx + 28, ly);
        xml_text(f, keys[k]);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
#undef PX
#undef PY
}

int plot_svg_write(const char *metrics_path, const char *const *keys, int n_keys,
                   const char *out_path, const plot_svg_opts *opts, char *err, size_t errlen) {
    if (n_keys < 1) {
        snprintf(err, errlen, "plot: no metric keys to chart");
        return -1;
    }
    int W = opts && opts->width > 0 ? opts->width : 800;
    int H = opts && opts->height > 0 ? opts->height : 450;
    if (W < 200 || H < 150 || W > 20000 || H > 20000) {
        snprintf(err, errlen,
                 "plot: size %dx%d: expected width 200..20000 and height 150..20000", W, H);
        return -1;
    }
    plot_series *s = calloc((size_t)n_keys, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = -1;
    read_ctx r = {keys, n_keys, s};
    if (each_line(metrics_path, read_points, &r, err, errlen)) goto done;
    for (int k = 0; k < n_keys; k++) {
        if (s[k].n > 0) continue;
        key_set all = {.all = 1};
        char inner[256];
        if (each_line(metrics_path, collect_keys, &all, inner, sizeof inner) == 0) {
            size_t o = (size_t)snprintf(err, errlen,
                                        "%s: no numeric values for key '%s'; its "
                                        "keys are:",
                                        metrics_path, keys[k]);
            for (int i = 0; i < all.n && o < errlen; i++)
                o += (size_t)snprintf(err + o, errlen - o, " %s", all.keys[i]);
            if (all.n == 0 && o < errlen) snprintf(err + o, errlen - o, " (none)");
        }
        plot_svg_free_keys(all.keys, all.n);
        goto done;
    }
    const char *title = opts && opts->title ? opts->title : metrics_path;
    fio_atomic a;
    if (fio_atomic_open(&a, out_path, err, errlen)) goto done;
    draw(a.f, title, keys, s, n_keys, W, H);
    rc = fio_atomic_commit(&a, err, errlen);
done:
    for (int k = 0; k < n_keys; k++) {
        free(s[k].x);
        free(s[k].y);
    }
    free(s);
    return rc;
}
