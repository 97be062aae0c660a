/* calibration.h: how far predicted probabilities are from observed frequencies (Van Calster et
 * al., BMC Med 2019;17:230): the calibration slope and intercept of logistic recalibration, and
 * the binned calibration curve (scikit-learn's calibration_curve, strategy 'uniform'). */
#ifndef ONFH_STATS_CALIBRATION_H
#define ONFH_STATS_CALIBRATION_H

/* Probabilities are clipped to [CALIBRATION_EPS, 1 - CALIBRATION_EPS] before their logit is
 * taken: predictions files carry 9 significant digits, so a confident model writes exactly 1. */
#define CALIBRATION_EPS 1e-9

double calibration_logit(double p);

/* fit[0], fit[1]: a and b (the calibration slope) of logit P(y = 1) = a + b logit(p);
 * fit[2]: the calibration intercept, a of logit P(y = 1) = a + logit(p) (calibration-in-the-
 * large: the slope held at 1). logit: (n) from calibration_logit; odds: (n) exp(logit), or NULL
 * (computed as needed: passing them saves an exp per slice and pass); w: weights or NULL. start:
 * (3) where the fits start (an earlier fit[]; NULL: zeros). NaN where a fit does not converge
 * (separated classes: the slope runs off to infinity). */
void calibration_fit(int n, const double *logit, const double *odds, const int *label,
                     const double *w, const double *start, double fit[3]);

/* The same fits where the slices come in groups of one weight each (a patient's slices in a
 * patient-level resample): group g holds slices begin[g] .. begin[g + 1] - 1 of logit, odds
 * (needed here) and label, and has weight[g] >= 0 (0: left out). Each pass sums a group
 * unweighted and then weights it. at_start: (groups, 7) from calibration_group_sums at start,
 * which gives each fit its first step without a pass over the slices (start must then be
 * given); or NULL. */
void calibration_fit_groups(int groups, const int *begin, const double *logit, const double *odds,
                            const int *label, const double *weight, const double *start,
                            const double *at_start, double fit[3]);
/* Per group, the gradient and Hessian sums of both fits at start (3 values): at_start (groups,
 * 7). */
void calibration_group_sums(int groups, const int *begin, const double *logit, const double *odds,
                            const int *label, const double *start, double *at_start);

/* n_bins equal-width bins over [0, 1] (bin k holds k/n_bins < p <= (k+1)/n_bins, the first
 * also p = 0); per bin: mean predicted probability, fraction of positives and count. Empty bins
 * have count 0 and NaN means (calibration_curve drops them). */
void calibration_bins(int n, const double *prob, const int *label, int n_bins, double *mean_pred,
                      double *frac_pos, int *count);

#endif
