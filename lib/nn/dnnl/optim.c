/* optim.c: optimizer steps for the oneDNN backend: ref's formulas (lib/nn/ref/optim.c,
 * PyTorch's single-tensor paths) over chunks of the flat parameter buffer in parallel.
 *
 * Each element is updated in double and rounded once, exactly as ref does, so the two agree
 * to the last bit but for the order-free rounding of fused multiply-adds. The loops are
 * element-wise with no reductions, so they vectorise (AVX-512 / AVX2 clones) and split
 * across threads without changing a single result. */
#if ONFH_HAVE_DNNL

#include <math.h>

#include "lib/nn/dnnl/dnnl_be.h"

#define CHUNK 4096

typedef struct AdamConst {
    double shrink, beta1, beta2, step_size, bc2_sqrt, eps;
} AdamConst;

DNNL_BE_CLONES static void adamw_range(const AdamConst *k, size_t n, float *restrict p,
                                       const float *restrict g, float *restrict m,
                                       float *restrict v)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        double pi = p[i] * k->shrink;
        float mi = (float)(k->beta1 * m[i] + (1.0 - k->beta1) * g[i]);
        float vi = (float)(k->beta2 * v[i] + (1.0 - k->beta2) * (double)g[i] * g[i]);
        m[i] = mi;
        v[i] = vi;
        p[i] = (float)(pi - k->step_size * mi / (sqrt((double)vi) / k->bc2_sqrt + k->eps));
    }
}

void dnnl_be_adamw_step(const NnAdamW *h, long step, int decay, size_t n, float *p, const float *g,
                        float *m, float *v)
{
    AdamConst k = {
        .shrink = 1.0 - h->lr * (decay ? h->weight_decay : 0.0),
        .beta1 = h->beta1,
        .beta2 = h->beta2,
        .step_size = h->lr / (1.0 - pow(h->beta1, (double)step)),
        .bc2_sqrt = sqrt(1.0 - pow(h->beta2, (double)step)),
        .eps = h->eps,
    };
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * CHUNK;
        adamw_range(&k, n - i0 < CHUNK ? n - i0 : CHUNK, p + i0, g + i0, m + i0, v + i0);
    }
}

typedef struct SgdConst {
    double lr, wd, momentum;
    int first, nesterov;
} SgdConst;

DNNL_BE_CLONES static void sgd_range(const SgdConst *k, size_t n, float *restrict p,
                                     const float *restrict g, float *restrict buf)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        double d = g[i] + k->wd * p[i];
        if (buf) {
            /* PyTorch starts the buffer at the first gradient, not at zero */
            float b = (float)(k->first ? d : k->momentum * buf[i] + d);
            buf[i] = b;
            d = k->nesterov ? d + k->momentum * b : b;
        }
        p[i] = (float)(p[i] - k->lr * d);
    }
}

void dnnl_be_sgd_step(const NnSgd *h, long step, int decay, size_t n, float *p, const float *g,
                      float *buf)
{
    SgdConst k = {.lr = h->lr,
                  .wd = decay ? h->weight_decay : 0.0,
                  .momentum = h->momentum,
                  .first = step <= 1,
                  .nesterov = h->nesterov};
    int use_buf = h->momentum != 0.0;
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * CHUNK;
        sgd_range(&k, n - i0 < CHUNK ? n - i0 : CHUNK, p + i0, g + i0, use_buf ? buf + i0 : NULL);
    }
}

typedef struct RmsConst {
    double lr, alpha, eps, wd, momentum;
} RmsConst;

DNNL_BE_CLONES static void rmsprop_range(const RmsConst *k, size_t n, float *restrict p,
                                         const float *restrict g, float *restrict sq,
                                         float *restrict buf)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        double d = g[i] + k->wd * p[i];
        float s = (float)(k->alpha * sq[i] + (1.0 - k->alpha) * d * d);
        sq[i] = s;
        double avg = sqrt((double)s) + k->eps; /* eps outside the square root */
        if (buf) {
            float b = (float)(k->momentum * buf[i] + d / avg);
            buf[i] = b;
            p[i] = (float)(p[i] - k->lr * b);
        } else {
            p[i] = (float)(p[i] - k->lr * d / avg);
        }
    }
}

void dnnl_be_rmsprop_step(const NnRmsprop *h, int decay, size_t n, float *p, const float *g,
                          float *sq, float *buf)
{
    RmsConst k = {.lr = h->lr,
                  .alpha = h->alpha,
                  .eps = h->eps,
                  .wd = decay ? h->weight_decay : 0.0,
                  .momentum = h->momentum};
    int use_buf = h->momentum > 0.0;
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t i0 = c * CHUNK;
        rmsprop_range(&k, n - i0 < CHUNK ? n - i0 : CHUNK, p + i0, g + i0, sq + i0,
                      use_buf ? buf + i0 : NULL);
    }
}

#endif
