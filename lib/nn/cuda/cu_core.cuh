/* cu_core.cuh: what every .cu file of the CUDA backend shares: the stream and library handles
 * (core.cu), error checks that abort with the op, file, line and library message, and launch
 * helpers. Included only by the .cu files of lib/nn/cuda. */
#ifndef ONFH_NN_CU_CORE_CUH
#define ONFH_NN_CU_CORE_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "lib/nn/cuda/cuda_be.h"

cudaStream_t cu_stream(void);
cudnnHandle_t cu_cudnn(void);
cublasHandle_t cu_cublas(void);

/* Abort with a message naming what failed, where, and the library's reason. */
[[noreturn]] void cu_die(const char *lib, const char *what, const char *msg, const char *file,
                         int line);

#define CU_CHECK(call)                                                                             \
    do {                                                                                           \
        cudaError_t cu_rc_ = (call);                                                               \
        if (cu_rc_ != cudaSuccess)                                                                 \
            cu_die("CUDA", #call, cudaGetErrorString(cu_rc_), __FILE__, __LINE__);                 \
    } while (0)
#define CUDNN_CHECK(call)                                                                          \
    do {                                                                                           \
        cudnnStatus_t cu_rc_ = (call);                                                             \
        if (cu_rc_ != CUDNN_STATUS_SUCCESS)                                                        \
            cu_die("cuDNN", #call, cudnnGetErrorString(cu_rc_), __FILE__, __LINE__);               \
    } while (0)
#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t cu_rc_ = (call);                                                            \
        if (cu_rc_ != CUBLAS_STATUS_SUCCESS)                                                       \
            cu_die("cuBLAS", #call, cublasGetStatusString(cu_rc_), __FILE__, __LINE__);            \
    } while (0)

/* Run-time choices read by cu_init from the environment:
 *   ONFH_CUDA_DETERMINISTIC=0  allow nondeterministic (atomic) cuDNN algorithms (default 1);
 *   ONFH_CUDA_CONV=find        choose convolution algorithms by timing them (cudnnFind*, which
 *                              allocates its own scratch) instead of cuDNN's heuristics;
 *   ONFH_CUDA_BN=own           training batch norm on own kernels (norm.cu) instead of cuDNN's
 *                              legacy NHWC batch norm, which was 45% of a mobilenet_v3_large
 *                              step on an H200 (README); not yet run on a GPU, hence not the
 *                              default;
 *   ONFH_CUDA_PROFILE=1        wait after every op and print, at exit, the time per op name. */
extern int cu_deterministic, cu_conv_find, cu_bn_own;

/* Call at the end of every backend function: checks the launches it made (cudaGetLastError),
 * and with ONFH_CUDA_SYNC=1 waits for them, so an asynchronous fault is blamed on `op`. */
void cu_after(const char *op, const char *file, int line);
#define CU_AFTER(op) cu_after((op), __FILE__, __LINE__)

/* Biases, shared by conv.cu and linear.cu: in NHWC a conv's bias is a linear layer's bias over
 * rows = N Ho Wo pixels. y: (rows, cols) += b: (cols) broadcast over the rows; db: (cols) +=
 * the column sums of dy: (rows, cols), deterministically. Both queue work and return. */
void cu_bias_add(int rows, int cols, const float *b, float *y);
void cu_bias_grad(int rows, int cols, const float *dy, float *db);

/* Grid for a grid-stride loop over n items with `threads` per block (capped, so huge tensors
 * loop instead of launching millions of blocks). */
static inline unsigned cu_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    if (b > 65535u * 8u)
        b = 65535u * 8u;
    return b ? (unsigned)b : 1u;
}

#endif
