/*
 * engine/data/dataset_order.c — the order examples are visited in: a seeded
 * Fisher–Yates shuffle per epoch over a splitmix64 stream keyed by (seed, epoch), the
 * (epoch, position) cursor, batches across epoch boundaries, and the cursor as JSON
 * for checkpoints.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/data/dataset_internal.h"

// ---------------------------------------------------------------------------------------
// splitmix64 (Steele, Lea, Flood 2014; the constants of Vigna's reference version)

static uint64_t splitmix64_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t splitmix64_next(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ULL;
    return splitmix64_mix(*state);
}

/* Uniform in [0, bound) without modulo bias: reject draws below 2^64 mod bound. */
static uint64_t uniform_below(uint64_t *state, uint64_t bound) {
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = splitmix64_next(state);
        if (r >= threshold) return r % bound;
    }
}

void dataset_epoch_order(uint64_t seed, int64_t epoch, int shuffle, int *perm, int n) {
    for (int i = 0; i < n; i++)
        perm[i] = i;
    if (!shuffle) return;
    uint64_t state =
        splitmix64_mix(seed) ^ splitmix64_mix((uint64_t)epoch ^ 0xD1B54A32D192ED03ULL);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)uniform_below(&state, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

// ---------------------------------------------------------------------------------------
// cursor and batches

static void ensure_order(dataset *ds) {
    if (ds->perm_epoch != ds->epoch) {
        dataset_epoch_order(ds->opts.seed, ds->epoch, ds->opts.shuffle, ds->perm, ds->n);
        ds->perm_epoch = ds->epoch;
    }
}

int dataset_exhausted(const dataset *ds) {
    return ds->opts.epochs > 0 && ds->epoch >= ds->opts.epochs;
}

int dataset_next_batch(dataset *ds, int n, int *indices_out, char *err, size_t errlen) {
    if (n < 0) {
        snprintf(err, errlen, "%s: batch size %d; expected >= 0", ds->path, n);
        return -1;
    }
    int got = 0;
    while (got < n && !dataset_exhausted(ds)) {
        ensure_order(ds);
        indices_out[got++] = ds->perm[ds->position++];
        if (ds->position == ds->n) {
            ds->epoch++;
            ds->position = 0;
        }
    }
    return got;
}

dataset_cursor dataset_get_cursor(const dataset *ds) {
    return (dataset_cursor){.epoch = ds->epoch,
                            .position = ds->position,
                            .n_examples = ds->n,
                            .fingerprint = ds->fingerprint};
}

int dataset_set_cursor(dataset *ds, const dataset_cursor *c, char *err, size_t errlen) {
    if (c->n_examples != ds->n || c->fingerprint != ds->fingerprint) {
        snprintf(err, errlen,
                 "%s: the data differs from the checkpoint's (checkpoint: %" PRId64
                 " examples, fingerprint %016" PRIx64 "; now: %d examples, fingerprint "
                 "%016" PRIx64 "); a resumed run needs the same file",
                 ds->path, c->n_examples, c->fingerprint, ds->n, ds->fingerprint);
        return -1;
    }
    if (c->epoch < 0 || c->position < 0 || c->position >= ds->n) {
        snprintf(err, errlen,
                 "%s: cursor (epoch %" PRId64 ", position %" PRId64
                 ") is out of range; expected epoch >= 0 and 0 <= position < %d",
                 ds->path, c->epoch, c->position, ds->n);
        return -1;
    }
    ds->epoch = c->epoch;
    ds->position = c->position;
    return 0;
}

char *dataset_cursor_to_json(const dataset_cursor *c) {
    char *s = malloc(160);
    if (s)
        snprintf(s, 160,
                 "{\"epoch\":%" PRId64 ",\"position\":%" PRId64 ",\"n_examples\":%" PRId64
                 ",\"fingerprint\":\"%016" PRIx64 "\"}",
                 c->epoch, c->position, c->n_examples, c->fingerprint);
    return s;
}

static int get_count(const cJSON *j, const char *key, const char *where, int64_t *out,
                     char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double)(int64_t)v->valuedouble) {
        snprintf(err, errlen, "%s: data cursor \"%s\" is missing or not an integer >= 0", where,
                 key);
        return -1;
    }
    *out = (int64_t)v->valuedouble;
    return 0;
}

int dataset_cursor_from_json(const char *text, const char *where, dataset_cursor *c, char *err,
                             size_t errlen) {
    memset(c, 0, sizeof(*c));
    cJSON *j = cJSON_Parse(text);
    int rc = -1;
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "%s: data cursor is not a JSON object", where);
        goto done;
    }
    if (get_count(j, "epoch", where, &c->epoch, err, errlen) ||
        get_count(j, "position", where, &c->position, err, errlen) ||
        get_count(j, "n_examples", where, &c->n_examples, err, errlen))
        goto done;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "fingerprint");
    int hex = cJSON_IsString(f) && strlen(f->valuestring) == 16;
    for (int i = 0; hex && i < 16; i++)
        hex = isxdigit((unsigned char)f->valuestring[i]) != 0;
    if (!hex) {
        snprintf(err, errlen, "%s: data cursor \"fingerprint\" is missing or not 16 hex digits",
                 where);
        goto done;
    }
    c->fingerprint = strtoull(f->valuestring, NULL, 16);
    rc = 0;
done:
    cJSON_Delete(j);
    return rc;
}
