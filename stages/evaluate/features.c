/* features.c: see features.h. */
#include "stages/evaluate/features.h"

#include <math.h>
#include <stdlib.h>

#include "lib/stats/bootstrap.h"

const char *const feature_names[FEATURES] = {"mean", "sd", "p10", "p25", "p50", "p75", "p90"};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void features_of_slice(const float *pixels, int n, double *scratch, double out[FEATURES])
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += scratch[i] = pixels[i];
    double mean = sum / n, ss = 0;
    for (int i = 0; i < n; i++)
        ss += (scratch[i] - mean) * (scratch[i] - mean);
    qsort(scratch, (size_t)n, sizeof *scratch, cmp_double);
    static const double q[] = {0.10, 0.25, 0.50, 0.75, 0.90};
    out[0] = mean;
    out[1] = sqrt(ss / n);
    for (int k = 0; k < 5; k++)
        out[2 + k] = bootstrap_quantile(scratch, n, q[k]); /* numpy's linear percentile */
}
