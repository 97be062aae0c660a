/* mobilenet.c: MobileNetV3 Large and Small as torchvision 0.14 builds them
 * (torchvision/models/mobilenetv3.py), with width_mult 1 and no dilation or reduced tail, and
 * MobileNetV2 (mobilenetv2.py, width_mult 1).
 *
 * Module names (state_dict keys): features.0 is the stem (conv 3x3 s2 + BN + Hardswish),
 * features.1 .. features.N the inverted-residual blocks, features.N+1 the last 1x1 conv; each
 * block is block.0 expand (only when expanded != in), block.1 depthwise, block.2 SE (when
 * used: fc1, fc2), then the 1x1 projection; Conv2dNormActivation numbers conv .0 and BN .1.
 * classifier.0 Linear -> 1 Hardswish -> 2 Dropout(0.2) -> 3 Linear. BN eps 1e-3, momentum
 * 0.01. */
#include <stdio.h>

#include "lib/nn/models/models.h"

/* MobileNetV3's BatchNorm; V2 keeps PyTorch's defaults (1e-5, 0.1). */
#define BN_EPS      1e-3f
#define BN_MOMENTUM 0.01f

typedef struct Bneck {
    int in, kernel, expanded, out, se, hardswish, stride;
} Bneck;

/* torchvision's _make_divisible(v, 8): nearest multiple of 8, at least 8, never more than 10%
 * below v. */
static int make_divisible(int v)
{
    int r = (v + 4) / 8 * 8;
    if (r < 8)
        r = 8;
    if (r < 0.9 * v)
        r += 8;
    return r;
}

/* Conv2dNormActivation: conv (no bias) + BN (eps, momentum) + optional activation; names
 * prefix.0, prefix.1. */
static int conv_bn_act_eps(NnGraph *g, const char *prefix, int x, int out, int k, int stride,
                           int groups, int act, NnAct a, float eps, float momentum)
{
    char name[NN_NAME_MAX];
    snprintf(name, sizeof name, "%s.0", prefix);
    x = nn_graph_conv(g, name, x, out, k, stride, (k - 1) / 2, 1, groups, 0);
    snprintf(name, sizeof name, "%s.1", prefix);
    x = nn_graph_bn(g, name, x, eps, momentum);
    return act ? nn_graph_act(g, x, a) : x;
}

/* MobileNetV3's Conv2dNormActivation (BN eps 1e-3, momentum 0.01). */
static int conv_bn_act(NnGraph *g, const char *prefix, int x, int out, int k, int stride,
                       int groups, int act, NnAct a)
{
    return conv_bn_act_eps(g, prefix, x, out, k, stride, groups, act, a, BN_EPS, BN_MOMENTUM);
}

/* SqueezeExcitation(C, S): avgpool -> fc1 (C->S, bias) -> ReLU -> fc2 (S->C, bias) ->
 * Hardsigmoid -> scale x. */
static int squeeze_excite(NnGraph *g, const char *prefix, int x, int c, int squeeze)
{
    char name[NN_NAME_MAX];
    int s = nn_graph_adaptive_avgpool(g, x, 1, 1);
    snprintf(name, sizeof name, "%s.fc1", prefix);
    s = nn_graph_conv(g, name, s, squeeze, 1, 1, 0, 1, 1, 1);
    s = nn_graph_act(g, s, NN_RELU);
    snprintf(name, sizeof name, "%s.fc2", prefix);
    s = nn_graph_conv(g, name, s, c, 1, 1, 0, 1, 1, 1);
    s = nn_graph_act(g, s, NN_HARDSIGMOID);
    return nn_graph_chanmul(g, x, s);
}

static int inverted_residual(NnGraph *g, int index, int x, const Bneck *b)
{
    char prefix[NN_NAME_MAX];
    NnAct a = b->hardswish ? NN_HARDSWISH : NN_RELU;
    int y = x, part = 0;
    if (b->expanded != b->in) {
        snprintf(prefix, sizeof prefix, "features.%d.block.%d", index, part++);
        y = conv_bn_act(g, prefix, y, b->expanded, 1, 1, 1, 1, a);
    }
    snprintf(prefix, sizeof prefix, "features.%d.block.%d", index, part++);
    y = conv_bn_act(g, prefix, y, b->expanded, b->kernel, b->stride, b->expanded, 1, a);
    if (b->se) {
        snprintf(prefix, sizeof prefix, "features.%d.block.%d", index, part++);
        y = squeeze_excite(g, prefix, y, b->expanded, make_divisible(b->expanded / 4));
    }
    snprintf(prefix, sizeof prefix, "features.%d.block.%d", index, part++);
    y = conv_bn_act(g, prefix, y, b->out, 1, 1, 1, 0, NN_RELU);
    return b->stride == 1 && b->in == b->out ? nn_graph_add(g, y, x) : y;
}

static int mobilenet_v3(NnGraph *g, int x, const Bneck *blocks, int n_blocks, int last_channel,
                        int classes)
{
    NnInit saved = g->linear_init;
    g->conv_init = NN_INIT_KAIMING_FAN_OUT;
    g->linear_init = NN_INIT_NORMAL_001;
    x = conv_bn_act(g, "features.0", x, blocks[0].in, 3, 2, 1, 1, NN_HARDSWISH);
    for (int i = 0; i < n_blocks; i++)
        x = inverted_residual(g, i + 1, x, &blocks[i]);
    char prefix[NN_NAME_MAX];
    int last_out = blocks[n_blocks - 1].out;
    snprintf(prefix, sizeof prefix, "features.%d", n_blocks + 1);
    x = conv_bn_act(g, prefix, x, 6 * last_out, 1, 1, 1, 1, NN_HARDSWISH);
    x = nn_graph_adaptive_avgpool(g, x, 1, 1);
    x = nn_graph_linear(g, "classifier.0", x, last_channel, 1);
    x = nn_graph_act(g, x, NN_HARDSWISH);
    x = nn_graph_dropout(g, x, 0.2f);
    x = nn_graph_linear(g, "classifier.3", x, classes, 1);
    g->linear_init = saved;
    return x;
}

int nn_build_mobilenet_v3_large(NnGraph *g, int x, int classes)
{
    static const Bneck blocks[] = {
        {16, 3, 16, 16, 0, 0, 1},    {16, 3, 64, 24, 0, 0, 2},    {24, 3, 72, 24, 0, 0, 1},
        {24, 5, 72, 40, 1, 0, 2},    {40, 5, 120, 40, 1, 0, 1},   {40, 5, 120, 40, 1, 0, 1},
        {40, 3, 240, 80, 0, 1, 2},   {80, 3, 200, 80, 0, 1, 1},   {80, 3, 184, 80, 0, 1, 1},
        {80, 3, 184, 80, 0, 1, 1},   {80, 3, 480, 112, 1, 1, 1},  {112, 3, 672, 112, 1, 1, 1},
        {112, 5, 672, 160, 1, 1, 2}, {160, 5, 960, 160, 1, 1, 1}, {160, 5, 960, 160, 1, 1, 1},
    };
    return mobilenet_v3(g, x, blocks, (int)(sizeof blocks / sizeof *blocks), 1280, classes);
}

int nn_build_mobilenet_v3_small(NnGraph *g, int x, int classes)
{
    static const Bneck blocks[] = {
        {16, 3, 16, 16, 1, 0, 2},  {16, 3, 72, 24, 0, 0, 2},  {24, 3, 88, 24, 0, 0, 1},
        {24, 5, 96, 40, 1, 1, 2},  {40, 5, 240, 40, 1, 1, 1}, {40, 5, 240, 40, 1, 1, 1},
        {40, 5, 120, 48, 1, 1, 1}, {48, 5, 144, 48, 1, 1, 1}, {48, 5, 288, 96, 1, 1, 2},
        {96, 5, 576, 96, 1, 1, 1}, {96, 5, 576, 96, 1, 1, 1},
    };
    return mobilenet_v3(g, x, blocks, (int)(sizeof blocks / sizeof *blocks), 1024, classes);
}

// ---------------------------------------------------------------------------------------------
// MobileNetV2

/* MobileNetV2's InvertedResidual: features.<index>.conv.0 expand 1x1 + BN + ReLU6 (only when
 * t != 1), then the depthwise 3x3 (.conv.K, K = 0 or 1) + BN + ReLU6, then the linear 1x1
 * projection as a bare conv (.conv.K+1) and BN (.conv.K+2); residual when stride 1 and
 * in == out. x: (N,in,H,W) -> (N,out,H/stride,W/stride). */
static int v2_block(NnGraph *g, int index, int x, int in, int out, int stride, int t)
{
    char name[NN_NAME_MAX];
    int hidden = in * t, y = x, part = 0;
    if (t != 1) {
        snprintf(name, sizeof name, "features.%d.conv.%d", index, part++);
        y = conv_bn_act_eps(g, name, y, hidden, 1, 1, 1, 1, NN_RELU6, 1e-5f, 0.1f);
    }
    snprintf(name, sizeof name, "features.%d.conv.%d", index, part++);
    y = conv_bn_act_eps(g, name, y, hidden, 3, stride, hidden, 1, NN_RELU6, 1e-5f, 0.1f);
    snprintf(name, sizeof name, "features.%d.conv.%d", index, part++);
    y = nn_graph_conv(g, name, y, out, 1, 1, 0, 1, 1, 0);
    snprintf(name, sizeof name, "features.%d.conv.%d", index, part++);
    y = nn_graph_bn(g, name, y, 1e-5f, 0.1f);
    return stride == 1 && in == out ? nn_graph_add(g, x, y) : y;
}

/* Stem 3x3 s2 conv 3->32 + BN + ReLU6 (features.0), 17 blocks from the (t, c, n, s) table,
 * 1x1 conv ->1280 + BN + ReLU6 (features.18), global pool, classifier.0 Dropout(0.2),
 * classifier.1 Linear. Init: convs kaiming_normal(fan_out), linear normal(0, 0.01), biases 0. */
int nn_build_mobilenet_v2(NnGraph *g, int x, int classes)
{
    static const int settings[7][4] = {
        {1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2},  {6, 64, 4, 2},
        {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
    };
    NnInit saved = g->linear_init;
    g->conv_init = NN_INIT_KAIMING_FAN_OUT;
    g->linear_init = NN_INIT_NORMAL_001;
    x = conv_bn_act_eps(g, "features.0", x, 32, 3, 2, 1, 1, NN_RELU6, 1e-5f, 0.1f);
    int in = 32, index = 1;
    for (int s = 0; s < 7; s++)
        for (int i = 0; i < settings[s][2]; i++) {
            int out = settings[s][1];
            x = v2_block(g, index++, x, in, out, i == 0 ? settings[s][3] : 1, settings[s][0]);
            in = out;
        }
    char name[NN_NAME_MAX];
    snprintf(name, sizeof name, "features.%d", index);
    x = conv_bn_act_eps(g, name, x, 1280, 1, 1, 1, 1, NN_RELU6, 1e-5f, 0.1f);
    x = nn_graph_adaptive_avgpool(g, x, 1, 1);
    x = nn_graph_dropout(g, x, 0.2f);
    x = nn_graph_linear(g, "classifier.1", x, classes, 1);
    g->linear_init = saved;
    return x;
}
