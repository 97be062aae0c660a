/* ref.h: internal header of the reference backend: one declaration per kernel, grouped by the
 * file that defines it. Shapes and contracts are those of lib/nn/backend.h; only backend.c
 * (which fills the NnBackend table) and the ref files themselves include this. */
#ifndef ONFH_NN_REF_H
#define ONFH_NN_REF_H

#include <stddef.h>
#include <stdint.h>

#include "lib/nn/ops.h"

/* gemm.c: C (M,N) += op(A) op(B), op(A): (M,K), op(B): (K,N), row-major with leading
 * dimensions; ta / tb = 1 reads A / B transposed (A stored (K,M), B stored (N,K)). */
void ref_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b,
               int ldb, float *c, int ldc);

/* conv.c */
size_t ref_conv2d_workspace(const NnConv2d *c);
void ref_conv2d_forward(const NnConv2d *c, const float *x, const float *w, const float *b, float *y,
                        void *workspace);
void ref_conv2d_backward(const NnConv2d *c, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db, void *workspace);

/* norm.c */
void ref_batchnorm_forward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                 const float *beta, float *y, float *running_mean,
                                 float *running_var, int64_t *num_batches_tracked, float *save_mean,
                                 float *save_invstd);
void ref_batchnorm_forward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                const float *beta, const float *running_mean,
                                const float *running_var, float *y);
void ref_batchnorm_backward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                  const float *save_mean, const float *save_invstd, const float *dy,
                                  float *dx, float *dgamma, float *dbeta);
void ref_batchnorm_backward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                 const float *running_mean, const float *running_var,
                                 const float *dy, float *dx, float *dgamma, float *dbeta);

/* act.c */
void ref_act_forward(NnAct a, size_t n, const float *x, float *y);
void ref_act_backward(NnAct a, size_t n, const float *x, const float *dy, float *dx);

/* pool.c */
void ref_maxpool2d_forward(const NnPool2d *p, const float *x, float *y, int32_t *argmax);
void ref_maxpool2d_backward(const NnPool2d *p, const int32_t *argmax, const float *dy, float *dx);
void ref_avgpool2d_forward(const NnPool2d *p, const float *x, float *y);
void ref_avgpool2d_backward(const NnPool2d *p, const float *dy, float *dx);
void ref_adaptive_avgpool2d_forward(const NnAdaptivePool *p, const float *x, float *y);
void ref_adaptive_avgpool2d_backward(const NnAdaptivePool *p, const float *dy, float *dx);

/* linear.c */
void ref_linear_forward(int n, int in, int out, const float *x, const float *w, const float *b,
                        float *y);
void ref_linear_backward(int n, int in, int out, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db);

/* misc.c */
void ref_copy_layout(int n, int c, int hw, const float *x, float *y);
void ref_add_forward(size_t n, const float *a, const float *b, float *y);
void ref_add_backward(size_t n, const float *dy, float *da, float *db);
void ref_chanmul_forward(int n, int c, int hw, const float *x, const float *s, float *y);
void ref_chanmul_backward(int n, int c, int hw, const float *x, const float *s, const float *dy,
                          float *dx, float *ds);
void ref_concat_forward(int n, int hw, int parts, const int *c, const float *const *xs, float *y);
void ref_concat_backward(int n, int hw, int parts, const int *c, const float *dy,
                         float *const *dxs);
void ref_split_forward(int n, int hw, int parts, const int *c, const float *x, float *const *ys);
void ref_split_backward(int n, int hw, int parts, const int *c, const float *const *dys, float *dx);
void ref_shuffle_forward(int n, int c, int hw, int groups, const float *x, float *y);
void ref_shuffle_backward(int n, int c, int hw, int groups, const float *dy, float *dx);
void ref_dropout_forward(const NnDropout *d, size_t n, const float *x, float *y);
void ref_dropout_backward(const NnDropout *d, size_t n, const float *dy, float *dx);
void ref_stochastic_depth_forward(const NnDropout *d, int n, size_t per_sample, const float *x,
                                  float *y);
void ref_stochastic_depth_backward(const NnDropout *d, int n, size_t per_sample, const float *dy,
                                   float *dx);

/* loss.c */
float ref_xent_forward(const NnXent *x, const float *logits, const int *target, const float *weight,
                       float *probs);
void ref_xent_backward(const NnXent *x, const float *probs, const int *target, const float *weight,
                       float dloss, float *dlogits);

/* optim.c */
void ref_adamw_step(const NnAdamW *h, long step, int decay, size_t n, float *p, const float *g,
                    float *m, float *v);
void ref_sgd_step(const NnSgd *h, long step, int decay, size_t n, float *p, const float *g,
                  float *buf);
void ref_rmsprop_step(const NnRmsprop *h, int decay, size_t n, float *p, const float *g, float *sq,
                      float *buf);

#endif
