/* cuda_be.h: internal header of the CUDA backend (lib/nn/cuda): one declaration per kernel,
 * grouped by the file that defines it. Every function has the signature and contract of its
 * NnBackend entry (lib/nn/backend.h): pointers are device memory, activations NHWC (element
 * (n,c,h,w) of an (N,C,H,W) tensor at ((n H + h) W + w) C + c), parameters in PyTorch's layouts
 * (OIHW conv weights, (out, in) linear weights), every backward ADDS into its gradients.
 *
 * Work is queued on one CUDA stream (cu_stream()); functions return without waiting, except
 * those that hand a value back to the host (xent_forward). Kernels cannot fail (backend.h): a
 * CUDA, cuDNN or cuBLAS error is a bug or a broken machine, and the process aborts naming the
 * op, the file and line and the library's message (cu_core.cuh). With ONFH_CUDA_SYNC=1 every op
 * waits for its kernels, so an asynchronous fault is pinned on the op that caused it.
 *
 * Plain C types only: backend_cuda.c (C) builds the NnBackend table from these. */
#ifndef ONFH_NN_CUDA_BE_H
#define ONFH_NN_CUDA_BE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/nn/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

// --- core.cu: device, stream, handles, memory ------------------------------------------------

/* Selects the GPU (ONFH_CUDA_DEVICE, else SLURM_LOCALID or OMPI_COMM_WORLD_LOCAL_RANK modulo
 * the device count, else 0) and creates the stream and the cuDNN and cuBLAS handles, once.
 * Returns 0, or -1 with why in msg (no driver, no device) and nothing created. */
int cu_init(char *msg, size_t cap);
/* Zeroed device memory, or NULL when the device is out of memory. */
void *cu_alloc(size_t bytes);
void cu_free(void *p);
void cu_zero(void *p, size_t bytes);
/* Host to device, device to host (waits), device to device; all ordered on the stream. */
void cu_upload(void *dst, const void *src, size_t bytes);
void cu_download(void *dst, const void *src, size_t bytes);
void cu_copy(void *dst, const void *src, size_t bytes);
/* Waits for every queued op and checks for an asynchronous error. */
void cu_sync(void);
/* Bytes of device memory in use at most since the start (cudaMemGetInfo samples at each
 * cu_alloc) and the device's name, for benchmarks. */
size_t cu_peak_bytes(void);
const char *cu_device_name(void);
void cu_profile_reset(void);
void cu_set_tf32(int on);

// --- own kernels: layout_act.cu, pool.cu, misc.cu, loss_optim.cu ---------------------------

void cu_to_layout(int n, int c, int hw, const float *x, float *y);
void cu_from_layout(int n, int c, int hw, const float *x, float *y);
void cu_act_forward(NnAct a, size_t n, const float *x, float *y);
void cu_act_backward(NnAct a, size_t n, const float *x, const float *dy, float *dx);
void cu_maxpool2d_forward(const NnPool2d *p, const float *x, float *y, int32_t *argmax);
void cu_maxpool2d_backward(const NnPool2d *p, const int32_t *argmax, const float *dy, float *dx);
void cu_avgpool2d_forward(const NnPool2d *p, const float *x, float *y);
void cu_avgpool2d_backward(const NnPool2d *p, const float *dy, float *dx);
void cu_adaptive_avgpool2d_forward(const NnAdaptivePool *p, const float *x, float *y);
void cu_adaptive_avgpool2d_backward(const NnAdaptivePool *p, const float *dy, float *dx);
void cu_add_forward(size_t n, const float *a, const float *b, float *y);
void cu_add_backward(size_t n, const float *dy, float *da, float *db);
void cu_chanmul_forward(int n, int c, int hw, const float *x, const float *s, float *y);
void cu_chanmul_backward(int n, int c, int hw, const float *x, const float *s, const float *dy,
                         float *dx, float *ds);
void cu_concat_forward(int n, int hw, int parts, const int *c, const float *const *xs, float *y);
void cu_concat_backward(int n, int hw, int parts, const int *c, const float *dy, float *const *dxs);
void cu_split_forward(int n, int hw, int parts, const int *c, const float *x, float *const *ys);
void cu_split_backward(int n, int hw, int parts, const int *c, const float *const *dys, float *dx);
void cu_shuffle_forward(int n, int c, int hw, int groups, const float *x, float *y);
void cu_shuffle_backward(int n, int c, int hw, int groups, const float *dy, float *dx);
void cu_dropout_forward(const NnDropout *d, size_t n, const float *x, float *y);
void cu_dropout_backward(const NnDropout *d, size_t n, const float *dy, float *dx);
void cu_stochastic_depth_forward(const NnDropout *d, int n, size_t per_sample, const float *x,
                                 float *y);
void cu_stochastic_depth_backward(const NnDropout *d, int n, size_t per_sample, const float *dy,
                                  float *dx);
/* logits, target (int32), weight, probs: device memory; the loss comes back to the host. */
float cu_xent_forward(const NnXent *x, const float *logits, const int *target, const float *weight,
                      float *probs);
void cu_xent_backward(const NnXent *x, const float *probs, const int *target, const float *weight,
                      float dloss, float *dlogits);
void cu_adamw_step(const NnAdamW *h, long step, int decay, size_t n, float *p, const float *g,
                   float *m, float *v);
void cu_sgd_step(const NnSgd *h, long step, int decay, size_t n, float *p, const float *g,
                 float *buf);
void cu_rmsprop_step(const NnRmsprop *h, int decay, size_t n, float *p, const float *g, float *sq,
                     float *buf);

// --- conv.cu, norm.cu, linear.cu: cuDNN and cuBLAS -------------------------------------------

size_t cu_conv2d_workspace(const NnConv2d *c);
void cu_conv2d_forward(const NnConv2d *c, const float *x, const float *w, const float *b, float *y,
                       void *workspace);
void cu_conv2d_backward(const NnConv2d *c, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, void *workspace);
void cu_batchnorm_forward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                const float *beta, float *y, float *running_mean,
                                float *running_var, int64_t *num_batches_tracked, float *save_mean,
                                float *save_invstd);
void cu_batchnorm_forward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                               const float *beta, const float *running_mean,
                               const float *running_var, float *y);
void cu_batchnorm_backward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                 const float *save_mean, const float *save_invstd, const float *dy,
                                 float *dx, float *dgamma, float *dbeta);
void cu_batchnorm_backward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                const float *running_mean, const float *running_var,
                                const float *dy, float *dx, float *dgamma, float *dbeta);
void cu_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                       float *y);
void cu_linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db);
/* Frees cached cuDNN descriptors (conv.cu, norm.cu): for leak checks. */
void cu_conv_release(void);
void cu_norm_release(void);

#ifdef __cplusplus
}
#endif

#endif
