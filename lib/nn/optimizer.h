/* optimizer.h: one optimizer step over a whole ParamStore.
 *
 * The backend steps one contiguous tensor (backend.h); this loops over the store's parameter
 * views, passing each view's weight-decay flag, so that BN weights and biases are not decayed
 * while the moment buffers stay flat (one per moment, the store's layout). */
#ifndef ONFH_NN_OPTIMIZER_H
#define ONFH_NN_OPTIMIZER_H

#include "lib/nn/backend.h"
#include "lib/nn/tensor.h"

typedef enum NnOptimKind {
    NN_ADAMW,
    NN_SGD,
    NN_RMSPROP,
} NnOptimKind;

typedef struct NnOptim {
    NnOptimKind kind;
    NnAdamW adamw;
    NnSgd sgd;
    NnRmsprop rmsprop;
} NnOptim;

/* Moment buffers the optimizer needs in the store (nn_store_alloc's n_moments):
 * AdamW 2 (exp_avg, exp_avg_sq), SGD 1 with momentum else 0, RMSprop 1 (square_avg) plus 1
 * with momentum (momentum_buffer). */
int nn_optim_moments(const NnOptim *o);

/* Step `step` (from 1) of every parameter in s, using s->grads. The store must have been
 * allocated with at least nn_optim_moments(o) moments. */
int nn_optim_step(const NnBackend *be, const NnOptim *o, ParamStore *s, long step, Err *e);

#endif
