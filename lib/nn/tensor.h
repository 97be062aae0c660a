/* tensor.h: tensors and the flat parameter store of the neural-network engine.
 *
 * A Tensor is a view: a float32 data pointer and a shape of up to four dimensions. It owns
 * nothing unless made by nn_tensor_alloc. Activations are NCHW, convolution weights OIHW,
 * linear weights (out, in): the layouts of PyTorch, so weights and golden data move without
 * transposes.
 *
 * A ParamStore keeps every parameter of a model in one flat float buffer, with gradients and
 * optimizer moments in flat buffers of the same layout, and a table of named views into them.
 * One loop then zeroes, all-reduces, checkpoints or steps everything. View names are the
 * torchvision state_dict keys ("features.0.0.weight"), so weights convert both ways and parity
 * tests against PyTorch compare tensor by tensor. Batch-norm buffers (running_mean,
 * running_var) live in their own float buffer and num_batches_tracked, an int64 in PyTorch, in
 * an int64 buffer; both named as in state_dict, and kept out of the parameter buffer so that
 * optimizers and all-reduces never touch them.
 *
 * Life cycle: nn_store_init, then nn_store_add for every tensor in state_dict order (the builder
 * functions of the models do this), then nn_store_alloc once; views are fixed from then on.
 * nn_store_free releases everything and may be called at any point. */
#ifndef ONFH_NN_TENSOR_H
#define ONFH_NN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/err.h"

#define NN_MAX_DIMS    4
#define NN_MAX_MOMENTS 2   /* AdamW: m and v; RMSprop: square_avg and momentum_buffer */
#define NN_NAME_MAX    128 /* longest view name accepted, terminator included */

typedef struct Tensor {
    float *data;
    int ndim; /* 0 (a scalar) .. NN_MAX_DIMS */
    int shape[NN_MAX_DIMS];
} Tensor;

/* A view over `data` (not owned). ndim 0 is a scalar of one element. */
Tensor nn_tensor(float *data, int ndim, const int *shape);
Tensor nn_tensor4(float *data, int n, int c, int h, int w);
/* Number of elements: the product of the shape (1 for a scalar). */
size_t nn_numel(const Tensor *t);
/* An owned, zeroed tensor; free with nn_tensor_free (which leaves t empty). */
int nn_tensor_alloc(Tensor *t, int ndim, const int *shape, Err *e);
void nn_tensor_free(Tensor *t);

/* What a view of the store points into. */
enum {
    NN_PARAM = 0,  /* trainable: params, grads, moments */
    NN_BUFFER = 1, /* float state that is not trained: running_mean, running_var */
    NN_COUNTER = 2 /* int64 state: num_batches_tracked */
};

typedef struct NnView {
    char *name; /* state_dict key */
    int kind;   /* NN_PARAM, NN_BUFFER or NN_COUNTER */
    int decay;  /* NN_PARAM only: 1 if weight decay applies (0 for BN weights and biases) */
    int ndim;
    int shape[NN_MAX_DIMS];
    size_t numel;
    size_t offset; /* in elements, into the buffer of its kind */
} NnView;

typedef struct ParamStore {
    NnView *views; /* in the order added: state_dict order */
    int n_views;
    int cap_views;
    size_t n_param;   /* floats in params, grads and each moment (padding included) */
    size_t n_buffer;  /* floats in buffers */
    size_t n_counter; /* int64 in counters */
    int n_moments;    /* moment buffers allocated (0 .. NN_MAX_MOMENTS) */
    float *params;
    float *grads;
    float *moments[NN_MAX_MOMENTS];
    float *buffers;
    int64_t *counters;
    int allocated; /* nn_store_alloc has run: no more nn_store_add */
} ParamStore;

void nn_store_init(ParamStore *s);
/* Declares a tensor. Names must be unique and shorter than NN_NAME_MAX; ndim 0 is a scalar
 * (num_batches_tracked). `decay` is ignored for buffers and counters. Offsets of parameters are
 * rounded up to 16 floats (64 bytes), so a vector kernel never straddles two views. */
int nn_store_add(ParamStore *s, int kind, const char *name, int ndim, const int *shape, int decay,
                 Err *e);
/* Allocates every buffer, zeroed, with n_moments optimizer moment buffers (nn_optim_moments
 * says how many an optimizer needs). Once only. */
int nn_store_alloc(ParamStore *s, int n_moments, Err *e);
void nn_store_free(ParamStore *s);

/* Index of the view called `name`, or -1. A linear scan: lookups happen when models are built
 * and checkpoints read, never per step, and a few hundred strcmp cost nothing there. */
int nn_store_find(const ParamStore *s, const char *name);

/* Data of view i, by kind. The store must be allocated and the view of the right kind. */
float *nn_store_param(const ParamStore *s, int i);
float *nn_store_grad(const ParamStore *s, int i);
float *nn_store_moment(const ParamStore *s, int k, int i);
float *nn_store_buffer(const ParamStore *s, int i);
int64_t *nn_store_counter(const ParamStore *s, int i);
/* A Tensor over the parameter (NN_PARAM) or buffer (NN_BUFFER) of view i. */
Tensor nn_store_tensor(const ParamStore *s, int i);
Tensor nn_store_grad_tensor(const ParamStore *s, int i);

/* Zeroes every gradient in one pass over the flat buffer. */
void nn_store_zero_grads(ParamStore *s);
/* Trainable parameters (padding excluded): torchvision's parameter count. */
size_t nn_store_param_count(const ParamStore *s);

#endif
