/*
 * rewards/builtin/math_extract.h — finding the final answer in a model's completion (or
 * in a reference solution). Priority: the last \boxed{}/\fbox{} (brace-matched), GSM8K
 * "#### x", "final answer is" / "answer is" / "Answer:", the last <answer>...</answer>,
 * then the last number. Linear time in the input length.
 */
#ifndef RLVR_REWARDS_MATH_EXTRACT_H
#define RLVR_REWARDS_MATH_EXTRACT_H

#include <stddef.h>

typedef enum {
    MX_NONE = 0,
    MX_BOXED,
    MX_HASHES,
    MX_ANSWER_IS,
    MX_ANSWER_TAG,
    MX_LAST_NUMBER
} mx_method;

/* Finds the answer span in s[0, n). Returns the method (MX_NONE when nothing found) and
 * sets *start and *len to the span (a slice of s). */
mx_method mx_extract(const char *s, size_t n, size_t *start, size_t *len);
/* The last number (digits with . , / and a sign) inside s[0, n); 0 when none. */
int mx_last_number(const char *s, size_t n, size_t *start, size_t *len);
const char *mx_method_name(mx_method m);

#endif
