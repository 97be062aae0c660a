/* metrics.h: classification metrics of binary predictions (probabilities of class 1), with
 * per-slice weights so that one pass serves the point estimate (weights 1) and every bootstrap
 * resample (weights = how often the slice's patient was drawn).
 *
 * Definitions follow scikit-learn, the oracle of the tests: accuracy, sensitivity (recall),
 * specificity, precision and F1 of the predicted classes (precision 0 when nothing is predicted
 * positive, F1 0 when precision + recall is 0, as sklearn's zero_division default gives);
 * ROC AUC with ties counting 1/2; PR AUC as average precision (sum over thresholds of the
 * recall gained times the precision there: average_precision_score); Brier score; calibration
 * slope and intercept (calibration.h). */
#ifndef ONFH_STATS_METRICS_H
#define ONFH_STATS_METRICS_H

enum {
    METRIC_ACCURACY,
    METRIC_SENSITIVITY,
    METRIC_SPECIFICITY,
    METRIC_PRECISION,
    METRIC_F1,
    METRIC_ROC_AUC,
    METRIC_PR_AUC,
    METRIC_BRIER,
    METRIC_CAL_SLOPE,
    METRIC_CAL_INTERCEPT,
    METRIC_COUNT
};

/* "accuracy", "sensitivity", ..., "calibration_intercept": the keys of metrics.json. */
extern const char *const metric_names[METRIC_COUNT];
/* Index of a name in metric_names, or -1. */
int metric_find(const char *name);

/* One model's predictions of n slices, prepared once for many weighted evaluations. */
typedef struct Scores {
    int n;
    const double *prob;  /* (n) probability of class 1 */
    const int *label;    /* (n) 0/1 */
    const int *pred;     /* (n) predicted class 0/1 (the probability against a threshold) */
    int *order;          /* (n) slice indices by ascending probability */
    double *logit;       /* (n) calibration_logit(prob) */
    double *odds;        /* (n) exp(logit) */
    double cal_start[3]; /* the unweighted calibration fit: where the resample fits start */
} Scores;

/* Sorts and fits the unweighted calibration; keeps pointers to prob, label, pred. */
int scores_prepare(Scores *s, int n, const double *prob, const int *label, const int *pred);
void scores_free(Scores *s);

/* Every metric of s with slice weights w (NULL: 1 each); NaN where undefined (one class absent,
 * a calibration fit that does not converge). */
void metrics_weighted(const Scores *s, const double *w, double out[METRIC_COUNT]);

/* Accuracy, sensitivity, specificity, precision, F1 and Brier score (into out) from weighted
 * counts of true / false positives / negatives and the weighted sum of squared errors. */
void metrics_from_counts(double tp, double fp, double tn, double fn, double brier,
                         double out[METRIC_COUNT]);

/* The ROC AUC part of metrics_weighted alone (the same number, bit for bit). */
double metrics_auc_weighted(const Scores *s, const double *w);

/* order = the indices 0..n-1 by ascending key, ties by index (the same on every platform). */
void metrics_order(const double *key, int *order, int n);

/* ROC AUC by midranks; NaN when either class is absent. */
double metrics_auc(const double *score, const int *label, int n);

/* The Youden threshold: of the cut-offs t at the distinct probabilities (p >= t is class 1),
 * the one with the largest sensitivity + specificity - 1; ties go to the highest t. INFINITY
 * (nothing positive) when no cut-off beats it. */
double metrics_youden_threshold(const double *prob, const int *label, int n);

/* ROC curve at every distinct probability, from (0, 0) at threshold +inf down to (1, 1): fpr,
 * tpr, threshold each of room n + 1; returns the number of points. */
int metrics_roc(const double *prob, const int *label, int n, double *fpr, double *tpr,
                double *threshold);

#endif
