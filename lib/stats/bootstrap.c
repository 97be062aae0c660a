/* bootstrap.c: see bootstrap.h. */
#include "lib/stats/bootstrap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/stats/normal.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

int bootstrap_design(BootDesign *d, int n_patients, const int *has_pos, const int *has_neg,
                     uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->seed = seed;
    d->n_patients = n_patients;
    d->members = mem_alloc((size_t)(n_patients ? n_patients : 1) * sizeof *d->members);
    if (!d->members)
        return -1;
    int k = 0;
    for (int s = 0; s < BOOT_STRATA; s++) {
        d->start[s] = k;
        for (int p = 0; p < n_patients; p++) {
            int stratum = has_pos[p] && has_neg[p] ? 2 : has_pos[p] ? 1 : 0;
            if (stratum == s)
                d->members[k++] = p;
        }
    }
    d->start[BOOT_STRATA] = k;
    return 0;
}

void bootstrap_design_free(BootDesign *d)
{
    mem_free(d->members);
    d->members = NULL;
}

void bootstrap_counts(const BootDesign *d, uint64_t b, int *count)
{
    memset(count, 0, (size_t)d->n_patients * sizeof *count);
    Philox r;
    philox_init(&r, d->seed, PHILOX_BOOTSTRAP, b);
    for (int s = 0; s < BOOT_STRATA; s++) {
        uint32_t size = (uint32_t)(d->start[s + 1] - d->start[s]);
        for (uint32_t k = 0; k < size; k++)
            count[d->members[d->start[s] + (int)philox_below(&r, size)]]++;
    }
}

double bootstrap_quantile(const double *sorted, int n, double q)
{
    double v = q * (n - 1);
    int i = (int)floor(v);
    if (i < 0)
        return sorted[0];
    if (i >= n - 1)
        return sorted[n - 1];
    double t = v - i, a = sorted[i], b = sorted[i + 1], diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t; /* numpy's _lerp, to the last bit */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The finite values of dist, sorted; returns their count (-1: out of memory). */
static int finite_sorted(const double *dist, int B, double **out)
{
    *out = mem_alloc((size_t)(B ? B : 1) * sizeof **out);
    if (!*out)
        return -1;
    int n = 0;
    for (int b = 0; b < B; b++)
        if (isfinite(dist[b]))
            (*out)[n++] = dist[b];
    qsort(*out, (size_t)n, sizeof **out, cmp_double);
    return n;
}

void bootstrap_percentile(const double *dist, int B, double level, double *lo, double *hi)
{
    double *s;
    int n = finite_sorted(dist, B, &s);
    *lo = *hi = NAN;
    if (n > 0) {
        *lo = bootstrap_quantile(s, n, (1 - level) / 2);
        *hi = bootstrap_quantile(s, n, (1 + level) / 2);
    }
    mem_free(s);
}

void bootstrap_bca(const double *dist, int B, double theta, const double *jack, int n_jack,
                   double level, double *lo, double *hi, double *a_hat, double *z0)
{
    *lo = *hi = NAN;
    if (a_hat)
        *a_hat = NAN;
    if (z0)
        *z0 = NAN;
    double *s;
    int n = finite_sorted(dist, B, &s);
    if (n <= 0 || !isfinite(theta)) {
        mem_free(s);
        return;
    }
    /* bias: where the estimate falls in the bootstrap distribution (scipy's 'mean' kind) */
    int below = 0, at_or_below = 0;
    for (int b = 0; b < n; b++) {
        below += s[b] < theta;
        at_or_below += s[b] <= theta;
    }
    double bias = normal_quantile((below + at_or_below) / (2.0 * n));
    /* acceleration: skewness of the jackknife influence values */
    double mean = 0;
    for (int j = 0; j < n_jack; j++)
        mean += jack[j];
    mean /= n_jack;
    double num = 0, den = 0;
    for (int j = 0; j < n_jack; j++) {
        double u = (n_jack - 1) * (mean - jack[j]);
        num += u * u * u, den += u * u;
    }
    double nj = n_jack;
    double a = num / (nj * nj * nj) / (6 * pow(den / (nj * nj), 1.5));
    double za = normal_quantile((1 - level) / 2), n1 = bias + za, n2 = bias - za;
    double alpha1 = normal_cdf(bias + n1 / (1 - a * n1));
    double alpha2 = normal_cdf(bias + n2 / (1 - a * n2));
    if (a_hat)
        *a_hat = a;
    if (z0)
        *z0 = bias;
    if (isfinite(alpha1) && isfinite(alpha2)) {
        *lo = bootstrap_quantile(s, n, alpha1);
        *hi = bootstrap_quantile(s, n, alpha2);
    }
    mem_free(s);
}
