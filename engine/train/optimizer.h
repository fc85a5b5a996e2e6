/*
 * engine/train/optimizer.h — AdamW over all of a model's parameters, with global
 * gradient-norm clipping, on the model's backend (fp32 moments; fp32 masters on
 * backends with bf16 weights). Matrices get weight decay, norms and biases do not
 * (the parameter table keeps them in two contiguous ranges).
 *
 * An optimizer may own a shard [lo, hi) of the flat weight vector only (ZeRO-1, see
 * engine/train/trainer.c): its moments then cover [lo, hi) and optim_update applies AdamW
 * to that range, splitting it at the decay boundary n_decay when it straddles it.
 */
#ifndef RLVR_TRAIN_OPTIMIZER_H
#define RLVR_TRAIN_OPTIMIZER_H

#include "engine/model/model.h"

typedef struct {
    float beta1, beta2, eps, weight_decay;
    float max_grad_norm; /* clip the global L2 norm to this; 0 = no clipping */
} optim_config;

typedef struct {
    optim_config cfg;
    float *m, *v;  /* f32 [hi - lo], backend memory: moments of weights [lo, hi) */
    size_t lo, hi; /* the weights this optimizer updates: [0, n_weights) unless sharded */
    int step;      /* optimizer steps taken */
} optimizer;

/* PyTorch AdamW defaults with clipping at 1.0. */
optim_config optim_default_config(void);
int optim_create(optimizer *o, const model *m, const optim_config *cfg, char *err,
                 size_t errlen);
/* An optimizer of the weights [lo, hi) only (0 <= lo < hi <= n_weights). */
int optim_create_range(optimizer *o, const model *m, const optim_config *cfg, size_t lo,
                       size_t hi, char *err, size_t errlen);
void optim_free(optimizer *o, const model *m);
/* Bytes of AdamW state this optimizer holds (m and v: 8 per weight of its range). */
size_t optim_state_bytes(const optimizer *o);
/* One step at learning rate lr from the model's accumulated gradients, each scaled
 * by grad_scale first (e.g. 1/accumulation steps). Returns the global gradient norm
 * before clipping (after grad_scale) in *grad_norm; non-finite norms skip the update
 * and return -1 with a message. Gradients are left as they are (call
 * model_zero_grads). */
int optim_step(optimizer *o, model *m, float lr, float grad_scale, double *grad_norm,
               char *err, size_t errlen);
/* The factor applied to the gradients for a global norm (of gradients already scaled by
 * grad_scale): grad_scale, times max_grad_norm / (norm + 1e-6) when clipping applies. */
float optim_clip_scale(const optimizer *o, double norm, float grad_scale);
/* One AdamW step (step counter advanced) on the optimizer's range [lo, hi) with gradient
 * factor scale: grads points at the gradient of weight lo (f32 [hi - lo], backend
 * memory). The weights (and masters) of the range are updated in m. */
int optim_update(optimizer *o, model *m, const float *grads, float lr, float scale, char *err,
                 size_t errlen);

#endif
