/* model_cmd.c: `onfh model list | init | profile` and `onfh archs` (see model_cmd.h). */
#include "pipeline/model_cmd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/nn/checkpoint.h"
#include "lib/nn/models/models.h"
#include "lib/nn/optimizer.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "lib/util/progress.h"
#include "pipeline/runtime.h"
#include "pipeline/version.h"

static const char usage[] =
    "usage: onfh model list   (or: onfh archs)\n"
    "       onfh model init ID --out FILE [--classes K] [--size N] [--channels C] [--seed S]\n"
    "       onfh model profile ID [--batch B] [--size N] [--backend NAME] [--steps K]\n"
    "  list   the architectures: parameters for 2 and 1000 classes, forward GMAC of one\n"
    "         224x224 image, activation memory of a training step per image at 224, and the\n"
    "         primitives (graph ops) each uses\n"
    "  init   a checkpoint of architecture ID initialised as torchvision does (seeded), for\n"
    "         `onfh predict` or as a training start; defaults: 2 classes, 224, 3 channels,\n"
    "         seed 0\n"
    "  profile when each gradient is final during a training step's backward: for every node\n"
    "         with parameters, the seconds since backward began and the gradient bytes final so\n"
    "         far (the order a bucketed all-reduce can start them, lib/nn/comm.h), with the\n"
    "         forward, backward and optimizer seconds; medians of K steps after one warm-up;\n"
    "         defaults: batch 16, 224, dnnl, 3 steps (tools/scaling_model.py reads it)\n";

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

static int parse_long(const char *cmd, const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "onfh model %s: %s: expected an integer in %ld..%ld, got \"%s\"\n", cmd,
                flag, lo, hi, v);
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
            else if (parse_long("init", a, v, num == &seed ? 0 : 1, hi, num))
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The backward profile of one step: when node i's backward is done, its gradients are final. */
typedef struct Profile {
    const NnGraph *g;
    double t0;  /* backward began */
    double *at; /* (n_nodes) seconds since t0 when node i's backward was done, this step */
} Profile;

static void profile_after_node(void *ctx, int i)
{
    Profile *p = ctx;
    p->g->be->mem->sync(); /* a device backend queues work: the node is done when it is */
    p->at[i] = progress_now() - p->t0;
}

/* Bytes of the parameter tensors node nd updates (weight and bias). */
static size_t node_param_bytes(const NnGraph *g, const NnNode *nd)
{
    size_t n = 0;
    int ids[2] = {nd->weight, nd->bias};
    for (int k = 0; k < 2; k++)
        if (ids[k] >= 0 && g->store.views[ids[k]].kind == NN_PARAM)
            n += g->store.views[ids[k]].numel;
    return n * sizeof(float);
}

static int profile(int argc, char **argv)
{
    const char *id = NULL, *backend = "dnnl";
    long batch = 16, size = 224, steps = 3;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long *num = !strcmp(a, "--batch")   ? &batch
                    : !strcmp(a, "--size")  ? &size
                    : !strcmp(a, "--steps") ? &steps
                                            : NULL;
        if (num || !strcmp(a, "--backend")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "onfh model profile: %s needs a value\n", a);
                return EXIT_USAGE;
            }
            const char *v = argv[++i];
            if (!num)
                backend = v;
            else if (parse_long("profile", a, v, 1, num == &size ? 4096 : 1000, num))
                return EXIT_USAGE;
        } else if (a[0] == '-') {
            fprintf(stderr, "onfh model profile: unknown option %s\n%s", a, usage);
            return EXIT_USAGE;
        } else if (!id) {
            id = a;
        } else {
            fprintf(stderr, "onfh model profile: unexpected argument %s\n", a);
            return EXIT_USAGE;
        }
    }
    if (!id) {
        fprintf(stderr, "onfh model profile: needs an architecture\n%s", usage);
        return EXIT_USAGE;
    }
    Err e = {0};
    const NnBackend *be = nn_backend_by_name(backend, &e);
    NnOptim opt = {.kind = NN_ADAMW, .adamw = {1e-4, 0.9, 0.999, 1e-8, 0.01}};
    NnGraph g;
    if (!be || nn_model_graph(&g, be, id, (int)batch, 3, (int)size, (int)size, 2, 1,
                              nn_optim_moments(&opt), &e)) {
        fprintf(stderr, "onfh model profile: %s\n", e.msg);
        return rt_exit_code(e.code);
    }
    nn_graph_init_params(&g, 1);
    size_t n_img = (size_t)batch * 3 * (size_t)size * (size_t)size;
    float *images = mem_alloc(n_img * sizeof(float));
    int *target = mem_alloc((size_t)batch * sizeof(int));
    /* (steps) forward, backward, optimizer seconds; (steps x n_nodes) node done times */
    double *t = mem_calloc(3 * (size_t)steps, sizeof(double));
    double *at = mem_calloc((size_t)steps * (size_t)g.n_nodes + 1, sizeof(double));
    double *col = mem_alloc(((size_t)steps + 1) * sizeof(double));
    int rc = EXIT_OK;
    if (!images || !target || !t || !at || !col) {
        fprintf(stderr, "onfh model profile: out of memory\n");
        rc = EXIT_FAILURE_RUN;
        goto out;
    }
    Philox ph; /* random images from Philox: every run sees the same */
    philox_init(&ph, 7, PHILOX_TEST, 0);
    for (size_t i = 0; i < n_img; i++)
        images[i] = (float)philox_normal(&ph);
    for (long i = 0; i < batch; i++)
        target[i] = (int)(i % 2);
    Profile p = {.g = &g};
    g.after_node = profile_after_node;
    g.after_node_ctx = &p;
    for (long s = -1; s < steps; s++) { /* step -1: warm-up (first touches, primitive caches) */
        float loss;
        double t0 = progress_now();
        g.step = (uint64_t)(s + 1);
        nn_graph_set_input(&g, images);
        if (nn_graph_forward(&g, 1, &e) || nn_graph_loss(&g, target, NULL, 0.0f, &loss, &e))
            break;
        nn_graph_zero_grads(&g);
        be->mem->sync();
        double t1 = progress_now();
        p.t0 = t1;
        p.at = at + (size_t)(s < 0 ? 0 : s) * (size_t)g.n_nodes;
        if (nn_graph_backward(&g, &e))
            break;
        be->mem->sync();
        double t2 = progress_now();
        if (nn_graph_step(&g, &opt, s + 2, &e))
            break;
        be->mem->sync();
        if (s >= 0)
            t[3 * s] = t1 - t0, t[3 * s + 1] = t2 - t1, t[3 * s + 2] = progress_now() - t2;
    }
    if (e.code) {
        fprintf(stderr, "onfh model profile: %s\n", e.msg);
        rc = rt_exit_code(e.code);
        goto out;
    }
    double med[3];
    for (int k = 0; k < 3; k++) {
        for (long s = 0; s < steps; s++)
            col[s] = t[3 * s + k];
        qsort(col, (size_t)steps, sizeof *col, cmp_double);
        med[k] = col[steps / 2];
    }
    size_t total = nn_store_param_count(&g.store) * sizeof(float);
    printf("# onfh model profile %s --batch %ld --size %ld --backend %s --steps %ld: medians of "
           "%ld steps after one warm-up, random images, 2 classes, AdamW\n",
           id, batch, size, be->name, steps, steps);
    printf("forward_s %.6f\nbackward_s %.6f\noptimizer_s %.6f\ngradient_bytes %zu\n", med[0],
           med[1], med[2], total);
    printf("# node, seconds since backward began when its backward was done, gradient bytes final "
           "(nodes with parameters, in backward order)\n");
    size_t final = 0;
    for (int i = g.n_nodes - 1; i >= 0; i--) {
        size_t bytes = node_param_bytes(&g, &g.nodes[i]);
        if (bytes == 0 && i > 0)
            continue;
        final += bytes;
        for (long s = 0; s < steps; s++)
            col[s] = at[(size_t)s * (size_t)g.n_nodes + (size_t)i];
        qsort(col, (size_t)steps, sizeof *col, cmp_double);
        /* parameters no node reports are final when backward ends: with the first node's */
        printf("node %d %.6f %zu\n", i, col[steps / 2], i == 0 ? total : final);
    }
out:
    if (g.n_nodes)
        nn_graph_free(&g);
    mem_free(images), mem_free(target), mem_free(t), mem_free(at), mem_free(col);
    return rc;
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
    if (argc >= 2 && !strcmp(argv[1], "profile"))
        return profile(argc - 2, argv + 2);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage, stdout);
        return EXIT_OK;
    }
    fputs(usage, stderr);
    return EXIT_USAGE;
}
