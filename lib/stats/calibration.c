/* calibration.c: see calibration.h. Both fits are weighted logistic regressions (logistic.c). */
#include "lib/stats/calibration.h"

#include <math.h>
#include <stddef.h>

#include "lib/stats/logistic.h"
#include "lib/util/mem.h"

double calibration_logit(double p)
{
    p = fmin(fmax(p, CALIBRATION_EPS), 1 - CALIBRATION_EPS);
    return log(p / (1 - p));
}

/* The slices a fit sees: slices begin[g] .. begin[g + 1] - 1 of x, odds, y form group g, with
 * weight gw[g] (a patient drawn gw[g] times; 0: left out), or, without groups, slice i has
 * weight w[i] (NULL: 1). at_start: (groups, 7) the sums of calibration_group_sums at the fits'
 * start, or NULL. */
typedef struct FitData {
    int n;
    const double *x, *odds, *w;
    const int *y;
    int groups;
    const int *begin;
    const double *gw, *at_start;
} FitData;

/* One pass of the slope fit over slices i0 .. i1 - 1 at (a, b), each weighted w[i] (NULL: 1):
 * s = gradient (g0, g1) and Hessian (h00, h01, h11) of the negative log-likelihood. */
static void slope_sums(const double *x, const int *y, const double *w, int i0, int i1, double a,
                       double b, double s[5])
{
    double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
    for (int i = i0; i < i1; i++) {
        double wi = w ? w[i] : 1;
        if (wi == 0)
            continue;
        double p = 1 / (1 + exp(-(a + b * x[i])));
        double r = wi * (p - y[i]), v = wi * p * (1 - p);
        g0 += r, g1 += r * x[i];
        h00 += v, h01 += v * x[i], h11 += v * x[i] * x[i];
    }
    s[0] = g0, s[1] = g1, s[2] = h00, s[3] = h01, s[4] = h11;
}

/* One pass of the intercept fit at a: s = gradient and Hessian. exp(a + logit p) = e^a p /
 * (1 - p): with the odds precomputed no pass needs exp. */
static void intercept_sums(const double *x, const double *odds, const int *y, const double *w,
                           int i0, int i1, double a, double s[2])
{
    double ea = exp(a), g = 0, h = 0;
    for (int i = i0; i < i1; i++) {
        double wi = w ? w[i] : 1;
        if (wi == 0)
            continue;
        double o = ea * (odds ? odds[i] : exp(x[i])), p = o / (1 + o);
        g += wi * (p - y[i]), h += wi * p * (1 - p);
    }
    s[0] = g, s[1] = h;
}

/* The sums of a pass over every slice the fit sees: per group, unweighted and then times the
 * group's weight (at the start, with at_start, from those sums alone). */
static void pass(const FitData *d, int slope, int first, const double *theta, double *s)
{
    int k = slope ? 5 : 2;
    if (!d->groups) {
        if (slope)
            slope_sums(d->x, d->y, d->w, 0, d->n, theta[0], theta[1], s);
        else
            intercept_sums(d->x, d->odds, d->y, d->w, 0, d->n, theta[0], s);
        return;
    }
    for (int j = 0; j < k; j++)
        s[j] = 0;
    for (int g = 0; g < d->groups; g++) {
        if (d->gw[g] == 0)
            continue;
        double t[5];
        if (first && d->at_start)
            for (int j = 0; j < k; j++)
                t[j] = d->at_start[g * 7 + (slope ? 0 : 5) + j];
        else if (slope)
            slope_sums(d->x, d->y, NULL, d->begin[g], d->begin[g + 1], theta[0], theta[1], t);
        else
            intercept_sums(d->x, d->odds, d->y, NULL, d->begin[g], d->begin[g + 1], theta[0], t);
        for (int j = 0; j < k; j++)
            s[j] += d->gw[g] * t[j];
    }
}

/* The general fit, with its step control, where Newton's plain steps are not to be trusted. */
static int hand_over(const FitData *d, int slope, double *theta)
{
    if (!d->groups)
        return slope ? logistic_fit(d->n, 1, d->x, d->y, d->w, NULL, 0, theta)
                     : logistic_fit(d->n, 0, NULL, d->y, d->w, d->x, 0, theta);
    double *w = mem_alloc((size_t)(d->n ? d->n : 1) * sizeof *w);
    if (!w) {
        theta[0] = theta[slope] = NAN;
        return -1;
    }
    for (int g = 0; g < d->groups; g++)
        for (int i = d->begin[g]; i < d->begin[g + 1]; i++)
            w[i] = d->gw[g];
    int rc = slope ? logistic_fit(d->n, 1, d->x, d->y, w, NULL, 0, theta)
                   : logistic_fit(d->n, 0, NULL, d->y, w, d->x, 0, theta);
    mem_free(w);
    return rc;
}

/* Both fits are Newton's method written out for their one or two parameters: the bootstrap runs
 * them for every model and resample, and the general logistic_fit costs several times more per
 * pass. A step longer than 0.5 is cut to 0.5 (a resample's fit can lie that far from the start,
 * and the plain step can overshoot there); a step below 1e-7 relative to the estimate ends a
 * fit: Newton's convergence is quadratic, so the estimate is then within about 1e-13 of the
 * optimum, and the pass that would confirm it is saved. They hand over to logistic_fit, from the
 * start, when a pass gives no usable step or the steps stay long (towards separation, where the
 * slope runs off to infinity). theta: (a, b) of the slope fit, (a) of the intercept fit; the
 * start on entry. */
static int newton(const FitData *d, int slope, double *theta)
{
    double start[2] = {theta[0], theta[slope]};
    for (int iter = 0, long_steps = 0; iter < 50 && long_steps < 8; iter++) {
        double s[5], step[2];
        pass(d, slope, iter == 0, theta, s);
        if (slope) {
            double det = s[2] * s[4] - s[3] * s[3];
            if (!(det > 0))
                break;
            step[0] = (s[4] * s[0] - s[3] * s[1]) / det;
            step[1] = (s[2] * s[1] - s[3] * s[0]) / det;
        } else {
            if (!(s[1] > 0))
                break;
            step[0] = step[1] = s[0] / s[1];
        }
        double big = fmax(fabs(step[0]), fabs(step[1]));
        if (!isfinite(big))
            break;
        double cut = big > 0.5 ? 0.5 / big : 1;
        long_steps += big > 0.5;
        theta[0] -= cut * step[0];
        if (slope)
            theta[1] -= cut * step[1];
        if (big <= 1e-7 * (1 + fmax(fabs(theta[0]), fabs(theta[slope]))))
            return 0;
    }
    theta[0] = start[0], theta[slope] = start[1];
    return hand_over(d, slope, theta);
}

static void fit_both(const FitData *d, const double *start, double out[3])
{
    double ab[2] = {start ? start[0] : 0, start ? start[1] : 0};
    newton(d, 1, ab); /* NaN when it does not converge */
    double a[1] = {start ? start[2] : 0};
    newton(d, 0, a);
    out[0] = ab[0], out[1] = ab[1], out[2] = a[0];
}

void calibration_fit(int n, const double *logit, const double *odds, const int *label,
                     const double *w, const double *start, double fit[3])
{
    FitData d = {.n = n, .x = logit, .odds = odds, .w = w, .y = label};
    fit_both(&d, start, fit);
}

void calibration_group_sums(int groups, const int *begin, const double *logit, const double *odds,
                            const int *label, const double *start, double *at_start)
{
    for (int g = 0; g < groups; g++) {
        slope_sums(logit, label, NULL, begin[g], begin[g + 1], start[0], start[1],
                   at_start + g * 7);
        intercept_sums(logit, odds, label, NULL, begin[g], begin[g + 1], start[2],
                       at_start + g * 7 + 5);
    }
}

void calibration_fit_groups(int groups, const int *begin, const double *logit, const double *odds,
                            const int *label, const double *weight, const double *start,
                            const double *at_start, double fit[3])
{
    FitData d = {.n = begin[groups],
                 .x = logit,
                 .odds = odds,
                 .y = label,
                 .groups = groups,
                 .begin = begin,
                 .gw = weight,
                 .at_start = at_start};
    fit_both(&d, start, fit);
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
