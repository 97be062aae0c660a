/* resnet.c: ResNet-18 and ResNet-50 as torchvision 0.14 builds them (torchvision/models/
 * resnet.py), groups 1, width 64, no dilation, zero_init_residual off.
 *
 * Module names: conv1, bn1 (stem 7x7 s2 + BN + ReLU, then maxpool 3x3 s2 p1), layer1..layer4
 * of blocks layerS.B, each conv1/bn1, conv2/bn2 (BasicBlock: two 3x3) or also conv3/bn3
 * (Bottleneck: 1x1, 3x3 carrying the stride, "v1.5", 1x1 x4), then downsample.0 (1x1 conv with
 * the stride) and downsample.1 (BN) when the shape changes; ReLU after the add. Then global
 * average pool and fc. BN: PyTorch's defaults (eps 1e-5, momentum 0.1). Init: convs
 * kaiming_normal(fan_out, relu), BN 1 / 0, fc PyTorch's default Linear init. */
#include <stdio.h>

#include "lib/nn/models/models.h"

/* prefix.convK + prefix.bnK; x: (N,Cin,H,W) -> (N,out,H/stride,W/stride). */
static int conv_bn(NnGraph *g, const char *prefix, int k_index, int x, int out, int k, int stride)
{
    char name[NN_NAME_MAX];
    snprintf(name, sizeof name, "%s.conv%d", prefix, k_index);
    x = nn_graph_conv(g, name, x, out, k, stride, (k - 1) / 2, 1, 1, 0);
    snprintf(name, sizeof name, "%s.bn%d", prefix, k_index);
    return nn_graph_bn(g, name, x, 1e-5f, 0.1f);
}

/* One block layerS.B: x (N,in,H,W) -> (N,planes*expansion,H/stride,W/stride). */
static int block(NnGraph *g, const char *prefix, int x, int in, int planes, int stride,
                 int bottleneck)
{
    int out = bottleneck ? 4 * planes : planes;
    int y;
    if (bottleneck) {
        y = nn_graph_act(g, conv_bn(g, prefix, 1, x, planes, 1, 1), NN_RELU);
        y = nn_graph_act(g, conv_bn(g, prefix, 2, y, planes, 3, stride), NN_RELU);
        y = conv_bn(g, prefix, 3, y, out, 1, 1);
    } else {
        y = nn_graph_act(g, conv_bn(g, prefix, 1, x, planes, 3, stride), NN_RELU);
        y = conv_bn(g, prefix, 2, y, out, 3, 1);
    }
    int identity = x;
    if (stride != 1 || in != out) {
        char name[NN_NAME_MAX];
        snprintf(name, sizeof name, "%s.downsample.0", prefix);
        identity = nn_graph_conv(g, name, x, out, 1, stride, 0, 1, 1, 0);
        snprintf(name, sizeof name, "%s.downsample.1", prefix);
        identity = nn_graph_bn(g, name, identity, 1e-5f, 0.1f);
    }
    return nn_graph_act(g, nn_graph_add(g, y, identity), NN_RELU);
}

static int resnet(NnGraph *g, int x, const int *blocks, int bottleneck, int classes)
{
    NnInit saved = g->linear_init;
    g->conv_init = NN_INIT_KAIMING_FAN_OUT;
    g->linear_init = NN_INIT_TORCH_DEFAULT;
    x = nn_graph_conv(g, "conv1", x, 64, 7, 2, 3, 1, 1, 0);
    x = nn_graph_act(g, nn_graph_bn(g, "bn1", x, 1e-5f, 0.1f), NN_RELU);
    x = nn_graph_maxpool(g, x, 3, 2, 1, 0);
    int in = 64;
    for (int s = 0; s < 4; s++) {
        int planes = 64 << s;
        for (int b = 0; b < blocks[s]; b++) {
            char prefix[NN_NAME_MAX];
            snprintf(prefix, sizeof prefix, "layer%d.%d", s + 1, b);
            x = block(g, prefix, x, in, planes, b == 0 && s > 0 ? 2 : 1, bottleneck);
            in = bottleneck ? 4 * planes : planes;
        }
    }
    x = nn_graph_adaptive_avgpool(g, x, 1, 1);
    x = nn_graph_linear(g, "fc", x, classes, 1);
    g->linear_init = saved;
    return x;
}

int nn_build_resnet18(NnGraph *g, int x, int classes)
{
    static const int blocks[4] = {2, 2, 2, 2};
    return resnet(g, x, blocks, 0, classes);
}

int nn_build_resnet50(NnGraph *g, int x, int classes)
{
    static const int blocks[4] = {3, 4, 6, 3};
    return resnet(g, x, blocks, 1, classes);
}
