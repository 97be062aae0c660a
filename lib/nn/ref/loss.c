/* loss.c: reference softmax cross-entropy with class weights and label smoothing, fused as in
 * llm.c's classifier: forward keeps the softmax, backward needs nothing else.
 *
 * The loss is torch.nn.functional.cross_entropy's with reduction "mean" (formula in ops.h):
 * the smoothing term is weighted per class, and both terms are divided by the summed weight of
 * the targets, W = sum_i w[y_i]. Its gradient for sample i, class j, with p = softmax(z_i):
 *   d/dz_j [ -w_y log p_y ]          = w_y (p_j - [j = y])
 *   d/dz_j [ -sum_c w_c log p_c ]    = p_j sum_c w_c - w_j
 * so dz_j = ((1 - s) w_y (p_j - [j = y]) + (s / K) (p_j sum_c w_c - w_j)) / W.
 * Log-softmax and the sums are in double: the loss is one number that everything hangs on. */
#include <math.h>

#include "lib/nn/ref/ref.h"

static double class_weight(const float *weight, int c)
{
    return weight ? weight[c] : 1.0;
}

/* W = sum over samples of the target's weight. */
static double target_weight_sum(const NnXent *x, const int *target, const float *weight)
{
    double w = 0.0;
    for (int i = 0; i < x->n; i++)
        w += class_weight(weight, target[i]);
    return w;
}

float ref_xent_forward(const NnXent *x, const float *logits, const int *target, const float *weight,
                       float *probs)
{
    double nll = 0.0;
    double smooth = 0.0;
    for (int i = 0; i < x->n; i++) {
        const float *z = logits + (size_t)i * x->k;
        float *p = probs + (size_t)i * x->k;
        double zmax = z[0];
        for (int c = 1; c < x->k; c++)
            zmax = z[c] > zmax ? z[c] : zmax;
        double sum = 0.0;
        for (int c = 0; c < x->k; c++)
            sum += exp(z[c] - zmax);
        double lse = zmax + log(sum);
        for (int c = 0; c < x->k; c++) {
            double logp = z[c] - lse;
            p[c] = (float)exp(logp);
            smooth -= class_weight(weight, c) * logp;
        }
        nll -= class_weight(weight, target[i]) * (z[target[i]] - lse);
    }
    double w = target_weight_sum(x, target, weight);
    double s = x->smoothing;
    return (float)((1.0 - s) * nll / w + s / x->k * smooth / w);
}

void ref_xent_backward(const NnXent *x, const float *probs, const int *target, const float *weight,
                       float dloss, float *dlogits)
{
    double w = target_weight_sum(x, target, weight);
    double s = x->smoothing;
    double wsum = 0.0; /* sum over classes of w_c */
    for (int c = 0; c < x->k; c++)
        wsum += class_weight(weight, c);
    for (int i = 0; i < x->n; i++) {
        const float *p = probs + (size_t)i * x->k;
        float *dz = dlogits + (size_t)i * x->k;
        double wy = class_weight(weight, target[i]);
        for (int c = 0; c < x->k; c++) {
            double g = (1.0 - s) * wy * (p[c] - (c == target[i])) +
                       s / x->k * (p[c] * wsum - class_weight(weight, c));
            dz[c] += (float)(dloss * g / w);
        }
    }
}
