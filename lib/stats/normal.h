/* normal.h: the standard normal distribution function and its inverse, for the z statistics of
 * DeLong's test and the bias correction of BCa intervals. */
#ifndef ONFH_STATS_NORMAL_H
#define ONFH_STATS_NORMAL_H

/* P(Z <= x). */
double normal_cdf(double x);
/* x with P(Z <= x) = p; -inf at 0, +inf at 1, NaN outside [0, 1]. Relative error about 1e-15. */
double normal_quantile(double p);

#endif
