/* bench_train.c: training and inference throughput of one model on one backend, the figures
 * `make bench` prints beside PyTorch's (bench/peer_torch_train.py, same protocol).
 *
 *   bench_train MODE MODEL BACKEND [BATCH] [SIZE] [STEPS]
 *     MODE train: forward + backward + AdamW on random data (2 classes), batch 32 at 224;
 *          infer: eval-mode forward of an inference-planned graph.
 * Threads: OMP_NUM_THREADS (oneDNN's runtime). 2 warm-up steps, then STEPS (default 7) timed;
 * prints the median images/s with min and max, the graph's planned activation memory and the
 * process's peak resident set (and on a GPU the device's peak memory; each timed step ends with
 * the device idle). Random inputs come from Philox, so every run sees the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "lib/nn/cuda/nn_cuda.h"
#include "lib/nn/graph.h"
#include "lib/nn/models/models.h"
#include "lib/nn/optimizer.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "lib/util/progress.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_train train|infer MODEL BACKEND [BATCH] [SIZE] [STEPS]\n");
        return 2;
    }
    int training = !strcmp(argv[1], "train");
    const char *model = argv[2];
    int batch = argc > 4 ? atoi(argv[4]) : 32;
    int size = argc > 5 ? atoi(argv[5]) : 224;
    int steps = argc > 6 ? atoi(argv[6]) : 7;
    if (steps < 1 || steps > 1000)
        steps = 7;
    Err e = {0};
    const NnBackend *be = nn_backend_by_name(argv[3], &e);
    if (!be) {
        fprintf(stderr, "bench_train: %s\n", e.msg);
        return 2;
    }
    NnOptim opt = {.kind = NN_ADAMW, .adamw = {1e-4, 0.9, 0.999, 1e-8, 0.01}};
    NnGraph g;
    if (nn_model_graph(&g, be, model, batch, 3, size, size, 2, training,
                       training ? nn_optim_moments(&opt) : 0, &e)) {
        fprintf(stderr, "bench_train: %s\n", e.msg);
        return 1;
    }
    nn_graph_init_params(&g, 1);
    size_t n_img = (size_t)batch * 3 * size * size;
    float *images = mem_alloc(n_img * sizeof(float));
    int *target = mem_alloc((size_t)batch * sizeof(int));
    Philox p;
    philox_init(&p, 7, PHILOX_TEST, 0);
    for (size_t i = 0; i < n_img; i++)
        images[i] = (float)philox_normal(&p);
    for (int i = 0; i < batch; i++)
        target[i] = i % 2;
    double *t = mem_alloc((size_t)steps * sizeof(double));
    /* On a device the batch is uploaded once and only its layout conversion (NCHW staging ->
     * the input value, device to device) is repeated: PyTorch's GPU peer keeps its random batch
     * on the GPU too, so both time the training step alone. */
    nn_graph_set_input(&g, images);
    const NnValue *in = &g.values[g.input];
    for (int s = -2; s < steps; s++) {
        if (s == 0 && be->mem->device)
            nn_cuda_profile_reset(); /* the profile covers the timed steps only */
        double t0 = progress_now();
        if (be->mem->device)
            be->to_layout(in->n, in->c, in->h * in->w, g.staging, nn_graph_value_data(&g, g.input));
        else
            nn_graph_set_input(&g, images);
        if (nn_graph_forward(&g, training, &e))
            goto fail;
        if (training) {
            float loss;
            g.step = (uint64_t)(s + 2);
            if (nn_graph_loss(&g, target, NULL, 0.0f, &loss, &e))
                goto fail;
            nn_graph_discard_grads(&g);
            if (nn_graph_backward(&g, &e) || nn_graph_step(&g, &opt, s + 3, &e))
                goto fail;
        }
        be->mem->sync(); /* a device backend queues work: the step ends when the device is done */
        if (s >= 0)
            t[s] = progress_now() - t0;
    }
    qsort(t, (size_t)steps, sizeof *t, cmp_double);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char where[300] = "";
    if (be->mem->device)
        snprintf(where, sizeof where, " on %s; peak GPU memory %.0f MiB (whole device)",
                 nn_cuda_device_name(), (double)nn_cuda_peak_bytes() / 1048576.0);
    printf("onfh %s %s %s batch %d at %d: %.1f images/s (median of %d; min %.1f, max %.1f); "
           "activations planned %.0f MiB; peak RSS %.0f MiB%s\n",
           training ? "train" : "infer", model, be->name, batch, size, batch / t[steps / 2], steps,
           batch / t[steps - 1], batch / t[0], (double)nn_graph_activation_bytes(&g) / 1048576.0,
           (double)ru.ru_maxrss / 1024.0, where);
    nn_graph_free(&g);
    mem_free(images), mem_free(target), mem_free(t);
    return 0;
fail:
    fprintf(stderr, "bench_train: %s\n", e.msg);
    return 1;
}
