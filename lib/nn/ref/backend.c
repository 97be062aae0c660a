/* backend.c: the reference backend's function table (see lib/nn/backend.h).
 *
 * Checklist: a new entry in NnBackend needs a ref kernel here first (it is the oracle the other
 * backends are tested against), a finite-difference check in tests/unit/test_nn_grad.c and a
 * PyTorch case in tools/golden_ops.py + tests/unit/test_nn_golden.c. */
#include "lib/nn/backend.h"
#include "lib/nn/ref/ref.h"

static const NnBackend ref_backend = {
    .name = "ref",
    .layout = NN_LAYOUT_NCHW,
    .mem = &nn_host_memory,
    .channel_views = 1,
    .to_layout = ref_copy_layout,
    .from_layout = ref_copy_layout,
    .conv2d_workspace = ref_conv2d_workspace,
    .conv2d_forward = ref_conv2d_forward,
    .conv2d_backward = ref_conv2d_backward,
    .batchnorm_forward_train = ref_batchnorm_forward_train,
    .batchnorm_forward_eval = ref_batchnorm_forward_eval,
    .batchnorm_backward_train = ref_batchnorm_backward_train,
    .batchnorm_backward_eval = ref_batchnorm_backward_eval,
    .act_forward = ref_act_forward,
    .act_backward = ref_act_backward,
    .maxpool2d_forward = ref_maxpool2d_forward,
    .maxpool2d_backward = ref_maxpool2d_backward,
    .avgpool2d_forward = ref_avgpool2d_forward,
    .avgpool2d_backward = ref_avgpool2d_backward,
    .adaptive_avgpool2d_forward = ref_adaptive_avgpool2d_forward,
    .adaptive_avgpool2d_backward = ref_adaptive_avgpool2d_backward,
    .linear_forward = ref_linear_forward,
    .linear_backward = ref_linear_backward,
    .add_forward = ref_add_forward,
    .add_backward = ref_add_backward,
    .chanmul_forward = ref_chanmul_forward,
    .chanmul_backward = ref_chanmul_backward,
    .concat_forward = ref_concat_forward,
    .concat_backward = ref_concat_backward,
    .split_forward = ref_split_forward,
    .split_backward = ref_split_backward,
    .shuffle_forward = ref_shuffle_forward,
    .shuffle_backward = ref_shuffle_backward,
    .dropout_forward = ref_dropout_forward,
    .dropout_backward = ref_dropout_backward,
    .stochastic_depth_forward = ref_stochastic_depth_forward,
    .stochastic_depth_backward = ref_stochastic_depth_backward,
    .xent_forward = ref_xent_forward,
    .xent_backward = ref_xent_backward,
    .adamw_step = ref_adamw_step,
    .sgd_step = ref_sgd_step,
    .rmsprop_step = ref_rmsprop_step,
};

const NnBackend *nn_backend_ref(void)
{
    return &ref_backend;
}

const NnBackend *nn_backend_refdev(void)
{
    static NnBackend refdev;
    if (!refdev.name) { /* built on first use: ref's table with other memory */
        refdev = ref_backend;
        refdev.mem = &nn_separate_memory;
        refdev.name = "refdev";
    }
    return &refdev;
}
