/* backend.c: the oneDNN backend's function table (see lib/nn/backend.h and nn_dnnl.h).
 *
 * Checklist: a new entry in NnBackend needs a kernel here (NHWC activations, accumulating
 * backward) and a case in tests/unit/test_nn_backend.c, which compares it with ref. */
#include <stddef.h>

#include "lib/nn/dnnl/nn_dnnl.h"

#if ONFH_HAVE_DNNL

#include "lib/nn/dnnl/dnnl_be.h"

static const NnBackend dnnl_backend = {
    .name = "dnnl",
    .layout = NN_LAYOUT_NHWC,
    .mem = &nn_host_memory,
    .channel_views = 1,
    .set_fresh_grads = dnnl_be_set_fresh_grads,
    .fresh_grad_ops = NN_BWD_CONV | NN_BWD_BN | NN_BWD_ACT | NN_BWD_ADD,
    .fresh_param_ops = NN_BWD_CONV,
    .to_layout = dnnl_be_to_nhwc,
    .from_layout = dnnl_be_from_nhwc,
    .conv2d_workspace = dnnl_be_conv2d_workspace,
    .conv2d_forward = dnnl_be_conv2d_forward,
    .conv2d_backward = dnnl_be_conv2d_backward,
    .batchnorm_forward_train = dnnl_be_batchnorm_forward_train,
    .batchnorm_forward_eval = dnnl_be_batchnorm_forward_eval,
    .batchnorm_backward_train = dnnl_be_batchnorm_backward_train,
    .batchnorm_backward_eval = dnnl_be_batchnorm_backward_eval,
    .batchnorm_act_forward_train = dnnl_be_batchnorm_act_forward_train,
    .batchnorm_act_forward_eval = dnnl_be_batchnorm_act_forward_eval,
    .batchnorm_act_backward_train = dnnl_be_batchnorm_act_backward_train,
    .act_forward = dnnl_be_act_forward,
    .act_backward = dnnl_be_act_backward,
    .maxpool2d_forward = dnnl_be_maxpool2d_forward,
    .maxpool2d_backward = dnnl_be_maxpool2d_backward,
    .avgpool2d_forward = dnnl_be_avgpool2d_forward,
    .avgpool2d_backward = dnnl_be_avgpool2d_backward,
    .adaptive_avgpool2d_forward = dnnl_be_adaptive_avgpool2d_forward,
    .adaptive_avgpool2d_backward = dnnl_be_adaptive_avgpool2d_backward,
    .linear_forward = dnnl_be_linear_forward,
    .linear_backward = dnnl_be_linear_backward,
    .add_forward = dnnl_be_add_forward,
    .add_backward = dnnl_be_add_backward,
    .add_act_forward = dnnl_be_add_act_forward,
    .add_act_backward = dnnl_be_add_act_backward,
    .chanmul_forward = dnnl_be_chanmul_forward,
    .chanmul_backward = dnnl_be_chanmul_backward,
    .concat_forward = dnnl_be_concat_forward,
    .concat_backward = dnnl_be_concat_backward,
    .split_forward = dnnl_be_split_forward,
    .split_backward = dnnl_be_split_backward,
    .shuffle_forward = dnnl_be_shuffle_forward,
    .shuffle_backward = dnnl_be_shuffle_backward,
    .dropout_forward = dnnl_be_dropout_forward,
    .dropout_backward = dnnl_be_dropout_backward,
    .stochastic_depth_forward = dnnl_be_stochastic_depth_forward,
    .stochastic_depth_backward = dnnl_be_stochastic_depth_backward,
    .xent_forward = dnnl_be_xent_forward,
    .xent_backward = dnnl_be_xent_backward,
    .adamw_step = dnnl_be_adamw_step,
    .sgd_step = dnnl_be_sgd_step,
    .rmsprop_step = dnnl_be_rmsprop_step,
};

const NnBackend *nn_backend_dnnl(void)
{
    return &dnnl_backend;
}

#else

const NnBackend *nn_backend_dnnl(void)
{
    return NULL;
}

#endif
