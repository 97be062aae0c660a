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
 *   ONFH_CUDA_CONV=cudnn       every convolution on cuDNN, also the pointwise and depthwise ones
 *                              conv_own.cu does by default (for comparison);
 *   ONFH_CUDA_BN=cudnn         training batch norm on cuDNN's legacy NHWC batch norm instead of
 *                              the own kernels (norm.cu): cuDNN's was 45% of a mobilenet_v3_large
 *                              step on an H200, and the own kernels made the step 3.2x faster
 *                              (README); kept for comparison;
 *   ONFH_CUDA_MATH=tf32        let convolutions and linear layers round fp32 inputs to TF32 on
 *                              tensor cores (sm_80 and newer); the default is exact fp32;
 *   ONFH_CUDA_PROFILE=1        wait after every op and print, at exit, the time per op name. */
extern int cu_deterministic, cu_conv_find, cu_conv_own, cu_bn_own, cu_tf32;

/* Call at the end of every backend function: checks the launches it made (cudaGetLastError),
 * and with ONFH_CUDA_SYNC=1 waits for them, so an asynchronous fault is blamed on `op`. */
void cu_after(const char *op, const char *file, int line);
#define CU_AFTER(op) cu_after((op), __FILE__, __LINE__)

/* With ONFH_CUDA_PROFILE=1: the seconds the op just ended by CU_AFTER took (else 0); conv.cu
 * adds them up per convolution shape and prints the slowest shapes at exit. */
double cu_profile_last(void);
void cu_conv_profile_reset(void);
void cu_conv_profile_print(void);

/* Convolutions done by conv_own.cu instead of cuDNN (conv.cu dispatches): which path c takes,
 * the workspace it needs, and forward (y = ...) and backward (dx, dw += ...) without the bias. */
enum { CU_CONV_CUDNN, CU_CONV_GEMM, CU_CONV_DEPTHWISE };
int cu_conv_own_path(const NnConv2d *c);
size_t cu_conv_own_workspace(const NnConv2d *c, int path);
void cu_conv_own_forward(int path, const NnConv2d *c, const float *x, const float *w, float *y,
                         void *workspace);
void cu_conv_own_backward(int path, const NnConv2d *c, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, void *workspace);

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
