/*
 * engine/data/dataset.h — the JSONL prompt dataset: loading, seeded per-epoch shuffling
 * and a cursor that checkpoints save and restore.
 *
 * A line is a JSON object with
 *   - a prompt: "prompt" (a string) or "messages" (a non-empty list of objects
 *     {"role": "system"|"user"|"assistant"|"tool", "content": string[,
 *     "reasoning_content": string]}); exactly one of the two;
 *   - optionally an answer: "answer", a string or a number, kept as the exact text of
 *     the line (a number 0.50 stays "0.50");
 *   - any other fields: kept, byte for byte, as a JSON object text for the rewards.
 * The three field names are configurable. Blank lines are ignored. A bad line (invalid
 * JSON or UTF-8, not an object, a missing prompt, a wrong type) is an error naming the
 * file, the line number and the field; with DATASET_SKIP_BAD_LINES it is counted and
 * skipped instead. A file with no usable line is an error.
 *
 * Order: example i of the file has global index i (0-based over kept lines). Epoch e
 * visits all examples in the order perm_e: with shuffling, perm_e is a Fisher–Yates
 * shuffle of 0..N-1 (for i = N-1 down to 1: swap i with j = uniform(i+1)) drawing from a
 * splitmix64 stream whose state starts at splitmix64_mix(seed) ^ splitmix64_mix(e ^
 * 0xD1B54A32D192ED03); uniform(b) rejects draws below 2^64 mod b and returns the draw
 * mod b (no bias). Without shuffling perm_e is the identity. The same (file, seed,
 * shuffle) therefore always gives the same order, and the order of epoch e does not
 * depend on how batches were cut.
 *
 * Cursor: (epoch, position) = the next example is perm_epoch[position]. Batches run
 * across epoch boundaries. With an epoch limit E > 0, the data ends after epoch E-1.
 * A cursor also records the number of examples and a fingerprint of the file (FNV-1a 64
 * of its bytes), so restoring it on a different file is refused.
 *
 * Threading: a dataset is used by one thread at a time; examples are immutable after
 * loading and may be read from any thread.
 */
#ifndef RLVR_DATA_DATASET_H
#define RLVR_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *prompt;      /* the prompt string, or NULL when given as messages */
    char *prompt_json; /* the prompt as JSON text: the string, or the messages list
                        * (what chat_messages_from_json takes) */
    int is_messages;   /* 1 when the prompt is a messages list */
    char *answer;      /* the answer as text; "" when the line has none */
    int has_answer;
    char *extra_json; /* the other fields as a JSON object ("{}" when none) */
    long line;        /* 1-based line number in the file */
} data_example;

enum { DATASET_STOP_ON_BAD_LINE = 0, DATASET_SKIP_BAD_LINES = 1 };

typedef struct {
    const char *prompt_field;   /* NULL: "prompt" */
    const char *messages_field; /* NULL: "messages" */
    const char *answer_field;   /* NULL: "answer" */
    int on_bad_line;            /* DATASET_STOP_ON_BAD_LINE | DATASET_SKIP_BAD_LINES */
    int shuffle;                /* 1: a seeded order per epoch; 0: file order */
    uint64_t seed;              /* shuffle seed */
    int epochs;                 /* passes over the data; 0 = no limit */
} dataset_opts;

/* Defaults: standard field names, stop on bad lines, shuffle with seed 42, 1 epoch. */
dataset_opts dataset_opts_default(void);

typedef struct {
    int64_t epoch;        /* 0-based */
    int64_t position;     /* next position within the epoch's order, 0..n_examples */
    int64_t n_examples;   /* for the consistency check on restore */
    uint64_t fingerprint; /* FNV-1a 64 of the file bytes */
} dataset_cursor;

typedef struct dataset dataset;

int dataset_load(const char *path, const dataset_opts *opts, dataset **out, char *err,
                 size_t errlen);
void dataset_free(dataset *ds);

int dataset_size(const dataset *ds);
const data_example *dataset_get(const dataset *ds, int index);
/* Lines skipped as bad (on_bad_line skip), and the message of the first of them
 * ("" when none). */
int dataset_skipped(const dataset *ds);
const char *dataset_first_skip(const dataset *ds);
const char *dataset_path(const dataset *ds);

/* Fills indices_out[0..n) with the next global example indices and advances the
 * cursor. Returns how many were filled: n, fewer when the epoch limit is reached
 * (0 = the data is exhausted); -1 on error. */
int dataset_next_batch(dataset *ds, int n, int *indices_out, char *err, size_t errlen);
/* True when the epoch limit has been reached. */
int dataset_exhausted(const dataset *ds);

dataset_cursor dataset_get_cursor(const dataset *ds);
/* Restores a cursor saved from the same file; refuses another file (size or
 * fingerprint) or a position out of range. */
int dataset_set_cursor(dataset *ds, const dataset_cursor *c, char *err, size_t errlen);
/* A cursor as one-line JSON {"epoch":E,"position":P,"n_examples":N,
 * "fingerprint":"16 hex digits"} (malloc'ed), and back (where names the source). */
char *dataset_cursor_to_json(const dataset_cursor *c);
int dataset_cursor_from_json(const char *text, const char *where, dataset_cursor *c, char *err,
                             size_t errlen);

/* The order of epoch `epoch` over n items (perm[0..n)), as described above. */
void dataset_epoch_order(uint64_t seed, int64_t epoch, int shuffle, int *perm, int n);

#endif
