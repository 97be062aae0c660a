/* dnnl_be.h: internal header of the oneDNN backend: the shared machinery of core.c (engine,
 * primitive creation with error reporting, the primitive cache, the scratch arena, reorders)
 * and one declaration per kernel, grouped by the file that defines it. Shapes and contracts
 * are those of lib/nn/backend.h, with activations in NHWC. Only lib/nn/dnnl includes this. */
#ifndef ONFH_NN_DNNL_BE_H
#define ONFH_NN_DNNL_BE_H

#include <stddef.h>
#include <stdint.h>

#include <dnnl.h>

#include "lib/nn/ops.h"

/* Hand-written loops below this many elements run on one thread: an OpenMP fork costs a few
 * microseconds, as much as streaming ~32k floats. */
#define DNNL_BE_PAR_MIN 32768

/* Hot element-wise loops get an AVX-512 and an AVX2 clone besides the baseline x86-64 one;
 * the loader picks the best the CPU has (the library is built for any x86-64). */
#if defined(__x86_64__) && !defined(__clang__)
#define DNNL_BE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DNNL_BE_CLONES
#endif

/* A loop body taking compile-time constants (an activation, a mode) as arguments: each call
 * with constants becomes a specialised, vectorisable copy. */
#define DNNL_BE_INLINE static inline __attribute__((always_inline))

// --- core.c ----------------------------------------------------------------------------------

dnnl_engine_t dnnl_be_engine(void);
dnnl_stream_t dnnl_be_stream(void);

/* Aborts with `what` and oneDNN's status name unless s is dnnl_success. Kernels cannot fail
 * (backend.h): a failure here is an unsupported configuration or a bug, found on first use. */
void dnnl_be_check(dnnl_status_t s, const char *what);

/* Attributes, created once: user_scratchpad = 1 makes the caller pass the scratchpad
 * (DNNL_ARG_SCRATCHPAD; convolutions, from the graph's workspace), else oneDNN keeps one
 * global scratchpad that grows to the largest need; accumulate = 1 adds a sum post-op, so the
 * primitive accumulates into its destination (dst += result) as backend.h's contract wants. */
const_dnnl_primitive_attr_t dnnl_be_attr(int user_scratchpad, int accumulate);

/* Creates a primitive descriptor for op_desc (or aborts), and the primitive for it. Creating
 * the primitive logs the implementation with ONFH_DNNL_VERBOSE=1 and warns about `ref`
 * implementations of convolutions always. */
dnnl_primitive_desc_t dnnl_be_pd(const void *op_desc, const_dnnl_primitive_attr_t attr,
                                 const_dnnl_primitive_desc_t hint, const char *what);
dnnl_primitive_t dnnl_be_primitive(const_dnnl_primitive_desc_t pd, const char *what);
/* The memory descriptor of an execution argument of pd (DNNL_ARG_*). */
const dnnl_memory_desc_t *dnnl_be_arg_md(const_dnnl_primitive_desc_t pd, int arg);
/* Bytes of the user-mode scratchpad pd needs. */
size_t dnnl_be_scratch_bytes(const_dnnl_primitive_desc_t pd);

/* A plain descriptor: f32, dims d[0..nd), the given format tag. */
dnnl_memory_desc_t dnnl_be_md(int nd, const dnnl_dim_t *d, dnnl_format_tag_t tag);

/* A memory object over md with no data; kernels point it at their buffers per call, so
 * nothing is allocated per call. */
dnnl_memory_t dnnl_be_memory(const dnnl_memory_desc_t *md);
void dnnl_be_bind(dnnl_memory_t m, const void *p);

/* Up to this many arguments per execution. */
#define DNNL_BE_MAX_ARGS 10

/* One primitive with its execution arguments (memory objects made once). */
typedef struct DnnlBeExec {
    dnnl_primitive_t prim;
    int n_args;
    dnnl_exec_arg_t args[DNNL_BE_MAX_ARGS];
} DnnlBeExec;

/* Adds argument `arg` of the pd (DNNL_ARG_*), with a memory object of its descriptor. */
void dnnl_be_exec_arg(DnnlBeExec *e, const_dnnl_primitive_desc_t pd, int arg);
/* Points argument `arg` at p. */
void dnnl_be_exec_bind(DnnlBeExec *e, int arg, const void *p);
/* Runs the primitive and waits for it. */
void dnnl_be_exec_run(DnnlBeExec *e, const char *what);
void dnnl_be_exec_free(DnnlBeExec *e);

/* A reorder from one layout to another, or an accumulating one (to += from). prim is NULL
 * when from and to are the same layout and nothing is accumulated: the caller then uses the
 * source directly. */
typedef struct DnnlBeReorder {
    DnnlBeExec ex;
    size_t dst_bytes;
} DnnlBeReorder;

void dnnl_be_reorder_init(DnnlBeReorder *r, const dnnl_memory_desc_t *from,
                          const dnnl_memory_desc_t *to, int accumulate, const char *what);
void dnnl_be_reorder_run(DnnlBeReorder *r, const void *from, void *to, const char *what);
void dnnl_be_reorder_free(DnnlBeReorder *r);

/* The primitive cache: entries keyed by a small array of ints (an op tag, then the
 * descriptor's sizes), made by the op's own constructor on a miss and freed by its destroy
 * function in nn_dnnl_release. */
#define DNNL_BE_KEY_INTS 24

typedef struct DnnlBeKey {
    int v[DNNL_BE_KEY_INTS]; /* unused tail zero */
} DnnlBeKey;

void *dnnl_be_cache_find(const DnnlBeKey *k);
void dnnl_be_cache_add(const DnnlBeKey *k, void *entry, void (*destroy)(void *));

/* Grow-only scratch memory for temporaries of kernels without a workspace argument
 * (gradients computed before they are accumulated); 64-byte aligned, valid until the next
 * call. Aborts when memory runs out, like any failed kernel precondition. */
void *dnnl_be_arena(size_t bytes);

/* Bytes rounded up to 64, so carved sub-buffers stay cache-line aligned. */
static inline size_t dnnl_be_round(size_t bytes)
{
    return (bytes + 63) & ~(size_t)63;
}

/* Logs `what` and the implementation once with ONFH_DNNL_VERBOSE=1. */
int dnnl_be_verbose(void);

/* y (n) += x (n), in parallel for large n. */
void dnnl_be_accumulate(size_t n, const float *x, float *y);

/* set_fresh_grads (backend.h): the mask of the backward call in progress. */
extern unsigned dnnl_be_fresh;
void dnnl_be_set_fresh_grads(unsigned mask);
/* y = x when input k's gradient is fresh, else y += x. */
void dnnl_be_deliver(unsigned k, size_t n, const float *x, float *y);
/* Channel views (backend.h channel_views): rows of c floats from x, ldx floats apart, into y,
 * ldy floats apart: y = x (add 0) or y += x (add 1). */
void dnnl_be_rows(size_t rows, int c, const float *x, int ldx, float *y, int ldy, int add);

// --- conv.c ----------------------------------------------------------------------------------

size_t dnnl_be_conv2d_workspace(const NnConv2d *c);
void dnnl_be_conv2d_forward(const NnConv2d *c, const float *x, const float *w, const float *b,
                            float *y, void *workspace);
void dnnl_be_conv2d_backward(const NnConv2d *c, const float *x, const float *w, const float *dy,
                             float *dx, float *dw, float *db, void *workspace);

// --- dwconv.c --------------------------------------------------------------------------------

/* Kernel taps (KH*KW) the hand-written depthwise weight gradient handles: up to 7x7. */
#define DNNL_BE_DW_MAX_TAPS 49

/* 1 if c is depthwise with at most DNNL_BE_DW_MAX_TAPS taps. */
int dnnl_be_dw_hand_ok(const NnConv2d *c);
/* x: (N,H,W,C), dy: (N,Ho,Wo,C); dw += (C,1,KH,KW); db += (C) or NULL. */
void dnnl_be_dw_backward_weights(const NnConv2d *c, const float *x, const float *dy, float *dw,
                                 float *db);

// --- norm.c ----------------------------------------------------------------------------------

void dnnl_be_batchnorm_forward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                     const float *beta, float *y, float *running_mean,
                                     float *running_var, int64_t *num_batches_tracked,
                                     float *save_mean, float *save_invstd);
void dnnl_be_batchnorm_forward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                    const float *beta, const float *running_mean,
                                    const float *running_var, float *y);
void dnnl_be_batchnorm_backward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                      const float *save_mean, const float *save_invstd,
                                      const float *dy, float *dx, float *dgamma, float *dbeta);
void dnnl_be_batchnorm_act_forward_train(const NnBatchNorm *bn, NnAct a, const float *x,
                                         const float *gamma, const float *beta, float *y,
                                         float *running_mean, float *running_var,
                                         int64_t *num_batches_tracked, float *save_mean,
                                         float *save_invstd);
void dnnl_be_batchnorm_act_forward_eval(const NnBatchNorm *bn, NnAct a, const float *x,
                                        const float *gamma, const float *beta,
                                        const float *running_mean, const float *running_var,
                                        float *y);
void dnnl_be_batchnorm_act_backward_train(const NnBatchNorm *bn, NnAct a, const float *x,
                                          const float *gamma, const float *beta,
                                          const float *save_mean, const float *save_invstd,
                                          const float *dy, float *dx, float *dgamma, float *dbeta);
void dnnl_be_batchnorm_backward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                     const float *running_mean, const float *running_var,
                                     const float *dy, float *dx, float *dgamma, float *dbeta);

// --- act.c -----------------------------------------------------------------------------------

void dnnl_be_act_forward(NnAct a, size_t n, const float *x, float *y);
void dnnl_be_act_backward(NnAct a, size_t n, const float *x, const float *dy, float *dx);

// --- pool.c ----------------------------------------------------------------------------------

void dnnl_be_maxpool2d_forward(const NnPool2d *p, const float *x, float *y, int32_t *argmax);
void dnnl_be_maxpool2d_backward(const NnPool2d *p, const int32_t *argmax, const float *dy,
                                float *dx);
void dnnl_be_avgpool2d_forward(const NnPool2d *p, const float *x, float *y);
void dnnl_be_avgpool2d_backward(const NnPool2d *p, const float *dy, float *dx);
void dnnl_be_adaptive_avgpool2d_forward(const NnAdaptivePool *p, const float *x, float *y);
void dnnl_be_adaptive_avgpool2d_backward(const NnAdaptivePool *p, const float *dy, float *dx);

// --- linear.c --------------------------------------------------------------------------------

void dnnl_be_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                            float *y);
void dnnl_be_linear_backward(int n, int in, int out, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db);

// --- misc.c ----------------------------------------------------------------------------------

void dnnl_be_to_nhwc(int n, int c, int hw, const float *x, float *y);
void dnnl_be_from_nhwc(int n, int c, int hw, const float *x, float *y);
void dnnl_be_add_forward(size_t n, const float *a, const float *b, float *y);
void dnnl_be_add_backward(size_t n, const float *dy, float *da, float *db);
void dnnl_be_add_act_forward(NnAct act, size_t n, const float *a, const float *b, float *y);
void dnnl_be_add_act_backward(NnAct act, size_t n, const float *y, const float *dy, float *da,
                              float *db);
void dnnl_be_chanmul_forward(int n, int c, int hw, const float *x, const float *s, float *y);
void dnnl_be_chanmul_backward(int n, int c, int hw, const float *x, const float *s, const float *dy,
                              float *dx, float *ds);
void dnnl_be_concat_forward(int n, int hw, int parts, const int *c, const float *const *xs,
                            float *y);
void dnnl_be_concat_backward(int n, int hw, int parts, const int *c, const float *dy,
                             float *const *dxs);
void dnnl_be_split_forward(int n, int hw, int parts, const int *c, const float *x,
                           float *const *ys);
void dnnl_be_split_backward(int n, int hw, int parts, const int *c, const float *const *dys,
                            float *dx);
void dnnl_be_shuffle_forward(int n, int c, int hw, int groups, const float *x, float *y);
void dnnl_be_shuffle_backward(int n, int c, int hw, int groups, const float *dy, float *dx);
void dnnl_be_dropout_forward(const NnDropout *d, size_t n, const float *x, float *y);
void dnnl_be_dropout_backward(const NnDropout *d, size_t n, const float *dy, float *dx);
void dnnl_be_stochastic_depth_forward(const NnDropout *d, int n, size_t per_sample, const float *x,
                                      float *y);
void dnnl_be_stochastic_depth_backward(const NnDropout *d, int n, size_t per_sample,
                                       const float *dy, float *dx);
float dnnl_be_xent_forward(const NnXent *x, const float *logits, const int *target,
                           const float *weight, float *probs);
void dnnl_be_xent_backward(const NnXent *x, const float *probs, const int *target,
                           const float *weight, float dloss, float *dlogits);

// --- optim.c ---------------------------------------------------------------------------------

void dnnl_be_adamw_step(const NnAdamW *h, long step, int decay, size_t n, float *p, const float *g,
                        float *m, float *v);
void dnnl_be_sgd_step(const NnSgd *h, long step, int decay, size_t n, float *p, const float *g,
                      float *buf);
void dnnl_be_rmsprop_step(const NnRmsprop *h, int decay, size_t n, float *p, const float *g,
                          float *sq, float *buf);

#endif
