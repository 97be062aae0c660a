/* delong.h: DeLong's test for correlated ROC AUCs (DeLong, DeLong & Clarke-Pearson, Biometrics
 * 1988;44:837-845), computed the fast way (Sun & Xu, IEEE Signal Process. Lett. 2014;21:1389:
 * the structural components from one sort per model, O(K n log n) instead of O(K m n)), with
 * the clustered variance of Obuchowski (Biometrics 1997;53:567-578) when a patient contributes
 * several slices: the components are summed per patient and their covariances taken over
 * patients. With one slice per patient it is DeLong's variance exactly. */
#ifndef ONFH_STATS_DELONG_H
#define ONFH_STATS_DELONG_H

/* K models scoring the same n slices: score[k] (n), label (n) 0/1, cluster (n) in
 * [0, n_clusters). auc (K) and cov (K x K, row-major) receive the AUCs and the covariance of
 * their estimates. Returns -1 when out of memory; NaN entries when a class has fewer than two
 * clusters (no variance can be estimated). */
int delong(int K, int n, const double *const *score, const int *label, const int *cluster,
           int n_clusters, double *auc, double *cov);

/* z = (auc[a] - auc[b]) / sd of the difference, and its two-sided normal p-value. Equal AUCs
 * whose difference has no variance (identical rankings) give z = 0, p = 1. */
void delong_test(int K, const double *auc, const double *cov, int a, int b, double *z, double *p);

#endif
