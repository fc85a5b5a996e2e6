/*
 * rewards/builtin/math_extract.c — answer extraction for math_answer (see the header).
 */
#include "rewards/builtin/math_extract.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

const char *mx_method_name(mx_method m) {
    switch (m) {
    case MX_BOXED: return "boxed";
    case MX_HASHES: return "####";
    case MX_ANSWER_IS: return "answer_is";
    case MX_ANSWER_TAG: return "answer_tag";
    case MX_LAST_NUMBER: return "last_number";
    default: return "none";
    }
}

static int has_at(const char *s, size_t n, size_t i, const char *lit) {
    size_t l = strlen(lit);
    return i + l <= n && memcmp(s + i, lit, l) == 0;
}

/* Content of the \boxed / \fbox whose name ends at i. */
static int boxed_arg(const char *s, size_t n, size_t i, size_t *st, size_t *ln) {
    while (i < n && s[i] == ' ') i++;
    if (i < n && s[i] == '{') {
        int d = 0;
        size_t lim = n - i > 100000 ? i + 100000 : n; /* bounded brace matching */
        for (size_t k = i; k < lim; k++) {
            if (s[k] == '\\' && k + 1 < n && (s[k + 1] == '{' || s[k + 1] == '}')) {
                k++;
                continue;
            }
            if (s[k] == '{') d++;
            else if (s[k] == '}' && --d == 0) {
                *st = i + 1;
                *ln = k - i - 1;
                return 1;
            }
        }
        return 0; /* unbalanced */
    }
    /* "\boxed 5": up to whitespace or $ */
    size_t k = i;
    while (k < n && !isspace((unsigned char)s[k]) && s[k] != '$') k++;
    if (k == i) return 0;
    *st = i;
    *ln = k - i;
    return 1;
}

static mx_method find_boxed(const char *s, size_t n, size_t *start, size_t *len) {
    /* Walk backwards over occurrences so an unbalanced last box falls back to the one
     * before it. */
    int tries = 0;
    for (size_t i = n; i-- > 0 && tries < 8;) {
        if (s[i] != '\\') continue;
        size_t after = 0;
        if (has_at(s, n, i, "\\boxed")) after = i + 6;
        else if (has_at(s, n, i, "\\fbox")) after = i + 5;
        else continue;
        tries++;
        if (boxed_arg(s, n, after, start, len)) return MX_BOXED;
    }
    return MX_NONE;
}

static void line_after(const char *s, size_t n, size_t i, size_t *st, size_t *ln) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ':')) i++;
    size_t k = i;
    while (k < n && s[k] != '\n') k++;
    *st = i;
    *ln = k - i;
}

int mx_last_number(const char *s, size_t n, size_t *start, size_t *len) {
    size_t i = n;
    while (i > 0 && !isdigit((unsigned char)s[i - 1])) i--;
    if (i == 0) return 0;
    size_t end = i, b = i;
    while (b > 0) {
        char c = s[b - 1];
        if (isdigit((unsigned char)c)) b--;
        else if ((c == '.' || c == '/' || c == ',') && b >= 2 &&
                 isdigit((unsigned char)s[b - 2]))
            b--;
        else
            break;
    }
    /* A number closing \frac{a}{b} or \sqrt{n} stands for the whole expression. */
    if (end < n && s[end] == '}' && b >= 1 && s[b - 1] == '{') {
        size_t k = b - 1; /* the '{' */
        if (k >= 5 && !memcmp(s + k - 5, "\\sqrt", 5)) {
            b = k - 5;
            end++;
        } else if (k >= 1 && s[k - 1] == '}') {
            int d = 0;
            size_t m = k - 1;
            for (;; m--) {
                if (s[m] == '}') d++;
                else if (s[m] == '{' && --d == 0) break;
                if (m == 0 || k - m > 200) {
                    m = (size_t)-1;
                    break;
                }
            }
            if (m != (size_t)-1) {
                size_t f = m;
                if (f >= 5 && !memcmp(s + f - 5, "\\frac", 5)) {
                    b = f - 5;
                    end++;
                } else if (f >= 6 && (!memcmp(s + f - 6, "\\dfrac", 6) ||
                                      !memcmp(s + f - 6, "\\tfrac", 6))) {
                    b = f - 6;
                    end++;
                }
            }
        }
    }
    if (b > 0 && s[b - 1] == '-') b--;
    *start = b;
    *len = end - b;
    return 1;
}

mx_method mx_extract(const char *s, size_t n, size_t *start, size_t *len) {
    if (find_boxed(s, n, start, len)) return MX_BOXED;
    /* #### */
    for (size_t i = n; i-- > 0;) {
        if (s[i] == '#' && has_at(s, n, i, "####")) {
            size_t j = i;
            while (j > 0 && s[j - 1] == '#') j--;
            line_after(s, n, i + 4, start, len);
            while (*len && (s[*start] == '#' || s[*start] == ' ')) {
                (*start)++;
                (*len)--;
            }
            if (*len) return MX_HASHES;
            i = j;
        }
    }
    /* answer is / Answer: (the last occurrence of any of them) */
    static const char *markers[] = {"final answer is", "answer is", "answer:"};
    size_t best = (size_t)-1, best_end = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != 'a' && s[i] != 'A' && s[i] != 'f' && s[i] != 'F') continue;
        for (int m = 0; m < 3; m++) {
            size_t l = strlen(markers[m]);
            if (i + l <= n && strncasecmp(s + i, markers[m], l) == 0) {
                if (best == (size_t)-1 || i >= best) {
                    best = i;
                    best_end = i + l;
                }
                break;
            }
        }
    }
    if (best != (size_t)-1) {
        line_after(s, n, best_end, start, len);
        while (*len && (s[*start + *len - 1] == '.' || isspace((unsigned char)s[*start + *len - 1])))
            (*len)--;
        if (*len) return MX_ANSWER_IS;
    }
    /* <answer>...</answer> */
    for (size_t i = n; i-- > 0;) {
        if (s[i] == '<' && has_at(s, n, i, "<answer>")) {
            size_t st = i + 8, k = st;
            while (k < n && !has_at(s, n, k, "</answer>")) k++;
            *start = st;
            *len = k - st;
            while (*len && isspace((unsigned char)s[*start])) {
                (*start)++;
                (*len)--;
            }
            while (*len && isspace((unsigned char)s[*start + *len - 1])) (*len)--;
            if (*len) return MX_ANSWER_TAG;
            break;
        }
    }
    if (mx_last_number(s, n, start, len)) return MX_LAST_NUMBER;
    return MX_NONE;
}
