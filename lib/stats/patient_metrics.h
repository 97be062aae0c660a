/* patient_metrics.h: every metric of metrics.h on a patient-level resample, where each patient's
 * slices all carry one weight (how often the bootstrap drew the patient; 0 or 1 in the
 * jackknife), from per-patient sums prepared once per model.
 *
 * The bootstrap evaluates every model on thousands of resamples of the same slices; what changes
 * is only the patients' weights. So the counts behind accuracy, sensitivity, specificity,
 * precision and F1 and the Brier sum are per-patient sums weighted per resample (O(patients)),
 * the ROC AUC is the bilinear form sum_pq c_p c_q A_pq with A_pq = the positive slices of
 * patient p scored above the negative slices of patient q, ties 1/2 (O(patients^2), and exact:
 * the same number as metrics_weighted's walk), the PR AUC is one walk over the slices in
 * descending probability with the weights looked up per patient, and both calibration fits pass
 * over patients' contiguous slices, skipping the patients not drawn, with their first Newton step
 * from per-patient sums (calibration_fit_groups). The numbers are metrics_weighted's with
 * w[i] = count[patient[i]]: ROC AUC and PR AUC and the counts bit for bit, the Brier score to
 * rounding, the calibration fits to their convergence (tests/unit/test_stats.c). */
#ifndef ONFH_STATS_PATIENT_METRICS_H
#define ONFH_STATS_PATIENT_METRICS_H

#include "lib/stats/metrics.h"

typedef struct PatientScores {
    int n, n_patients;
    int *begin;                          /* (P + 1) patient p's slices: begin[p] .. begin[p+1]-1 */
    int *label;                          /* (n) labels, slices by patient */
    double *logit, *odds;                /* (n) calibration logit and odds, slices by patient */
    double *pos, *neg, *tp, *fp, *brier; /* (P) per patient: slices of each class, true and false
                                            positives, sum of squared errors */
    double *auc_pairs;                   /* (P, P) A_pq above */
    int *desc_patient;                   /* (n) slices by descending probability: their patient */
    unsigned char *desc_label, *desc_last; /* (n) ... label; 1 where a tie group ends */
    double cal_start[3];                   /* where the calibration fits start (Scores.cal_start) */
    double *cal_at_start;                  /* (P, 7) calibration_group_sums at cal_start */
} PatientScores;

/* From a prepared Scores (kept for nothing after) and each slice's patient in [0, n_patients).
 * Returns -1 when out of memory. */
int patient_scores_prepare(PatientScores *ps, const Scores *s, const int *patient, int n_patients);
void patient_scores_free(PatientScores *ps);

/* Every metric with patient p's slices weighted count[p] >= 0; NaN where undefined. */
void metrics_patients(const PatientScores *ps, const double *count, double out[METRIC_COUNT]);

/* The ROC AUC alone (metrics_patients' number). */
double metrics_patients_auc(const PatientScores *ps, const double *count);

#endif
