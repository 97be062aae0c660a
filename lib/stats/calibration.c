/* calibration.c: see calibration.h. Both fits are weighted logistic regressions (logistic.c). */
#include "lib/stats/calibration.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

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

/* The two passes run four slices at a time in GCC's vector extension, with their own exp, and
 * are compiled twice: for AVX2 (one 4-lane register) and for the x86-64 baseline (two SSE2
 * registers a vector), the one the machine runs picked at load time. Both do the same IEEE
 * operations lane by lane (no fused multiply-add: ISO C mode does not contract) and add the
 * lanes in one order, so every machine gets the same bits. Vectors go by pointer: without AVX
 * a 32-byte vector has no register calling convention. (bench_evaluate's CPU time on a 2-core
 * AVX-512 machine: 1.0 s with the AVX2 passes, 2.1 s with the baseline ones, 1.6 s with scalar
 * passes through libm's exp: a machine without AVX2 pays for the same bits everywhere.) */
typedef double V4 __attribute__((vector_size(32)));
typedef long long V4i __attribute__((vector_size(32)));
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TWO_TARGETS __attribute__((target_clones("avx2", "default")))
#else
#define TWO_TARGETS
#endif

/* *x = exp(*x), lane by lane, for x clamped to [-708, 708] (enough here: a probability is 0 or 1
 * to double precision well before): 2^k e^r with k = round(x / ln 2), r = x - k ln 2 in two
 * parts (|r| <= ln 2 / 2), e^r by its Taylor polynomial to degree 12 (truncation below 2e-16
 * relative) in Estrin's order (short dependency chains), 2^k written into the exponent bits. */
static inline void exp4(V4 *x)
{
    const V4 hi = {708, 708, 708, 708}, lo = -hi, magic = hi * 0 + 0x1.8p52;
    V4i above = *x > hi, below = *x < lo;
    V4 v = (V4)(((V4i)hi & above) | ((V4i)lo & below) | ((V4i)*x & ~(above | below)));
    V4 shifted = v * 0x1.71547652b82fep0 + magic, k = shifted - magic; /* rounded to integers */
    V4 r = (v - k * 0x1.62e42fee00000p-1) - k * 0x1.a39ef35793c76p-33; /* ln 2 = hi + lo */
    V4 r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    V4 p01 = 1 + r, p23 = 1 / 2.0 + r * (1 / 6.0), p45 = 1 / 24.0 + r * (1 / 120.0);
    V4 p67 = 1 / 720.0 + r * (1 / 5040.0), p89 = 1 / 40320.0 + r * (1 / 362880.0);
    V4 p1011 = 1 / 3628800.0 + r * (1 / 39916800.0);
    V4 q0 = p01 + r2 * p23, q1 = p45 + r2 * p67, q2 = p89 + r2 * p1011;
    V4 e = (q0 + r4 * q1) + r8 * (q2 + r4 * (1 / 479001600.0));
    V4i bits = ((V4i)shifted - (V4i)magic + 1023) << 52; /* k sits in the low bits of shifted */
    *x = e * (V4)bits;
}

/* Slices i .. i + 3 as vectors: x, labels y as 0/1, weights w (NULL: 1); lanes at or past end
 * get weight 0. Where the arrays (n long) hold four slices from i, they are loaded whole, the
 * next group's slices in the lanes past end, harmless with weight 0. */
typedef int V4si __attribute__((vector_size(16)));
static inline void load4(const double *x, const int *y, const double *w, int i, int end, int n,
                         V4 *xv, V4 *yv, V4 *wv)
{
    if (i + 4 <= n) {
        V4si yi;
        memcpy(xv, x + i, sizeof *xv);
        memcpy(&yi, y + i, sizeof yi);
        *yv = __builtin_convertvector(yi != 0, V4) * -1.0; /* a true lane is -1 */
        if (w)
            memcpy(wv, w + i, sizeof *wv);
        else
            *wv = (V4){1, 1, 1, 1};
        const V4i lane = {0, 1, 2, 3};
        *wv = (V4)((V4i)*wv & (lane < (long long)(end - i)));
        return;
    }
    for (int l = 0; l < 4; l++) {
        int in = i + l < end;
        (*xv)[l] = in ? x[i + l] : 0;
        (*yv)[l] = in ? y[i + l] != 0 : 0;
        (*wv)[l] = in ? (w ? w[i + l] : 1) : 0;
    }
}

static inline double sum4(const V4 *v)
{
    return ((*v)[0] + (*v)[1]) + ((*v)[2] + (*v)[3]);
}

/* One pass of the slope fit over slices i0 .. i1 - 1 (of arrays n long) at (a, b), each weighted
 * w[i] (NULL: 1):
 * s = gradient (g0, g1) and Hessian (h00, h01, h11) of the negative log-likelihood. */
TWO_TARGETS static void slope_sums(const double *x, const int *y, const double *w, int n, int i0,
                                   int i1, double a, double b, double s[5])
{
    V4 g0 = {0}, g1 = {0}, h00 = {0}, h01 = {0}, h11 = {0};
    for (int i = i0; i < i1; i += 4) {
        V4 xv, yv, wv;
        load4(x, y, w, i, i1, n, &xv, &yv, &wv);
        V4 e = -(a + b * xv);
        exp4(&e);
        V4 p = 1 / (1 + e);
        V4 r = wv * (p - yv), v = wv * p * (1 - p);
        g0 += r, g1 += r * xv;
        h00 += v, h01 += v * xv, h11 += v * xv * xv;
    }
    s[0] = sum4(&g0), s[1] = sum4(&g1), s[2] = sum4(&h00), s[3] = sum4(&h01), s[4] = sum4(&h11);
}

/* One pass of the intercept fit at a: s = gradient and Hessian. exp(a + logit p) = e^a p /
 * (1 - p): with the odds precomputed no pass needs exp. */
TWO_TARGETS static void intercept_sums(const double *x, const double *odds, const int *y,
                                       const double *w, int n, int i0, int i1, double a,
                                       double s[2])
{
    double ea = exp(a);
    V4 g = {0}, h = {0};
    for (int i = i0; i < i1; i += 4) {
        V4 xv, yv, wv, o;
        load4(x, y, w, i, i1, n, &xv, &yv, &wv);
        if (odds && i + 4 <= n)
            memcpy(&o, odds + i, sizeof o);
        else if (odds)
            for (int l = 0; l < 4; l++)
                o[l] = i + l < i1 ? odds[i + l] : 0;
        else
            o = xv, exp4(&o);
        o *= ea;
        V4 p = o / (1 + o);
        g += wv * (p - yv), h += wv * p * (1 - p);
    }
    s[0] = sum4(&g), s[1] = sum4(&h);
}

/* The sums of a pass over every slice the fit sees: per group, unweighted and then times the
 * group's weight (at the start, with at_start, from those sums alone). */
static void pass(const FitData *d, int slope, int first, const double *theta, double *s)
{
    int k = slope ? 5 : 2;
    if (!d->groups) {
        if (slope)
            slope_sums(d->x, d->y, d->w, d->n, 0, d->n, theta[0], theta[1], s);
        else
            intercept_sums(d->x, d->odds, d->y, d->w, d->n, 0, d->n, theta[0], s);
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
            slope_sums(d->x, d->y, NULL, d->n, d->begin[g], d->begin[g + 1], theta[0], theta[1], t);
        else
            intercept_sums(d->x, d->odds, d->y, NULL, d->n, d->begin[g], d->begin[g + 1], theta[0],
                           t);
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
        slope_sums(logit, label, NULL, begin[groups], begin[g], begin[g + 1], start[0], start[1],
                   at_start + g * 7);
        intercept_sums(logit, odds, label, NULL, begin[groups], begin[g], begin[g + 1], start[2],
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
