/* norm.c: BatchNorm2d, NHWC, on own kernels in every mode (training and eval, forward and
 * backward), x and dx possibly a channel view (ops.h ldx: rows ldx floats apart).
 *
 * Own code because oneDNN 2.6's batch norm is slow wherever the channel count is not a
 * multiple of 16 (its generic nspc kernel or SSE4.1/AVX2 ones: half of shufflenet_v2_x1_0's
 * oneDNN time, ONEDNN_VERBOSE=1), it has no channel views, and mixing its kernels with own ones
 * by channel count moved the mobilenet_v3_large golden fixture 10 tolerances off where either
 * alone stays within 0.2 (summation order: the fixtures' conditioning, test_nn_model.c). Own
 * kernels on every layer: shufflenet_v2_x1_0 trains 1.5x faster on 1 thread, resnet18 no
 * slower. The rows M = N H W are cut into BN_BLOCKS fixed blocks, each summed per channel in
 * float in row order (vectorised over channels), the blocks added in order in double: the same
 * bits whatever the thread count. Forward takes one pass for the statistics (sums shifted by
 * a sample mean: own_forward_train), backward one for its two sums; PyTorch's running
 * statistics (unbiased variance var M / (M - 1), momentum rule in backend.h). An activation
 * after the BN may be fused into both passes (backend.h batchnorm_act_*). Eval mode is the
 * same code with the running statistics as constants. */
#if ONFH_HAVE_DNNL

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lib/nn/dnnl/dnnl_be.h"

// --- kernels ----------------------------------------------------------------------------------

enum { BN_BLOCKS = 64 };

/* acc[c] += sum over rows [r0, r1) of x (rows, C; rows ld floats apart) - shift, and sq[c] of
 * its square (sq may be NULL): one block's row sums, vectorised over channels. */
DNNL_BE_CLONES static void block_sums(int c, int ld, size_t r0, size_t r1, const float *restrict x,
                                      const float *restrict shift, float *restrict acc,
                                      float *restrict sq)
{
    for (int k = 0; k < c; k++)
        acc[k] = 0.0f;
    if (sq)
        for (int k = 0; k < c; k++)
            sq[k] = 0.0f;
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * (size_t)ld;
        if (sq) {
#pragma omp simd
            for (int k = 0; k < c; k++) {
                float d = xr[k] - shift[k];
                acc[k] += d;
                sq[k] += d * d;
            }
        } else {
#pragma omp simd
            for (int k = 0; k < c; k++)
                acc[k] += xr[k] - shift[k];
        }
    }
}

/* The blocks' partials (BN_BLOCKS, C) added in order, in double. */
static void blocks_total(int c, const float *partial, double *out)
{
    for (int k = 0; k < c; k++)
        out[k] = 0.0;
    for (int b = 0; b < BN_BLOCKS; b++)
        for (int k = 0; k < c; k++)
            out[k] += partial[(size_t)b * c + k];
}

static size_t block_row(size_t m, int b)
{
    return m * (size_t)b / BN_BLOCKS;
}

/* The scratch of one call, all in the backend's arena (no allocation per call): the blocks'
 * partial sums pa, pb (BN_BLOCKS, C) each, their totals ta, tb (C) in double, and five
 * per-channel float vectors v[0..4] (C) for the passes that follow. */
typedef struct OwnScratch {
    float *pa, *pb, *v[5];
    double *ta, *tb;
} OwnScratch;

static OwnScratch own_scratch(const NnBatchNorm *bn)
{
    size_t c = (size_t)bn->c;
    char *p =
        dnnl_be_arena(2 * c * sizeof(double) + (2 * (size_t)BN_BLOCKS + 5) * c * sizeof(float));
    OwnScratch o;
    o.ta = (double *)p, o.tb = o.ta + c; /* the arena is 64-byte aligned: doubles first */
    o.pa = (float *)(o.tb + c), o.pb = o.pa + BN_BLOCKS * c;
    for (int k = 0; k < 5; k++)
        o.v[k] = o.pb + BN_BLOCKS * c + k * c;
    return o;
}

/* The activation fused after the batch norm (backend.h batchnorm_act_*), or none. */
enum { ACT_NONE = -1 };

/* Calls fn(A, ...) with the constant A = act: each kernel below is an always-inline body that
 * takes the activation as its first argument, and each activation gets a copy of it in which
 * act_value / act_grad fold to straight-line, vectorisable code. */
#define DISPATCH_ACT(act, fn, ...)                                                                 \
    switch (act) {                                                                                 \
    case NN_RELU: fn(NN_RELU, __VA_ARGS__); break;                                                 \
    case NN_RELU6: fn(NN_RELU6, __VA_ARGS__); break;                                               \
    case NN_HARDSWISH: fn(NN_HARDSWISH, __VA_ARGS__); break;                                       \
    case NN_SILU: fn(NN_SILU, __VA_ARGS__); break;                                                 \
    default: fn(ACT_NONE, __VA_ARGS__); break;                                                     \
    }

/* e^x in straight-line float code that vectorises under omp simd (glibc's expf does not
 * without -ffast-math): x = n ln2 + r with |r| <= ln2 / 2 (n rounded by the 1.5 2^23 trick,
 * ln2 in two parts), Cephes' degree-6 polynomial for e^r (about 1 ulp), and 2^n written into
 * the exponent bits. x is clamped to [-87.3, 88.7], where e^x is a normal float. */
DNNL_BE_INLINE float exp_poly(float x)
{
    x = x < -87.3f ? -87.3f : x > 88.7f ? 88.7f : x;
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                4.1665795894e-2f) *
                   r +
               1.6666665459e-1f) *
                  r +
              5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000 + 127) * (1 << 23); /* t's low mantissa bits hold n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* a(z), with ref's formulas (lib/nn/ref/act.c). */
DNNL_BE_INLINE float act_value(int a, float z)
{
    switch (a) {
    case NN_RELU: return z > 0.0f ? z : 0.0f;
    case NN_RELU6: return z < 0.0f ? 0.0f : z > 6.0f ? 6.0f : z;
    case NN_HARDSWISH: {
        float r = z + 3.0f;
        r = r < 0.0f ? 0.0f : r > 6.0f ? 6.0f : r;
        return z * r / 6.0f;
    }
    case NN_SILU: return z / (1.0f + exp_poly(-z));
    default: return z;
    }
}

/* a'(z) g, PyTorch's one-sided values at the kinks (backend.h act_backward). */
DNNL_BE_INLINE float act_grad(int a, float z, float g)
{
    switch (a) {
    case NN_RELU: return z > 0.0f ? g : 0.0f;
    case NN_RELU6: return z > 0.0f && z < 6.0f ? g : 0.0f;
    case NN_HARDSWISH: return z < -3.0f ? 0.0f : z <= 3.0f ? g * (z / 3.0f + 0.5f) : g;
    case NN_SILU: {
        float s = 1.0f / (1.0f + exp_poly(-z));
        return g * (s * (1.0f + z * (1.0f - s)));
    }
    default: return g;
    }
}

/* scale = gamma invstd per channel, from the saved float statistics, so that the fused
 * backward recomputes z = (x - mean) scale + beta to the bit. (x - mean first, not
 * x scale + (beta - mean scale): with |mean| >> std the latter loses z to cancellation.) */
static void bn_scale(int c, const float *gamma, const float *invstd, float *scale)
{
    for (int k = 0; k < c; k++)
        scale[k] = (float)((double)gamma[k] * invstd[k]);
}

/* y = a((x - mean) scale + beta) over rows [r0, r1) of (rows, C), x's rows ld floats apart. */
DNNL_BE_INLINE void normalize_rows_a(int A, int c, int ld, size_t r0, size_t r1,
                                     const float *restrict x, const float *restrict mean,
                                     const float *restrict scale, const float *restrict beta,
                                     float *restrict y)
{
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * (size_t)ld;
        float *yr = y + r * (size_t)c;
#pragma omp simd
        for (int k = 0; k < c; k++)
            yr[k] = act_value(A, (xr[k] - mean[k]) * scale[k] + beta[k]);
    }
}

DNNL_BE_CLONES static void normalize_rows(int c, int ld, size_t r0, size_t r1, int act,
                                          const float *restrict x, const float *restrict mean,
                                          const float *restrict scale, const float *restrict beta,
                                          float *restrict y)
{
    DISPATCH_ACT(act, normalize_rows_a, c, ld, r0, r1, x, mean, scale, beta, y);
}

/* One pass for the statistics: the sums of d = x - shift and of d^2, with shift the mean of
 * a sample (block 0's rows, 1/BN_BLOCKS of them), so that mean = shift + sum d / M and
 * var = (sum d^2 - (sum d)^2 / M) / M (the corrected two-pass formula, which holds for any
 * shift) lose little to cancellation: |mean - shift| is a small fraction of the standard
 * deviation, where the naive one-pass formula (shift 0) fails when |mean| >> std. Then
 * y = act((x - mean) scale + beta) (bn_scale). Why not two full passes: x is read once less, and BN
 * is memory-bound. */
static void own_forward_train(const NnBatchNorm *bn, int act, const float *x, const float *gamma,
                              const float *beta, float *y, float *running_mean, float *running_var,
                              float *save_mean, float *save_invstd)
{
    int c = bn->c, ld = bn->ldx ? bn->ldx : c;
    size_t m = (size_t)bn->n * bn->h * bn->w;
    OwnScratch o = own_scratch(bn);
    float *pa = o.pa, *pb = o.pb, *shift = o.v[0], *scale = o.v[1];
    double *ta = o.ta, *tb = o.tb;
    size_t sample = block_row(m, 1) ? block_row(m, 1) : 1;
    memset(shift, 0, (size_t)c * sizeof(float));
    block_sums(c, ld, 0, sample, x, shift, pa, NULL);
    for (int k = 0; k < c; k++)
        shift[k] = pa[k] / (float)sample;
    int par = m * c >= DNNL_BE_PAR_MIN;
#pragma omp parallel for if (par) schedule(static)
    for (int b = 0; b < BN_BLOCKS; b++)
        block_sums(c, ld, block_row(m, b), block_row(m, b + 1), x, shift, pa + (size_t)b * c,
                   pb + (size_t)b * c);
    blocks_total(c, pa, ta);
    blocks_total(c, pb, tb);
    for (int k = 0; k < c; k++)
        save_mean[k] = (float)(shift[k] + ta[k] / (double)m);
    double mom = bn->momentum;
    for (int k = 0; k < c; k++) {
        double var = (tb[k] - ta[k] * ta[k] / (double)m) / (double)m;
        if (var < 0.0)
            var = 0.0;
        save_invstd[k] = (float)(1.0 / sqrt(var + bn->eps));
        running_mean[k] = (float)((1.0 - mom) * running_mean[k] + mom * save_mean[k]);
        running_var[k] = (float)((1.0 - mom) * running_var[k] + mom * var * m / (m - 1.0));
    }
    bn_scale(c, gamma, save_invstd, scale);
#pragma omp parallel for if (par) schedule(static)
    for (int b = 0; b < BN_BLOCKS; b++)
        normalize_rows(c, ld, block_row(m, b), block_row(m, b + 1), act, x, save_mean, scale, beta,
                       y);
}

/* The gradient at BN's output, g = a'(z) dy with z = (x - mean) scale + beta recomputed (dy
 * itself without an activation, and then nothing else is read), for channel k of a row. */
#define GRAD_AT(A, k)                                                                              \
    ((A) == ACT_NONE ? gr[k] : act_grad((A), (xr[k] - mean[k]) * scale[k] + beta[k], gr[k]))

/* acc[c] = sum g, sq[c] = sum g (x - mean) over rows [r0, r1); x's rows ld floats apart, dy's
 * C. */
DNNL_BE_INLINE void grad_sums_a(int A, int c, int ld, size_t r0, size_t r1, const float *restrict x,
                                const float *restrict dy, const float *restrict mean,
                                const float *restrict scale, const float *restrict beta,
                                float *restrict acc, float *restrict sq)
{
    for (int k = 0; k < c; k++)
        acc[k] = sq[k] = 0.0f;
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * (size_t)ld, *gr = dy + r * (size_t)c;
#pragma omp simd
        for (int k = 0; k < c; k++) {
            float g = GRAD_AT(A, k);
            acc[k] += g;
            sq[k] += g * (xr[k] - mean[k]);
        }
    }
}

DNNL_BE_CLONES static void block_grad_sums(int c, int ld, size_t r0, size_t r1, int act,
                                           const float *restrict x, const float *restrict dy,
                                           const float *restrict mean, const float *restrict scale,
                                           const float *restrict beta, float *restrict acc,
                                           float *restrict sq)
{
    DISPATCH_ACT(act, grad_sums_a, c, ld, r0, r1, x, dy, mean, scale, beta, acc, sq);
}

/* dx (=, fresh, or +=) a g + b (x - mean) + d per channel; x's and dx's rows ld floats apart,
 * dy's C. A fresh dx gets a loop of its own, which never reads it. */
DNNL_BE_INLINE void dx_rows_a(int A, int c, int ld, size_t r0, size_t r1, int fresh,
                              const float *restrict x, const float *restrict dy,
                              const float *restrict mean, const float *restrict scale,
                              const float *restrict beta, const float *restrict a,
                              const float *restrict b, const float *restrict d, float *restrict dx)
{
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * (size_t)ld, *gr = dy + r * (size_t)c;
        float *o = dx + r * (size_t)ld;
        if (fresh) {
#pragma omp simd
            for (int k = 0; k < c; k++)
                o[k] = a[k] * GRAD_AT(A, k) + b[k] * (xr[k] - mean[k]) + d[k];
        } else {
#pragma omp simd
            for (int k = 0; k < c; k++)
                o[k] += a[k] * GRAD_AT(A, k) + b[k] * (xr[k] - mean[k]) + d[k];
        }
    }
}

DNNL_BE_CLONES static void dx_rows(int c, int ld, size_t r0, size_t r1, int act, int fresh,
                                   const float *restrict x, const float *restrict dy,
                                   const float *restrict mean, const float *restrict scale,
                                   const float *restrict beta, const float *restrict a,
                                   const float *restrict b, const float *restrict d,
                                   float *restrict dx)
{
    DISPATCH_ACT(act, dx_rows_a, c, ld, r0, r1, fresh, x, dy, mean, scale, beta, a, b, d, dx);
}

/* With s1 = sum g, s2 = sum g (x - mean), g the gradient at BN's output: dbeta += s1,
 * dgamma += invstd s2, and in training mode (through the batch statistics)
 * dx = gamma invstd (g - s1 / M - (x - mean) invstd^2 s2 / M) (ref's formula), in eval mode
 * (statistics constant) dx = gamma invstd g. o: the scratch (v[4] may hold invstd). */
static void own_backward(const NnBatchNorm *bn, const OwnScratch *o, int training, int act,
                         const float *x, const float *gamma, const float *beta, const float *mean,
                         const float *invstd, const float *dy, float *dx, float *dgamma,
                         float *dbeta)
{
    int c = bn->c, ld = bn->ldx ? bn->ldx : c;
    size_t m = (size_t)bn->n * bn->h * bn->w;
    float *pa = o->pa, *pb = o->pb, *a = o->v[0], *b = o->v[1], *d = o->v[2];
    float *scale = o->v[3];
    double *ta = o->ta, *tb = o->tb;
    if (act != ACT_NONE)
        bn_scale(c, gamma, invstd, scale);
    int par = m * c >= DNNL_BE_PAR_MIN;
#pragma omp parallel for if (par) schedule(static)
    for (int k = 0; k < BN_BLOCKS; k++)
        block_grad_sums(c, ld, block_row(m, k), block_row(m, k + 1), act, x, dy, mean, scale, beta,
                        pa + (size_t)k * c, pb + (size_t)k * c);
    blocks_total(c, pa, ta);
    blocks_total(c, pb, tb);
    for (int k = 0; k < c; k++) {
        dbeta[k] += (float)ta[k];
        dgamma[k] += (float)(tb[k] * invstd[k]);
        double g = (double)gamma[k] * invstd[k];
        a[k] = (float)g;
        b[k] = training ? (float)(-g * invstd[k] * invstd[k] * tb[k] / (double)m) : 0.0f;
        d[k] = training ? (float)(-g * ta[k] / (double)m) : 0.0f;
    }
    if (dx) {
        int fresh = dnnl_be_fresh & 1;
#pragma omp parallel for if (par) schedule(static)
        for (int k = 0; k < BN_BLOCKS; k++)
            dx_rows(c, ld, block_row(m, k), block_row(m, k + 1), act, fresh, x, dy, mean, scale,
                    beta, a, b, d, dx);
    }
}

// --- entries ---------------------------------------------------------------------------------

void dnnl_be_batchnorm_forward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                     const float *beta, float *y, float *running_mean,
                                     float *running_var, int64_t *num_batches_tracked,
                                     float *save_mean, float *save_invstd)
{
    own_forward_train(bn, ACT_NONE, x, gamma, beta, y, running_mean, running_var, save_mean,
                      save_invstd);
    *num_batches_tracked += 1;
}

void dnnl_be_batchnorm_act_forward_train(const NnBatchNorm *bn, NnAct a, const float *x,
                                         const float *gamma, const float *beta, float *y,
                                         float *running_mean, float *running_var,
                                         int64_t *num_batches_tracked, float *save_mean,
                                         float *save_invstd)
{
    own_forward_train(bn, (int)a, x, gamma, beta, y, running_mean, running_var, save_mean,
                      save_invstd);
    *num_batches_tracked += 1;
}

/* y = act((x - running_mean) scale + beta) with scale = gamma / sqrt(running_var + eps). */
static void own_forward_eval(const NnBatchNorm *bn, int act, const float *x, const float *gamma,
                             const float *beta, const float *running_mean, const float *running_var,
                             float *y)
{
    int c = bn->c, ld = bn->ldx ? bn->ldx : c;
    size_t m = (size_t)bn->n * bn->h * bn->w;
    float *scale = own_scratch(bn).v[0];
    for (int k = 0; k < c; k++)
        scale[k] = (float)(gamma[k] / sqrt((double)running_var[k] + bn->eps));
#pragma omp parallel for if (m * c >= DNNL_BE_PAR_MIN) schedule(static)
    for (int b = 0; b < BN_BLOCKS; b++)
        normalize_rows(c, ld, block_row(m, b), block_row(m, b + 1), act, x, running_mean, scale,
                       beta, y);
}

void dnnl_be_batchnorm_forward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                    const float *beta, const float *running_mean,
                                    const float *running_var, float *y)
{
    own_forward_eval(bn, ACT_NONE, x, gamma, beta, running_mean, running_var, y);
}

void dnnl_be_batchnorm_act_forward_eval(const NnBatchNorm *bn, NnAct a, const float *x,
                                        const float *gamma, const float *beta,
                                        const float *running_mean, const float *running_var,
                                        float *y)
{
    own_forward_eval(bn, (int)a, x, gamma, beta, running_mean, running_var, y);
}

void dnnl_be_batchnorm_backward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                      const float *save_mean, const float *save_invstd,
                                      const float *dy, float *dx, float *dgamma, float *dbeta)
{
    OwnScratch o = own_scratch(bn);
    own_backward(bn, &o, 1, ACT_NONE, x, gamma, NULL, save_mean, save_invstd, dy, dx, dgamma,
                 dbeta);
}

void dnnl_be_batchnorm_act_backward_train(const NnBatchNorm *bn, NnAct a, const float *x,
                                          const float *gamma, const float *beta,
                                          const float *save_mean, const float *save_invstd,
                                          const float *dy, float *dx, float *dgamma, float *dbeta)
{
    OwnScratch o = own_scratch(bn);
    own_backward(bn, &o, 1, (int)a, x, gamma, beta, save_mean, save_invstd, dy, dx, dgamma, dbeta);
}

void dnnl_be_batchnorm_backward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                     const float *running_mean, const float *running_var,
                                     const float *dy, float *dx, float *dgamma, float *dbeta)
{
    OwnScratch o = own_scratch(bn);
    float *invstd = o.v[4];
    for (int k = 0; k < bn->c; k++)
        invstd[k] = (float)(1.0 / sqrt((double)running_var[k] + bn->eps));
    own_backward(bn, &o, 0, ACT_NONE, x, gamma, NULL, running_mean, invstd, dy, dx, dgamma, dbeta);
}

#endif
