/* mcnemar.h: McNemar's exact test for paired accuracy, and Holm's step-down adjustment of a
 * family of p-values. */
#ifndef ONFH_STATS_MCNEMAR_H
#define ONFH_STATS_MCNEMAR_H

/* Two-sided exact p-value (statsmodels' mcnemar(exact=True), scipy's binomtest at 1/2) from the
 * discordant counts: b cases only the first model classifies right, c only the second. */
double mcnemar_exact(long b, long c);

/* Holm (1979): adj[i] for p[i] in a family of m tests; NaN p-values are left out of the family
 * and stay NaN. Equal p-values are ranked by index, which does not change the result. */
int holm_adjust(int m, const double *p, double *adj);

#endif
