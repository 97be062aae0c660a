/* metrics.h: classification metrics of binary predictions (scores for class 1). */
#ifndef ONFH_STATS_METRICS_H
#define ONFH_STATS_METRICS_H

/* Area under the ROC curve: the Mann-Whitney probability that a random positive scores above a
 * random negative, ties counting 1/2 (midranks). NaN when either class is absent. */
double metrics_auc(const double *score, const int *label, int n);

#endif
