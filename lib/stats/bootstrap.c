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

/* Sorts n doubles (no NaN) ascending: LSD radix sort on the bits mapped to an unsigned order
 * (negatives: every bit flipped; others: the sign bit set), 8 bits a pass. The intervals sort
 * every (model, metric) distribution of 9999 values twice; qsort's comparison callbacks made
 * that the serial tail of the bootstrap. -0 sorts before +0, which no quantile can tell. */
static int sort_doubles(double *v, int n)
{
    uint64_t *key = mem_alloc((size_t)(2 * n + 1) * sizeof *key), *tmp = key + n;
    if (!key)
        return -1;
    for (int i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, &v[i], sizeof u);
        key[i] = u >> 63 ? ~u : u | (uint64_t)1 << 63;
    }
    for (int shift = 0; shift < 64; shift += 8) {
        int count[257] = {0};
        for (int i = 0; i < n; i++)
            count[(key[i] >> shift & 255) + 1]++;
        if (count[(key[0] >> shift & 255) + 1] == n)
            continue; /* one digit value: the pass would change nothing */
        for (int d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (int i = 0; i < n; i++)
            tmp[count[key[i] >> shift & 255]++] = key[i];
        uint64_t *t = key;
        key = tmp, tmp = t;
    }
    for (int i = 0; i < n; i++) {
        uint64_t u = key[i] >> 63 ? key[i] & ~((uint64_t)1 << 63) : ~key[i];
        memcpy(&v[i], &u, sizeof u);
    }
    mem_free(key < tmp ? key : tmp); /* the first of the two halves is the allocation */
    return 0;
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
    if (n > 0 && sort_doubles(*out, n)) {
        mem_free(*out);
        *out = NULL;
        return -1;
    }
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
