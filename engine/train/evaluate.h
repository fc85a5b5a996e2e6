/*
 * engine/train/evaluate.h — evaluation of a model on a prompt dataset with rewards:
 * n samples per prompt; an item is correct when the FIRST reward component scores >= 1
 * with status ok (e.g. math_answer), and its answer for majority voting is that
 * reward's info "pred" field when present, else the completion text. Reports pass@1
 * (mean fraction correct), the unbiased pass@k estimator 1 − C(n−c,k)/C(n,k) averaged
 * over prompts, maj@k (majority vote over the first k samples' answers; ties go to the
 * answer seen first), and the mean completion length. Used by `rlvr eval` and by the
 * trainer every eval.every steps.
 */
#ifndef RLVR_TRAIN_EVALUATE_H
#define RLVR_TRAIN_EVALUATE_H

#include "engine/data/dataset.h"
#include "engine/reward/reward_host.h"
#include "engine/rollout/sampler.h"
#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"

typedef struct {
    int n_prompts, n, k;
    double pass1, pass_k, maj_k, mean_len, reward_mean;
} eval_result;

typedef struct {
    const tok_tokenizer *tok;
    const chat_template *tpl;
    sampler *smp;
    reward_host *rewards;
    const dataset *data;
    int max_prompts;          /* 0 = all */
    int n, k;                 /* samples per prompt; k <= n */
    sampling_params sampling; /* eos/stop/temperature...; seed and step set by caller */
    double deadline_s;        /* reward deadline per batch */
} eval_request;

int evaluate(const eval_request *rq, eval_result *out, char *err, size_t errlen);

#endif
