/* models.c: the architecture table (see models.h). */
#include "lib/nn/models/models.h"

#include <string.h>

const NnModelInfo nn_models[] = {
    {"mobilenet_v3_large", nn_build_mobilenet_v3_large},
    {"mobilenet_v3_small", nn_build_mobilenet_v3_small},
    {"mobilenet_v2", nn_build_mobilenet_v2},
    {"resnet18", nn_build_resnet18},
    {"resnet50", nn_build_resnet50},
    {"densenet121", nn_build_densenet121},
    {"densenet201", nn_build_densenet201},
    {"efficientnet_b0", nn_build_efficientnet_b0},
    {"shufflenet_v2_x1_0", nn_build_shufflenet_v2_x1_0},
    {"vgg16_bn", nn_build_vgg16_bn},
    {NULL, NULL},
};

const NnModelInfo *nn_model_find(const char *id)
{
    for (const NnModelInfo *m = nn_models; m->id; m++)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

int nn_model_graph(NnGraph *g, const NnBackend *be, const char *id, int n, int c, int h, int w,
                   int classes, int training, int n_moments, Err *e)
{
    nn_graph_init(g, be, n);
    const NnModelInfo *m = nn_model_find(id);
    if (!m) {
        char known[512] = "";
        for (const NnModelInfo *k = nn_models; k->id; k++) {
            strncat(known, k->id, sizeof known - strlen(known) - 3);
            if (k[1].id)
                strncat(known, ", ", sizeof known - strlen(known) - 1);
        }
        return err_set(e, ERR_CONFIG, "model '%s': unknown (expected one of %s)", id, known);
    }
    int x = nn_graph_input(g, c, h, w);
    m->build(g, x, classes);
    if (nn_graph_finish(g, training, n_moments, e) < 0) {
        err_prefix(e, "model %s: ", id);
        nn_graph_free(g);
        return -1;
    }
    return 0;
}
