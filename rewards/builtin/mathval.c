/*
 * rewards/builtin/mathval.c — parsing final answers into exact values and comparing
 * them. Pipeline: normalise the text (unicode, LaTeX noise, \text{}, degrees, $), split
 * off "x =" prefixes, detect lists / multiple-choice letters, and parse each number with
 * a recursive-descent parser over exact GMP rationals extended by sqrt and pi terms.
 * Bounds: MV_MAX_INPUT bytes, nesting depth 256, 1M bits per rational, 16 terms per sum,
 * integer exponents |e| <= 10000, list length 64.
 */
#include "rewards/builtin/mathval.h"

#include <ctype.h>
#include <gmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TERMS 16
#define MAX_BITS (1u << 20)
#define MAX_DEPTH 256
#define MAX_ELEMS 64
#define MAX_EXP 10000

/* ---- exact numbers ---------------------------------------------------------------- */

typedef struct {
    mpq_t c;
    int pi;            /* power of pi */
    unsigned long rad; /* square-free radicand, 1 = none */
} term;

typedef struct {
    term t[MAX_TERMS];
    int n;
    int inf; /* +1 / -1: infinity (then n == 0) */
} num;

static void num_init(num *a) {
    a->n = 0;
    a->inf = 0;
}
static void num_clear(num *a) {
    for (int i = 0; i < a->n; i++) mpq_clear(a->t[i].c);
    a->n = 0;
    a->inf = 0;
}
static int too_big(const mpq_t q) {
    return mpz_sizeinbase(mpq_numref(q), 2) + mpz_sizeinbase(mpq_denref(q), 2) > MAX_BITS;
}
static int term_cmp(const term *a, const term *b) {
    if (a->pi != b->pi) return a->pi < b->pi ? -1 : 1;
    if (a->rad != b->rad) return a->rad < b->rad ? -1 : 1;
    return 0;
}
/* Adds c*pi^k*sqrt(rad) to a (c is copied). Returns -1 on overflow of the term cap. */
static int num_add_term(num *a, const mpq_t c, int pi, unsigned long rad) {
    if (mpq_sgn(c) == 0) return 0;
    term key = {.pi = pi, .rad = rad};
    int i = 0;
    while (i < a->n && term_cmp(&a->t[i], &key) < 0) i++;
    if (i < a->n && term_cmp(&a->t[i], &key) == 0) {
        mpq_add(a->t[i].c, a->t[i].c, c);
        if (mpq_sgn(a->t[i].c) == 0) {
            mpq_clear(a->t[i].c);
            memmove(&a->t[i], &a->t[i + 1], (size_t)(a->n - i - 1) * sizeof(term));
            a->n--;
        }
        return 0;
    }
    if (a->n >= MAX_TERMS) return -1;
    memmove(&a->t[i + 1], &a->t[i], (size_t)(a->n - i) * sizeof(term));
    mpq_init(a->t[i].c);
    mpq_set(a->t[i].c, c);
    a->t[i].pi = pi;
    a->t[i].rad = rad;
    a->n++;
    return 0;
}
static int num_set_q(num *a, const mpq_t q) {
    num_init(a);
    return num_add_term(a, q, 0, 1);
}
static void num_neg(num *a) {
    a->inf = -a->inf;
    for (int i = 0; i < a->n; i++) mpq_neg(a->t[i].c, a->t[i].c);
}
/* a += b */
static int num_add(num *a, const num *b) {
    if (a->inf || b->inf) return -1;
    for (int i = 0; i < b->n; i++) {
        if (num_add_term(a, b->t[i].c, b->t[i].pi, b->t[i].rad)) return -1;
        if (a->n && too_big(a->t[0].c)) return -1;
    }
    return 0;
}
static unsigned long gcd_ul(unsigned long a, unsigned long b) {
    while (b) {
        unsigned long t = a % b;
        a = b;
        b = t;
    }
    return a;
}
/* r = a * b */
static int num_mul(num *r, const num *a, const num *b) {
    num_init(r);
    if (a->inf || b->inf) return -1;
    mpq_t c;
    mpq_init(c);
    int rc = 0;
    for (int i = 0; i < a->n && !rc; i++) {
        for (int j = 0; j < b->n && !rc; j++) {
            const term *x = &a->t[i], *y = &b->t[j];
            mpq_mul(c, x->c, y->c);
            unsigned long g = gcd_ul(x->rad, y->rad);
            unsigned long p = x->rad / g, q = y->rad / g;
            if (p && q > UINT32_MAX / p) {
                rc = -1;
                break;
            }
            /* sqrt(g p) sqrt(g q) = g sqrt(p q) */
            mpz_mul_ui(mpq_numref(c), mpq_numref(c), g);
            mpq_canonicalize(c);
            if (too_big(c) || x->pi + y->pi > 1000 || x->pi + y->pi < -1000) {
                rc = -1;
                break;
            }
            rc = num_add_term(r, c, x->pi + y->pi, p * q);
        }
    }
    mpq_clear(c);
    if (rc) num_clear(r);
    return rc;
}
/* r = a / b, b must be a single non-zero term. */
static int num_div(num *r, const num *a, const num *b) {
    num_init(r);
    if (b->inf || a->inf || b->n != 1) return -1;
    const term *y = &b->t[0];
    /* 1/(c pi^k sqrt(s)) = (1/(c s)) pi^-k sqrt(s) */
    num inv;
    num_init(&inv);
    mpq_t c;
    mpq_init(c);
    mpq_set_ui(c, y->rad, 1);
    mpq_mul(c, c, y->c);
    mpq_inv(c, c);
    int rc = num_add_term(&inv, c, -y->pi, y->rad);
    mpq_clear(c);
    if (!rc) rc = num_mul(r, a, &inv);
    num_clear(&inv);
    return rc;
}
static int num_is_rational(const num *a) {
    return !a->inf && (a->n == 0 || (a->n == 1 && a->t[0].pi == 0 && a->t[0].rad == 1));
}
static int num_get_int(const num *a, long *out) {
    if (!num_is_rational(a)) return -1;
    if (a->n == 0) {
        *out = 0;
        return 0;
    }
    if (mpz_cmp_ui(mpq_denref(a->t[0].c), 1) != 0) return -1;
    if (!mpz_fits_slong_p(mpq_numref(a->t[0].c))) return -1;
    *out = mpz_get_si(mpq_numref(a->t[0].c));
    return 0;
}
/* Square-free part: m = s^2 * f. Returns -1 if m is too large to factor. */
static int square_free(const mpz_t m, mpz_t s, unsigned long *f) {
    if (mpz_perfect_square_p(m)) {
        mpz_sqrt(s, m);
        *f = 1;
        return 0;
    }
    if (mpz_sizeinbase(m, 2) > 40) return -1; /* > ~1e12: not supported */
    unsigned long v = mpz_get_ui(m), sq = 1;
    for (unsigned long p = 2; p <= 10000 && p * p <= v; p++) {
        while (v % (p * p) == 0) {
            v /= p * p;
            sq *= p;
        }
    }
    /* After removing squares of primes <= 1e4, a leftover square is a prime square. */
    mpz_t w;
    mpz_init_set_ui(w, v);
    if (v > 1 && mpz_perfect_square_p(w)) {
        mpz_sqrt(w, w);
        sq *= mpz_get_ui(w);
        v = 1;
    }
    mpz_clear(w);
    mpz_set_ui(s, sq);
    *f = v;
    return 0;
}
/* r = sqrt(a), a a non-negative rational. */
static int num_sqrt(num *r, const num *a) {
    num_init(r);
    if (!num_is_rational(a)) return -1;
    if (a->n == 0) return 0;
    const mpq_srcptr q = a->t[0].c;
    if (mpq_sgn(q) < 0) return -1;
    /* sqrt(p/q) = sqrt(p q) / q */
    mpz_t m, s;
    mpz_inits(m, s, NULL);
    mpz_mul(m, mpq_numref(q), mpq_denref(q));
    unsigned long f;
    int rc = -1;
    if (square_free(m, s, &f) == 0) {
        mpq_t c;
        mpq_init(c);
        mpq_set_z(c, s);
        mpz_set(m, mpq_denref(q));
        mpz_mul(mpq_denref(c), mpq_denref(c), m);
        mpq_canonicalize(c);
        rc = num_add_term(r, c, 0, f);
        mpq_clear(c);
    }
    mpz_clears(m, s, NULL);
    return rc;
}
static int num_pow(num *r, const num *a, long e) {
    num_init(r);
    if (a->inf) return -1;
    if (e < -MAX_EXP || e > MAX_EXP) return -1;
    if (a->n == 0) {
        if (e <= 0) return -1; /* 0^0, 1/0 */
        return 0;
    }
    if (a->n == 1) {
        const term *x = &a->t[0];
        unsigned long ue = (unsigned long)(e < 0 ? -e : e);
        size_t bits = mpz_sizeinbase(mpq_numref(x->c), 2) + mpz_sizeinbase(mpq_denref(x->c), 2);
        if (bits * ue > MAX_BITS) return -1;
        if ((long)ue * (x->pi < 0 ? -x->pi : x->pi) > 1000) return -1;
        mpq_t c;
        mpq_init(c);
        mpz_pow_ui(mpq_numref(c), mpq_numref(x->c), ue);
        mpz_pow_ui(mpq_denref(c), mpq_denref(x->c), ue);
        /* sqrt(r)^ue = r^(ue/2) [* sqrt(r) when odd] */
        mpz_t rp;
        mpz_init(rp);
        mpz_ui_pow_ui(rp, x->rad, ue / 2);
        mpz_mul(mpq_numref(c), mpq_numref(c), rp);
        mpz_clear(rp);
        mpq_canonicalize(c);
        num m;
        num_init(&m);
        int rc = too_big(c) ? -1
                            : num_add_term(&m, c, x->pi * (int)ue, (ue & 1) ? x->rad : 1);
        mpq_clear(c);
        if (!rc && e < 0) {
            num one;
            mpq_t q1;
            mpq_init(q1);
            mpq_set_ui(q1, 1, 1);
            num_set_q(&one, q1);
            mpq_clear(q1);
            rc = num_div(r, &one, &m);
            num_clear(&one);
            num_clear(&m);
        } else if (!rc) {
            *r = m;
        } else {
            num_clear(&m);
        }
        return rc;
    }
    if (e < 0 || e > 64) return -1;
    mpq_t q1;
    mpq_init(q1);
    mpq_set_ui(q1, 1, 1);
    num acc;
    num_set_q(&acc, q1);
    mpq_clear(q1);
    for (long i = 0; i < e; i++) {
        num t;
        if (num_mul(&t, &acc, a)) {
            num_clear(&acc);
            return -1;
        }
        num_clear(&acc);
        acc = t;
    }
    *r = acc;
    return 0;
}
static int num_equal(const num *a, const num *b) {
    if (a->inf != b->inf || a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++)
        if (term_cmp(&a->t[i], &b->t[i]) || !mpq_equal(a->t[i].c, b->t[i].c)) return 0;
    return 1;
}

/* ---- the expression parser ---------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t pos, n;
    int depth;
} P;

static void ws(P *p) {
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}
static int at(P *p, const char *lit) {
    ws(p);
    size_t l = strlen(lit);
    if (p->pos + l > p->n || memcmp(p->s + p->pos, lit, l) != 0) return 0;
    /* a command must not continue with letters (\pi vs \pix) */
    if (lit[0] == '\\' && isalpha((unsigned char)lit[l - 1]) && p->pos + l < p->n &&
        isalpha((unsigned char)p->s[p->pos + l]))
        return 0;
    return 1;
}
static int eat(P *p, const char *lit) {
    if (!at(p, lit)) return 0;
    p->pos += strlen(lit);
    return 1;
}

static int p_expr(P *p, num *out);
static int p_factor(P *p, num *out);

static int p_number(P *p, num *out) {
    ws(p);
    size_t i = p->pos, st = i;
    while (i < p->n && isdigit((unsigned char)p->s[i])) i++;
    size_t int_end = i, frac_st = i, frac_end = i;
    if (i < p->n && p->s[i] == '.' && i + 1 < p->n && isdigit((unsigned char)p->s[i + 1])) {
        frac_st = i + 1;
        i++;
        while (i < p->n && isdigit((unsigned char)p->s[i])) i++;
        frac_end = i;
    }
    if (i == st) return -1;
    long ex = 0;
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        size_t j = i + 1;
        int neg = 0;
        if (j < p->n && (p->s[j] == '+' || p->s[j] == '-')) neg = p->s[j++] == '-';
        if (j < p->n && isdigit((unsigned char)p->s[j])) {
            size_t k = j;
            while (k < p->n && isdigit((unsigned char)p->s[k])) {
                if (ex > MAX_EXP) return -1;
                ex = ex * 10 + (p->s[k] - '0');
                k++;
            }
            if (ex > MAX_EXP) return -1;
            if (neg) ex = -ex;
            i = k;
        }
    }
    size_t nd = (int_end - st) + (frac_end - frac_st);
    char *digits = malloc(nd + 2);
    if (!digits) return -1;
    memcpy(digits, p->s + st, int_end - st);
    memcpy(digits + (int_end - st), p->s + frac_st, frac_end - frac_st);
    digits[nd] = 0;
    mpq_t q;
    mpq_init(q);
    mpz_set_str(mpq_numref(q), digits, 10);
    free(digits);
    long scale = (long)(frac_end - frac_st) - ex; /* value = digits * 10^-scale */
    mpz_t t;
    mpz_init(t);
    mpz_ui_pow_ui(t, 10, (unsigned long)(scale < 0 ? -scale : scale));
    if (scale > 0) mpz_set(mpq_denref(q), t);
    else mpz_mul(mpq_numref(q), mpq_numref(q), t);
    mpz_clear(t);
    mpq_canonicalize(q);
    p->pos = i;
    int rc = num_set_q(out, q);
    mpq_clear(q);
    return rc;
}

/* A \frac / \sqrt argument: {expr} or a single digit or a single command. */
static int p_arg(P *p, num *out) {
    ws(p);
    if (eat(p, "{")) {
        if (p_expr(p, out)) return -1;
        if (!eat(p, "}")) {
            num_clear(out);
            return -1;
        }
        return 0;
    }
    if (p->pos < p->n && isdigit((unsigned char)p->s[p->pos])) {
        mpq_t q;
        mpq_init(q);
        mpq_set_ui(q, (unsigned long)(p->s[p->pos] - '0'), 1);
        p->pos++;
        int rc = num_set_q(out, q);
        mpq_clear(q);
        return rc;
    }
    if (at(p, "\\pi")) return p_factor(p, out);
    return -1;
}

static int p_primary(P *p, num *out) {
    if (++p->depth > MAX_DEPTH) return -1;
    int rc = -1;
    ws(p);
    num_init(out);
    if (eat(p, "(")) {
        rc = p_expr(p, out);
        if (!rc && !eat(p, ")")) rc = -1;
    } else if (eat(p, "{")) {
        rc = p_expr(p, out);
        if (!rc && !eat(p, "}")) rc = -1;
    } else if (eat(p, "\\frac")) {
        num a, b;
        num_init(&a);
        num_init(&b);
        if (p_arg(p, &a) == 0 && p_arg(p, &b) == 0) rc = num_div(out, &a, &b);
        num_clear(&a);
        num_clear(&b);
    } else if (eat(p, "\\sqrt")) {
        num a;
        num_init(&a);
        int ok = 1;
        if (eat(p, "[")) {
            ok = eat(p, "2") && eat(p, "]");
        }
        if (ok && p_arg(p, &a) == 0) rc = num_sqrt(out, &a);
        num_clear(&a);
    } else if (eat(p, "\\pi")) {
        mpq_t q;
        mpq_init(q);
        mpq_set_ui(q, 1, 1);
        rc = num_add_term(out, q, 1, 1);
        mpq_clear(q);
    } else if (eat(p, "\\infty")) {
        out->inf = 1;
        rc = 0;
    } else {
        rc = p_number(p, out);
    }
    p->depth--;
    if (rc) num_clear(out);
    return rc;
}

/* factor := ('-'|'+') factor | primary ('^' exponent)* */
static int p_factor(P *p, num *out) {
    num_init(out);
    if (++p->depth > MAX_DEPTH) return -1;
    int rc;
    if (eat(p, "-")) {
        rc = p_factor(p, out);
        if (!rc) num_neg(out);
        p->depth--;
        return rc;
    }
    if (eat(p, "+")) {
        rc = p_factor(p, out);
        p->depth--;
        return rc;
    }
    rc = p_primary(p, out);
    while (!rc && eat(p, "^")) {
        num e;
        num_init(&e);
        ws(p);
        if (at(p, "{")) {
            rc = p_primary(p, &e);
        } else if (at(p, "-")) {
            rc = p_factor(p, &e);
        } else if (p->pos < p->n && isdigit((unsigned char)p->s[p->pos])) {
            /* 10^3 : a single digit run */
            rc = p_number(p, &e);
        } else {
            rc = p_primary(p, &e);
        }
        long k;
        if (!rc && num_get_int(&e, &k) == 0) {
            num r;
            rc = num_pow(&r, out, k);
            num_clear(out);
            if (!rc) *out = r;
        } else {
            rc = -1;
        }
        num_clear(&e);
    }
    p->depth--;
    if (rc) num_clear(out);
    return rc;
}

static int starts_implicit(P *p) {
    ws(p);
    if (p->pos >= p->n) return 0;
    char c = p->s[p->pos];
    return c == '(' || at(p, "\\frac") || at(p, "\\sqrt") || at(p, "\\pi");
}

/* "2\frac{1}{2}" is the mixed number 5/2, not 2 * 1/2. */
static int p_mixed(P *p, num *out) {
    ws(p);
    size_t i = p->pos;
    while (i < p->n && isdigit((unsigned char)p->s[i])) i++;
    if (i == p->pos) return 1;
    while (i < p->n && p->s[i] == ' ') i++;
    if (i + 5 > p->n || memcmp(p->s + i, "\\frac", 5) != 0) return 1;
    size_t save = p->pos;
    num a, b;
    if (p_number(p, &a)) return -1;
    if (p_primary(p, &b) || !num_is_rational(&b) ||
        (b.n && mpq_sgn(b.t[0].c) < 0)) {
        num_clear(&a);
        p->pos = save;
        return 1;
    }
    int rc = num_add(&a, &b);
    num_clear(&b);
    if (rc) {
        num_clear(&a);
        return -1;
    }
    *out = a;
    return 0;
}

static int p_term(P *p, num *out) {
    int m = p_mixed(p, out);
    if (m < 0) return -1;
    if (m > 0 && p_factor(p, out)) return -1;
    for (;;) {
        int op = 0;
        if (eat(p, "*") || eat(p, "\\cdot") || eat(p, "\\times")) op = 1;
        else if (eat(p, "/") || eat(p, "\\div")) op = 2;
        else if (starts_implicit(p)) op = 1;
        else break;
        num b, r;
        if (p_factor(p, &b)) {
            num_clear(out);
            return -1;
        }
        int rc = op == 1 ? num_mul(&r, out, &b) : num_div(&r, out, &b);
        num_clear(&b);
        num_clear(out);
        if (rc) return -1;
        *out = r;
    }
    return 0;
}

static int p_expr(P *p, num *out) {
    if (++p->depth > MAX_DEPTH) return -1;
    num_init(out);
    if (p_term(p, out)) {
        p->depth--;
        return -1;
    }
    for (;;) {
        int neg;
        if (eat(p, "+")) neg = 0;
        else if (eat(p, "-")) neg = 1;
        else break;
        num b;
        if (p_term(p, &b)) {
            num_clear(out);
            p->depth--;
            return -1;
        }
        if (neg) num_neg(&b);
        int rc = num_add(out, &b);
        num_clear(&b);
        if (rc) {
            num_clear(out);
            p->depth--;
            return -1;
        }
    }
    p->depth--;
    return 0;
}

/* ---- normalisation ------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static int sb_put(sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

typedef struct {
    const char *from, *to;
} repl;

/* Replacements applied left to right in one pass (longest listed first where needed). */
static const repl k_repl[] = {
    {"\xe2\x88\x92", "-"},          /* U+2212 minus */
    {"\xe2\x80\x93", "-"},          /* en dash */
    {"\xc3\x97", "\\times "},       /* multiplication sign */
    {"\xc2\xb7", "\\cdot "},        /* middle dot */
    {"\xc3\xb7", "\\div "},         /* division sign */
    {"\xcf\x80", "\\pi "},          /* pi */
    {"\xe2\x88\x9a", "\\sqrt"},     /* square root */
    {"\xe2\x88\x9e", "\\infty "},   /* infinity */
    {"\xc2\xb0", ""},               /* degree sign */
    {"\xc2\xa0", " "},              /* no-break space */
    {"\\displaystyle", ""},
    {"\\left", ""},
    {"\\right", ""},
    {"\\bigl", ""},
    {"\\bigr", ""},
    {"\\Bigl", ""},
    {"\\Bigr", ""},
    {"\\big", ""},
    {"\\Big", ""},
    {"^{\\circ}", ""},
    {"^\\circ", ""},
    {"\\circ", ""},
    {"\\degree", ""},
    {"{,}", ","},
    {"\\!", ""},
    {"\\,", ""},
    {"\\;", ""},
    {"\\:", ""},
    {"\\ ", " "},
    {"\\quad", " "},
    {"\\qquad", " "},
    {"\\%", "%"},
    {"\\$", ""},
    {"$", ""},
    {"~", " "},
    {"\\dfrac", "\\frac"},
    {"\\tfrac", "\\frac"},
    {"\\cfrac", "\\frac"},
};

static const char *k_wrappers[] = {"\\text{", "\\textbf{", "\\textrm{", "\\mathrm{",
                                   "\\mathbf{", "\\mbox{", "\\textit{", "\\operatorname{"};

/* One normalisation pass. \text-like wrappers become their content surrounded by spaces
 * (so "5\text{cm}" reads as "5 cm"). */
static char *normalize(const char *s, size_t n) {
    sbuf b = {0};
    if (sb_put(&b, "", 0)) return NULL;
    size_t i = 0;
    int skip_close = 0;     /* braces to drop: count of open wrappers */
    int wdepth[32];         /* brace depth at which each wrapper opened */
    int depth = 0;
    while (i < n) {
        int done = 0;
        for (size_t w = 0; w < sizeof k_wrappers / sizeof *k_wrappers && !done; w++) {
            size_t l = strlen(k_wrappers[w]);
            if (i + l <= n && !memcmp(s + i, k_wrappers[w], l) && skip_close < 32) {
                wdepth[skip_close++] = depth;
                depth++;
                if (sb_put(&b, " ", 1)) goto oom;
                i += l;
                done = 1;
            }
        }
        if (done) continue;
        for (size_t r = 0; r < sizeof k_repl / sizeof *k_repl && !done; r++) {
            size_t l = strlen(k_repl[r].from);
            if (i + l <= n && !memcmp(s + i, k_repl[r].from, l)) {
                if (sb_put(&b, k_repl[r].to, strlen(k_repl[r].to))) goto oom;
                i += l;
                done = 1;
            }
        }
        if (done) continue;
        char c = s[i];
        if (c == '\\' && i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '}')) {
            if (sb_put(&b, s + i, 2)) goto oom;
            i += 2;
            continue;
        }
        if (c == '{') depth++;
        if (c == '}') {
            depth--;
            if (skip_close > 0 && wdepth[skip_close - 1] == depth) {
                skip_close--;
                if (sb_put(&b, " ", 1)) goto oom;
                i++;
                continue;
            }
        }
        if (sb_put(&b, &c, 1)) goto oom;
        i++;
    }
    return b.p;
oom:
    free(b.p);
    return NULL;
}

static void trim(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && (isspace((unsigned char)(*s)[*n - 1]))) (*n)--;
}

/* ---- values --------------------------------------------------------------------- */

struct mv_value {
    int kind;
    num raw;      /* MV_NUM: value with any trailing % ignored */
    int pct;      /* a trailing % was present */
    char open[3], close[3]; /* MV_LIST delimiters: "(", "[", "\\{", "" for bare, "U" union */
    mv_value **el;
    int n_el;
    char letter;
    char *text;   /* MV_TEXT: normalised, whitespace removed */
};

int mv_kind(const mv_value *v) { return v ? v->kind : MV_EMPTY; }

void mv_free(mv_value *v) {
    if (!v) return;
    if (v->kind == MV_NUM) num_clear(&v->raw);
    for (int i = 0; i < v->n_el; i++) mv_free(v->el[i]);
    free(v->el);
    free(v->text);
    free(v);
}

/* Is the remainder after a number a unit (words of letters, maybe ^2, '/', '.')? */
static int unit_like(const char *s, size_t n, int had_space) {
    trim(&s, &n);
    if (n == 0) return 1;
    if (!had_space) return 0;
    int letters = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (isalpha((unsigned char)c)) letters++;
        else if (c == ' ' || c == '/' || c == '.' || c == '{' || c == '}') continue;
        else if (c == '^' && i + 1 < n && isdigit((unsigned char)s[i + 1])) i++;
        else return 0;
    }
    return letters >= 2 && s[0] != '\\';
}

/* Parses a whole string as a number, allowing a trailing unit and %. */
static int parse_number_str(const char *s, size_t n, num *out, int *pct) {
    trim(&s, &n);
    *pct = 0;
    if (n && s[n - 1] == '%') {
        *pct = 1;
        n--;
        trim(&s, &n);
    }
    while (n && s[n - 1] == '.') n--;
    if (!n) return -1;
    P p = {s, 0, n, 0};
    if (p_expr(&p, out)) return -1;
    ws(&p);
    if (p.pos == n) return 0;
    int had_space = p.pos > 0 && isspace((unsigned char)s[p.pos - 1]);
    if (!*pct && unit_like(s + p.pos, n - p.pos, had_space || s[p.pos] == ' ')) return 0;
    num_clear(out);
    return -1;
}

/* Removes "1,234,567" thousands separators in a bare (unbracketed) string. */
static void strip_thousands(char *s) {
    size_t n = strlen(s), w = 0;
    char *o = strdup(s);
    if (!o) return;
    for (size_t i = 0; i < n; i++) {
        if (o[i] == ',' && i > 0 && isdigit((unsigned char)o[i - 1]) && i + 3 < n &&
            isdigit((unsigned char)o[i + 1]) && isdigit((unsigned char)o[i + 2]) &&
            isdigit((unsigned char)o[i + 3]) &&
            (i + 4 >= n || !isdigit((unsigned char)o[i + 4]))) {
            /* the group before is 1-3 digits, not the decimals of a number */
            size_t k = i;
            while (k > 0 && isdigit((unsigned char)o[k - 1])) k--;
            if (i - k <= 3 && !(k > 0 && o[k - 1] == '.')) continue;
        }
        s[w++] = o[i];
    }
    s[w] = 0;
    free(o);
}

/* Finds the matching close of the bracket at s[0] (any of ( [ \{ ) ignoring types. */
static size_t match_close(const char *s, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '}')) {
            d += s[i + 1] == '{' ? 1 : -1;
            if (d == 0) return i;
            i++;
            continue;
        }
        if (s[i] == '(' || s[i] == '[' || s[i] == '{') d++;
        else if (s[i] == ')' || s[i] == ']' || s[i] == '}') {
            d--;
            if (d == 0) return i;
        }
        if (d < 0) return (size_t)-1;
    }
    return (size_t)-1;
}

/* Top-level split positions of sep (a 1-char ',' or "\\cup"). */
static int split_top(const char *s, size_t n, const char *sep, size_t *pos, int max) {
    int d = 0, k = 0;
    size_t sl = strlen(sep);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n && (s[i + 1] == '{' || s[i + 1] == '}')) {
            d += s[i + 1] == '{' ? 1 : -1;
            i++;
            continue;
        }
        if (c == '(' || c == '[' || c == '{') d++;
        else if (c == ')' || c == ']' || c == '}') d--;
        else if (d == 0 && i + sl <= n && !memcmp(s + i, sep, sl)) {
            if (k >= max) return -1;
            pos[k++] = i;
        }
    }
    return k;
}

static mv_value *parse_rec(const char *s, size_t n, int depth);

static mv_value *new_value(void) { return calloc(1, sizeof(mv_value)); }

static mv_value *make_text(const char *s, size_t n) {
    mv_value *v = new_value();
    if (!v) return NULL;
    v->kind = MV_TEXT;
    v->text = malloc(n + 1);
    if (!v->text) {
        free(v);
        return NULL;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) v->text[w++] = s[i];
    while (w && v->text[w - 1] == '.') w--;
    v->text[w] = 0;
    if (w == 0) v->kind = MV_EMPTY;
    return v;
}

static mv_value *make_list(const char *s, size_t n, const char *open, const char *close,
                           const char *sep, int depth) {
    size_t pos[MAX_ELEMS];
    int k = split_top(s, n, sep, pos, MAX_ELEMS - 1);
    if (k < 0) return NULL;
    mv_value *v = new_value();
    if (!v) return NULL;
    v->kind = MV_LIST;
    snprintf(v->open, sizeof v->open, "%s", open);
    snprintf(v->close, sizeof v->close, "%s", close);
    v->el = calloc((size_t)k + 1, sizeof *v->el);
    if (!v->el) {
        free(v);
        return NULL;
    }
    size_t st = 0, sl = strlen(sep);
    for (int i = 0; i <= k; i++) {
        size_t en = i < k ? pos[i] : n;
        mv_value *e = parse_rec(s + st, en - st, depth + 1);
        if (!e) {
            mv_free(v);
            return NULL;
        }
        v->el[v->n_el++] = e;
        st = en + sl;
    }
    return v;
}

static int is_letter_answer(const char *s, size_t n, char *out) {
    trim(&s, &n);
    while (n && (s[n - 1] == '.' || s[n - 1] == ':')) n--;
    if (n >= 2 && s[0] == '(' && s[n - 1] == ')') {
        s++;
        n -= 2;
    } else if (n == 2 && s[1] == ')') {
        n = 1;
    }
    trim(&s, &n);
    if (n == 1 && s[0] >= 'A' && s[0] <= 'J') {
        *out = s[0];
        return 1;
    }
    return 0;
}

static mv_value *parse_rec(const char *s, size_t n, int depth) {
    trim(&s, &n);
    if (depth > 8) return make_text(s, n);
    /* "x = 5", "a+b = 5", "x \in [1,2]": keep the right-hand side. */
    {
        int d = 0;
        size_t last = (size_t)-1, skip = 0;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (c == '(' || c == '[' || c == '{') d++;
            else if (c == ')' || c == ']' || c == '}') d--;
            else if (d == 0 && c == '=') {
                last = i;
                skip = 1;
            } else if (d == 0 && i + 3 <= n && !memcmp(s + i, "\\in", 3) &&
                       (i + 3 == n || !isalpha((unsigned char)s[i + 3]))) {
                last = i;
                skip = 3;
            } else if (d == 0 && i + 7 <= n && !memcmp(s + i, "\\approx", 7)) {
                last = i;
                skip = 7;
            }
        }
        if (last != (size_t)-1 && last + skip < n) {
            const char *r = s + last + skip;
            size_t rn = n - last - skip;
            trim(&r, &rn);
            if (rn) return parse_rec(r, rn, depth + 1);
        }
    }
    if (n == 0) return make_text(s, 0);
    char letter;
    if (is_letter_answer(s, n, &letter)) {
        mv_value *v = new_value();
        if (!v) return NULL;
        v->kind = MV_LETTER;
        v->letter = letter;
        return v;
    }
    /* Unions of intervals. */
    {
        size_t pos[MAX_ELEMS];
        int k = split_top(s, n, "\\cup", pos, MAX_ELEMS - 1);
        if (k > 0) {
            mv_value *v = make_list(s, n, "U", "U", "\\cup", depth);
            if (v) return v;
            return make_text(s, n);
        }
    }
    /* Bracketed lists: (a, b), [a, b), \{a, b\}. */
    int open_len = (s[0] == '(' || s[0] == '[') ? 1 : (n >= 2 && !memcmp(s, "\\{", 2)) ? 2 : 0;
    if (open_len) {
        size_t c = match_close(s, n);
        size_t close_len = (c != (size_t)-1 && s[c] == '\\') ? 2 : 1; /* \} */
        if (c != (size_t)-1 && c + close_len == n) {
            const char *in = s + open_len;
            size_t in_n = c - open_len;
            size_t pos[2];
            if (split_top(in, in_n, ",", pos, 1) != 0 || open_len == 2) {
                char open[3] = {0}, close[3] = {0};
                memcpy(open, s, (size_t)open_len);
                memcpy(close, s + c, close_len);
                mv_value *v = make_list(in, in_n, open, close, ",", depth);
                if (v) return v;
                return make_text(s, n);
            }
        }
    }
    /* Bare numbers (with thousands separators removed) or bare lists. */
    char *t = malloc(n + 1);
    if (!t) return NULL;
    memcpy(t, s, n);
    t[n] = 0;
    strip_thousands(t);
    size_t tn = strlen(t);
    size_t pos[2];
    if (split_top(t, tn, ",", pos, 1) != 0) {
        mv_value *v = make_list(t, tn, "", "", ",", depth);
        free(t);
        return v ? v : make_text(s, n);
    }
    mv_value *v = new_value();
    if (!v) {
        free(t);
        return NULL;
    }
    if (parse_number_str(t, tn, &v->raw, &v->pct) == 0) {
        v->kind = MV_NUM;
        free(t);
        return v;
    }
    free(v);
    v = make_text(t, tn);
    free(t);
    return v;
}

mv_value *mv_parse(const char *s, size_t n) {
    if (n > MV_MAX_INPUT) return make_text("", 0);
    char *norm = normalize(s, n);
    if (!norm) return NULL;
    mv_value *v = parse_rec(norm, strlen(norm), 0);
    free(norm);
    return v;
}

static int num_equal_pct(const mv_value *g, const mv_value *p) {
    if (num_equal(&g->raw, &p->raw)) return 1;
    if (g->pct == p->pct) return 0;
    /* one side is a percentage: compare x% with x/100 */
    const mv_value *pc = g->pct ? g : p, *pl = g->pct ? p : g;
    num hundred, scaled;
    mpq_t q;
    mpq_init(q);
    mpq_set_ui(q, 100, 1);
    num_set_q(&hundred, q);
    mpq_clear(q);
    int eq = 0;
    if (num_mul(&scaled, &pl->raw, &hundred) == 0) {
        eq = num_equal(&scaled, &pc->raw);
        num_clear(&scaled);
    }
    num_clear(&hundred);
    return eq;
}

static int list_unordered(const mv_value *a, const mv_value *b) {
    if (a->n_el != b->n_el) return 0;
    int used[MAX_ELEMS] = {0};
    for (int i = 0; i < a->n_el; i++) {
        int found = 0;
        for (int j = 0; j < b->n_el && !found; j++) {
            if (used[j]) continue;
            if (mv_equal(a->el[i], b->el[j])) {
                used[j] = 1;
                found = 1;
            }
        }
        if (!found) return 0;
    }
    return 1;
}

int mv_equal(const mv_value *g, const mv_value *p) {
    if (!g || !p) return 0;
    if (g->kind == MV_EMPTY || p->kind == MV_EMPTY) return 0;
    if (g->kind != p->kind) {
        /* A one-element list against a scalar: compare the element. */
        if (g->kind == MV_LIST && g->n_el == 1) return mv_equal(g->el[0], p);
        if (p->kind == MV_LIST && p->n_el == 1) return mv_equal(g, p->el[0]);
        return 0;
    }
    switch (g->kind) {
    case MV_NUM: return num_equal_pct(g, p);
    case MV_LETTER: return g->letter == p->letter;
    case MV_TEXT: return strcmp(g->text, p->text) == 0;
    case MV_LIST: {
        int bare = !g->open[0] || !p->open[0];
        int set = !strcmp(g->open, "\\{") || !strcmp(p->open, "\\{") || !strcmp(g->open, "U");
        if (bare || set) return list_unordered(g, p);
        if (strcmp(g->open, p->open) || strcmp(g->close, p->close)) return 0;
        if (g->n_el != p->n_el) return 0;
        for (int i = 0; i < g->n_el; i++)
            if (!mv_equal(g->el[i], p->el[i])) return 0;
        return 1;
    }
    }
    return 0;
}
