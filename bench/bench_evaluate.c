/* bench_evaluate.c: the statistics of `onfh evaluate` at the paper's size, under mpirun: 10
 * models x 900 slices of 30 patients (5 folds), 9999 patient resamples, every one of the 10
 * metrics with BCa and percentile CIs, DeLong and McNemar for every pair with Holm. Synthetic
 * predictions (Philox), the same whatever the rank count. Prints one line on rank 0:
 * "models slices patients resamples ranks seconds". Usage: bench_evaluate [RESAMPLES]. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "pipeline/runtime.h"
#include "stages/evaluate/analysis.h"

enum { MODELS = 10, SLICES = 900, PATIENTS = 30, FOLDS = 5 };

int main(int argc, char **argv)
{
    Err e = {0};
    if (rt_init(&argc, &argv, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    int resamples = argc > 1 ? atoi(argv[1]) : 9999;
    static int32_t row[SLICES];
    static int label[SLICES], fold[SLICES], patient[SLICES], pred[MODELS][SLICES];
    static double prob[MODELS][SLICES], threshold[MODELS][FOLDS];
    static Model models[MODELS];
    Philox r;
    philox_init(&r, 1, PHILOX_TEST, 0);
    for (int i = 0; i < SLICES; i++) {
        row[i] = i;
        patient[i] = i * PATIENTS / SLICES;
        fold[i] = patient[i] % FOLDS;
        label[i] = philox_uniform(&r) < 0.75; /* the paper's 3:1 */
    }
    for (int m = 0; m < MODELS; m++) {
        models[m] =
            (Model){.kind = MODEL_CNN, .prob = prob[m], .pred = pred[m], .threshold = threshold[m]};
        snprintf(models[m].name, sizeof models[m].name, "model%d", m);
        for (int i = 0; i < SLICES; i++) {
            double z = (1 + 0.1 * m) * (2 * label[i] - 1) + philox_normal(&r);
            prob[m][i] = 1 / (1 + exp(-z));
            pred[m][i] = prob[m][i] >= 0.5;
        }
    }
    Study st = {.n = SLICES,
                .row = row,
                .label = label,
                .fold = fold,
                .patient = patient,
                .n_patients = PATIENTS,
                .n_models = MODELS,
                .models = models};
    st.splits.folds = FOLDS;
    Analysis a;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    int rc = analysis_run(&st, resamples, 42, 0.95, &a, &e);
    MPI_Barrier(MPI_COMM_WORLD);
    double secs = MPI_Wtime() - t0;
    if (rc)
        fprintf(stderr, "bench_evaluate: %s\n", e.msg);
    else if (rt_rank() == 0)
        printf("%d %d %d %d %d %.3f %.6f\n", MODELS, SLICES, PATIENTS, resamples, rt_size(), secs,
               a.res[0].bca[METRIC_ROC_AUC][0]);
    analysis_free(&a);
    rt_finalize();
    return rc ? 1 : 0;
}
