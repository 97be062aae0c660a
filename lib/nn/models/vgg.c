/* vgg.c: VGG-16 with batch norm as torchvision 0.14 builds it (torchvision/models/vgg.py,
 * configuration "D", batch_norm = True, dropout 0.5).
 *
 * Module names: features.I numbered through the whole sequence: each of the 13 convs is
 * conv 3x3 p1 with bias (I), BN (I+1), ReLU (I+2), and each "M" a maxpool 2x2 s2 (one index);
 * then adaptive average pool to 7x7 (the identity at 224, a replication at 32), flattened in
 * (C,H,W) order, and classifier.0 Linear 25088->4096, ReLU, Dropout, classifier.3 4096->4096,
 * ReLU, Dropout, classifier.6 ->classes. BN: PyTorch's defaults. Init: convs
 * kaiming_normal(fan_out, relu), Linear normal(0, 0.01), biases 0, BN 1 / 0.
 *
 * classifier.0's weight columns are in (C,H,W) order, torch.flatten's of the 7x7 map: free in
 * NCHW; on a channels-last backend nn_graph_linear inserts the transposition (graph.c). */
#include <stdio.h>

#include "lib/nn/models/models.h"

int nn_build_vgg16_bn(NnGraph *g, int x, int classes)
{
    /* channels of each conv, 0 for a max pool */
    static const int cfg[] = {64, 64,  0,   128, 128, 0,   256, 256, 256,
                              0,  512, 512, 512, 0,   512, 512, 512, 0};
    NnInit saved = g->linear_init;
    g->conv_init = NN_INIT_KAIMING_FAN_OUT;
    g->linear_init = NN_INIT_NORMAL_001;
    int index = 0;
    for (size_t i = 0; i < sizeof cfg / sizeof *cfg; i++) {
        char name[NN_NAME_MAX];
        if (!cfg[i]) {
            x = nn_graph_maxpool(g, x, 2, 2, 0, 0);
            index++;
            continue;
        }
        snprintf(name, sizeof name, "features.%d", index);
        x = nn_graph_conv(g, name, x, cfg[i], 3, 1, 1, 1, 1, 1);
        snprintf(name, sizeof name, "features.%d", index + 1);
        x = nn_graph_act(g, nn_graph_bn(g, name, x, 1e-5f, 0.1f), NN_RELU);
        index += 3;
    }
    x = nn_graph_adaptive_avgpool(g, x, 7, 7);
    x = nn_graph_linear(g, "classifier.0", x, 4096, 1);
    x = nn_graph_dropout(g, nn_graph_act(g, x, NN_RELU), 0.5f);
    x = nn_graph_linear(g, "classifier.3", x, 4096, 1);
    x = nn_graph_dropout(g, nn_graph_act(g, x, NN_RELU), 0.5f);
    x = nn_graph_linear(g, "classifier.6", x, classes, 1);
    g->linear_init = saved;
    return x;
}
