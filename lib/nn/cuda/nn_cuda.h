/* nn_cuda.h: the CUDA backend (lib/nn/cuda): cuDNN for convolution and batch norm, cuBLAS for
 * linear layers, small kernels for the rest; activations NHWC in device memory, parameters in
 * PyTorch's layouts (a replica of the ParamStore on the device, graph.h).
 *
 * Built where nvcc, cuDNN and NCCL are found (Makefile GPU=1); otherwise, and on machines
 * without a GPU, nn_backend_cuda returns NULL and says why, so callers need no #if. */
#ifndef ONFH_NN_CUDA_H
#define ONFH_NN_CUDA_H

#include <stddef.h>

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

#ifdef __cplusplus
}
#endif

#endif
