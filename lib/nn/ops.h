/* ops.h: the contract every backend shares: op descriptors, PyTorch's output-size rules, and
 * the random-mask rule of dropout and stochastic depth.
 *
 * A descriptor holds the sizes and hyper-parameters of one op instance; the graph fills it once
 * when a model is built (nn_*_setup checks it and computes output sizes exactly as PyTorch does)
 * and hands the same descriptor to whichever backend runs the op. Kernels themselves (backend.h)
 * never fail: everything that can be wrong is caught here, at build time. */
#ifndef ONFH_NN_OPS_H
#define ONFH_NN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/err.h"

/* CHANNEL VIEWS. A few descriptors carry a channel leading dimension (ldy, ldx): the tensor
 * is then channels [off, off + C) of a bigger (N, ld, H, W) tensor, and its pointer points at
 * channel off of image 0. In NCHW element (n, c, p) is at (n ld + c) HW + p; in NHWC at
 * (n HW + p) ld + c. 0 means ld = C, the tensor is dense. The graph only sets them on backends
 * that declare channel_views (backend.h); DenseNet's blocks use them to concatenate without
 * copies (graph.h nn_graph_buffer). */

/* Conv2d. x: (n, c_in, h_in, w_in), w: (c_out, c_in/groups, kh, kw), bias: (c_out) or none,
 * y: (n, c_out, h_out, w_out), a channel view when ldy != 0 (and dy with it). Zero padding,
 * symmetric. groups = 1 is dense, groups = c_in = c_out is depthwise, anything dividing both
 * is grouped. */
typedef struct NnConv2d {
    int n, c_in, h_in, w_in;
    int c_out, kh, kw;
    int stride_h, stride_w;
    int pad_h, pad_w;
    int dil_h, dil_w;
    int groups;
    int h_out, w_out; /* set by nn_conv2d_setup */
    int ldy;          /* channel view of y and dy (0: dense) */
} NnConv2d;

/* Fills h_out, w_out: floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1. */
int nn_conv2d_setup(NnConv2d *c, Err *e);
/* A descriptor with a square kernel and the same stride, padding and dilation on both axes
 * (all that torchvision's models use); nn_conv2d_setup still has to check it. */
NnConv2d nn_conv2d_square(int n, int c_in, int h, int w, int c_out, int k, int stride, int pad,
                          int dil, int groups);

/* BatchNorm2d over x: (n, c, h, w), statistics per channel over n*h*w values; x (and dx) a
 * channel view when ldx != 0, y and dy dense. */
typedef struct NnBatchNorm {
    int n, c, h, w;
    float eps;      /* PyTorch default 1e-5; MobileNetV3 1e-3 */
    float momentum; /* running = (1 - momentum) running + momentum batch; default 0.1 */
    int ldx;        /* channel view of x and dx (0: dense) */
} NnBatchNorm;

int nn_batchnorm_setup(const NnBatchNorm *bn, int training, Err *e);

/* MaxPool2d / AvgPool2d over x: (n, c, h_in, w_in) -> y: (n, c, h_out, w_out); dilation 1.
 * y (and dy) a channel view when ldy != 0; x, dx and argmax dense. */
typedef struct NnPool2d {
    int n, c, h_in, w_in;
    int kh, kw;
    int stride_h, stride_w;
    int pad_h, pad_w;
    int ceil_mode;
    int count_include_pad; /* average pooling only */
    int h_out, w_out;      /* set by nn_pool2d_setup */
    int ldy;               /* channel view of y and dy (0: dense) */
} NnPool2d;

/* Fills h_out, w_out with PyTorch's pooling_output_shape: the division rounds up in ceil mode,
 * but a last window that would start in the right padding (or beyond) is dropped. PyTorch
 * also requires pad <= kernel / 2, and so do we. */
int nn_pool2d_setup(NnPool2d *p, Err *e);
/* Square window, the same stride and padding on both axes; nn_pool2d_setup still has to run. */
NnPool2d nn_pool2d_square(int n, int c, int h, int w, int k, int stride, int pad, int ceil_mode,
                          int count_include_pad);

/* Average pooling: the input window of output (oh, ow), clipped to the input, and its divisor
 * by PyTorch's rule (window clipped to input + padding with count_include_pad, to the input
 * without); divisor 0 for an empty window (its output is 0). */
typedef struct NnPoolWindow {
    int h0, h1, w0, w1; /* rows h0..h1-1, columns w0..w1-1 */
    int divisor;
} NnPoolWindow;

NnPoolWindow nn_avgpool_window(const NnPool2d *p, int oh, int ow);

/* AdaptiveAvgPool2d: x: (n, c, h_in, w_in) -> y: (n, c, h_out, w_out); output cell i averages
 * input rows floor(i h_in / h_out) .. ceil((i + 1) h_in / h_out) - 1 (PyTorch's start/end). */
typedef struct NnAdaptivePool {
    int n, c, h_in, w_in;
    int h_out, w_out;
} NnAdaptivePool;

int nn_adaptive_pool_setup(const NnAdaptivePool *p, Err *e);
static inline int nn_adaptive_start(int i, int in, int out)
{
    return (int)((long)i * in / out);
}
static inline int nn_adaptive_end(int i, int in, int out)
{
    return (int)(((long)(i + 1) * in + out - 1) / out);
}

/* Pointwise activations. Backward reads x (the forward input); see backend.h. */
typedef enum NnAct {
    NN_RELU,
    NN_RELU6,
    NN_HARDSWISH,   /* x relu6(x + 3) / 6 */
    NN_HARDSIGMOID, /* relu6(x + 3) / 6 */
    NN_SILU,        /* x sigmoid(x) */
    NN_SIGMOID,
} NnAct;

const char *nn_act_name(NnAct a);

/* The activations a backend may fuse into the batch norm before them (backend.h): those that
 * follow a BN in torchvision's models. */
static inline int nn_act_fusable(NnAct a)
{
    return a == NN_RELU || a == NN_RELU6 || a == NN_HARDSWISH || a == NN_SILU;
}

/* Dropout and stochastic depth ("row" mode: one draw per sample) in training mode. Masks are a
 * pure function of (seed, step, op, element): element j of op `op` at step `step` is kept when
 * nn_mask_uniform(seed, step, op, j) >= p, and kept values are scaled by 1 / (1 - p). So the
 * mask does not depend on threads, ranks or backend, and backward regenerates it instead of
 * storing it. In eval mode both ops are the identity and the graph skips them. */
typedef struct NnDropout {
    float p;        /* drop probability, 0 <= p <= 1 (p = 1: all dropped, output 0) */
    uint64_t seed;  /* run seed */
    uint64_t step;  /* training step, < 2^40 */
    uint32_t op;    /* index of the op in the graph, < 2^24 */
    uint64_t first; /* element (stochastic depth: sample) 0 is element `first` of the global batch
                       (data-parallel ranks each hold a share of it); 0 in one process */
} NnDropout;

/* Uniform in [0, 1) with 24 random bits: word j % 4 of the Philox4x32-10 block
 * key = seed, counter = (j / 4, PHILOX_DROPOUT, stream low, stream high), where
 * stream = step * 2^24 + op (the philox.h stream layout with index = stream); j < 2^34. */
float nn_mask_uniform(uint64_t seed, uint64_t step, uint32_t op, uint64_t j);
/* What element (or sample) j of the batch is multiplied by: 1 / (1 - p) if element first + j of
 * the global batch is kept, else 0 (p = 1: all 0). */
float nn_mask_scale(const NnDropout *d, uint64_t j);

/* Softmax cross-entropy over logits (n, k) with integer targets in [0, k); mean reduction,
 * optional class weights (k) and label smoothing in [0, 1], as torch.nn.functional.
 * cross_entropy defines them:
 *   loss = (1 - s) sum_i w[y_i] (-log p_i[y_i]) / W  +  (s / k) sum_i sum_c w[c] (-log p_i[c]) / W
 * with W = sum_i w[y_i] (W = n and w = 1 without weights). */
typedef struct NnXent {
    int n, k;
    float smoothing;
} NnXent;

int nn_xent_setup(const NnXent *x, const int *target, Err *e);

/* Optimizer hyper-parameters, PyTorch's names and formulas (backend.h has the updates). Double,
 * as Python floats are: 1 - 0.999^t in float would be off by 1e-5 relative. */
typedef struct NnAdamW {
    double lr, beta1, beta2, eps, weight_decay;
} NnAdamW;

typedef struct NnSgd {
    double lr, momentum, weight_decay;
    int nesterov; /* dampening is 0, as in every recipe we follow */
} NnSgd;

typedef struct NnRmsprop {
    double lr, alpha, eps, weight_decay, momentum; /* centered = false */
} NnRmsprop;

#endif
