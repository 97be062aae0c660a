/* models.h: the architectures onfh trains, built as NnGraphs with torchvision's names.
 *
 * One builder per architecture id (../shared/reference/architectures.md lists the ten); each
 * appends the model's nodes to a graph that already has its input value, in torchvision's
 * module order, so the store's views come out in state_dict order. */
#ifndef ONFH_NN_MODELS_H
#define ONFH_NN_MODELS_H

#include "lib/nn/graph.h"

typedef struct NnModelInfo {
    const char *id; /* config name = torchvision builder name */
    /* Appends the model to g, reading value x (N,C,H,W); returns the logits value id
     * (N,classes,1,1) or -1 (error in g). */
    int (*build)(NnGraph *g, int x, int classes);
} NnModelInfo;

/* The table of architectures; NULL-terminated. */
extern const NnModelInfo nn_models[];

const NnModelInfo *nn_model_find(const char *id);

/* Builds model `id` for batch n of (c, h, w) images and `classes` outputs, then finishes the
 * graph (training or inference, with n_moments optimizer moments). */
int nn_model_graph(NnGraph *g, const NnBackend *be, const char *id, int n, int c, int h, int w,
                   int classes, int training, int n_moments, Err *e);

/* mobilenet.c */
int nn_build_mobilenet_v3_large(NnGraph *g, int x, int classes);
int nn_build_mobilenet_v3_small(NnGraph *g, int x, int classes);
int nn_build_mobilenet_v2(NnGraph *g, int x, int classes);
/* resnet.c */
int nn_build_resnet18(NnGraph *g, int x, int classes);
int nn_build_resnet50(NnGraph *g, int x, int classes);
/* densenet.c */
int nn_build_densenet121(NnGraph *g, int x, int classes);
int nn_build_densenet201(NnGraph *g, int x, int classes);
/* efficientnet.c */
int nn_build_efficientnet_b0(NnGraph *g, int x, int classes);
/* shufflenet.c */
int nn_build_shufflenet_v2_x1_0(NnGraph *g, int x, int classes);
/* vgg.c */
int nn_build_vgg16_bn(NnGraph *g, int x, int classes);

#endif
