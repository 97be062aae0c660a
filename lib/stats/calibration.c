/* calibration.c: see calibration.h. Both fits are weighted logistic regressions (logistic.c). */
#include "lib/stats/calibration.h"

#include <math.h>
#include <stddef.h>

#include "lib/stats/logistic.h"

double calibration_logit(double p)
{
    p = fmin(fmax(p, CALIBRATION_EPS), 1 - CALIBRATION_EPS);
    return log(p / (1 - p));
}

void calibration_fit(int n, const double *logit, const int *label, const double *w,
                     const double *start, double fit[3])
{
    double ab[2] = {start ? start[0] : 0, start ? start[1] : 0};
    logistic_fit(n, 1, logit, label, w, NULL, 0, ab); /* NaN when it does not converge */
    double a[1] = {start ? start[2] : 0};
    logistic_fit(n, 0, NULL, label, w, logit, 0, a);
    fit[0] = ab[0], fit[1] = ab[1], fit[2] = a[0];
}

void calibration_bins(int n, const double *prob, const int *label, int n_bins, double *mean_pred,
                      double *frac_pos, int *count)
{
    for (int k = 0; k < n_bins; k++)
        mean_pred[k] = frac_pos[k] = 0, count[k] = 0;
    for (int i = 0; i < n; i++) {
        /* numpy's searchsorted(edges[1:-1], p, 'left'): the inner edges below p */
        int k = 0;
        while (k < n_bins - 1 && (k + 1) * (1.0 / n_bins) < prob[i])
            k++;
        mean_pred[k] += prob[i];
        frac_pos[k] += label[i] != 0;
        count[k]++;
    }
    for (int k = 0; k < n_bins; k++) {
        mean_pred[k] = count[k] ? mean_pred[k] / count[k] : NAN;
        frac_pos[k] = count[k] ? frac_pos[k] / count[k] : NAN;
    }
}
