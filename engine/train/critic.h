/*
 * engine/train/critic.h — the PPO critic: a copy of the policy's transformer trunk with a
 * scalar value head V(h) = h·w + b on the final hidden states (w, b start at zero, so the
 * first values are 0), trained with its own AdamW (its own learning rate, global-norm
 * clipping over trunk and head together). Values are indexed like log-probs: entry t is
 * the value of the state that predicts token t+1.
 */
#ifndef RLVR_TRAIN_CRITIC_H
#define RLVR_TRAIN_CRITIC_H

#include "engine/model/model.h"
#include "engine/train/optimizer.h"

typedef struct {
    model *m;           /* trunk with gradients */
    optimizer opt;      /* trunk AdamW state */
    int has_opt;
    /* value head: act weights [C] and bias [1]; f32 grads, moments (and masters when the
     * act dtype is not f32) packed as [C + 1] */
    void *w, *b;
    float *g, *mom, *vel, *master;
    int hstep;          /* head AdamW steps */
    void *values, *dvalues; /* act [cap] */
    void *dhidden;      /* act [cap, C] */
    int cap;
} critic;

int critic_create(const char *model_spec, rlvr_backend *be, const optim_config *oc, critic *c,
                  char *err, size_t errlen);
void critic_free(critic *c);
/* Values of a packed batch into values_host[T] (forward; keeps what the backward needs
 * when with_backward). */
int critic_values(critic *c, const model_batch *b, int with_backward, float *values_host,
                  char *err, size_t errlen);
/* Backward of the last critic_values(with_backward = 1) from dvalues_host[T]. */
int critic_backward(critic *c, const float *dvalues_host, char *err, size_t errlen);
/* One AdamW step at lr on trunk + head (clipped jointly); zeroes the gradients. */
int critic_step(critic *c, float lr, double *grad_norm, char *err, size_t errlen);
/* Host copies of everything a checkpoint needs (f32): trunk weights, trunk m and v,
 * head weights+bias, head m and v, and the two step counters. *out malloc'ed. */
int critic_state_bytes(const critic *c, void **out, size_t *len, char *err, size_t errlen);
int critic_state_load(critic *c, const void *data, size_t len, char *err, size_t errlen);

#endif
