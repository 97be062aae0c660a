/* logistic.h: weighted logistic regression by Newton's method, for calibration slopes and
 * intercepts (one predictor, or none with an offset) and the intensity-feature baseline (a few
 * predictors with an L2 penalty). Small dimensions only: the Hessian is solved directly. */
#ifndef ONFH_STATS_LOGISTIC_H
#define ONFH_STATS_LOGISTIC_H

#define LOGISTIC_MAX_DIM 16

/* Fits P(y_i = 1) = sigmoid(offset_i + beta_0 + sum_j beta_j x_ij) by maximising
 *   sum_i w_i log-likelihood_i - l2/2 sum_{j>=1} beta_j^2
 * (the intercept is not penalised; l2 = 1/C of scikit-learn's LogisticRegression).
 * x: (n, d) row-major (NULL when d = 0); y: 0/1; w: weights (NULL: all 1); offset: (n) or NULL.
 * beta: (d + 1), the starting point on entry (zeros will do), the estimate on return.
 * Returns 0, or -1 when the fit does not converge (separated classes without a penalty: the
 * estimate runs off to infinity), with beta set to NaN. d <= LOGISTIC_MAX_DIM - 1. */
int logistic_fit(int n, int d, const double *x, const int *y, const double *w, const double *offset,
                 double l2, double *beta);

#endif
