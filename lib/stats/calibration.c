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

/* The two fits below are Newton's method written out for their one or two parameters: the
 * bootstrap runs them for every model and resample, and the general logistic_fit costs several
 * times more per pass. They stop at a step below 1e-10 relative to the estimate, like
 * logistic_fit, and hand over to it (with its step control) whenever a step is long, which
 * happens only from a poor start or towards separation. */
static int fit_slope(int n, const double *x, const int *y, const double *w, double ab[2])
{
    double a = ab[0], b = ab[1];
    for (int iter = 0; iter < 50; iter++) {
        double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
        for (int i = 0; i < n; i++) {
            double wi = w ? w[i] : 1;
            if (wi == 0)
                continue;
            double p = 1 / (1 + exp(-(a + b * x[i])));
            double r = wi * (p - y[i]), v = wi * p * (1 - p);
            g0 += r, g1 += r * x[i];
            h00 += v, h01 += v * x[i], h11 += v * x[i] * x[i];
        }
        double det = h00 * h11 - h01 * h01;
        if (!(det > 0))
            break;
        double da = (h11 * g0 - h01 * g1) / det, db = (h00 * g1 - h01 * g0) / det;
        if (fmax(fabs(da), fabs(db)) >= 0.5)
            break;
        a -= da, b -= db;
        if (fmax(fabs(da), fabs(db)) <= 1e-10 * (1 + fmax(fabs(a), fabs(b)))) {
            ab[0] = a, ab[1] = b;
            return 0;
        }
    }
    ab[0] = a, ab[1] = b;
    return logistic_fit(n, 1, x, y, w, NULL, 0, ab);
}

/* exp(a + logit p) = e^a p / (1 - p): with the odds precomputed no pass needs exp. */
static int fit_intercept(int n, const double *x, const double *odds, const int *y, const double *w,
                         double *a)
{
    double v = *a;
    for (int iter = 0; iter < 50; iter++) {
        double ea = exp(v), g = 0, h = 0;
        for (int i = 0; i < n; i++) {
            double wi = w ? w[i] : 1;
            if (wi == 0)
                continue;
            double o = ea * (odds ? odds[i] : exp(x[i])), p = o / (1 + o);
            g += wi * (p - y[i]), h += wi * p * (1 - p);
        }
        if (!(h > 0))
            break;
        double d = g / h;
        if (fabs(d) >= 0.5)
            break;
        v -= d;
        if (fabs(d) <= 1e-10 * (1 + fabs(v))) {
            *a = v;
            return 0;
        }
    }
    *a = v;
    return logistic_fit(n, 0, NULL, y, w, x, 0, a);
}

void calibration_fit(int n, const double *logit, const double *odds, const int *label,
                     const double *w, const double *start, double fit[3])
{
    double ab[2] = {start ? start[0] : 0, start ? start[1] : 0};
    fit_slope(n, logit, label, w, ab); /* NaN when it does not converge */
    double a[1] = {start ? start[2] : 0};
    fit_intercept(n, logit, odds, label, w, a);
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
