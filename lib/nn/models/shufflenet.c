/* shufflenet.c: ShuffleNetV2 x1.0 as torchvision 0.14 builds it (torchvision/models/
 * shufflenetv2.py): stage repeats 4, 8, 4; channels 24, 116, 232, 464, 1024.
 *
 * Module names: conv1.0 (3x3 s2 3->24) + conv1.1 BN + ReLU, maxpool 3x3 s2 p1; stage2..stage4,
 * unit stageS.I: the first of a stage has stride 2 and two branches on the whole input,
 * branch1 = depthwise 3x3 s2 (.0) + BN (.1) + 1x1 (.2) + BN (.3) + ReLU and branch2 = 1x1 (.0)
 * + BN (.1) + ReLU + depthwise 3x3 (.3) + BN (.4) + 1x1 (.5) + BN (.6) + ReLU; the others split
 * the channels in halves (chunk(2)), run branch2 (stride 1) on the second half and keep the
 * first. Both concatenate [first, branch2] and shuffle the channels in 2 groups. conv5.0 1x1
 * ->1024 + conv5.1 BN + ReLU, mean over H and W, fc. No biases but fc's. BN: PyTorch's
 * defaults. Init: PyTorch's default for every conv and Linear (the model has no init code). */
#include <stdio.h>

#include "lib/nn/models/models.h"

/* prefix.<k> conv (no bias, k x k, groups) and prefix.<k+1> BN, optional ReLU. */
static int conv_bn(NnGraph *g, const char *prefix, int k_index, int x, int out, int k, int stride,
                   int groups, int relu)
{
    char name[NN_NAME_MAX];
    snprintf(name, sizeof name, "%s.%d", prefix, k_index);
    x = nn_graph_conv(g, name, x, out, k, stride, (k - 1) / 2, 1, groups, 0);
    snprintf(name, sizeof name, "%s.%d", prefix, k_index + 1);
    x = nn_graph_bn(g, name, x, 1e-5f, 0.1f);
    return relu ? nn_graph_act(g, x, NN_RELU) : x;
}

/* branch2: x (N,in,H,W) -> (N,out,H/stride,W/stride). */
static int branch2(NnGraph *g, const char *unit, int x, int out, int stride)
{
    char prefix[NN_NAME_MAX];
    snprintf(prefix, sizeof prefix, "%s.branch2", unit);
    x = conv_bn(g, prefix, 0, x, out, 1, 1, 1, 1);
    x = conv_bn(g, prefix, 3, x, out, 3, stride, out, 0);
    return conv_bn(g, prefix, 5, x, out, 1, 1, 1, 1);
}

/* One InvertedResidual unit: x (N,in,H,W) -> (N,out,H/stride,W/stride). */
static int unit(NnGraph *g, const char *name, int x, int in, int out, int stride)
{
    int half = out / 2, parts[2];
    if (stride > 1) {
        char prefix[NN_NAME_MAX];
        snprintf(prefix, sizeof prefix, "%s.branch1", name);
        int b1 = conv_bn(g, prefix, 0, x, in, 3, stride, in, 0);
        parts[0] = conv_bn(g, prefix, 2, b1, half, 1, 1, 1, 1);
        parts[1] = branch2(g, name, x, half, stride);
    } else {
        int halves[2] = {in / 2, in / 2}, xs[2];
        nn_graph_split(g, x, 2, halves, xs);
        parts[0] = xs[0];
        parts[1] = branch2(g, name, xs[1], half, 1);
    }
    return nn_graph_shuffle(g, nn_graph_concat(g, 2, parts), 2);
}

int nn_build_shufflenet_v2_x1_0(NnGraph *g, int x, int classes)
{
    static const int repeats[3] = {4, 8, 4};
    static const int chans[5] = {24, 116, 232, 464, 1024};
    NnInit saved = g->linear_init;
    g->conv_init = NN_INIT_TORCH_DEFAULT;
    g->linear_init = NN_INIT_TORCH_DEFAULT;
    x = conv_bn(g, "conv1", 0, x, chans[0], 3, 2, 1, 1);
    x = nn_graph_maxpool(g, x, 3, 2, 1, 0);
    int in = chans[0];
    for (int s = 0; s < 3; s++)
        for (int i = 0; i < repeats[s]; i++) {
            char name[NN_NAME_MAX];
            snprintf(name, sizeof name, "stage%d.%d", s + 2, i);
            x = unit(g, name, x, in, chans[s + 1], i == 0 ? 2 : 1);
            in = chans[s + 1];
        }
    x = conv_bn(g, "conv5", 0, x, chans[4], 1, 1, 1, 1);
    x = nn_graph_adaptive_avgpool(g, x, 1, 1);
    x = nn_graph_linear(g, "fc", x, classes, 1);
    g->linear_init = saved;
    g->conv_init = NN_INIT_KAIMING_FAN_OUT;
    return x;
}
