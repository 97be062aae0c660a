/* bench_evaluate.c: the statistics of `onfh evaluate` at the paper's size, under mpirun: 10
 * models x 900 slices of 30 patients (5 folds), 9999 patient resamples, every one of the 10
 * metrics with BCa and percentile CIs, DeLong and McNemar for every pair with Holm
 * (analysis_run, what the stage runs). Synthetic predictions (Philox), the same whatever the
 * rank count.
 *
 * --auc-only: only what the usual Python script does (bench/peer_evaluate.py auc), for a
 * like-for-like row beside it: each model's ROC AUC on the same resamples with its BCa interval
 * (the jackknife of the AUC alone) and DeLong's test for the 45 pairs, with the lib/stats
 * pieces analysis_run uses (metrics_patients_auc is metrics_patients' ROC AUC). --write FILE: the
 * predictions, one slice a line ("patient label prob_0 .. prob_9"), for the peer to read, so both
 * sides see the same numbers.
 *
 * Prints one line on rank 0: "models slices patients resamples ranks seconds auc0", auc0 being
 * model 0's pooled ROC AUC (the peer prints its own: a check that the data are the same).
 * Usage: bench_evaluate [--auc-only] [--write FILE] [RESAMPLES]. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/stats/bootstrap.h"
#include "lib/stats/delong.h"
#include "lib/stats/patient_metrics.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"
#include "pipeline/runtime.h"
#include "stages/evaluate/analysis.h"

enum { MODELS = 10, SLICES = 900, PATIENTS = 30, FOLDS = 5 };

static int32_t row[SLICES];
static int label[SLICES], fold[SLICES], patient[SLICES], pred[MODELS][SLICES];
static double prob[MODELS][SLICES], threshold[MODELS][FOLDS];

static void make_data(void)
{
    Philox r;
    philox_init(&r, 1, PHILOX_TEST, 0);
    for (int i = 0; i < SLICES; i++) {
        row[i] = i;
        patient[i] = i * PATIENTS / SLICES;
        fold[i] = patient[i] % FOLDS;
        label[i] = philox_uniform(&r) < 0.75; /* the paper's 3:1 */
    }
    for (int m = 0; m < MODELS; m++)
        for (int i = 0; i < SLICES; i++) {
            double z = (1 + 0.1 * m) * (2 * label[i] - 1) + philox_normal(&r);
            prob[m][i] = 1 / (1 + exp(-z));
            pred[m][i] = prob[m][i] >= 0.5;
        }
}

static int write_data(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return perror(path), -1;
    for (int i = 0; i < SLICES; i++) {
        fprintf(f, "%d %d", patient[i], label[i]);
        for (int m = 0; m < MODELS; m++)
            fprintf(f, " %.17g", prob[m][i]);
        fputc('\n', f);
    }
    return fclose(f) ? (perror(path), -1) : 0;
}

/* Everything analysis_run does, through analysis_run. */
static int run_all(int resamples, double *auc0, Err *e)
{
    static Model models[MODELS];
    for (int m = 0; m < MODELS; m++) {
        models[m] =
            (Model){.kind = MODEL_CNN, .prob = prob[m], .pred = pred[m], .threshold = threshold[m]};
        snprintf(models[m].name, sizeof models[m].name, "model%d", m);
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
    int rc = analysis_run(&st, resamples, 42, 0.95, &a, e);
    *auc0 = rc == 0 ? a.res[0].pooled[METRIC_ROC_AUC] : NAN;
    analysis_free(&a);
    return rc;
}

/* The ROC AUC alone: resamples shared out over ranks as analysis_run shares them, gathered on
 * rank 0, which forms the BCa intervals and runs DeLong. */
static int run_auc_only(int resamples, double *auc0, Err *e)
{
    static Scores sc[MODELS];
    static PatientScores ps[MODELS];
    static int has_pos[PATIENTS], has_neg[PATIENTS], count[PATIENTS];
    static double w[PATIENTS], jack[MODELS][PATIENTS], theta[MODELS];
    for (int m = 0; m < MODELS; m++)
        if (scores_prepare(&sc[m], SLICES, prob[m], label, pred[m]) ||
            patient_scores_prepare(&ps[m], &sc[m], patient, PATIENTS))
            return err_set(e, ERR_NOMEM, "bench_evaluate: out of memory");
    for (int i = 0; i < SLICES; i++)
        *(label[i] ? &has_pos[patient[i]] : &has_neg[patient[i]]) = 1;
    BootDesign design;
    if (bootstrap_design(&design, PATIENTS, has_pos, has_neg, 42))
        return err_set(e, ERR_NOMEM, "bench_evaluate: out of memory");
    uint64_t b0, b1;
    rt_share((uint64_t)resamples, &b0, &b1);
    double *mine = mem_alloc(((b1 - b0) * MODELS + 1) * sizeof *mine);
    if (!mine)
        return err_set(e, ERR_NOMEM, "bench_evaluate: out of memory");
    for (uint64_t b = b0; b < b1; b++) {
        bootstrap_counts(&design, b, count);
        for (int p = 0; p < PATIENTS; p++)
            w[p] = count[p];
        for (int m = 0; m < MODELS; m++)
            mine[(b - b0) * MODELS + m] = metrics_patients_auc(&ps[m], w);
    }
    char *all = NULL;
    size_t len = 0;
    int rc = rt_gather_text((const char *)mine, (b1 - b0) * MODELS * sizeof *mine, &all, &len, e);
    mem_free(mine);
    if (rc == 0 && rt_rank() == 0) {
        double *dist = mem_alloc(len + sizeof(double)), *col = mem_alloc(resamples * sizeof *col);
        if (!dist || !col)
            rc = err_set(e, ERR_NOMEM, "bench_evaluate: out of memory");
        else
            memcpy(dist, all, len); /* aligned for doubles */
        for (int q = 0; rc == 0 && q < PATIENTS; q++) {
            for (int p = 0; p < PATIENTS; p++)
                w[p] = p != q;
            for (int m = 0; m < MODELS; m++)
                jack[m][q] = metrics_patients_auc(&ps[m], w);
        }
        for (int m = 0; rc == 0 && m < MODELS; m++) {
            theta[m] = metrics_auc_weighted(&sc[m], NULL);
            for (int b = 0; b < resamples; b++)
                col[b] = dist[(size_t)b * MODELS + m];
            double lo, hi;
            bootstrap_bca(col, resamples, theta[m], jack[m], PATIENTS, 0.95, &lo, &hi, NULL, NULL);
        }
        const double *scores[MODELS];
        double auc[MODELS], cov[MODELS * MODELS], z, p;
        for (int m = 0; m < MODELS; m++)
            scores[m] = prob[m];
        if (rc == 0 && delong(MODELS, SLICES, scores, label, patient, PATIENTS, auc, cov))
            rc = err_set(e, ERR_NOMEM, "bench_evaluate: out of memory");
        for (int x = 0; rc == 0 && x < MODELS; x++)
            for (int y = x + 1; y < MODELS; y++)
                delong_test(MODELS, auc, cov, x, y, &z, &p);
        *auc0 = theta[0];
        mem_free(dist), mem_free(col);
    }
    mem_free(all);
    for (int m = 0; m < MODELS; m++)
        scores_free(&sc[m]), patient_scores_free(&ps[m]);
    bootstrap_design_free(&design);
    return rc;
}

int main(int argc, char **argv)
{
    Err e = {0};
    if (rt_init(&argc, &argv, &e))
        return fprintf(stderr, "%s\n", e.msg), 1;
    int auc_only = 0, resamples = 9999;
    const char *write = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--auc-only"))
            auc_only = 1;
        else if (!strcmp(argv[i], "--write") && i + 1 < argc)
            write = argv[++i];
        else if ((resamples = atoi(argv[i])) <= 0) {
            fprintf(stderr, "usage: bench_evaluate [--auc-only] [--write FILE] [RESAMPLES]\n");
            rt_finalize();
            return 2;
        }
    }
    make_data();
    if (write && rt_rank() == 0 && write_data(write))
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime(), auc0 = NAN;
    int rc = auc_only ? run_auc_only(resamples, &auc0, &e) : run_all(resamples, &auc0, &e);
    MPI_Barrier(MPI_COMM_WORLD);
    double secs = MPI_Wtime() - t0;
    if (rc)
        fprintf(stderr, "bench_evaluate: %s\n", e.msg);
    else if (rt_rank() == 0)
        printf("%d %d %d %d %d %.3f %.6f\n", MODELS, SLICES, PATIENTS, resamples, rt_size(), secs,
               auc0);
    rt_finalize();
    return rc ? 1 : 0;
}
