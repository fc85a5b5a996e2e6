/*
 * rewards/builtin/mathval.h — exact values of final answers for the math verifier.
 * A number is a finite sum of terms c * pi^k * sqrt(r) with c an exact GMP rational and
 * r a square-free integer, or +-infinity; answers may also be lists (tuples, sets,
 * intervals, unions), multiple-choice letters, or normalised text when nothing else
 * parses. Work is bounded on every input (length, depth, bits, term counts).
 */
#ifndef RLVR_REWARDS_MATHVAL_H
#define RLVR_REWARDS_MATHVAL_H

#include <stddef.h>

typedef struct mv_value mv_value;

#define MV_MAX_INPUT 20000 /* bytes of an answer string we are willing to parse */

/* Parses an answer string (LaTeX or plain). Returns a value (never NULL unless out of
 * memory); mv_kind() says what it became. */
mv_value *mv_parse(const char *s, size_t n);
void mv_free(mv_value *v);

enum { MV_NUM = 0, MV_LIST = 1, MV_LETTER = 2, MV_TEXT = 3, MV_EMPTY = 4 };
int mv_kind(const mv_value *v);

/* 1 when pred denotes the same answer as gold. Numbers compare exactly; a percent on
 * either side also accepts the value divided by 100 on that side. */
int mv_equal(const mv_value *gold, const mv_value *pred);

#endif
