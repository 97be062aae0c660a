/* bench_progression.c: LSTM training time per epoch of the progression stage's model
 * (stages/progression/fit.h: prog_lstm_train, the loop the stage runs) on N synthetic patients
 * of 3 to 5 visits of the stage's 13 inputs, batches of 64, AdamW. Prints one line:
 *   patients visits inputs hidden batch backend threads seconds_per_epoch
 * bench/peer_torch_lstm.py times torch.nn.LSTM on the same shapes (bench/progression.sh).
 * Usage: bench_progression [PATIENTS [EPOCHS [HIDDEN [BACKEND]]]] (10000 2 16 dnnl). */
#include <stdio.h>
#include <stdlib.h>

#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "stages/progression/fit.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000, epochs = argc > 2 ? atoi(argv[2]) : 2;
    int hidden = argc > 3 ? atoi(argv[3]) : 16;
    const char *backend = argc > 4 ? argv[4] : "dnnl";
    enum { T = 5, IN = 13, BATCH = 64 };
    Err e = {0};
    const NnBackend *be = nn_backend_by_name(backend, &e);
    if (!be || n < 1 || epochs < 1 || hidden < 1) {
        fprintf(stderr, "bench_progression: %s\n", be ? "bad arguments" : e.msg);
        return 2;
    }
    float *x = mem_alloc((size_t)n * T * IN * sizeof(float));
    int *len = mem_alloc((size_t)n * sizeof(int)), *y = mem_alloc((size_t)n * sizeof(int));
    if (!x || !len || !y)
        return 1;
    Philox p;
    philox_init(&p, 1, PHILOX_TEST, 0);
    for (int i = 0; i < n; i++) {
        len[i] = 3 + (int)philox_below(&p, 3);
        double s = 0.0;
        for (int t = 0; t < T * IN; t++) {
            x[(size_t)i * T * IN + t] = 2.0f * philox_uniformf(&p) - 1.0f;
            s += t % IN == 0 && t / IN < len[i] ? x[(size_t)i * T * IN + t] : 0.0;
        }
        y[i] = s > 0.0;
    }
    ProgFit fit = {.hidden = hidden,
                   .layers = 1,
                   .epochs = epochs,
                   .batch = BATCH,
                   .lr = 0.01,
                   .weight_decay = 0.01,
                   .seed = 1,
                   .be = be};
    NnLstm m;
    double epoch_s = 0.0;
    if (prog_lstm_train(&m, &fit, 1, n, T, IN, x, len, y, &epoch_s, &e)) {
        fprintf(stderr, "bench_progression: %s\n", e.msg);
        return 1;
    }
    nn_lstm_free(&m);
    const char *threads = getenv("OMP_NUM_THREADS");
    printf("%d %d %d %d %d %s %s %.6f\n", n, T, IN, hidden, BATCH, be->name,
           threads ? threads : "default", epoch_s);
    mem_free(x), mem_free(len), mem_free(y);
    return 0;
}
