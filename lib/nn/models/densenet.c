/* densenet.c: DenseNet-121 and DenseNet-201 (DenseNet-BC) as torchvision 0.14 builds them
 * (torchvision/models/densenet.py): growth rate 32, bn_size 4, 64 initial features, no dropout.
 *
 * Module names: features.conv0 (7x7 s2), features.norm0, ReLU, maxpool 3x3 s2 p1; then
 * features.denseblockB.denselayerL (norm1, ReLU, conv1 1x1 -> 128, norm2, ReLU, conv2 3x3 ->
 * 32) whose input is the concatenation of the block input and every earlier layer's 32 new
 * channels; features.transitionB (norm, ReLU, conv 1x1 halving the channels, avgpool 2x2 s2)
 * after blocks 1-3; features.norm5, ReLU, global average pool, classifier. BN: PyTorch's
 * defaults. Init: convs kaiming_normal (fan_in), BN 1 / 0, classifier weight PyTorch's default
 * with bias 0. */
#include <stdio.h>

#include "lib/nn/models/models.h"

#define GROWTH  32
#define BN_SIZE 4

/* prefix.normK + ReLU + prefix.convK (k x k, no bias); x: (N,C,H,W) -> (N,out,H,W). */
static int bn_relu_conv(NnGraph *g, const char *prefix, const char *k_suffix, int x, int out, int k)
{
    char name[NN_NAME_MAX];
    snprintf(name, sizeof name, "%s.norm%s", prefix, k_suffix);
    x = nn_graph_act(g, nn_graph_bn(g, name, x, 1e-5f, 0.1f), NN_RELU);
    snprintf(name, sizeof name, "%s.conv%s", prefix, k_suffix);
    return nn_graph_conv(g, name, x, out, k, 1, (k - 1) / 2, 1, 1, 0);
}

/* Dense block b of n layers on x: (N,C0,H,W), just made by a pool (the stem's max pool or a
 * transition's average pool) -> (N,C0 + 32 n,H,W).
 *
 * Why one buffer: layer l reads the concatenation of x and the l earlier layers' outputs.
 * torch.cat copies it for every layer, which costs time and memory quadratic in the block's
 * depth (DenseNet-201's third block copies up to 1,792 channels 48 times, and a training graph
 * keeps every copy for its BN's backward). Here the block owns one (N,C0 + 32 n,H,W) buffer:
 * x and each layer's 32 new channels are written into their slice of it once, and layer l's
 * norm1 reads the first C0 + 32 l channels in place (graph.h nn_graph_buffer; on backends
 * without channel views the graph falls back to torchvision's copies, with equal results). */
static int dense_block(NnGraph *g, int b, int x, int n)
{
    const NnValue *v = nn_graph_value(g, x < 0 ? 0 : x);
    int c0 = v->c;
    int buf = nn_graph_buffer(g, c0 + GROWTH * n, v->h, v->w);
    nn_graph_place(g, x, buf);
    for (int l = 0; l < n; l++) {
        char prefix[NN_NAME_MAX];
        snprintf(prefix, sizeof prefix, "features.denseblock%d.denselayer%d", b, l + 1);
        int y = bn_relu_conv(g, prefix, "1", nn_graph_prefix(g, buf, c0 + GROWTH * l),
                             BN_SIZE * GROWTH, 1);
        nn_graph_place(g, bn_relu_conv(g, prefix, "2", y, GROWTH, 3), buf);
    }
    return nn_graph_prefix(g, buf, c0 + GROWTH * n);
}

static int densenet(NnGraph *g, int x, const int *blocks, int classes)
{
    NnInit saved = g->linear_init;
    g->conv_init = NN_INIT_KAIMING_FAN_IN;
    g->linear_init = NN_INIT_TORCH_WEIGHT;
    x = nn_graph_conv(g, "features.conv0", x, 64, 7, 2, 3, 1, 1, 0);
    x = nn_graph_act(g, nn_graph_bn(g, "features.norm0", x, 1e-5f, 0.1f), NN_RELU);
    x = nn_graph_maxpool(g, x, 3, 2, 1, 0);
    int c = 64;
    for (int b = 0; b < 4; b++) {
        x = dense_block(g, b + 1, x, blocks[b]);
        c += GROWTH * blocks[b];
        if (b == 3)
            break;
        char prefix[NN_NAME_MAX];
        snprintf(prefix, sizeof prefix, "features.transition%d", b + 1);
        c /= 2;
        x = bn_relu_conv(g, prefix, "", x, c, 1);
        x = nn_graph_avgpool(g, x, 2, 2, 0, 0, 1);
    }
    x = nn_graph_act(g, nn_graph_bn(g, "features.norm5", x, 1e-5f, 0.1f), NN_RELU);
    x = nn_graph_adaptive_avgpool(g, x, 1, 1);
    x = nn_graph_linear(g, "classifier", x, classes, 1);
    g->linear_init = saved;
    return x;
}

int nn_build_densenet121(NnGraph *g, int x, int classes)
{
    static const int blocks[4] = {6, 12, 24, 16};
    return densenet(g, x, blocks, classes);
}

int nn_build_densenet201(NnGraph *g, int x, int classes)
{
    static const int blocks[4] = {6, 12, 48, 32};
    return densenet(g, x, blocks, classes);
}
