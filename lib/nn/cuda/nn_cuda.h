/* nn_cuda.h: the CUDA backend (lib/nn/cuda): cuDNN for convolution and batch norm, cuBLAS for
 * linear layers, small kernels for the rest; activations NHWC in device memory, parameters in
 * PyTorch's layouts (a replica of the ParamStore on the device, graph.h). Beside the NnBackend
 * table, the recurrent core of lib/nn/lstm on cuDNN's RNN API (below).
 *
 * Built where nvcc, cuDNN and NCCL are found (Makefile GPU=1); otherwise, and on machines
 * without a GPU, nn_backend_cuda returns NULL and says why, so callers need no #if. */
#ifndef ONFH_NN_CUDA_H
#define ONFH_NN_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "lib/nn/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA backend's table (the device chosen and handles created on first call), or NULL with
 * the reason in why (cap bytes; why may be NULL). */
const NnBackend *nn_backend_cuda(char *why, size_t cap);

/* TF32 tensor-core math for convolutions and matrix products (1), or exact fp32 (0, the
 * default; ONFH_CUDA_MATH=tf32 starts with 1). Cached convolution plans are dropped, so the next
 * call of each shape chooses its algorithm again: call it before building graphs, whose
 * convolution workspaces are sized for the plans. -1 with the reason in why without CUDA. */
int nn_cuda_set_tf32(int on, char *why, size_t cap);

/* Frees cached cuDNN descriptors (for leak checks). A no-op without CUDA. */
void nn_cuda_release(void);

/* For benchmarks: the most device memory in use so far (the whole device's, sampled at each
 * allocation) and the device's name; 0 and "" before nn_backend_cuda succeeded. */
size_t nn_cuda_peak_bytes(void);
const char *nn_cuda_device_name(void);

/* With ONFH_CUDA_PROFILE=1: forget the ops timed so far (call after warm-up steps). */
void nn_cuda_profile_reset(void);

// --- NCCL: the device transport of lib/nn/comm (nccl.cu) ---------------------------------

/* The communicator's rendezvous: rank 0 makes the id (NN_NCCL_ID_BYTES), the caller broadcasts
 * it (MPI), every rank opens with it. Each call returns 0, or -1 with the reason in why. */
enum { NN_NCCL_ID_BYTES = 128 };
typedef struct NnNccl NnNccl;
int nn_nccl_unique_id(unsigned char id[NN_NCCL_ID_BYTES], char *why, size_t cap);
int nn_nccl_open(NnNccl **out, int ranks, int rank, const unsigned char id[NN_NCCL_ID_BYTES],
                 char *why, size_t cap);
void nn_nccl_close(NnNccl *n);
/* After the work queued on the compute stream so far: x (count floats, device memory) summed,
 * or averaged (average = 1), over the ranks, in place, on the communicator's own stream. */
int nn_nccl_allreduce(NnNccl *n, float *x, size_t count, int average, char *why, size_t cap);
/* The compute stream waits, on the device, for every reduction started so far. */
int nn_nccl_join(NnNccl *n, char *why, size_t cap);
/* The host waits for them; a peer's failure is an error (the communicator is aborted). */
int nn_nccl_sync(NnNccl *n, char *why, size_t cap);

// --- cuDNN LSTM: the recurrent core of lib/nn/lstm on this backend (lstm_cudnn.cu) -------

/* A stacked unidirectional LSTM as one cuDNN RNN: its descriptors, cuDNN's dropout state,
 * cuDNN's weight and weight-gradient spaces, and the scratch of the last batch. Pointers are
 * device memory of this backend unless said otherwise. params and grads list 4 tensors per
 * layer in lstm.h's order and layouts, params[4 l + j]: weight_ih_l (4H,I_l), weight_hh_l
 * (4H,H), bias_ih_l (4H), bias_hh_l (4H), gates i, f, g, o. Initial states are zero. */
typedef struct NnCudnnLstm NnCudnnLstm;

/* input I, hidden H, layers L, dropout p between layers (training only) from cuDNN's generator
 * seeded with seed. 0, or -1 with the reason (the cuDNN call and its message) in why. */
int nn_cudnn_lstm_create(NnCudnnLstm **out, int input, int hidden, int layers, float dropout,
                         uint64_t seed, char *why, size_t cap);
void nn_cudnn_lstm_destroy(NnCudnnLstm *r); /* NULL is fine */

/* x: (N,T,I) batch-first, len: (N) host memory, 1 <= len[i] <= T -> y: (N,T,H) the top layer's
 * outputs, 0 at t >= len[i]; hy: (L,N,H) each layer's state at each sequence's last step.
 * train: keep what backward needs (cuDNN's training mode); dropout: apply it (train only).
 * 0, or -1 with the reason in why. */
int nn_cudnn_lstm_forward(NnCudnnLstm *r, const float *const *params, int n, int t, const int *len,
                          const float *x, float *y, float *hy, int train, int dropout, char *why,
                          size_t cap);

/* Backward of the last forward (train = 1) on its x and y (the weights are the copy that
 * forward made): dhy: (L,N,H) the loss gradient at hy (none reaches y) -> dx: (N,T,I)
 * written (anything at t >= len[i]), grads += the parameter gradients. Aborts on a cuDNN
 * error, as every kernel of this backend does. */
void nn_cudnn_lstm_backward(NnCudnnLstm *r, const float *x, const float *y, const float *dhy,
                            float *dx, float *const *grads);

#ifdef __cplusplus
}
#endif

#endif
