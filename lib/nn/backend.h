/* backend.h: the one table of functions that a backend implements.
 *
 * The graph calls ops only through an NnBackend, so ref (plain C, the oracle, lib/nn/ref),
 * dnnl (oneDNN) and cuda (cuDNN) are interchangeable and the fast ones are tested against ref.
 * Descriptors (ops.h) carry the sizes; the graph checked them with nn_*_setup, so kernels never
 * fail and return nothing. All pointers are float32, on the backend's device. Parameters are
 * always in PyTorch's layouts (OIHW conv weights, (out, in) linear weights), so one ParamStore
 * serves every backend. Activations written (N,C,H,W) below are in the backend's own layout
 * (`layout`): NCHW for ref, NHWC (channels last, what oneDNN's fast kernels want) for dnnl. The
 * graph never looks inside an activation; it converts the network input with to_layout and
 * the few tensors it reads back (logits are (N,K), the same in both) with from_layout. Ops on
 * (n) elements are layout-blind; dropout is only applied to (N,F) feature tensors, where the
 * layouts coincide, so its masks agree across backends.
 *
 * THE ACCUMULATE CONTRACT. Every backward ADDS into its gradient outputs (dx += ..., dw += ...,
 * never dx = ...). A tensor read by several ops (a residual input, a DenseNet feature map) then
 * receives the sum of its consumers' gradients with no extra code, and parameter gradients are
 * zeroed once per step (nn_store_zero_grads, or node by node after nn_graph_discard_grads). The
 * caller zeroes an activation gradient before its first consumer's backward runs (the
 * exceptions: set_fresh_grads below). A gradient pointer documented "or NULL" may be NULL when
 * that gradient is not needed (the image input, a frozen bias); the kernel then skips it.
 * Forward outputs are overwritten, never accumulated. Inputs and outputs do not alias unless a
 * function says so.
 *
 * Training-mode ops with state (batch norm's running statistics, dropout's step) take it
 * explicitly; eval-mode dropout and stochastic depth are the identity and have no entry. */
#ifndef ONFH_NN_BACKEND_H
#define ONFH_NN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "lib/nn/ops.h"
#include "lib/util/err.h"

typedef enum NnLayout { NN_LAYOUT_NCHW, NN_LAYOUT_NHWC } NnLayout;

/* Where a backend's tensors live and how the host reaches them. Every pointer a kernel takes is
 * memory of this kind: the graph allocates its activations, workspace and parameter replica
 * with alloc, and moves data in and out with upload and download only. */
typedef struct NnMemory {
    /* 0: plain host memory, which the host may also read and write directly (the graph then
     * runs on the ParamStore's own buffers); 1: device memory, reached only through these
     * functions (the graph keeps a replica of the store there, nn_graph_upload/download). */
    int device;
    void *(*alloc)(size_t bytes); /* zeroed; NULL when out of memory */
    void (*free)(void *p);        /* NULL is fine */
    void (*zero)(void *p, size_t bytes);
    void (*upload)(void *dst, const void *src, size_t bytes); /* host -> backend */
    void (*download)(void *dst, const void *src,
                     size_t bytes);                         /* backend -> host, done on return */
    void (*copy)(void *dst, const void *src, size_t bytes); /* backend -> backend */
    void (*sync)(void);                                     /* waits for queued work */
} NnMemory;

/* Host memory (mem_alloc, memset, memcpy): ref and dnnl. */
extern const NnMemory nn_host_memory;
/* Host memory that the graph must treat as a device's (device = 1): the "refdev" backend, ref's
 * kernels on it, runs every upload and download path of a GPU backend on machines without one,
 * so a missing transfer shows up as wrong numbers in ordinary tests. */
extern const NnMemory nn_separate_memory;

/* Backward entries that honour set_fresh_grads (NnBackend.fresh_grad_ops, fresh_param_ops). */
enum { NN_BWD_CONV = 1, NN_BWD_BN = 2, NN_BWD_ACT = 4, NN_BWD_ADD = 8 };
/* set_fresh_grads bit: the call's parameter gradients (conv's dw and db) hold garbage. */
enum { NN_FRESH_PARAMS = 1u << 8 };

typedef struct NnBackend {
    const char *name;
    NnLayout layout; /* of activations */
    const NnMemory *mem;
    /* 1: the kernels honour the channel views of ops.h (conv2d y/dy by ldy, batchnorm x/dx by
     * ldx, max/avg pooling y/dy by ldy), so the graph may concatenate without copies; 0: the
     * graph never sets them and concatenates by copying. */
    int channel_views;

    /* An exception to the accumulate contract, optional (NULL: none). The graph may declare,
     * for the next backward call only, that some of its input gradients hold garbage: bit k of
     * mask set means input k's gradient must be written (dx = ...), not added to. This spares
     * zeroing a gradient before its first consumer and, in kernels that compute into a
     * temporary, the extra pass that adds it. Only the backward entries named in fresh_grad_ops
     * (NN_BWD_* bits) honour it; the graph zeroes gradients for every other entry, and resets
     * the mask to 0 after the call. Conv, BN and act have one input (bit 0); add has two.
     * NN_FRESH_PARAMS likewise says the call's parameter gradients are to be written, for the
     * entries in fresh_param_ops: after nn_graph_discard_grads a step's parameter gradients need
     * no zeroing pass over them all first, and a weight gradient computed in another layout
     * is reordered into place without reading what was there. */
    void (*set_fresh_grads)(unsigned mask);
    unsigned fresh_grad_ops;
    unsigned fresh_param_ops;

    /* x: (N,C,HW) plain NCHW -> y: the same tensor in `layout`, and back. y != x. */
    void (*to_layout)(int n, int c, int hw, const float *x, float *y);
    void (*from_layout)(int n, int c, int hw, const float *x, float *y);

    // --- convolution -------------------------------------------------------------------------
    /* Bytes of scratch memory conv2d_forward / conv2d_backward need for descriptor c; the
     * graph plans one workspace for the largest and passes it in. */
    size_t (*conv2d_workspace)(const NnConv2d *c);
    /* x: (N,Cin,H,W), w: (Cout,Cin/groups,KH,KW), b: (Cout) or NULL, y: (N,Cout,Ho,Wo) */
    void (*conv2d_forward)(const NnConv2d *c, const float *x, const float *w, const float *b,
                           float *y, void *workspace);
    /* dy: (N,Cout,Ho,Wo); dx += (N,Cin,H,W) or NULL; dw += (Cout,Cin/groups,KH,KW);
     * db += (Cout) or NULL. x and w as in forward. */
    void (*conv2d_backward)(const NnConv2d *c, const float *x, const float *w, const float *dy,
                            float *dx, float *dw, float *db, void *workspace);

    // --- batch norm --------------------------------------------------------------------------
    /* Training mode. x, y: (N,C,H,W); gamma, beta: (C). Normalises with the batch mean and
     * biased variance; updates running_mean, running_var: (C) in place with the unbiased
     * variance, running = (1 - momentum) running + momentum batch, and adds 1 to
     * *num_batches_tracked. Saves mean, invstd = 1 / sqrt(var + eps): (C) for backward. */
    void (*batchnorm_forward_train)(const NnBatchNorm *bn, const float *x, const float *gamma,
                                    const float *beta, float *y, float *running_mean,
                                    float *running_var, int64_t *num_batches_tracked,
                                    float *save_mean, float *save_invstd);
    /* Eval mode: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta. */
    void (*batchnorm_forward_eval)(const NnBatchNorm *bn, const float *x, const float *gamma,
                                   const float *beta, const float *running_mean,
                                   const float *running_var, float *y);
    /* Training-mode backward, through the batch statistics. x, dy: (N,C,H,W); gamma,
     * save_mean, save_invstd: (C); dx += (N,C,H,W) or NULL; dgamma, dbeta += (C). */
    void (*batchnorm_backward_train)(const NnBatchNorm *bn, const float *x, const float *gamma,
                                     const float *save_mean, const float *save_invstd,
                                     const float *dy, float *dx, float *dgamma, float *dbeta);
    /* Eval-mode backward (statistics are constants): same shapes, running stats in place of
     * the saved ones. */
    void (*batchnorm_backward_eval)(const NnBatchNorm *bn, const float *x, const float *gamma,
                                    const float *running_mean, const float *running_var,
                                    const float *dy, float *dx, float *dgamma, float *dbeta);
    /* Optional trio (all or none; NULL: the graph runs the two ops one after the other): batch
     * norm followed by activation a (nn_act_fusable), the normalised tensor z = BN(x) never
     * stored. Forward: y = a(z), everything else as batchnorm_forward_train, or as
     * batchnorm_forward_eval in eval mode. Backward: dy: (N,C,H,W) is the gradient at y; the
     * activation's derivative is taken at z, recomputed from x, gamma, beta and the saved
     * statistics (the kink rules of act_backward), and the rest is batchnorm_backward_train's with
     * a'(z) dy in place of dy. x and dx may be a channel view (ldx), as there. Why: BN ->
     * activation is most of a depthwise network's non-convolution time, all of it memory-bound, and
     * the pair fused reads and writes (N,C,H,W) tensors 9 times where the two ops take 14. */
    void (*batchnorm_act_forward_train)(const NnBatchNorm *bn, NnAct a, const float *x,
                                        const float *gamma, const float *beta, float *y,
                                        float *running_mean, float *running_var,
                                        int64_t *num_batches_tracked, float *save_mean,
                                        float *save_invstd);
    void (*batchnorm_act_forward_eval)(const NnBatchNorm *bn, NnAct a, const float *x,
                                       const float *gamma, const float *beta,
                                       const float *running_mean, const float *running_var,
                                       float *y);
    void (*batchnorm_act_backward_train)(const NnBatchNorm *bn, NnAct a, const float *x,
                                         const float *gamma, const float *beta,
                                         const float *save_mean, const float *save_invstd,
                                         const float *dy, float *dx, float *dgamma, float *dbeta);

    // --- activations -------------------------------------------------------------------------
    /* x, y: (n) elements of any shape; y may equal x (in place). */
    void (*act_forward)(NnAct a, size_t n, const float *x, float *y);
    /* x: (n) the forward input, dy: (n); dx += (n). At the kinks PyTorch's CPU kernels rule:
     * relu 0 at x <= 0; relu6 0 at x <= 0 and x >= 6; hardswish 0 below -3, dy (x/3 + 1/2) on
     * [-3, 3], dy above; hardsigmoid dy/6 strictly inside (-3, 3). */
    void (*act_backward)(NnAct a, size_t n, const float *x, const float *dy, float *dx);

    // --- pooling -----------------------------------------------------------------------------
    /* x: (N,C,H,W), y: (N,C,Ho,Wo), argmax: (N,C,Ho,Wo) index h*W + w of the chosen input in
     * its plane (the first maximum in row-major window order, NaN wins, as PyTorch). */
    void (*maxpool2d_forward)(const NnPool2d *p, const float *x, float *y, int32_t *argmax);
    /* dy: (N,C,Ho,Wo), argmax from forward; dx += (N,C,H,W). */
    void (*maxpool2d_backward)(const NnPool2d *p, const int32_t *argmax, const float *dy,
                               float *dx);
    /* x: (N,C,H,W), y: (N,C,Ho,Wo). Divisor as PyTorch: the window clipped to input + padding
     * with count_include_pad, the window clipped to the input without; an empty window gives
     * 0. */
    void (*avgpool2d_forward)(const NnPool2d *p, const float *x, float *y);
    /* dy: (N,C,Ho,Wo); dx += (N,C,H,W). */
    void (*avgpool2d_backward)(const NnPool2d *p, const float *dy, float *dx);
    /* x: (N,C,H,W), y: (N,C,Ho,Wo). */
    void (*adaptive_avgpool2d_forward)(const NnAdaptivePool *p, const float *x, float *y);
    /* dy: (N,C,Ho,Wo); dx += (N,C,H,W). */
    void (*adaptive_avgpool2d_backward)(const NnAdaptivePool *p, const float *dy, float *dx);

    // --- linear ------------------------------------------------------------------------------
    /* x: (N,IN), w: (OUT,IN), b: (OUT) or NULL, y: (N,OUT) = x w^T + b. */
    void (*linear_forward)(int n, int in, int out, const float *x, const float *w, const float *b,
                           float *y);
    /* dy: (N,OUT); dx += (N,IN) or NULL; dw += (OUT,IN); db += (OUT) or NULL. */
    void (*linear_backward)(int n, int in, int out, const float *x, const float *w, const float *dy,
                            float *dx, float *dw, float *db);

    // --- tensor plumbing ---------------------------------------------------------------------
    /* Residual add. a, b, y: (n); y may equal a or b. */
    void (*add_forward)(size_t n, const float *a, const float *b, float *y);
    /* dy: (n); da += dy, db += dy (either NULL). */
    void (*add_backward)(size_t n, const float *dy, float *da, float *db);
    /* Optional pair (both or neither; NULL: two ops): the residual add followed by activation
     * a, NN_RELU or NN_RELU6, whose derivative its output gives (graph.c plan_inplace). Forward:
     * y = a(a_in + b_in), y may equal either input. Backward: y from forward, dy: (n);
     * da += a'(y) dy, db += a'(y) dy (either NULL; set_fresh_grads bits 0 and 1 as for
     * add_backward). Why: a ResNet block's add and ReLU are memory-bound, and fused they pass
     * over (n) tensors 7 times instead of 12. */
    void (*add_act_forward)(NnAct a, size_t n, const float *a_in, const float *b_in, float *y);
    void (*add_act_backward)(NnAct a, size_t n, const float *y, const float *dy, float *da,
                             float *db);
    /* Channel-broadcast multiply (squeeze-excitation scale). x, y: (N,C,HW), s: (N,C):
     * y[n,c,:] = x[n,c,:] s[n,c]. */
    void (*chanmul_forward)(int n, int c, int hw, const float *x, const float *s, float *y);
    /* dy: (N,C,HW); dx += dy s (or NULL); ds[n,c] += sum over HW of dy x (or NULL). */
    void (*chanmul_backward)(int n, int c, int hw, const float *x, const float *s, const float *dy,
                             float *dx, float *ds);
    /* Channel concat. xs[i]: (N,C_i,HW) for i < parts, y: (N,sum C_i,HW). */
    void (*concat_forward)(int n, int hw, int parts, const int *c, const float *const *xs,
                           float *y);
    /* dy: (N,sum C_i,HW); dxs[i] += its channel slice of dy (entries may be NULL). */
    void (*concat_backward)(int n, int hw, int parts, const int *c, const float *dy,
                            float *const *dxs);
    /* Channel split (torch.chunk / split on dim 1): x: (N,sum C_i,HW), ys[i]: (N,C_i,HW)
     * (entries may be NULL: an unused part). */
    void (*split_forward)(int n, int hw, int parts, const int *c, const float *x, float *const *ys);
    /* dys[i]: (N,C_i,HW) (entries may be NULL: no gradient); dx += (N,sum C_i,HW). */
    void (*split_backward)(int n, int hw, int parts, const int *c, const float *const *dys,
                           float *dx);
    /* ShuffleNet's channel_shuffle: x: (N,C,HW) viewed as (N,G,C/G,HW), transposed to
     * (N,C/G,G,HW): y[:, j G + g] = x[:, g (C/G) + j]. */
    void (*shuffle_forward)(int n, int c, int hw, int groups, const float *x, float *y);
    /* dy: (N,C,HW); dx += the inverse permutation of dy. */
    void (*shuffle_backward)(int n, int c, int hw, int groups, const float *dy, float *dx);
    /* Dropout, training mode. x, y: (n) elements, mask rule in ops.h (element j = flat index). */
    void (*dropout_forward)(const NnDropout *d, size_t n, const float *x, float *y);
    /* dy: (n); dx += dy mask / (1 - p), the mask regenerated from d. */
    void (*dropout_backward)(const NnDropout *d, size_t n, const float *dy, float *dx);
    /* Stochastic depth, "row" mode, training: x, y: (N, per_sample); sample i is kept when
     * nn_mask_uniform(seed, step, op, i) >= p and then scaled by 1 / (1 - p). */
    void (*stochastic_depth_forward)(const NnDropout *d, int n, size_t per_sample, const float *x,
                                     float *y);
    /* dy: (N, per_sample); dx += dy mask_i / (1 - p). */
    void (*stochastic_depth_backward)(const NnDropout *d, int n, size_t per_sample, const float *dy,
                                      float *dx);

    // --- loss --------------------------------------------------------------------------------
    /* Softmax cross-entropy (formula in ops.h). logits: (N,K), target: (N) in [0,K),
     * weight: (K) or NULL. Returns the loss; saves probs: (N,K) softmax for backward. */
    float (*xent_forward)(const NnXent *x, const float *logits, const int *target,
                          const float *weight, float *probs);
    /* dlogits += dloss * d loss / d logits: (N,K). */
    void (*xent_backward)(const NnXent *x, const float *probs, const int *target,
                          const float *weight, float dloss, float *dlogits);

    // --- optimizers --------------------------------------------------------------------------
    /* One update of n parameters p: (n) with gradient g: (n), in place. step counts from 1.
     * decay = 0 turns weight decay off for this tensor (BN weights, biases). The gradient is
     * read only: weight decay is added to a copy, as PyTorch does. */
    /* AdamW: p -= lr wd p (decoupled); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
     * p -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps). m, v: (n). */
    void (*adamw_step)(const NnAdamW *h, long step, int decay, size_t n, float *p, const float *g,
                       float *m, float *v);
    /* SGD: g' = g + wd p; buf = g' at step 1, else momentum buf + g'; nesterov: g' + momentum
     * buf, else buf; p -= lr that. buf: (n), unused (may be NULL) when momentum = 0. */
    void (*sgd_step)(const NnSgd *h, long step, int decay, size_t n, float *p, const float *g,
                     float *buf);
    /* RMSprop: g' = g + wd p; sq = alpha sq + (1 - alpha) g'^2; a = sqrt(sq) + eps;
     * momentum > 0: buf = momentum buf + g' / a, p -= lr buf; else p -= lr g' / a.
     * sq: (n); buf: (n), unused (may be NULL) when momentum = 0. */
    void (*rmsprop_step)(const NnRmsprop *h, int decay, size_t n, float *p, const float *g,
                         float *sq, float *buf);
} NnBackend;

/* The plain-C reference backend (lib/nn/ref): single-threaded, obvious, the oracle. */
const NnBackend *nn_backend_ref(void);
/* ref's kernels on nn_separate_memory (above): a test of the graph's device paths. */
const NnBackend *nn_backend_refdev(void);

/* "ref", "refdev", "dnnl" (oneDNN, when built with it), "cuda" (cuDNN, when built with CUDA and
 * a GPU is visible) or "auto" (cuda where it works, else dnnl, else ref); NULL and an error
 * naming the choices otherwise. */
const NnBackend *nn_backend_by_name(const char *name, Err *e);

#endif
