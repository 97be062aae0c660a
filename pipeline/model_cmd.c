/* model_cmd.c: `onfh model list | init` and `onfh archs` (see model_cmd.h). */
#include "pipeline/model_cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/nn/checkpoint.h"
#include "lib/nn/models/models.h"
#include "pipeline/runtime.h"
#include "pipeline/version.h"

static const char usage[] =
    "usage: onfh model list   (or: onfh archs)\n"
    "       onfh model init ID --out FILE [--classes K] [--size N] [--channels C] [--seed S]\n"
    "  list   the architectures: parameters for 2 and 1000 classes, forward GMAC of one\n"
    "         224x224 image, activation memory of a training step per image at 224, and the\n"
    "         primitives (graph ops) each uses\n"
    "  init   a checkpoint of architecture ID initialised as torchvision does (seeded), for\n"
    "         `onfh predict` or as a training start; defaults: 2 classes, 224, 3 channels,\n"
    "         seed 0\n";

/* Appends name to the comma-separated list in buf unless it is there already. */
static void add_primitive(char *buf, size_t size, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = buf; (p = strstr(p, name)) != NULL; p += len)
        if ((p == buf || (p - buf >= 2 && p[-2] == ',')) && (p[len] == ',' || p[len] == 0))
            return;
    if (*buf)
        strncat(buf, ", ", size - strlen(buf) - 1);
    strncat(buf, name, size - strlen(buf) - 1);
}

/* The primitives (architectures.md 3.14) graph g is made of, in first-use order. */
static void primitives(const NnGraph *g, char *buf, size_t size)
{
    buf[0] = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const NnNode *nd = &g->nodes[i];
        const char *name = NULL;
        switch (nd->kind) {
        case NN_OP_CONV:
            name = nd->u.conv.groups == 1                 ? "conv"
                   : nd->u.conv.groups == nd->u.conv.c_in ? "depthwise conv"
                                                          : "grouped conv";
            break;
        case NN_OP_BN: name = "batchnorm"; break;
        case NN_OP_ACT: name = nn_act_name(nd->u.act); break;
        case NN_OP_MAXPOOL: name = "maxpool"; break;
        case NN_OP_AVGPOOL: name = "avgpool"; break;
        case NN_OP_ADAPTIVE: name = "adaptive avgpool"; break;
        case NN_OP_LINEAR: name = "linear"; break;
        case NN_OP_ADD: name = "add"; break;
        case NN_OP_CHANMUL: name = "channel scale (SE)"; break;
        case NN_OP_CONCAT: name = "concat"; break;
        case NN_OP_SPLIT: name = "split"; break;
        case NN_OP_SHUFFLE: name = "channel shuffle"; break;
        case NN_OP_DROPOUT: name = "dropout"; break;
        case NN_OP_SDEPTH: name = "stochastic depth"; break;
        case NN_OP_FLATTEN: name = "flatten"; break;
        }
        add_primitive(buf, size, name);
        if (nd->n_out == 1 && g->values[nd->out[0]].view)
            add_primitive(buf, size, "zero-copy concat");
    }
}

/* One row per architecture: parameters for 2 and 1000 classes (torchvision's counts), forward
 * GMAC at 224 (1000 classes, as model tables quote them), the planned activation memory of a
 * training step per 224x224 image (ref's plan, 2 classes; it scales with the batch) and its
 * primitives. */
static int list(void)
{
    printf("%-20s %12s %12s %9s %10s  %s\n", "architecture", "params (2)", "params (1000)",
           "GMAC@224", "train MiB", "primitives");
    for (const NnModelInfo *m = nn_models; m->id; m++) {
        size_t n[2];
        int classes[2] = {2, 1000};
        double macs = 0, mib = 0;
        char prims[512];
        for (int k = 0; k < 2; k++) {
            NnGraph g;
            Err e = {0};
            if (nn_model_graph(&g, nn_backend_ref(), m->id, 1, 3, 224, 224, classes[k], k == 0, 0,
                               &e)) {
                fprintf(stderr, "onfh model list: %s\n", e.msg);
                return EXIT_FAILURE_RUN;
            }
            n[k] = nn_store_param_count(&g.store);
            if (k == 0)
                mib = (double)nn_graph_activation_bytes(&g) / 1048576.0;
            if (k == 1) {
                macs = nn_graph_forward_macs(&g);
                primitives(&g, prims, sizeof prims);
            }
            nn_graph_free(&g);
        }
        printf("%-20s %12zu %12zu %9.3f %10.1f  %s\n", m->id, n[0], n[1], macs / 1e9, mib, prims);
    }
    return EXIT_OK;
}

static int parse_long(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "onfh model init: %s: expected an integer in %ld..%ld, got \"%s\"\n", flag,
                lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int init(int argc, char **argv)
{
    const char *id = NULL, *out = NULL;
    long classes = 2, size = 224, channels = 3, seed = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long *num = !strcmp(a, "--classes")    ? &classes
                    : !strcmp(a, "--size")     ? &size
                    : !strcmp(a, "--channels") ? &channels
                    : !strcmp(a, "--seed")     ? &seed
                                               : NULL;
        if (num || !strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "onfh model init: %s needs a value\n", a);
                return EXIT_USAGE;
            }
            const char *v = argv[++i];
            long hi = num == &classes    ? 100000
                      : num == &size     ? 4096
                      : num == &channels ? 16
                                         : 0x7fffffffL;
            if (!num)
                out = v;
            else if (parse_long(a, v, num == &seed ? 0 : 1, hi, num))
                return EXIT_USAGE;
        } else if (a[0] == '-') {
            fprintf(stderr, "onfh model init: unknown option %s\n%s", a, usage);
            return EXIT_USAGE;
        } else if (!id) {
            id = a;
        } else {
            fprintf(stderr, "onfh model init: unexpected argument %s\n", a);
            return EXIT_USAGE;
        }
    }
    if (!id || !out) {
        fprintf(stderr, "onfh model init: needs an architecture and --out FILE\n%s", usage);
        return EXIT_USAGE;
    }
    NnGraph g;
    Err e = {0};
    if (nn_model_graph(&g, nn_backend_ref(), id, 1, (int)channels, (int)size, (int)size,
                       (int)classes, 0, 0, &e)) {
        fprintf(stderr, "onfh model init: %s\n", e.msg);
        return rt_exit_code(e.code);
    }
    nn_graph_init_params(&g, (uint64_t)seed);
    NnCheckpointInfo info = {.classes = (int)classes,
                             .in_channels = (int)channels,
                             .image_size = (int)size,
                             .seed = (uint64_t)seed};
    snprintf(info.model, sizeof info.model, "%s", id);
    Versions v;
    versions_get(&v);
    snprintf(info.producer, sizeof info.producer, "onfh %s (%s) model init", v.onfh, v.commit);
    int rc = nn_checkpoint_save(out, &g.store, &info, &e);
    size_t params = nn_store_param_count(&g.store);
    nn_graph_free(&g);
    if (rc) {
        fprintf(stderr, "onfh model init: %s\n", e.msg);
        return rt_exit_code(e.code);
    }
    printf("wrote %s: %s, %zu parameters, %ld classes, %ld x %ld x %ld input, seed %ld\n", out, id,
           params, classes, channels, size, size, seed);
    return EXIT_OK;
}

int cmd_archs(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs("usage: onfh archs\n  the same table as `onfh model list`\n", stdout);
        return EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "onfh archs: unexpected argument %s\n", argv[1]);
        return EXIT_USAGE;
    }
    return list();
}

int cmd_model(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return list();
    if (argc >= 2 && !strcmp(argv[1], "init"))
        return init(argc - 2, argv + 2);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    fputs(usage, stderr);
    return EXIT_USAGE;
}
