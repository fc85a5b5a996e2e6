/*
 * tests/text/test_tok_long.c — 1 MB inputs with no spaces (one pre-tokenized word of a
 * million bytes for letters, digits in Llama-3-style runs, CJK, punctuation, emoji; one
 * whitespace run) must each encode in well under a second (the BPE merges through a
 * priority queue, not a quadratic rescan) and decode back to the input.
 *
 * usage: test_tok_long TOKENIZER_DIR
 */
#include <time.h>

#include "engine/text/tokenizer.h"
#include "tests/text/test_util.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TOKENIZER_DIR\n", argv[0]);
        return 2;
    }
    tok_tokenizer *t;
    char err[512];
    if (tok_load(argv[1], &t, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const char *units[] = {"abcdefghij", "a", "0123456789", "日本語中文", "!?#%&*+-/=",
                           "😀👍🏽", " ", "xyz\t"};
    const size_t MB = 1 << 20;
    double worst = 0;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ul = strlen(units[u]), n = 0;
        char *s = malloc(MB + 16);
        while (n + ul <= MB) memcpy(s + n, units[u], ul), n += ul;
        double t0 = now();
        int32_t *ids;
        size_t k;
        if (tok_encode(t, s, n, &ids, &k, err, sizeof err)) {
            TU_CHECK(0, "unit '%s': %s", units[u], err);
            free(s);
            continue;
        }
        double dt = now() - t0;
        if (dt > worst) worst = dt;
        char *txt;
        size_t tl;
        tok_decode(t, ids, k, 0, &txt, &tl, err, sizeof err);
        TU_CHECK(tl == n && !memcmp(txt, s, n), "unit '%s': round trip differs", units[u]);
        TU_CHECK(dt < 1.0, "unit '%s': %.3f s for %zu bytes", units[u], dt, n);
        printf("%-16s %8zu bytes -> %7zu ids in %.3f s\n", units[u], n, k, dt);
        free(txt);
        free(ids);
        free(s);
    }
    printf("slowest 1 MB encode: %.3f s\n", worst);
    tok_free(t);
    return tu_failures ? 1 : 0;
}
