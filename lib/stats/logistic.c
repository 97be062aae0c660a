/* logistic.c: see logistic.h. Newton steps on the penalised log-likelihood; a long step is
 * halved while it does not improve the objective (the plain Newton step can overshoot from a
 * poor start), a short one is taken as it is (the objective costs a pass over the data, and the
 * bootstrap fits thousands of calibration models); converged when the
 * Newton step is below 1e-10 relative to the coefficients. */
#include "lib/stats/logistic.h"

#include <math.h>
#include <string.h>

/* log(1 + exp(z)) without overflow */
static double log1pexp(double z)
{
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

static double objective(int n, int d, const double *x, const int *y, const double *w,
                        const double *offset, double l2, const double *beta)
{
    double f = 0;
    for (int i = 0; i < n; i++) {
        double wi = w ? w[i] : 1;
        if (wi == 0)
            continue;
        double z = beta[0] + (offset ? offset[i] : 0);
        for (int j = 0; j < d; j++)
            z += beta[j + 1] * x[(size_t)i * d + j];
        f += wi * (log1pexp(z) - (y[i] ? z : 0));
    }
    for (int j = 1; j <= d; j++)
        f += 0.5 * l2 * beta[j] * beta[j];
    return f;
}

/* Solves H s = g for symmetric positive definite H (k x k) by Cholesky; -1 if not definite. */
static int solve_spd(int k, double *h, double *g)
{
    for (int j = 0; j < k; j++) {
        double s = h[j * k + j];
        for (int m = 0; m < j; m++)
            s -= h[j * k + m] * h[j * k + m];
        if (!(s > 0))
            return -1;
        h[j * k + j] = sqrt(s);
        for (int i = j + 1; i < k; i++) {
            double t = h[i * k + j];
            for (int m = 0; m < j; m++)
                t -= h[i * k + m] * h[j * k + m];
            h[i * k + j] = t / h[j * k + j];
        }
    }
    for (int i = 0; i < k; i++) { /* L u = g */
        for (int m = 0; m < i; m++)
            g[i] -= h[i * k + m] * g[m];
        g[i] /= h[i * k + i];
    }
    for (int i = k - 1; i >= 0; i--) { /* L^T s = u */
        for (int m = i + 1; m < k; m++)
            g[i] -= h[m * k + i] * g[m];
        g[i] /= h[i * k + i];
    }
    return 0;
}

int logistic_fit(int n, int d, const double *x, const int *y, const double *w, const double *offset,
                 double l2, double *beta)
{
    int k = d + 1;
    double f = NAN; /* the objective at beta, computed only when a step needs checking */
    for (int iter = 0; iter < 100; iter++) {
        /* gradient and Hessian of the negative penalised log-likelihood */
        double g[LOGISTIC_MAX_DIM] = {0}, h[LOGISTIC_MAX_DIM * LOGISTIC_MAX_DIM] = {0};
        double xi[LOGISTIC_MAX_DIM];
        xi[0] = 1;
        for (int i = 0; i < n; i++) {
            double wi = w ? w[i] : 1;
            if (wi == 0)
                continue;
            double z = beta[0] + (offset ? offset[i] : 0);
            for (int j = 0; j < d; j++) {
                xi[j + 1] = x[(size_t)i * d + j];
                z += beta[j + 1] * xi[j + 1];
            }
            double p = 1 / (1 + exp(-z));
            double r = wi * (p - (y[i] != 0)), v = wi * p * (1 - p);
            for (int a = 0; a < k; a++) {
                g[a] += r * xi[a];
                for (int b = 0; b <= a; b++)
                    h[a * k + b] += v * xi[a] * xi[b];
            }
        }
        for (int j = 1; j < k; j++) {
            g[j] += l2 * beta[j];
            h[j * k + j] += l2;
        }
        for (int a = 0; a < k; a++)
            for (int b = a + 1; b < k; b++)
                h[a * k + b] = h[b * k + a];
        if (solve_spd(k, h, g))
            break;
        double full = 0, norm = 0;
        for (int a = 0; a < k; a++) {
            full = fmax(full, fabs(g[a]));
            norm = fmax(norm, fabs(beta[a]));
        }
        if (full <= 1e-10 * (1 + norm)) {
            for (int a = 0; a < k; a++)
                beta[a] -= g[a];
            return 0;
        }
        if (norm > 1e8)
            break; /* separation: the likelihood keeps rising towards infinite coefficients */
        if (full < 0.5) { /* near the optimum: Newton converges, no need to check the step */
            for (int a = 0; a < k; a++)
                beta[a] -= g[a];
            f = NAN;
            continue;
        }
        if (isnan(f))
            f = objective(n, d, x, y, w, offset, l2, beta);
        double step = 1, trial[LOGISTIC_MAX_DIM], fnew = f;
        for (int halvings = 0; halvings < 30; halvings++, step /= 2) {
            for (int a = 0; a < k; a++)
                trial[a] = beta[a] - step * g[a];
            fnew = objective(n, d, x, y, w, offset, l2, trial);
            if (fnew <= f)
                break;
        }
        if (!(fnew <= f)) {
            /* no shorter step improves either: at the optimum to rounding if the step is small */
            if (full <= 1e-6 * (1 + norm))
                return 0;
            break;
        }
        memcpy(beta, trial, (size_t)k * sizeof *beta);
        f = fnew;
    }
    for (int a = 0; a < k; a++)
        beta[a] = NAN;
    return -1;
}
