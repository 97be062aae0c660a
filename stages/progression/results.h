/* results.h: the progression models' out-of-fold probabilities into statistics, and the
 * stage's two files (data-schema/progression.md): progression.h5 (features, visits,
 * predictions) and progression.json (AUCs with patient-bootstrap CIs, DeLong tests, agreement
 * k/N, calibration). Every statistic is over the included patients (one value each). */
#ifndef ONFH_PROGRESSION_RESULTS_H
#define ONFH_PROGRESSION_RESULTS_H

#include <stdint.h>

#include "lib/util/err.h"
#include "stages/progression/features.h"
#include "stages/progression/fit.h"

#define PROG_MAX_MODELS 3
#define PROG_MAX_BINS   100

typedef struct ProgModel {
    const char *name;        /* lstm, logistic_last_visit, lstm_resnet50 */
    const char *description; /* one line */
    const char *arch;        /* the CNN whose slice probabilities fed it */
    double *p;               /* (n) out-of-fold probability of progression, NaN: not included */
    /* statistics */
    double auc, auc_bca[2], auc_percentile[2];
    double brier, accuracy, cal_slope, cal_intercept;
    int agree_k, agree_n; /* predicted class (p >= 0.5) equal to the outcome */
    double cal_mean[PROG_MAX_BINS], cal_frac[PROG_MAX_BINS];
    int cal_count[PROG_MAX_BINS];
    double *roc_fpr, *roc_tpr; /* (roc_points) pooled ROC curve; free with prog_results_free */
    int roc_points;
} ProgModel;

typedef struct ProgResults {
    int n_models;
    ProgModel models[PROG_MAX_MODELS];
    double delong_z[PROG_MAX_MODELS][PROG_MAX_MODELS], delong_p[PROG_MAX_MODELS][PROG_MAX_MODELS];
    int resamples, bins;
    double level;
    uint64_t seed;
    int n, n_progressed; /* included patients */
} ProgResults;

/* Fills every statistic of r's models from their p over c's included patients. */
int prog_statistics(ProgResults *r, const ProgCohort *c, Err *e);
/* Frees the models' p and ROC curves. */
void prog_results_free(ProgResults *r);

typedef struct ProgRun {
    const char *run_name, *config_sha256, *onfh, *commit;
    int cutoff_days;
    double slice_threshold;
    int folds;
    const int *fold; /* (n) progression CV fold, -1 not included */
    const ProgFit *fit;
    const char *backend;
    const char *resnet50_unavailable; /* why there is no ResNet50 variant, or NULL */
} ProgRun;

int prog_write_h5(const char *path, const ProgCohort *c, const ProgFeatures *const *feat,
                  int n_feat, const ProgResults *r, const ProgRun *pr, Err *e);
/* feat: the selected CNN's features, for the example trajectories. */
int prog_write_json(const char *path, const ProgCohort *c, const ProgFeatures *feat,
                    const ProgResults *r, const ProgRun *pr, Err *e);
/* progression.json of a run with nothing to forecast from: available false and why. */
int prog_write_unavailable(const char *path, const ProgRun *pr, const char *why, Err *e);

#endif
