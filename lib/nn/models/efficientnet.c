/* efficientnet.c: EfficientNet-B0 as torchvision 0.14 builds it (torchvision/models/
 * efficientnet.py: width and depth multipliers 1, dropout 0.2, stochastic depth 0.2).
 *
 * Module names: features.0 stem (conv 3x3 s2 3->32 + BN + SiLU, Conv2dNormActivation .0/.1),
 * features.1..7 the seven MBConv stages, block features.S.I.block.K: [expand 1x1 + BN + SiLU
 * when the expansion is not 1], depthwise k x k + BN + SiLU, SqueezeExcitation (fc1, fc2:
 * squeeze = max(1, block input channels / 4), SiLU inside, Sigmoid scale), 1x1 projection + BN;
 * then, when stride 1 and in == out, stochastic depth ("row" mode: whole samples dropped, the
 * kept ones scaled by 1 / (1 - p)) and the residual add. The probability grows with the block's
 * index over all 16 blocks: p = 0.2 i / 16. features.8 the head 1x1 conv 320->1280 + BN + SiLU,
 * global average pool, classifier.0 Dropout(0.2), classifier.1 Linear. BN: PyTorch's defaults.
 * Init: convs kaiming_normal(fan_out) with bias 0, BN 1 / 0, Linear uniform(+-1/sqrt(out)) with
 * bias 0.
 *
 * The random ops (stochastic depth of each residual block, in block order, then the dropout)
 * take their ordinals in that order (graph.h), which tools/golden.py restates. */
#include <stdio.h>

#include "lib/nn/models/models.h"

#define N_BLOCKS 16 /* sum of the stages' repeats */
#define SD_PROB  0.2f

typedef struct Stage {
    int expand, kernel, stride, in, out, repeats;
} Stage;

/* prefix.0 conv (no bias) + prefix.1 BN + SiLU (when act). */
static int conv_bn_act(NnGraph *g, const char *prefix, int x, int out, int k, int stride,
                       int groups, int act)
{
    char name[NN_NAME_MAX];
    snprintf(name, sizeof name, "%s.0", prefix);
    x = nn_graph_conv(g, name, x, out, k, stride, (k - 1) / 2, 1, groups, 0);
    snprintf(name, sizeof name, "%s.1", prefix);
    x = nn_graph_bn(g, name, x, 1e-5f, 0.1f);
    return act ? nn_graph_act(g, x, NN_SILU) : x;
}

/* SqueezeExcitation on x: (N,C,H,W): pool -> fc1 (C->S) -> SiLU -> fc2 (S->C) -> Sigmoid ->
 * scale x. */
static int squeeze_excite(NnGraph *g, const char *prefix, int x, int c, int squeeze)
{
    char name[NN_NAME_MAX];
    int s = nn_graph_adaptive_avgpool(g, x, 1, 1);
    snprintf(name, sizeof name, "%s.fc1", prefix);
    s = nn_graph_act(g, nn_graph_conv(g, name, s, squeeze, 1, 1, 0, 1, 1, 1), NN_SILU);
    snprintf(name, sizeof name, "%s.fc2", prefix);
    s = nn_graph_act(g, nn_graph_conv(g, name, s, c, 1, 1, 0, 1, 1, 1), NN_SIGMOID);
    return nn_graph_chanmul(g, x, s);
}

/* MBConv features.<stage>.<i>: x (N,in,H,W) -> (N,out,H/stride,W/stride); block_id counts the
 * blocks before it (stochastic depth probability). */
static int mbconv(NnGraph *g, int stage, int i, int x, const Stage *st, int in, int stride,
                  int block_id)
{
    char prefix[NN_NAME_MAX];
    int expanded = in * st->expand, part = 0, y = x;
    if (expanded != in) {
        snprintf(prefix, sizeof prefix, "features.%d.%d.block.%d", stage, i, part++);
        y = conv_bn_act(g, prefix, y, expanded, 1, 1, 1, 1);
    }
    snprintf(prefix, sizeof prefix, "features.%d.%d.block.%d", stage, i, part++);
    y = conv_bn_act(g, prefix, y, expanded, st->kernel, stride, expanded, 1);
    snprintf(prefix, sizeof prefix, "features.%d.%d.block.%d", stage, i, part++);
    y = squeeze_excite(g, prefix, y, expanded, in / 4 > 1 ? in / 4 : 1);
    snprintf(prefix, sizeof prefix, "features.%d.%d.block.%d", stage, i, part++);
    y = conv_bn_act(g, prefix, y, st->out, 1, 1, 1, 0);
    if (stride != 1 || in != st->out)
        return y;
    y = nn_graph_stochastic_depth(g, y, SD_PROB * (float)block_id / N_BLOCKS);
    return nn_graph_add(g, y, x);
}

int nn_build_efficientnet_b0(NnGraph *g, int x, int classes)
{
    static const Stage stages[7] = {
        {1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},   {6, 5, 2, 24, 40, 2},   {6, 3, 2, 40, 80, 3},
        {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4}, {6, 3, 1, 192, 320, 1},
    };
    NnInit saved = g->linear_init;
    g->conv_init = NN_INIT_KAIMING_FAN_OUT;
    g->linear_init = NN_INIT_UNIFORM_FAN_OUT;
    x = conv_bn_act(g, "features.0", x, 32, 3, 2, 1, 1);
    int block_id = 0;
    for (int s = 0; s < 7; s++) {
        const Stage *st = &stages[s];
        for (int i = 0; i < st->repeats; i++) {
            int in = i == 0 ? st->in : st->out;
            x = mbconv(g, s + 1, i, x, st, in, i == 0 ? st->stride : 1, block_id++);
        }
    }
    x = conv_bn_act(g, "features.8", x, 1280, 1, 1, 1, 1);
    x = nn_graph_adaptive_avgpool(g, x, 1, 1);
    x = nn_graph_dropout(g, x, 0.2f);
    x = nn_graph_linear(g, "classifier.1", x, classes, 1);
    g->linear_init = saved;
    return x;
}
