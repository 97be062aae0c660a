/* optim.c: reference optimizer steps, PyTorch's formulas (torch/optim/adamw.py, sgd.py,
 * rmsprop.py, single-tensor paths) over one contiguous run of parameters.
 *
 * Each element is updated in double and rounded once, so ref is at least as close to the exact
 * update as PyTorch's float kernels are. Weight decay is skipped for tensors whose decay flag
 * is 0 (the store's per-view flag: BN weights and biases). The gradient is never written:
 * PyTorch adds weight decay to a copy. */
#include <math.h>

#include "lib/nn/ref/ref.h"

void ref_adamw_step(const NnAdamW *h, long step, int decay, size_t n, float *p, const float *g,
                    float *m, float *v)
{
    double shrink = 1.0 - h->lr * (decay ? h->weight_decay : 0.0); /* decoupled decay */
    double bc1 = 1.0 - pow(h->beta1, (double)step);
    double bc2_sqrt = sqrt(1.0 - pow(h->beta2, (double)step));
    double step_size = h->lr / bc1;
    for (size_t i = 0; i < n; i++) {
        double pi = p[i] * shrink;
        double mi = h->beta1 * m[i] + (1.0 - h->beta1) * g[i];
        double vi = h->beta2 * v[i] + (1.0 - h->beta2) * (double)g[i] * g[i];
        m[i] = (float)mi;
        v[i] = (float)vi;
        /* eps outside the square root, after bias correction */
        p[i] = (float)(pi - step_size * m[i] / (sqrt((double)v[i]) / bc2_sqrt + h->eps));
    }
}

void ref_sgd_step(const NnSgd *h, long step, int decay, size_t n, float *p, const float *g,
                  float *buf)
{
    double wd = decay ? h->weight_decay : 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        if (h->momentum != 0.0) {
            /* PyTorch starts the buffer at the first gradient, not at zero */
            double b = step <= 1 ? d : h->momentum * buf[i] + d;
            buf[i] = (float)b;
            d = h->nesterov ? d + h->momentum * buf[i] : buf[i];
        }
        p[i] = (float)(p[i] - h->lr * d);
    }
}

void ref_rmsprop_step(const NnRmsprop *h, int decay, size_t n, float *p, const float *g, float *sq,
                      float *buf)
{
    double wd = decay ? h->weight_decay : 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = g[i] + wd * p[i];
        sq[i] = (float)(h->alpha * sq[i] + (1.0 - h->alpha) * d * d);
        double avg = sqrt((double)sq[i]) + h->eps; /* eps outside the square root */
        if (h->momentum > 0.0) {
            buf[i] = (float)(h->momentum * buf[i] + d / avg);
            p[i] = (float)(p[i] - h->lr * buf[i]);
        } else {
            p[i] = (float)(p[i] - h->lr * d / avg);
        }
    }
}
