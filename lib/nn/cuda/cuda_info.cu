/* cuda_info.cu: versions of the CUDA runtime, driver, cuDNN, NCCL and cuBLAS, and the visible
 * devices (see cuda_info.h). Used by `onfh --version` and by GPU selection at start-up. */
#include "lib/nn/cuda/cuda_info.h"

#include <cstdio>
#include <cstring>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <nccl.h>

void nn_cuda_info(NnCudaInfo *info)
{
    memset(info, 0, sizeof *info);
    cudaRuntimeGetVersion(&info->runtime_version);
    cudaDriverGetVersion(&info->driver_version);
    info->cudnn_version = (int)cudnnGetVersion();
    int nccl = 0;
    if (ncclGetVersion(&nccl) == ncclSuccess)
        info->nccl_version = nccl;
    int major = 0, minor = 0, patch = 0;
    if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
        info->cublas_version = major * 10000 + minor * 100 + patch;
    cudaError_t rc = cudaGetDeviceCount(&info->device_count);
    if (rc != cudaSuccess) {
        info->device_count = 0;
        snprintf(info->error, sizeof info->error, "%s", cudaGetErrorString(rc));
        cudaGetLastError(); /* clear the sticky error for later callers */
        return;
    }
    cudaDeviceProp prop;
    if (info->device_count > 0 && cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
        snprintf(info->device0, sizeof info->device0, "%s", prop.name);
}
