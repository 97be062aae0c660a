/* backend_cuda.c: the CUDA backend's function table (see nn_cuda.h and cuda_be.h).
 *
 * Checklist: a new entry in NnBackend needs a kernel here (NHWC activations in device memory,
 * accumulating backward) and a case in the cuda-versus-ref op test. */
#include <stdio.h>

#include "lib/nn/cuda/nn_cuda.h"

#if ONFH_GPU

#include "lib/nn/cuda/cuda_be.h"

static const NnMemory cuda_memory = {
    .device = 1,
    .alloc = cu_alloc,
    .free = cu_free,
    .zero = cu_zero,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .sync = cu_sync,
};

static const NnBackend cuda_backend = {
    .name = "cuda",
    .layout = NN_LAYOUT_NHWC,
    .mem = &cuda_memory,
    .to_layout = cu_to_layout,
    .from_layout = cu_from_layout,
    .conv2d_workspace = cu_conv2d_workspace,
    .conv2d_forward = cu_conv2d_forward,
    .conv2d_backward = cu_conv2d_backward,
    .batchnorm_forward_train = cu_batchnorm_forward_train,
    .batchnorm_forward_eval = cu_batchnorm_forward_eval,
    .batchnorm_backward_train = cu_batchnorm_backward_train,
    .batchnorm_backward_eval = cu_batchnorm_backward_eval,
    .act_forward = cu_act_forward,
    .act_backward = cu_act_backward,
    .maxpool2d_forward = cu_maxpool2d_forward,
    .maxpool2d_backward = cu_maxpool2d_backward,
    .avgpool2d_forward = cu_avgpool2d_forward,
    .avgpool2d_backward = cu_avgpool2d_backward,
    .adaptive_avgpool2d_forward = cu_adaptive_avgpool2d_forward,
    .adaptive_avgpool2d_backward = cu_adaptive_avgpool2d_backward,
    .linear_forward = cu_linear_forward,
    .linear_backward = cu_linear_backward,
    .add_forward = cu_add_forward,
    .add_backward = cu_add_backward,
    .chanmul_forward = cu_chanmul_forward,
    .chanmul_backward = cu_chanmul_backward,
    .concat_forward = cu_concat_forward,
    .concat_backward = cu_concat_backward,
    .split_forward = cu_split_forward,
    .split_backward = cu_split_backward,
    .shuffle_forward = cu_shuffle_forward,
    .shuffle_backward = cu_shuffle_backward,
    .dropout_forward = cu_dropout_forward,
    .dropout_backward = cu_dropout_backward,
    .stochastic_depth_forward = cu_stochastic_depth_forward,
    .stochastic_depth_backward = cu_stochastic_depth_backward,
    .xent_forward = cu_xent_forward,
    .xent_backward = cu_xent_backward,
    .adamw_step = cu_adamw_step,
    .sgd_step = cu_sgd_step,
    .rmsprop_step = cu_rmsprop_step,
};

const NnBackend *nn_backend_cuda(char *why, size_t cap)
{
    char msg[256];
    if (cu_init(msg, sizeof msg) < 0) {
        if (why)
            snprintf(why, cap, "%s", msg);
        return NULL;
    }
    return &cuda_backend;
}

void nn_cuda_release(void)
{
    cu_conv_release();
    cu_norm_release();
}

size_t nn_cuda_peak_bytes(void)
{
    return cu_peak_bytes();
}

const char *nn_cuda_device_name(void)
{
    return cu_device_name();
}

void nn_cuda_profile_reset(void)
{
    cu_profile_reset();
}

int nn_cuda_set_tf32(int on, char *why, size_t cap)
{
    if (!nn_backend_cuda(why, cap))
        return -1;
    cu_set_tf32(on);
    return 0;
}

#else

const NnBackend *nn_backend_cuda(char *why, size_t cap)
{
    if (why)
        snprintf(why, cap,
                 "this onfh was built without CUDA (nvcc, cuDNN and NCCL are needed: "
                 "set CUDA_HOME and rebuild with GPU=1)");
    return NULL;
}

void nn_cuda_release(void)
{
}

size_t nn_cuda_peak_bytes(void)
{
    return 0;
}

const char *nn_cuda_device_name(void)
{
    return "";
}

void nn_cuda_profile_reset(void)
{
}

int nn_cuda_set_tf32(int on, char *why, size_t cap)
{
    (void)on;
    nn_backend_cuda(why, cap);
    return -1;
}

int nn_nccl_unique_id(unsigned char id[NN_NCCL_ID_BYTES], char *why, size_t cap)
{
    (void)id;
    nn_backend_cuda(why, cap);
    return -1;
}

int nn_nccl_open(NnNccl **out, int ranks, int rank, const unsigned char id[NN_NCCL_ID_BYTES],
                 char *why, size_t cap)
{
    (void)ranks, (void)rank, (void)id;
    *out = NULL;
    nn_backend_cuda(why, cap);
    return -1;
}

void nn_nccl_close(NnNccl *n)
{
    (void)n;
}

/* Never reached: no communicator opens without CUDA. */
int nn_nccl_allreduce(NnNccl *n, float *x, size_t count, int average, char *why, size_t cap)
{
    (void)n, (void)x, (void)count, (void)average;
    return nn_nccl_join(NULL, why, cap);
}

int nn_nccl_join(NnNccl *n, char *why, size_t cap)
{
    (void)n;
    nn_backend_cuda(why, cap);
    return -1;
}

int nn_nccl_sync(NnNccl *n, char *why, size_t cap)
{
    return nn_nccl_join(n, why, cap);
}

int nn_cudnn_lstm_create(NnCudnnLstm **out, int input, int hidden, int layers, float dropout,
                         uint64_t seed, char *why, size_t cap)
{
    (void)input, (void)hidden, (void)layers, (void)dropout, (void)seed;
    *out = NULL;
    nn_backend_cuda(why, cap);
    return -1;
}

void nn_cudnn_lstm_destroy(NnCudnnLstm *r)
{
    (void)r;
}

/* Never reached: no NnCudnnLstm is made without CUDA. */
int nn_cudnn_lstm_forward(NnCudnnLstm *r, const float *const *params, int n, int t, const int *len,
                          const float *x, float *y, float *hy, int train, int dropout, char *why,
                          size_t cap)
{
    (void)r, (void)params, (void)n, (void)t, (void)len, (void)x, (void)y, (void)hy;
    (void)train, (void)dropout;
    nn_backend_cuda(why, cap);
    return -1;
}

void nn_cudnn_lstm_backward(NnCudnnLstm *r, const float *x, const float *y, const float *dhy,
                            float *dx, float *const *grads)
{
    (void)r, (void)x, (void)y, (void)dhy, (void)dx, (void)grads;
}

#endif
