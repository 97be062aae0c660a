/* cuda_info.h: what the CUDA stack offers this process: library versions and visible GPUs.
 * Compiled by nvcc wherever it exists; linked only in GPU builds (Makefile: GPU=1). Callable on
 * a machine without a GPU or driver: device_count is then 0 and error says why. */
#ifndef ONFH_CUDA_INFO_H
#define ONFH_CUDA_INFO_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NnCudaInfo {
    int runtime_version; /* cudaRuntimeGetVersion: 13000 = 13.0 */
    int driver_version;  /* 0 without a driver */
    int device_count;
    char device0[128]; /* name of device 0, "" when none */
    char error[160];   /* why there is no device, "" otherwise */
    int cudnn_version; /* cudnnGetVersion: 91900 = 9.19.0 */
    int nccl_version;  /* ncclGetVersion: 22809 = 2.28.9 */
    int cublas_version;
} NnCudaInfo;

void nn_cuda_info(NnCudaInfo *info);

#ifdef __cplusplus
}
#endif

#endif
