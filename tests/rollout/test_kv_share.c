/*
 * tests/rollout/test_kv_share.c — kv_share_plan (engine/model/kv_share.h), the
 * shared-prefix units of a decode step, on hand-built block tables (blocks of 16):
 *   1. a group of 5 samples forked from a 50-token prompt (3 shared blocks), at positions
 *      50..54: one unit of 5 with P = 48; the next sequence (unrelated) in none;
 *   2. a group of 2 sharing one block (16 < KV_SHARE_MIN): no unit;
 *   3. a run of 20 samples at group 7 (at most 9 queries a unit): units of 7, 7, 6, even;
 *      at group 16 (4 a unit) a run of 5: units of 3 and 2;
 *   4. P capped below every member's position: a member at position 20 of a 3-block
 *      prompt leaves 16 (< 32): its unit dissolves, the others keep theirs;
 *   5. group 33 (not even two queries fit 64 rows) and an empty step: no units;
 *   6. every entry past the units zero, share[n] = 0 outside units.
 */
#include <stdio.h>
#include <string.h>

#include "engine/model/kv_share.h"
#include "tests/common/check.h"

enum { MB = 8, BSZ = 16, MAXN = 40 };

static int tables[MAXN * MB];

/* Sequence s: blocks first[0..nshared) shared with `with` (-1: none), then its own. */
static void make_seq(int s, int with, int nshared, int *next) {
    for (int b = 0; b < MB; b++) {
        tables[s * MB + b] = with >= 0 && b < nshared ? tables[with * MB + b] : (*next)++;
    }
}

static void check_unit(const int *share, int N, int u, int lead, int count, int P) {
    CHECK(share[N + u] == lead && share[2 * N + u] == count,
          "unit %d: lead %d count %d (expected %d, %d)", u, share[N + u], share[2 * N + u],
          lead, count);
    for (int j = 0; j < count; j++)
        CHECK(share[lead + j] == P, "unit %d member %d: P %d (expected %d)", u, j,
              share[lead + j], P);
}

int main(void) {
    int share[3 * MAXN], seq[MAXN], pos[MAXN], next = 0;

    /* 1: five samples of a 50-token prompt (blocks 0-2 shared, block 3 each its own copy),
     * then an unrelated sequence */
    for (int s = 0; s < 6; s++)
        make_seq(s, s > 0 && s < 5 ? 0 : -1, 3, &next);
    for (int n = 0; n < 6; n++) {
        seq[n] = n;
        pos[n] = n < 5 ? 50 + n : 70;
    }
    int units = kv_share_plan(tables, MB, BSZ, seq, pos, 6, 7, share);
    CHECK(units == 1, "case 1: %d units (expected 1)", units);
    check_unit(share, 6, 0, 0, 5, 48);
    CHECK(share[5] == 0 && share[6 + 1] == 0 && share[12 + 1] == 0,
          "case 1: the unrelated query or a second unit has entries");

    /* 2: two samples sharing one block */
    next = 0;
    make_seq(0, -1, 0, &next);
    make_seq(1, 0, 1, &next);
    seq[0] = 0, seq[1] = 1, pos[0] = pos[1] = 20;
    units = kv_share_plan(tables, MB, BSZ, seq, pos, 2, 7, share);
    CHECK(units == 0 && share[0] == 0 && share[1] == 0, "case 2: %d units (expected 0)", units);

    /* 3: a run of 20 at group 7 → 7, 7, 6 */
    next = 0;
    for (int s = 0; s < 20; s++)
        make_seq(s, s ? 0 : -1, 4, &next);
    for (int n = 0; n < 20; n++)
        seq[n] = n, pos[n] = 64 + (n % 3);
    units = kv_share_plan(tables, MB, BSZ, seq, pos, 20, 7, share);
    CHECK(units == 3, "case 3: %d units (expected 3)", units);
    check_unit(share, 20, 0, 0, 7, 64);
    check_unit(share, 20, 1, 7, 7, 64);
    check_unit(share, 20, 2, 14, 6, 64);
    /* group 16: four a unit, a run of 5 → 3 and 2 */
    units = kv_share_plan(tables, MB, BSZ, seq, pos, 5, 16, share);
    CHECK(units == 2, "case 3b: %d units (expected 2)", units);
    check_unit(share, 5, 0, 0, 3, 64);
    check_unit(share, 5, 1, 3, 2, 64);

    /* 4: the third query sits at position 20 (its blocks past 16 unused): the run of 4
     * (20 ≥ 16... its common part is capped at 16 < 32, so the run ends before it), then a
     * run of 2 after it */
    for (int n = 0; n < 6; n++)
        seq[n] = n, pos[n] = n == 2 ? 20 : 64;
    units = kv_share_plan(tables, MB, BSZ, seq, pos, 6, 7, share);
    CHECK(units == 2, "case 4: %d units (expected 2)", units);
    check_unit(share, 6, 0, 0, 2, 64);
    check_unit(share, 6, 1, 3, 3, 64);
    CHECK(share[2] == 0, "case 4: the short query has P %d", share[2]);

    /* 5: group 33, an empty step */
    units = kv_share_plan(tables, MB, BSZ, seq, pos, 6, 33, share);
    CHECK(units == 0, "case 5: group 33: %d units", units);
    units = kv_share_plan(tables, MB, BSZ, seq, pos, 0, 7, share);
    CHECK(units == 0, "case 5: empty step: %d units", units);

    /* 6: zeros past the units (case 3 again) */
    for (int n = 0; n < 20; n++)
        seq[n] = n, pos[n] = 64;
    units = kv_share_plan(tables, MB, BSZ, seq, pos, 20, 7, share);
    int stray = 0;
    for (int u = units; u < 20; u++)
        stray += share[20 + u] != 0 || share[40 + u] != 0;
    CHECK(stray == 0, "case 6: %d entries past the last unit are not zero", stray);
    return check_done("test_kv_share");
}
