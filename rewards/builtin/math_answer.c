/*
 * rewards/builtin/math_answer.c — the `math_answer` reward: 1.0 when the completion's
 * final answer equals the reference answer exactly (as numbers, tuples, sets, intervals,
 * letters or normalised text), 0.0 otherwise; ABSTAIN when the reference itself cannot
 * be read (empty, unbalanced braces, too long).
 *
 * Config: {"require_marker": false}  true: only \boxed / #### / "answer is" / <answer>
 * count (no last-number fallback).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "rewards/builtin/builtin_util.h"
#include "rewards/builtin/builtins.h"
#include "rewards/builtin/math_extract.h"
#include "rewards/builtin/mathval.h"

typedef struct {
    int require_marker;
} math_state;

static int math_init(const rlvr_host *host, const char *config, void **state, char *err,
                     size_t errlen) {
    (void)host;
    cJSON *cfg = bu_config("math_answer", config, err, errlen);
    if (!cfg) return -1;
    static const char *const keys[] = {"require_marker", NULL};
    math_state *st = calloc(1, sizeof *st);
    if (!st || bu_known_keys("math_answer", cfg, keys, err, errlen) ||
        bu_get_bool("math_answer", cfg, "require_marker", 0, &st->require_marker, err,
                    errlen)) {
        free(st);
        cJSON_Delete(cfg);
        return -1;
    }
    cJSON_Delete(cfg);
    *state = st;
    return 0;
}

static void math_destroy(void *state) { free(state); }

static int balanced(const char *s, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (s[i] == '{') d++;
        else if (s[i] == '}' && --d < 0) return 0;
    }
    return d == 0;
}

static const char *kind_name(int k) {
    switch (k) {
    case MV_NUM: return "number";
    case MV_LIST: return "list";
    case MV_LETTER: return "letter";
    case MV_TEXT: return "text";
    default: return "empty";
    }
}

/* Scores one item; returns the status and sets *score. */
static int score_item(const void *state, const rlvr_item *it, double *score, cJSON *info) {
    const math_state *st = state;
    *score = 0.0;
    /* The reference: a full solution (boxed / ####) or the bare answer. */
    size_t gs = 0, gl = it->answer_len;
    mx_method gm = MX_NONE;
    if (memmem(it->answer, it->answer_len, "\\boxed", 6) ||
        memmem(it->answer, it->answer_len, "\\fbox", 5) ||
        memmem(it->answer, it->answer_len, "####", 4)) {
        gm = mx_extract(it->answer, it->answer_len, &gs, &gl);
        if (gm != MX_BOXED && gm != MX_HASHES) {
            gs = 0;
            gl = it->answer_len;
        }
    }
    if (gl == 0 || gl > MV_MAX_INPUT || !balanced(it->answer + gs, gl)) {
        cJSON_AddStringToObject(info, "reason",
                                gl == 0 ? "empty reference answer"
                                        : gl > MV_MAX_INPUT ? "reference answer too long"
                                                            : "unbalanced braces in reference");
        return RLVR_STATUS_ABSTAIN;
    }
    mv_value *gold = mv_parse(it->answer + gs, gl);
    if (!gold) return RLVR_STATUS_ERROR;
    if (mv_kind(gold) == MV_EMPTY) {
        mv_free(gold);
        cJSON_AddStringToObject(info, "reason", "empty reference answer");
        return RLVR_STATUS_ABSTAIN;
    }
    cJSON_AddStringToObject(info, "gold_kind", kind_name(mv_kind(gold)));
    size_t ps = 0, pl = 0;
    mx_method pm = mx_extract(it->completion, it->completion_len, &ps, &pl);
    if (st->require_marker && pm == MX_LAST_NUMBER) pm = MX_NONE;
    cJSON_AddStringToObject(info, "method", mx_method_name(pm));
    if (pm == MX_NONE) {
        mv_free(gold);
        return RLVR_STATUS_OK;
    }
    bu_add_str(info, "pred", it->completion + ps, pl, 200);
    if (pl > MV_MAX_INPUT) {
        cJSON_AddStringToObject(info, "reason", "answer too long");
        mv_free(gold);
        return RLVR_STATUS_OK;
    }
    mv_value *pred = mv_parse(it->completion + ps, pl);
    if (!pred) {
        mv_free(gold);
        return RLVR_STATUS_ERROR;
    }
    int eq = mv_equal(gold, pred);
    /* "the answer is that x equals 5": fall back to the span's last number. */
    if (!eq && (pm == MX_ANSWER_IS || pm == MX_ANSWER_TAG) && mv_kind(pred) == MV_TEXT &&
        mv_kind(gold) == MV_NUM) {
        size_t ns, nl;
        if (mx_last_number(it->completion + ps, pl, &ns, &nl)) {
            mv_value *p2 = mv_parse(it->completion + ps + ns, nl);
            if (p2) eq = mv_equal(gold, p2);
            mv_free(p2);
        }
    }
    mv_free(pred);
    mv_free(gold);
    *score = eq ? 1.0 : 0.0;
    return RLVR_STATUS_OK;
}

static int math_score(void *state, const rlvr_batch *b, rlvr_out *out) {
    return bu_score_each(state, b, out, score_item);
}

const rlvr_reward_desc *rlvr_builtin_math_answer(void) {
    static const rlvr_reward_desc d = {
        .struct_size = sizeof(rlvr_reward_desc),
        .abi_major = RLVR_REWARD_ABI_MAJOR,
        .abi_minor = RLVR_REWARD_ABI_MINOR,
        .name = "math_answer",
        .version = "1.0",
        .description = "1 if the final answer equals the reference exactly (GMP rationals)",
        .flags = RLVR_REWARD_THREAD_SAFE | RLVR_REWARD_DETERMINISTIC,
        .init = math_init,
        .score = math_score,
        .destroy = math_destroy,
    };
    return &d;
}
