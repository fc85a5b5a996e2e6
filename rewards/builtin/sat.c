/*
 * rewards/builtin/sat.c — the `sat` reward: the completion's truth assignment satisfies
 * the CNF formula of the dataset row (SATQuest-style logic problems).
 *
 * Formula (row fields, first present wins): "cnf", "sat_dimacs", "dimacs" — DIMACS text
 * ("c" comments, "p cnf V C", clauses as signed integers ended by 0, "%" ends the file)
 * or a JSON array of clauses ([[1,-2],[2,3]]); else the row's answer when it holds a
 * "p cnf" header. No formula, or one that does not parse → ABSTAIN.
 *
 * Assignment: inside the last <answer>…</answer> (else the whole completion), the last
 * block of consecutive "assignment lines" (other lines after it are skipped; a line of
 * only separators or a blank line ends a block). A
 * line is an assignment line when it holds only these tokens, separated by spaces and
 * , ; [ ] ( ) { }:
 *   signed integers "1 -2 3 0" (DIMACS; a leading "v" as in solver output is allowed),
 *   named literals "x3", "-x3", "~x3", "!x3", "¬x3", and pairs "x3=T" / "x3: false" /
 *   "x3 = 0" (T/F/True/False/1/0 in any case).
 * The integer 0 may only end the list (a 0 elsewhere means the text is not a literal
 * list — e.g. a bit vector — and scores 0). With {"format":"bits"} the block is instead
 * V values 0/1, variable i taking the i-th.
 *
 * Score 1 when no variable is both true and false, every variable is in 1..V, every
 * clause has a true literal (unassigned variables make no literal true) and — with
 * {"require_all": true} — every variable 1..V is assigned. Otherwise 0.
 *
 * Bounded work: one backward pass over the lines of the completion, each byte looked at
 * a constant number of times; integers longer than 9 digits are out of range; formulas
 * are capped at SAT_MAX_VARS variables and SAT_MAX_LITS literals (beyond → ABSTAIN).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewards/builtin/builtin_util.h"
#include "rewards/builtin/builtins.h"

#define SAT_MAX_VARS (1 << 22)
#define SAT_MAX_LITS (1 << 24)
#define SAT_BIG 2000000000 /* stands for any integer with more than 9 digits */

typedef struct {
    int require_all;
    int bits; /* format "bits" */
} sat_state;

/* A formula: clauses as 0-terminated runs in lits. */
typedef struct {
    int32_t *lits;
    size_t n_lits, cap;
    size_t n_clauses;
    int32_t n_vars; /* from the header, else the largest variable seen */
} sat_cnf;

static int cnf_push(sat_cnf *f, int32_t v) {
    if (f->n_lits >= SAT_MAX_LITS) return -1;
    if (f->n_lits == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 256;
        int32_t *p = realloc(f->lits, cap * sizeof *p);
        if (!p) return -1;
        f->lits = p;
        f->cap = cap;
    }
    f->lits[f->n_lits++] = v;
    if (v == 0) f->n_clauses++;
    return 0;
}

/* ---- DIMACS text ----------------------------------------------------------------- */

/* Parses DIMACS text; returns 0 or -1 with a reason. */
static int cnf_parse_dimacs(const char *s, size_t n, sat_cnf *f, const char **why) {
    size_t i = 0;
    int have_header = 0, open_clause = 0;
    int32_t maxv = 0;
    long hdr_vars = -1;
    while (i < n) {
        size_t e = i;
        while (e < n && s[e] != '\n') e++;
        size_t k = i;
        while (k < e && isspace((unsigned char)s[k])) k++;
        if (k == e || s[k] == 'c') {
            i = e + 1;
            continue;
        }
        if (s[k] == '%') break; /* SATLIB end marker */
        if (s[k] == 'p') {
            if (have_header) {
                *why = "two 'p cnf' header lines";
                return -1;
            }
            long v = -1, c = -1;
            char buf[96];
            size_t len = e - k < sizeof buf - 1 ? e - k : sizeof buf - 1;
            memcpy(buf, s + k, len);
            buf[len] = 0;
            char tail[2];
            if (sscanf(buf, "p cnf %ld %ld %1s", &v, &c, tail) != 2 || v < 0 || c < 0 ||
                v > SAT_MAX_VARS) {
                *why = "bad header (expected 'p cnf VARS CLAUSES', VARS <= 4194304)";
                return -1;
            }
            hdr_vars = v;
            have_header = 1;
            i = e + 1;
            continue;
        }
        while (k < e) {
            if (isspace((unsigned char)s[k])) {
                k++;
                continue;
            }
            int neg = 0;
            if (s[k] == '-') {
                neg = 1;
                k++;
            }
            if (k >= e || !isdigit((unsigned char)s[k])) {
                *why = "a clause line holds something other than integers";
                return -1;
            }
            long v = 0;
            size_t d0 = k;
            while (k < e && isdigit((unsigned char)s[k])) {
                if (k - d0 < 10) v = v * 10 + (s[k] - '0');
                k++;
            }
            if (k < e && !isspace((unsigned char)s[k])) {
                *why = "a clause line holds something other than integers";
                return -1;
            }
            if (k - d0 > 9 || v > SAT_MAX_VARS || (hdr_vars >= 0 && v > hdr_vars)) {
                *why = "a literal's variable exceeds the header's variable count";
                return -1;
            }
            if (v == 0 && neg) {
                *why = "'-0' is not a literal";
                return -1;
            }
            if (v > maxv) maxv = (int32_t)v;
            if (cnf_push(f, neg ? -(int32_t)v : (int32_t)v)) {
                *why = "formula too large (more than 16777216 literals) or out of memory";
                return -1;
            }
            open_clause = v != 0;
        }
        i = e + 1;
    }
    if (open_clause && cnf_push(f, 0)) { /* last clause without its 0 */
        *why = "formula too large";
        return -1;
    }
    if (!have_header && f->n_clauses == 0) {
        *why = "no 'p cnf' header and no clauses";
        return -1;
    }
    f->n_vars = have_header ? (int32_t)hdr_vars : maxv;
    return 0;
}

/* A JSON array of clauses, each an array of non-zero integers. */
static int cnf_parse_json(const cJSON *a, sat_cnf *f, const char **why) {
    int32_t maxv = 0;
    for (const cJSON *c = a->child; c; c = c->next) {
        if (!cJSON_IsArray(c)) {
            *why = "a clause of the JSON formula is not an array";
            return -1;
        }
        for (const cJSON *l = c->child; l; l = l->next) {
            double v = cJSON_IsNumber(l) ? l->valuedouble : NAN;
            if (!(v == floor(v)) || v == 0 || fabs(v) > SAT_MAX_VARS) {
                *why = "a literal of the JSON formula is not a non-zero integer within range";
                return -1;
            }
            if ((int32_t)fabs(v) > maxv) maxv = (int32_t)fabs(v);
            if (cnf_push(f, (int32_t)v)) {
                *why = "formula too large";
                return -1;
            }
        }
        if (cnf_push(f, 0)) {
            *why = "formula too large";
            return -1;
        }
    }
    f->n_vars = maxv;
    return 0;
}

/* Finds and parses the row's formula. Returns 0, or -1 with why (→ ABSTAIN). */
static int cnf_from_row(const rlvr_item *it, sat_cnf *f, const char **src, const char **why) {
    cJSON *ex = cJSON_Parse(it->extra_json);
    static const char *const fields[] = {"cnf", "sat_dimacs", "dimacs"};
    const cJSON *v = NULL;
    for (int k = 0; k < 3 && ex && !v; k++) {
        v = cJSON_GetObjectItemCaseSensitive(ex, fields[k]);
        if (v) *src = fields[k];
    }
    int rc;
    if (v && cJSON_IsString(v)) {
        rc = cnf_parse_dimacs(v->valuestring, strlen(v->valuestring), f, why);
    } else if (v && cJSON_IsArray(v)) {
        rc = cnf_parse_json(v, f, why);
    } else if (v) {
        *why = "the formula field is neither DIMACS text nor an array of clauses";
        rc = -1;
    } else if (it->answer_len && memmem(it->answer, it->answer_len, "p cnf", 5)) {
        *src = "answer";
        rc = cnf_parse_dimacs(it->answer, it->answer_len, f, why);
    } else {
        *why = "row needs a formula: 'cnf' (DIMACS text or array of clauses), 'sat_dimacs' "
               "or 'dimacs', or an answer with a 'p cnf' header";
        rc = -1;
    }
    cJSON_Delete(ex);
    return rc;
}

/* ---- the assignment --------------------------------------------------------------- */

typedef struct {
    int32_t *lits; /* signed literals (or 0/1 bits in bits mode), in order */
    size_t n, cap;
    int oom;
} lit_list;

static void ll_push(lit_list *l, int32_t v) {
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int32_t *p = realloc(l->lits, cap * sizeof *p);
        if (!p) {
            l->oom = 1;
            return;
        }
        l->lits = p;
        l->cap = cap;
    }
    l->lits[l->n++] = v;
}

static int is_sep(unsigned char c) {
    return isspace(c) || c == ',' || c == ';' || c == '[' || c == ']' || c == '(' ||
           c == ')' || c == '{' || c == '}';
}

/* Reads a run of digits at s[*k..e): value, or SAT_BIG when longer than 9 digits. */
static int32_t read_uint(const char *s, size_t *k, size_t e) {
    long v = 0;
    size_t d0 = *k;
    while (*k < e && isdigit((unsigned char)s[*k])) {
        if (*k - d0 < 9) v = v * 10 + (s[*k] - '0');
        (*k)++;
    }
    return *k - d0 > 9 ? SAT_BIG : (int32_t)v;
}

/* Matches a truth word at s[*k..e): 1 true, 0 false, -1 none. */
static int read_truth(const char *s, size_t *k, size_t e) {
    static const char *const words[] = {"true", "false", "t", "f", "1", "0"};
    for (int w = 0; w < 6; w++) {
        size_t L = strlen(words[w]);
        if (*k + L <= e && !strncasecmp(s + *k, words[w], L) &&
            (*k + L == e || is_sep((unsigned char)s[*k + L]))) {
            *k += L;
            return w % 2 == 0;
        }
    }
    return -1;
}

/* Tokenises one line into l. Returns 1 (assignment line with >= 1 token), 0 (only
 * separators), -1 (not an assignment line). */
static int parse_line(const char *s, size_t b, size_t e, lit_list *l) {
    size_t k = b, n0 = l->n;
    int first = 1;
    while (k < e) {
        unsigned char c = (unsigned char)s[k];
        if (is_sep(c)) {
            k++;
            continue;
        }
        if (first && (c == 'v' || c == 'V') && k + 1 < e && is_sep((unsigned char)s[k + 1]) &&
            !isdigit((unsigned char)s[k + 1])) {
            k++; /* DIMACS solver "v" line */
            first = 0;
            continue;
        }
        first = 0;
        int neg = 0;
        if (c == '-' || c == '+' || c == '~' || c == '!') {
            neg = c != '+';
            k++;
        } else if (k + 1 < e && c == 0xC2 && (unsigned char)s[k + 1] == 0xAC) { /* ¬ */
            neg = 1;
            k += 2;
        } else if (k + 2 < e && !memcmp(s + k, "\xe2\x88\x92", 3)) { /* unicode minus */
            neg = 1;
            k += 3;
        }
        if (k < e && isdigit((unsigned char)s[k])) {
            int32_t v = read_uint(s, &k, e);
            if (k < e && !is_sep((unsigned char)s[k])) goto bad;
            ll_push(l, neg ? -v : v);
            continue;
        }
        if (k < e && (s[k] == 'x' || s[k] == 'X') && k + 1 < e &&
            isdigit((unsigned char)s[k + 1])) {
            k++;
            int32_t v = read_uint(s, &k, e);
            if (v == 0) goto bad;
            size_t m = k;
            while (m < e && (s[m] == ' ' || s[m] == '\t')) m++;
            if (m < e && (s[m] == '=' || s[m] == ':')) {
                if (neg) goto bad;
                m++;
                while (m < e && (s[m] == ' ' || s[m] == '\t')) m++;
                int t = read_truth(s, &m, e);
                if (t < 0) goto bad;
                k = m;
                ll_push(l, t ? v : -v);
            } else {
                if (k < e && !is_sep((unsigned char)s[k])) goto bad;
                ll_push(l, neg ? -v : v);
            }
            continue;
        }
        goto bad;
    }
    return l->n > n0 ? 1 : 0;
bad:
    l->n = n0;
    return -1;
}

/* The region to search: the last <answer> block (to its close or the end), else all. */
static void answer_region(const char *s, size_t n, size_t *b, size_t *e, int *tagged) {
    const char *last = NULL, *p = s, *end = s + n;
    while (p < end) {
        const char *q = memmem(p, (size_t)(end - p), "<answer>", 8);
        if (!q) break;
        last = q;
        p = q + 8;
    }
    *tagged = last != NULL;
    if (!last) {
        *b = 0;
        *e = n;
        return;
    }
    const char *bb = last + 8;
    const char *ee = memmem(bb, (size_t)(end - bb), "</answer>", 9);
    *b = (size_t)(bb - s);
    *e = (size_t)((ee ? ee : end) - s);
}

/* Collects the last block of assignment lines of s[b..e) into l (in text order).
 * Returns the number of lines in the block (0: none). */
static int last_block(const char *s, size_t b, size_t e, lit_list *l) {
    /* Lines are parsed from the end backwards; each line's tokens are appended and the
     * per-line runs reversed at the end, so the result keeps text order. */
    size_t *starts = NULL, n_lines = 0, cap_lines = 0;
    size_t i = e;
    int in_block = 0;
    while (i > b) {
        size_t le = i;
        size_t ls = le;
        while (ls > b && s[ls - 1] != '\n') ls--;
        size_t before = l->n;
        int r = parse_line(s, ls, le, l);
        if (r == 1) {
            if (n_lines == cap_lines) {
                size_t c = cap_lines ? cap_lines * 2 : 16;
                size_t *p = realloc(starts, c * sizeof *p);
                if (!p) {
                    l->oom = 1;
                    break;
                }
                starts = p;
                cap_lines = c;
            }
            starts[n_lines++] = before;
            in_block = 1;
        } else if (r == -1 || (r == 0 && in_block)) {
            if (in_block) break;
        }
        i = ls > b ? ls - 1 : b;
    }
    /* Reorder: the runs were appended last line first. */
    if (n_lines > 1 && !l->oom) {
        int32_t *t = malloc(l->n * sizeof *t);
        if (!t) {
            l->oom = 1;
        } else {
            size_t o = 0;
            for (size_t k = n_lines; k-- > 0;) {
                size_t from = starts[k], to = k + 1 < n_lines ? starts[k + 1] : l->n;
                memcpy(t + o, l->lits + from, (to - from) * sizeof *t);
                o += to - from;
            }
            memcpy(l->lits, t, l->n * sizeof *t);
            free(t);
        }
    }
    free(starts);
    return (int)n_lines;
}

/* ---- the reward ------------------------------------------------------------------- */

static int sat_init(const rlvr_host *host, const char *config, void **state, char *err,
                    size_t errlen) {
    (void)host;
    cJSON *cfg = bu_config("sat", config, err, errlen);
    if (!cfg) return -1;
    static const char *const keys[] = {"require_all", "format", NULL};
    sat_state *st = calloc(1, sizeof *st);
    const char *fmt = "literals";
    if (!st || bu_known_keys("sat", cfg, keys, err, errlen) ||
        bu_get_bool("sat", cfg, "require_all", 0, &st->require_all, err, errlen) ||
        bu_get_str("sat", cfg, "format", "literals", &fmt, err, errlen)) {
        free(st);
        cJSON_Delete(cfg);
        return -1;
    }
    if (strcmp(fmt, "literals") && strcmp(fmt, "bits")) {
        snprintf(err, errlen, "sat: config field 'format' = \"%s\": expected \"literals\" or "
                              "\"bits\"", fmt);
        free(st);
        cJSON_Delete(cfg);
        return -1;
    }
    st->bits = !strcmp(fmt, "bits");
    cJSON_Delete(cfg);
    *state = st;
    return 0;
}

static void sat_destroy(void *s) { free(s); }

static int sat_one(const void *state, const rlvr_item *it, double *score, cJSON *info) {
    const sat_state *st = state;
    *score = 0.0;
    sat_cnf f = {0};
    const char *src = "", *why = "";
    if (cnf_from_row(it, &f, &src, &why)) {
        free(f.lits);
        cJSON_AddStringToObject(info, "reason", why);
        return RLVR_STATUS_ABSTAIN;
    }
    cJSON_AddStringToObject(info, "cnf_from", src);
    cJSON_AddNumberToObject(info, "n_vars", f.n_vars);
    cJSON_AddNumberToObject(info, "n_clauses", (double)f.n_clauses);
    size_t rb, re;
    int tagged;
    answer_region(it->completion, it->completion_len, &rb, &re, &tagged);
    lit_list l = {0};
    int lines = last_block(it->completion, rb, re, &l);
    const char *reason = NULL;
    int8_t *val = NULL; /* [n_vars + 1]: 0 unassigned, 1 true, -1 false */
    if (l.oom) {
        reason = "out of memory reading the assignment";
    } else if (lines == 0) {
        reason = tagged ? "no assignment in the <answer> block" : "no assignment found";
    } else if (!(val = calloc((size_t)f.n_vars + 1, 1))) {
        reason = "out of memory";
    }
    size_t assigned = 0;
    if (!reason && st->bits) {
        if (l.n != (size_t)f.n_vars) reason = "bits: expected one 0/1 value per variable";
        for (size_t k = 0; !reason && k < l.n; k++) {
            if (l.lits[k] != 0 && l.lits[k] != 1) reason = "bits: a value is not 0 or 1";
            else val[k + 1] = l.lits[k] ? 1 : -1;
        }
        if (!reason) assigned = l.n;
    } else if (!reason) {
        for (size_t k = 0; !reason && k < l.n; k++) {
            int32_t x = l.lits[k];
            if (x == 0) {
                if (k + 1 != l.n) reason = "0 inside the literal list (only allowed at the end)";
                continue;
            }
            int32_t v = x < 0 ? -x : x;
            if (v > f.n_vars) {
                reason = "a variable is out of range";
                cJSON_AddNumberToObject(info, "bad_var", v == SAT_BIG ? -1 : v);
                continue;
            }
            int8_t want = x > 0 ? 1 : -1;
            if (val[v] == -want) {
                reason = "a variable is assigned both true and false";
                cJSON_AddNumberToObject(info, "bad_var", v);
            } else if (!val[v]) {
                val[v] = want;
                assigned++;
            }
        }
    }
    cJSON_AddNumberToObject(info, "assigned", (double)assigned);
    if (!reason && st->require_all && assigned != (size_t)f.n_vars)
        reason = "not every variable is assigned";
    if (!reason) {
        size_t c = 0, k = 0;
        while (k < f.n_lits && !reason) {
            int sat = 0;
            for (; f.lits[k] != 0; k++) {
                int32_t x = f.lits[k];
                if (val[x < 0 ? -x : x] == (x > 0 ? 1 : -1)) sat = 1;
            }
            k++; /* the 0 */
            c++;
            if (!sat) {
                reason = "a clause is not satisfied";
                cJSON_AddNumberToObject(info, "unsat_clause", (double)c);
            }
        }
    }
    if (reason) cJSON_AddStringToObject(info, "reason", reason);
    else *score = 1.0;
    free(val);
    free(l.lits);
    free(f.lits);
    return RLVR_STATUS_OK;
}

static int sat_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    return bu_score_each(state, b, out, sat_one);
}

const rlvr_reward_desc *rlvr_builtin_sat(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "sat",
        .version = "1.0",
        .description = "the completion's truth assignment satisfies the row's CNF formula",
        .flags = RLVR_REWARD_THREAD_SAFE | RLVR_REWARD_DETERMINISTIC,
        .init = sat_init,
        .score = sat_score,
        .destroy = sat_destroy,
    };
    return &d;
}
