/* paired.h: one-sample / paired-difference statistics for the treatment response (post minus
 * pre per patient): mean with a Student-t interval, the paired t-test and the Wilcoxon
 * signed-rank test, as scipy.stats computes them (ttest_1samp; wilcoxon with zero_method
 * 'wilcox', no continuity correction, two-sided).
 *
 * Wilcoxon: zero differences are dropped; the p-value is exact (the null distribution of the
 * positive rank sum by counting subsets) when at most 50 differences remain and none tie, else
 * the normal approximation with the tie correction of the variance (scipy 1.10 would take the
 * "exact" path with ties too, on truncated mid-ranks; scipy >= 1.13 takes the approximation, as
 * here). */
#ifndef ONFH_STATS_PAIRED_H
#define ONFH_STATS_PAIRED_H

typedef struct PairedSummary {
    int n;
    double mean, sd;    /* sd with n - 1 */
    double t_lo, t_hi;  /* mean +- t_{(1+level)/2, n-1} sd / sqrt(n) */
    double t_stat, t_p; /* paired t-test against 0, two-sided */
    double w_stat, w_p; /* Wilcoxon: min(R+, R-), two-sided p */
    int w_exact;        /* 1: exact p-value, 0: normal approximation */
    int w_n;            /* differences left after dropping zeros */
} PairedSummary;

/* d: n differences. NaN where undefined (n < 2 for the t parts, no non-zero difference for
 * Wilcoxon). Returns -1 when out of memory. */
int paired_summary(const double *d, int n, double level, PairedSummary *s);

/* Student t with df degrees of freedom: P(T <= t), and its inverse. */
double student_t_cdf(double t, double df);
double student_t_quantile(double p, double df);

#endif
