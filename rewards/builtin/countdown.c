/*
 * rewards/builtin/countdown.c — the `countdown` reward: the completion's equation (the
 * last <answer>...</answer>, else the last line with a digit) must use exactly the given
 * numbers (as a multiset: each once) with + - * / and parentheses, and evaluate to the
 * target. Parsed by a recursive-descent parser over exact GMP rationals: no eval, no
 * exponentiation, no unary minus, depth-bounded, division by zero is wrong.
 *
 * Row fields (extra JSON): "nums" or "numbers" (array of integers) and "target"
 * (integer; the row's "answer" is used when "target" is absent). Missing → ABSTAIN.
 * Config: {"format_score": 0.0} paid when an equation parses but is wrong.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <gmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewards/builtin/builtin_util.h"
#include "rewards/builtin/builtins.h"

#define CD_MAX_NUMS 32
#define CD_MAX_LEN 4096
#define CD_MAX_DEPTH 64

typedef struct {
    double format_score;
} cd_state;

typedef struct {
    const char *s;
    size_t pos, n;
    int depth;
    long used[CD_MAX_NUMS];
    int n_used;
    int bad;
} cd_p;

static void cd_ws(cd_p *p) {
    while (p->pos < p->n && isspace((unsigned char)p->s[p->pos])) p->pos++;
}

static int cd_expr(cd_p *p, mpq_t out);

static int cd_primary(cd_p *p, mpq_t out) {
    cd_ws(p);
    if (p->pos >= p->n) return -1;
    if (++p->depth > CD_MAX_DEPTH) return -1;
    int rc = -1;
    char c = p->s[p->pos];
    if (c == '(') {
        p->pos++;
        rc = cd_expr(p, out);
        cd_ws(p);
        if (!rc && (p->pos >= p->n || p->s[p->pos] != ')')) rc = -1;
        else if (!rc) p->pos++;
    } else if (isdigit((unsigned char)c)) {
        long v = 0;
        size_t k = p->pos;
        while (k < p->n && isdigit((unsigned char)p->s[k]) && k - p->pos < 9)
            v = v * 10 + (p->s[k++] - '0');
        if (k < p->n && (isdigit((unsigned char)p->s[k]) || p->s[k] == '.')) return -1;
        if (p->n_used >= CD_MAX_NUMS) return -1;
        p->used[p->n_used++] = v;
        mpq_set_si(out, v, 1);
        p->pos = k;
        rc = 0;
    }
    p->depth--;
    return rc;
}

static int cd_term(cd_p *p, mpq_t out) {
    if (cd_primary(p, out)) return -1;
    mpq_t b;
    mpq_init(b);
    int rc = 0;
    for (;;) {
        cd_ws(p);
        if (p->pos >= p->n) break;
        char c = p->s[p->pos];
        if (c != '*' && c != '/' && c != 'x' && c != 'X') {
            /* also accept the unicode signs × and ÷ */
            if (p->pos + 1 < p->n && (unsigned char)c == 0xC3 &&
                ((unsigned char)p->s[p->pos + 1] == 0x97 || (unsigned char)p->s[p->pos + 1] == 0xB7)) {
                c = (unsigned char)p->s[p->pos + 1] == 0x97 ? '*' : '/';
                p->pos++;
            } else {
                break;
            }
        }
        p->pos++;
        if (cd_primary(p, b)) {
            rc = -1;
            break;
        }
        if (c == '/') {
            if (mpq_sgn(b) == 0) {
                rc = -1;
                break;
            }
            mpq_div(out, out, b);
        } else {
            mpq_mul(out, out, b);
        }
    }
    mpq_clear(b);
    return rc;
}

static int cd_expr(cd_p *p, mpq_t out) {
    if (cd_term(p, out)) return -1;
    mpq_t b;
    mpq_init(b);
    int rc = 0;
    for (;;) {
        cd_ws(p);
        if (p->pos >= p->n) break;
        char c = p->s[p->pos];
        int minus = c == '-';
        if (c != '+' && c != '-') {
            if (p->pos + 2 < p->n && !memcmp(p->s + p->pos, "\xe2\x88\x92", 3)) {
                minus = 1;
                p->pos += 2;
            } else {
                break;
            }
        }
        p->pos++;
        if (cd_term(p, b)) {
            rc = -1;
            break;
        }
        if (minus) mpq_sub(out, out, b);
        else mpq_add(out, out, b);
    }
    mpq_clear(b);
    return rc;
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int cd_init(const rlvr_host *host, const char *config, void **state, char *err,
                   size_t errlen) {
    (void)host;
    cJSON *cfg = bu_config("countdown", config, err, errlen);
    if (!cfg) return -1;
    static const char *const keys[] = {"format_score", NULL};
    cd_state *st = calloc(1, sizeof *st);
    if (!st || bu_known_keys("countdown", cfg, keys, err, errlen) ||
        bu_get_num("countdown", cfg, "format_score", 0.0, 0.0, 1.0, &st->format_score, err,
                   errlen)) {
        free(st);
        cJSON_Delete(cfg);
        return -1;
    }
    cJSON_Delete(cfg);
    *state = st;
    return 0;
}

static void cd_destroy(void *s) { free(s); }

/* The equation text: last <answer> block, else the last line containing a digit. */
static void cd_find(const char *s, size_t n, size_t *st, size_t *len) {
    const char *last = NULL, *p = s, *end = s + n;
    while (p < end) {
        const char *q = memmem(p, (size_t)(end - p), "<answer>", 8);
        if (!q) break;
        last = q;
        p = q + 8;
    }
    if (last) {
        const char *b = last + 8;
        const char *e = memmem(b, (size_t)(end - b), "</answer>", 9);
        *st = (size_t)(b - s);
        *len = (size_t)((e ? e : end) - b);
        return;
    }
    size_t i = n;
    while (i > 0) {
        size_t e = i;
        while (i > 0 && s[i - 1] != '\n') i--;
        for (size_t k = i; k < e; k++)
            if (isdigit((unsigned char)s[k])) {
                /* skip leading words: the equation starts at its first digit or '(' */
                size_t b = i;
                while (b < k && s[b] != '(') b++;
                *st = b;
                *len = e - b;
                return;
            }
        if (i > 0) i--;
    }
    *st = 0;
    *len = 0;
}

static int cd_one(const void *state, const rlvr_item *it, double *score, cJSON *info) {
    const cd_state *st = state;
    *score = 0.0;
    cJSON *ex = cJSON_Parse(it->extra_json);
    const cJSON *nums = ex ? cJSON_GetObjectItemCaseSensitive(ex, "nums") : NULL;
    if (!nums && ex) nums = cJSON_GetObjectItemCaseSensitive(ex, "numbers");
    const cJSON *tg = ex ? cJSON_GetObjectItemCaseSensitive(ex, "target") : NULL;
    long want[CD_MAX_NUMS];
    int n_want = 0, ok = nums && cJSON_IsArray(nums);
    for (const cJSON *e = ok ? nums->child : NULL; e && ok; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
            e->valuedouble < 0 || e->valuedouble > 1e9 || n_want >= CD_MAX_NUMS)
            ok = 0;
        else
            want[n_want++] = (long)e->valuedouble;
    }
    mpq_t target;
    mpq_init(target);
    if (ok && tg && cJSON_IsNumber(tg) && tg->valuedouble == floor(tg->valuedouble) &&
        fabs(tg->valuedouble) < 1e15) {
        mpq_set_si(target, (long)tg->valuedouble, 1);
    } else if (ok && !tg && it->answer_len > 0 && it->answer_len < 20) {
        char buf[24];
        memcpy(buf, it->answer, it->answer_len);
        buf[it->answer_len] = 0;
        char *endp;
        long v = strtol(buf, &endp, 10);
        if (*endp || endp == buf) ok = 0;
        else mpq_set_si(target, v, 1);
    } else {
        ok = 0;
    }
    cJSON_Delete(ex);
    if (!ok) {
        mpq_clear(target);
        cJSON_AddStringToObject(info, "reason", "row needs 'nums' (array of non-negative "
                                                "integers) and an integer 'target'");
        return RLVR_STATUS_ABSTAIN;
    }
    size_t es, el;
    cd_find(it->completion, it->completion_len, &es, &el);
    const char *eq = it->completion + es;
    /* "expr = target": keep the left-hand side. */
    const char *eqs = memchr(eq, '=', el);
    if (eqs) el = (size_t)(eqs - eq);
    bu_add_str(info, "equation", eq, el, 200);
    if (el == 0 || el > CD_MAX_LEN) {
        mpq_clear(target);
        cJSON_AddStringToObject(info, "reason", el ? "equation too long" : "no equation");
        return RLVR_STATUS_OK;
    }
    cd_p p = {eq, 0, el, 0, {0}, 0, 0};
    mpq_t v;
    mpq_init(v);
    int prc = cd_expr(&p, v);
    cd_ws(&p);
    if (prc || p.pos != p.n) {
        cJSON_AddStringToObject(info, "reason", "equation does not parse");
    } else {
        qsort(p.used, (size_t)p.n_used, sizeof(long), cmp_long);
        qsort(want, (size_t)n_want, sizeof(long), cmp_long);
        int same = p.n_used == n_want;
        for (int i = 0; same && i < n_want; i++) same = p.used[i] == want[i];
        int hit = mpq_equal(v, target);
        cJSON_AddBoolToObject(info, "numbers_ok", same);
        cJSON_AddBoolToObject(info, "reaches_target", hit);
        *score = same && hit ? 1.0 : st->format_score;
    }
    mpq_clear(v);
    mpq_clear(target);
    return RLVR_STATUS_OK;
}

static int cd_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    return bu_score_each(state, b, out, cd_one);
}

const rlvr_reward_desc *rlvr_builtin_countdown(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "countdown",
        .version = "1.0",
        .description = "equation uses the given numbers exactly once and reaches the target",
        .flags = RLVR_REWARD_THREAD_SAFE | RLVR_REWARD_DETERMINISTIC,
        .init = cd_init,
        .score = cd_score,
        .destroy = cd_destroy,
    };
    return &d;
}
