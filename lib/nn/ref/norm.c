/* norm.c: reference BatchNorm2d, training and eval mode, forward and backward.
 *
 * Per channel c over its M = N*H*W values (PyTorch's conventions, architectures.md):
 *   mean = sum x / M,  var = sum (x - mean)^2 / M  (biased: used to normalise)
 *   xhat = (x - mean) invstd,  invstd = 1 / sqrt(var + eps),  y = gamma xhat + beta
 *   running_mean = (1 - momentum) running_mean + momentum mean
 *   running_var  = (1 - momentum) running_var  + momentum var M / (M - 1)  (unbiased)
 * Sums run in double: they are over up to N*H*W ~ 10^6 values and the oracle should not be
 * the least accurate party in a comparison.
 *
 * Training backward goes through the batch statistics. With g = dy:
 *   dbeta = sum g,  dgamma = sum g xhat,
 *   dx = gamma invstd (g - dbeta / M - xhat dgamma / M)
 * (differentiate y through xhat, mean and var; the mean's and the variance's paths give the two
 * subtracted terms). The sums are the local ones of this call, computed before they are added
 * into dgamma and dbeta, so the accumulate contract holds. x and dx may be a channel view
 * (ops.h: ldx), y and dy are dense. */
#include <math.h>

#include "lib/nn/ref/ref.h"

/* Plane (n, c) of x and dx, which may be a channel view (ops.h: ldx). */
static size_t plane_at(const NnBatchNorm *bn, int n, int c)
{
    return ((size_t)n * (bn->ldx ? bn->ldx : bn->c) + c) * bn->h * bn->w;
}

/* Plane (n, c) of y and dy: always dense (N,C,H,W). */
static size_t yplane_at(const NnBatchNorm *bn, int n, int c)
{
    return ((size_t)n * bn->c + c) * bn->h * bn->w;
}

void ref_batchnorm_forward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                 const float *beta, float *y, float *running_mean,
                                 float *running_var, int64_t *num_batches_tracked, float *save_mean,
                                 float *save_invstd)
{
    size_t hw = (size_t)bn->h * bn->w;
    double m = (double)bn->n * hw;
    for (int c = 0; c < bn->c; c++) {
        double sum = 0.0;
        for (int n = 0; n < bn->n; n++)
            for (size_t i = 0; i < hw; i++)
                sum += x[plane_at(bn, n, c) + i];
        double mean = sum / m;
        double sq = 0.0;
        for (int n = 0; n < bn->n; n++)
            for (size_t i = 0; i < hw; i++) {
                double d = x[plane_at(bn, n, c) + i] - mean;
                sq += d * d;
            }
        double var = sq / m;
        double invstd = 1.0 / sqrt(var + bn->eps);
        for (int n = 0; n < bn->n; n++)
            for (size_t i = 0; i < hw; i++)
                y[yplane_at(bn, n, c) + i] =
                    (float)((x[plane_at(bn, n, c) + i] - mean) * invstd * gamma[c] + beta[c]);
        double mom = bn->momentum;
        running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mean);
        running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * var * m / (m - 1.0));
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
    }
    *num_batches_tracked += 1;
}

void ref_batchnorm_forward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                const float *beta, const float *running_mean,
                                const float *running_var, float *y)
{
    size_t hw = (size_t)bn->h * bn->w;
    for (int c = 0; c < bn->c; c++) {
        double invstd = 1.0 / sqrt((double)running_var[c] + bn->eps);
        for (int n = 0; n < bn->n; n++)
            for (size_t i = 0; i < hw; i++)
                y[yplane_at(bn, n, c) + i] =
                    (float)((x[plane_at(bn, n, c) + i] - running_mean[c]) * invstd * gamma[c] +
                            beta[c]);
    }
}

/* Backward of channel c, shared by both modes: mean and invstd normalised x; through_stats
 * says whether they depend on x (training) or are constants (eval). */
static void channel_backward(const NnBatchNorm *bn, int c, const float *x, double gamma,
                             double mean, double invstd, int through_stats, const float *dy,
                             float *dx, float *dgamma, float *dbeta)
{
    size_t hw = (size_t)bn->h * bn->w;
    double m = (double)bn->n * hw;
    double sum_dy = 0.0;
    double sum_dy_xhat = 0.0;
    for (int n = 0; n < bn->n; n++)
        for (size_t i = 0; i < hw; i++) {
            double g = dy[yplane_at(bn, n, c) + i];
            sum_dy += g;
            sum_dy_xhat += g * (x[plane_at(bn, n, c) + i] - mean) * invstd;
        }
    dgamma[c] += (float)sum_dy_xhat;
    dbeta[c] += (float)sum_dy;
    if (!dx)
        return;
    double scale = gamma * invstd;
    double mean_dy = through_stats ? sum_dy / m : 0.0;
    double mean_dy_xhat = through_stats ? sum_dy_xhat / m : 0.0;
    for (int n = 0; n < bn->n; n++)
        for (size_t i = 0; i < hw; i++) {
            size_t at = plane_at(bn, n, c) + i;
            double xhat = (x[at] - mean) * invstd;
            dx[at] +=
                (float)(scale * (dy[yplane_at(bn, n, c) + i] - mean_dy - xhat * mean_dy_xhat));
        }
}

void ref_batchnorm_backward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                  const float *save_mean, const float *save_invstd, const float *dy,
                                  float *dx, float *dgamma, float *dbeta)
{
    for (int c = 0; c < bn->c; c++)
        channel_backward(bn, c, x, gamma[c], save_mean[c], save_invstd[c], 1, dy, dx, dgamma,
                         dbeta);
}

void ref_batchnorm_backward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                 const float *running_mean, const float *running_var,
                                 const float *dy, float *dx, float *dgamma, float *dbeta)
{
    for (int c = 0; c < bn->c; c++) {
        double invstd = 1.0 / sqrt((double)running_var[c] + bn->eps);
        channel_backward(bn, c, x, gamma[c], running_mean[c], invstd, 0, dy, dx, dgamma, dbeta);
    }
}
