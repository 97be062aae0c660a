/* model_cmd.c: `onfh model list | init` (see model_cmd.h). */
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
    "usage: onfh model list\n"
    "       onfh model init ID --out FILE [--classes K] [--size N] [--channels C] [--seed S]\n"
    "  list   the architectures, with their parameter counts for 2 and 1000 classes\n"
    "  init   a checkpoint of architecture ID initialised as torchvision does (seeded), for\n"
    "         `onfh predict` or as a training start; defaults: 2 classes, 224, 3 channels,\n"
    "         seed 0\n";

static int list(void)
{
    printf("%-22s %14s %14s\n", "architecture", "params (2)", "params (1000)");
    for (const NnModelInfo *m = nn_models; m->id; m++) {
        size_t n[2];
        int classes[2] = {2, 1000};
        for (int k = 0; k < 2; k++) {
            NnGraph g;
            Err e = {0};
            if (nn_model_graph(&g, nn_backend_ref(), m->id, 1, 3, 224, 224, classes[k], 0, 0, &e)) {
                fprintf(stderr, "onfh model list: %s\n", e.msg);
                return EXIT_FAILURE_RUN;
            }
            n[k] = nn_store_param_count(&g.store);
            nn_graph_free(&g);
        }
        printf("%-22s %14zu %14zu\n", m->id, n[0], n[1]);
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
