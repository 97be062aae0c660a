/* bootstrap.h: the patient-level (cluster) bootstrap, stratified by outcome, and its intervals.
 *
 * A resample draws patients, not slices: a patient's slices are correlated, and resampling
 * slices would pretend there were as many independent cases as slices. Patients are grouped in
 * strata by the classes their slices carry (normal only, lesion only, both), and each stratum is
 * drawn with replacement to its own size, so every resample keeps the outcome mix. Resample b is
 * a pure function of (seed, b): Philox keyed by (seed, PHILOX_BOOTSTRAP, b), strata in that
 * order, members in patient order. So resamples can be computed on any rank, in any order, and
 * the result does not depend on how they were shared out.
 *
 * Intervals follow scipy.stats.bootstrap (1.10): percentile (numpy's linear percentile of the
 * bootstrap distribution) and BCa (bias from the share of the distribution below the estimate,
 * ties counting half; acceleration from the leave-one-patient-out jackknife). */
#ifndef ONFH_STATS_BOOTSTRAP_H
#define ONFH_STATS_BOOTSTRAP_H

#include <stdint.h>

enum { BOOT_STRATA = 3 }; /* normal only, lesion only, both */

typedef struct BootDesign {
    uint64_t seed;
    int n_patients;
    int start[BOOT_STRATA + 1]; /* members[start[s] .. start[s+1]) are stratum s */
    int *members;               /* (n_patients) patient indices, by stratum then index */
} BootDesign;

/* has_pos[p], has_neg[p]: whether patient p has a lesion / normal slice (at least one of the
 * two). Returns -1 when out of memory. */
int bootstrap_design(BootDesign *d, int n_patients, const int *has_pos, const int *has_neg,
                     uint64_t seed);
void bootstrap_design_free(BootDesign *d);

/* count[p] = how often patient p is drawn in resample b (sums to n_patients). */
void bootstrap_counts(const BootDesign *d, uint64_t b, int *count);

/* numpy.percentile(x, 100 q) of sorted x (n >= 1), linear interpolation. */
double bootstrap_quantile(const double *sorted, int n, double q);

/* The equal-tailed interval of the given level (0.95) from the bootstrap distribution dist (B
 * values; NaN ones, resamples where the metric is undefined, are left out). Percentile: the
 * quantiles at (1 - level)/2 and (1 + level)/2. BCa: at the bias-corrected, accelerated levels,
 * from the estimate theta and the jackknife values jack (n_jack). NaN bounds when the interval
 * cannot be formed (no finite values, a degenerate distribution, undefined jackknife values).
 * *a_hat and *z0 (may be NULL) receive the acceleration and bias correction. */
void bootstrap_percentile(const double *dist, int B, double level, double *lo, double *hi);
void bootstrap_bca(const double *dist, int B, double theta, const double *jack, int n_jack,
                   double level, double *lo, double *hi, double *a_hat, double *z0);

#endif
