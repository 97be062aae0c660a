/* analysis.h: the numbers of one study (study.h): per model, every metric per fold and pooled
 * with patient-bootstrap CIs; DeLong's and McNemar's tests between models, Holm-adjusted. */
#ifndef ONFH_EVALUATE_ANALYSIS_H
#define ONFH_EVALUATE_ANALYSIS_H

#include <stdint.h>

#include "lib/stats/metrics.h"
#include "stages/evaluate/study.h"

typedef struct ModelResult {
    double pooled[METRIC_COUNT];
    double bca[METRIC_COUNT][2], percentile[METRIC_COUNT][2];
    int undefined[METRIC_COUNT]; /* resamples where the metric is undefined (left out) */
    double *fold;                /* (folds, METRIC_COUNT) */
    int *fold_n;                 /* (folds) slices */
} ModelResult;

enum { FAMILY_ARCHS, FAMILY_BASELINES }; /* CNN vs CNN; CNN vs baseline: Holm within each */

typedef struct Pair {
    int a, b, family;
    double z, p_delong, p_delong_holm;
    long only_a, only_b; /* slices only model a / only model b classifies right */
    double p_mcnemar, p_mcnemar_holm;
} Pair;

typedef struct Analysis {
    int n_models, folds, resamples, n_patients;
    uint64_t seed;
    double level;
    ModelResult *res;  /* (n_models) */
    double *dist;      /* rank 0: (resamples, n_models, METRIC_COUNT) bootstrap distributions */
    double *jack;      /* rank 0: (n_patients, n_models, METRIC_COUNT) leave-one-patient-out */
    double *auc, *cov; /* DeLong: (n_models), (n_models, n_models) */
    int n_pairs;
    Pair *pairs;
} Analysis;

/* Collective: the bootstrap's resamples are shared out over ranks in contiguous blocks and
 * gathered on rank 0, which alone holds dist, jack, the intervals and the tests afterwards
 * (other ranks get the point estimates). */
int analysis_run(const Study *st, int resamples, uint64_t seed, double level, Analysis *a, Err *e);
void analysis_free(Analysis *a);

#endif
