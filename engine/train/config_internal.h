/*
 * engine/train/config_internal.h — the schema behind train_config: one table row per
 * key (name, type, where it lives in the struct, default, allowed range or names).
 * Parsing, defaults, serialising, comparing and freeing all walk the same table, so a
 * key added to the table is handled everywhere at once. Private to engine/train/config*.c.
 */
#ifndef RLVR_TRAIN_CONFIG_INTERNAL_H
#define RLVR_TRAIN_CONFIG_INTERNAL_H

#include <stddef.h>

#include "engine/train/config.h"

typedef enum {
    TCF_BOOL,    /* int 0/1 */
    TCF_TRIBOOL, /* int -1 (null) / 0 / 1 */
    TCF_INT,     /* int within [lo, hi] */
    TCF_SEED,    /* uint64_t within [0, 2^53] */
    TCF_NUM,     /* double within lo..hi (open ends by flags); NAN = null if nullable */
    TCF_PAIR,    /* double[2], each within lo..hi */
    TCF_STR,     /* char * (owned); NULL = null if nullable */
    TCF_ENUM,    /* int index into names */
    TCF_STRS,    /* char ** + int count at off2 */
    TCF_IDS,     /* int32_t * + int count at off2, each within [lo, hi] */
    TCF_JSONOBJ, /* char * holding a JSON object as compact text; default "{}" */
    TCF_SECTION, /* nested object described by sub */
    TCF_REWARDS  /* the rewards array (tc_reward elements described by sub) */
} tc_ftype;

enum {
    TCF_NULLABLE = 1,  /* JSON null allowed (and the default when def_s/def is unset) */
    TCF_REQUIRED = 2,  /* must be given */
    TCF_LO_OPEN = 4,   /* lo itself not allowed */
    TCF_HI_OPEN = 8,   /* hi itself not allowed */
    TCF_NONEMPTY = 16, /* strings: "" refused */
    TCF_DERIVED = 32   /* default depends on other keys (filled in by the resolver) */
};

typedef struct tc_field {
    const char *key;
    tc_ftype type;
    size_t off;  /* offset of the value in the containing struct */
    size_t off2; /* TCF_STRS / TCF_IDS: offset of the int count */
    int flags;
    double lo, hi;              /* TCF_INT / TCF_NUM / TCF_PAIR / TCF_IDS range */
    double def, def2;           /* numeric default (def2: second of a pair) */
    const char *def_s;          /* TCF_STR default (NULL: NULL) */
    const char *const *names;   /* TCF_ENUM names, NULL-terminated */
    const struct tc_field *sub; /* TCF_SECTION / TCF_REWARDS rows, key NULL ends */
    const char *what;           /* words used after "expected" in messages (optional) */
} tc_field;

/* The top-level table (key NULL ends it). */
extern const tc_field tc_schema[];
/* The table of one rewards[] element. */
extern const tc_field tc_reward_schema[];

/* Error collector: appends "WHERE: message\n" lines to err, counting them. */
typedef struct {
    char *buf;
    size_t len, cap;
    int count;
    const char *where;
} tc_errs;
void tc_err(tc_errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Edit distance between two short strings (case-sensitive). */
int tc_edit_distance(const char *a, const char *b);
/* Writes a suggestion for an unknown key in the section described by rows (the full
 * path of that section is prefix, "" at the top): "did you mean X?" or the list of
 * allowed keys. */
void tc_suggest(const tc_field *rows, const char *prefix, const char *key, char *out,
                size_t outlen);
/* A JSON value printed compactly and cut to at most 60 bytes (for messages). */
void tc_value_text(const cJSON *v, char *out, size_t outlen);
/* "an integer >= 1", "a number in [0, 1)", "one of grpo, rloo", ... */
void tc_allowed_text(const tc_field *f, char *out, size_t outlen);

#endif
