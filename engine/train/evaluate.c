/*
 * engine/train/evaluate.c — see evaluate.h. Prompts are processed in chunks of 32.
 */
#include "engine/train/evaluate.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/rl/eval_metrics.h"

enum { EVAL_CHUNK = 32 };

/* Renders + tokenizes example i. */
static int encode_example(const eval_request *rq, int i, int32_t **ids, int *n, char *err,
                          size_t errlen) {
    const data_example *e = dataset_get(rq->data, i);
    cJSON *j = cJSON_Parse(e->prompt_json);
    chat_message *msgs = NULL;
    size_t nm = 0, len = 0, nid = 0;
    char *text = NULL, where[2200];
    snprintf(where, sizeof where, "%s:%ld", dataset_path(rq->data), e->line);
    chat_render_opts o = {.add_generation_prompt = 1, .enable_thinking = -1};
    int rc = -1;
    if (j && !chat_messages_from_json(j, where, &msgs, &nm, err, errlen) &&
        !chat_template_render(rq->tpl, msgs, nm, &o, &text, &len, err, errlen) &&
        !tok_encode(rq->tok, text, len, ids, &nid, err, errlen)) {
        *n = (int)nid;
        rc = 0;
    }
    cJSON_Delete(j);
    free(msgs);
    free(text);
    return rc;
}

int evaluate(const eval_request *rq, eval_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    const int N = rq->max_prompts > 0 && rq->max_prompts < dataset_size(rq->data)
                      ? rq->max_prompts
                      : dataset_size(rq->data);
    const int n = rq->n, k = rq->k;
    if (n < 1 || k < 1 || k > n) {
        snprintf(err, errlen, "eval: need 1 <= k <= n (n = %d, k = %d)", n, k);
        return -1;
    }
    int *cnt_n = calloc((size_t)N + 1, sizeof(int)), *cnt_c = calloc((size_t)N + 1, sizeof(int));
    int rc = -1, maj_hits = 0;
    double len_sum = 0, reward_sum = 0;
    if (!cnt_n || !cnt_c) {
        snprintf(err, errlen, "eval: out of host memory");
        goto done;
    }
    for (int c0 = 0; c0 < N; c0 += EVAL_CHUNK) {
        const int P = N - c0 < EVAL_CHUNK ? N - c0 : EVAL_CHUNK;
        prompt_ref refs[EVAL_CHUNK];
        int32_t *ids[EVAL_CHUNK] = {0};
        completion *cs = NULL;
        rlvr_item *items = calloc((size_t)P * n, sizeof *items);
        int ok = items != NULL;
        for (int i = 0; ok && i < P; i++) {
            int len = 0;
            ok = !encode_example(rq, c0 + i, &ids[i], &len, err, errlen);
            refs[i] = (prompt_ref){ids[i], len, c0 + i};
        }
        if (ok) ok = !sampler_generate(rq->smp, refs, P, n, &rq->sampling, &cs, NULL, err, errlen);
        reward_job *job = NULL;
        if (ok) {
            for (int i = 0; i < P * n; i++) {
                const data_example *e = dataset_get(rq->data, c0 + i / n);
                const char *prompt = e->prompt ? e->prompt : e->prompt_json;
                const char *text = cs[i].text ? cs[i].text : "";
                items[i] = (rlvr_item){prompt, strlen(prompt), text, strlen(text), e->answer,
                                       strlen(e->answer), e->extra_json, i / n};
                len_sum += cs[i].n;
            }
            job = reward_host_submit(rq->rewards, items, (size_t)P * n, 0, rq->sampling.seed,
                                     rq->deadline_s, err, errlen);
            ok = job != NULL;
        }
        if (ok) {
            const reward_result *res = reward_job_wait(job);
            const size_t R = res->n_rewards;
            const char **answers = calloc((size_t)n, sizeof *answers);
            char **owned = calloc((size_t)n, sizeof *owned);
            int *correct = calloc((size_t)n, sizeof *correct);
            ok = answers && owned && correct;
            for (int i = 0; ok && i < P; i++) {
                cnt_n[c0 + i] = n;
                for (int s = 0; s < n; s++) {
                    const size_t it = (size_t)i * n + s;
                    const int good = res->status[it * R] == RLVR_STATUS_OK && res->scores[it * R] >= 1.0;
                    correct[s] = good;
                    cnt_c[c0 + i] += good;
                    reward_sum += res->total[it];
                    /* the answer voted on: the first reward's "pred" when it gives one */
                    answers[s] = cs[it].text ? cs[it].text : "";
                    cJSON *info = res->info[it * R] ? cJSON_Parse(res->info[it * R]) : NULL;
                    const cJSON *pred = info ? cJSON_GetObjectItemCaseSensitive(info, "pred") : NULL;
                    if (cJSON_IsString(pred)) answers[s] = owned[s] = strdup(pred->valuestring);
                    cJSON_Delete(info);
                }
                int hit = 0;
                if (rl_maj_at_k(&hit, answers, correct, k, err, errlen)) ok = 0;
                maj_hits += hit;
                for (int s = 0; s < n; s++) {
                    free(owned[s]);
                    owned[s] = NULL;
                }
            }
            free(answers);
            free(owned);
            free(correct);
        }
        reward_job_free(job);
        completions_free(cs, cs ? P * n : 0);
        for (int i = 0; i < P; i++) free(ids[i]);
        free(items);
        if (!ok) goto done;
    }
    double pk = 0, p1 = 0;
    if (rl_pass_at_k_mean(&pk, cnt_n, cnt_c, N, k, err, errlen) ||
        rl_pass_at_k_mean(&p1, cnt_n, cnt_c, N, 1, err, errlen))
        goto done;
    *out = (eval_result){N, n, k, p1, pk, (double)maj_hits / N, len_sum / ((double)N * n),
                         reward_sum / ((double)N * n)};
    rc = 0;
done:
    free(cnt_n);
    free(cnt_c);
    return rc;
}
