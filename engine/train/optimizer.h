/*
 * engine/train/optimizer.h — AdamW over all of a model's parameters, with global
 * gradient-norm clipping, on the model's backend (fp32 moments; fp32 masters on
 * backends with bf16 weights). Matrices get weight decay, norms and biases do not
 * (the parameter table keeps them in two contiguous ranges).
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
    float *m, *v; /* f32 [n_weights], backend memory */
    int step;     /* optimizer steps taken */
} optimizer;

/* PyTorch AdamW defaults with clipping at 1.0. */
optim_config optim_default_config(void);
int optim_create(optimizer *o, const model *m, const optim_config *cfg, char *err,
                 size_t errlen);
void optim_free(optimizer *o, const model *m);
/* One step at learning rate lr from the model's accumulated gradients, each scaled
 * by grad_scale first (e.g. 1/accumulation steps). Returns the global gradient norm
 * before clipping (after grad_scale) in *grad_norm; non-finite norms skip the update
 * and return -1 with a message. Gradients are left as they are (call
 * model_zero_grads). */
int optim_step(optimizer *o, model *m, float lr, float grad_scale, double *grad_norm,
               char *err, size_t errlen);

#endif
