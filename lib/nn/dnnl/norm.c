/* norm.c: BatchNorm2d, NHWC: training mode on own kernels, eval mode on oneDNN's batch
 * normalization (dnnl_use_global_stats, forward and backward).
 *
 * Training mode is own code because oneDNN 2.6's batch norm is slow wherever the channel count
 * is not a multiple of 16 (its generic nspc kernel or SSE4.1/AVX2 ones: half of
 * shufflenet_v2_x1_0's oneDNN time, ONEDNN_VERBOSE=1), and mixing its kernels with own ones by
 * channel count moved the mobilenet_v3_large golden fixture 10 tolerances off where either
 * alone stays within 0.2 (summation order: the fixtures' conditioning, test_nn_model.c). Own
 * kernels on every layer: shufflenet_v2_x1_0 trains 1.5x faster on 1 thread, resnet18 no
 * slower. The rows M = N H W are cut into BN_BLOCKS fixed blocks, each summed per channel in
 * float in row order (vectorised over channels), the blocks added in order in double: the same
 * bits whatever the thread count. Forward takes one pass for the statistics (sums shifted by
 * a sample mean: own_forward_train), backward one for its two sums; PyTorch's running
 * statistics (unbiased variance var M / (M - 1), momentum rule in backend.h). An activation
 * after the BN may be fused into both passes (backend.h batchnorm_act_*).
 *
 * Eval backward's outputs are overwritten by oneDNN, so they go to the scratch arena and are
 * accumulated into dx, dgamma and dbeta (backend.h). With dnnl_use_scale | dnnl_use_shift the
 * backward pass needs DNNL_ARG_SHIFT although it does not read it (toolchain.md gotcha 1). */
#if ONFH_HAVE_DNNL

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/nn/dnnl/dnnl_be.h"
#include "lib/util/mem.h"

enum { KEY_BN = 2 };

enum { BN_FWD_EVAL, BN_BWD_EVAL, BN_KINDS };

typedef struct BnEntry {
    dnnl_primitive_desc_t hint; /* the forward pd the backward pd needs */
    DnnlBeExec ex[BN_KINDS];    /* made on first use */
} BnEntry;

static void bn_entry_free(void *p)
{
    BnEntry *e = p;
    for (int k = 0; k < BN_KINDS; k++)
        dnnl_be_exec_free(&e->ex[k]);
    if (e->hint)
        dnnl_primitive_desc_destroy(e->hint);
    mem_free(e);
}

static void bn_name(const NnBatchNorm *bn, int kind, char *buf, size_t len)
{
    static const char *const dir[BN_KINDS] = {"forward eval", "backward eval"};
    snprintf(buf, len, "batchnorm %s N%d C%d %dx%d", dir[kind], bn->n, bn->c, bn->h, bn->w);
}

static dnnl_batch_normalization_desc_t bn_desc(const NnBatchNorm *bn, dnnl_prop_kind_t prop,
                                               unsigned flags, const char *name)
{
    dnnl_dim_t d[4] = {bn->n, bn->c, bn->h, bn->w};
    dnnl_memory_desc_t x = dnnl_be_md(4, d, dnnl_nhwc);
    dnnl_batch_normalization_desc_t desc;
    if (prop == dnnl_backward)
        dnnl_be_check(
            dnnl_batch_normalization_backward_desc_init(&desc, prop, &x, &x, bn->eps, flags), name);
    else
        dnnl_be_check(dnnl_batch_normalization_forward_desc_init(&desc, prop, &x, bn->eps, flags),
                      name);
    return desc;
}

/* The executable of one kind for bn, made on first use. */
static DnnlBeExec *bn_exec(const NnBatchNorm *bn, int kind)
{
    float eps = bn->eps;
    DnnlBeKey k = {{KEY_BN, bn->n, bn->c, bn->h, bn->w}};
    memcpy(&k.v[5], &eps, sizeof eps);
    BnEntry *e = dnnl_be_cache_find(&k);
    if (!e) {
        e = mem_calloc(1, sizeof *e);
        if (!e)
            dnnl_be_check(dnnl_out_of_memory, "batchnorm cache entry");
        dnnl_be_cache_add(&k, e, bn_entry_free);
    }
    DnnlBeExec *ex = &e->ex[kind];
    if (ex->prim)
        return ex;

    char name[128];
    bn_name(bn, kind, name, sizeof name);
    unsigned flags = dnnl_use_scale | dnnl_use_shift | dnnl_use_global_stats;
    dnnl_primitive_desc_t pd;
    if (kind == BN_FWD_EVAL) {
        dnnl_batch_normalization_desc_t d = bn_desc(bn, dnnl_forward_inference, flags, name);
        pd = dnnl_be_pd(&d, dnnl_be_attr(0, 0), NULL, name);
        const int args[] = {DNNL_ARG_SRC,   DNNL_ARG_DST,  DNNL_ARG_SCALE,
                            DNNL_ARG_SHIFT, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
        ex->prim = dnnl_be_primitive(pd, name);
        for (int i = 0; i < 6; i++)
            dnnl_be_exec_arg(ex, pd, args[i]);
    } else {
        if (!e->hint) {
            dnnl_batch_normalization_desc_t d = bn_desc(bn, dnnl_forward_training, flags, name);
            e->hint = dnnl_be_pd(&d, dnnl_be_attr(0, 0), NULL, name);
        }
        dnnl_batch_normalization_desc_t d = bn_desc(bn, dnnl_backward, flags, name);
        pd = dnnl_be_pd(&d, dnnl_be_attr(0, 0), e->hint, name);
        const int args[] = {DNNL_ARG_SRC,      DNNL_ARG_MEAN,       DNNL_ARG_VARIANCE,
                            DNNL_ARG_DIFF_DST, DNNL_ARG_SCALE,      DNNL_ARG_SHIFT,
                            DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_SCALE, DNNL_ARG_DIFF_SHIFT};
        ex->prim = dnnl_be_primitive(pd, name);
        for (int i = 0; i < 9; i++)
            dnnl_be_exec_arg(ex, pd, args[i]);
    }
    dnnl_primitive_desc_destroy(pd);
    return ex;
}

static void bn_forward(const NnBatchNorm *bn, int kind, const float *x, const float *gamma,
                       const float *beta, const float *mean, const float *var, float *y)
{
    char name[128];
    bn_name(bn, kind, name, sizeof name);
    DnnlBeExec *ex = bn_exec(bn, kind);
    dnnl_be_exec_bind(ex, DNNL_ARG_SRC, x);
    dnnl_be_exec_bind(ex, DNNL_ARG_DST, y);
    dnnl_be_exec_bind(ex, DNNL_ARG_SCALE, gamma);
    dnnl_be_exec_bind(ex, DNNL_ARG_SHIFT, beta);
    dnnl_be_exec_bind(ex, DNNL_ARG_MEAN, mean);
    dnnl_be_exec_bind(ex, DNNL_ARG_VARIANCE, var);
    dnnl_be_exec_run(ex, name);
}

// --- own kernels: training mode ----------------------------------------------------------------

enum { BN_BLOCKS = 64 };

/* acc[c] += sum over rows [r0, r1) of x (rows, C) - shift, and sq[c] of its square (sq may be
 * NULL): one block's row sums, vectorised over channels. */
DNNL_BE_CLONES static void block_sums(int c, size_t r0, size_t r1, const float *restrict x,
                                      const float *restrict shift, float *restrict acc,
                                      float *restrict sq)
{
    for (int k = 0; k < c; k++)
        acc[k] = 0.0f;
    if (sq)
        for (int k = 0; k < c; k++)
            sq[k] = 0.0f;
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * (size_t)c;
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
 * partial sums pa, pb (BN_BLOCKS, C) each, their totals ta, tb (C) in double, and four
 * per-channel float vectors v[0..3] (C) for the passes that follow. */
typedef struct OwnScratch {
    float *pa, *pb, *v[4];
    double *ta, *tb;
} OwnScratch;

static OwnScratch own_scratch(const NnBatchNorm *bn)
{
    size_t c = (size_t)bn->c;
    char *p =
        dnnl_be_arena(2 * c * sizeof(double) + (2 * (size_t)BN_BLOCKS + 4) * c * sizeof(float));
    OwnScratch o;
    o.ta = (double *)p, o.tb = o.ta + c; /* the arena is 64-byte aligned: doubles first */
    o.pa = (float *)(o.tb + c), o.pb = o.pa + BN_BLOCKS * c;
    for (int k = 0; k < 4; k++)
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

/* y = a((x - mean) scale + beta) over rows [r0, r1) of (rows, C). */
DNNL_BE_INLINE void normalize_rows_a(int A, int c, size_t r0, size_t r1, const float *restrict x,
                                     const float *restrict mean, const float *restrict scale,
                                     const float *restrict beta, float *restrict y)
{
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * (size_t)c;
        float *yr = y + r * (size_t)c;
#pragma omp simd
        for (int k = 0; k < c; k++)
            yr[k] = act_value(A, (xr[k] - mean[k]) * scale[k] + beta[k]);
    }
}

DNNL_BE_CLONES static void normalize_rows(int c, size_t r0, size_t r1, int act,
                                          const float *restrict x, const float *restrict mean,
                                          const float *restrict scale, const float *restrict beta,
                                          float *restrict y)
{
    DISPATCH_ACT(act, normalize_rows_a, c, r0, r1, x, mean, scale, beta, y)
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
    int c = bn->c;
    size_t m = (size_t)bn->n * bn->h * bn->w;
    OwnScratch o = own_scratch(bn);
    float *pa = o.pa, *pb = o.pb, *shift = o.v[0], *scale = o.v[1];
    double *ta = o.ta, *tb = o.tb;
    size_t sample = block_row(m, 1) ? block_row(m, 1) : 1;
    memset(shift, 0, (size_t)c * sizeof(float));
    block_sums(c, 0, sample, x, shift, pa, NULL);
    for (int k = 0; k < c; k++)
        shift[k] = pa[k] / (float)sample;
    int par = m * c >= DNNL_BE_PAR_MIN;
#pragma omp parallel for if (par) schedule(static)
    for (int b = 0; b < BN_BLOCKS; b++)
        block_sums(c, block_row(m, b), block_row(m, b + 1), x, shift, pa + (size_t)b * c,
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
        normalize_rows(c, block_row(m, b), block_row(m, b + 1), act, x, save_mean, scale, beta, y);
}

/* The gradient at BN's output, g = a'(z) dy with z = (x - mean) scale + beta recomputed (dy
 * itself without an activation, and then nothing else is read), for channel k of a row. */
#define GRAD_AT(A, k)                                                                              \
    ((A) == ACT_NONE ? gr[k] : act_grad((A), (xr[k] - mean[k]) * scale[k] + beta[k], gr[k]))

/* acc[c] = sum g, sq[c] = sum g (x - mean) over rows [r0, r1). */
DNNL_BE_INLINE void grad_sums_a(int A, int c, size_t r0, size_t r1, const float *restrict x,
                                const float *restrict dy, const float *restrict mean,
                                const float *restrict scale, const float *restrict beta,
                                float *restrict acc, float *restrict sq)
{
    for (int k = 0; k < c; k++)
        acc[k] = sq[k] = 0.0f;
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * (size_t)c, *gr = dy + r * (size_t)c;
#pragma omp simd
        for (int k = 0; k < c; k++) {
            float g = GRAD_AT(A, k);
            acc[k] += g;
            sq[k] += g * (xr[k] - mean[k]);
        }
    }
}

DNNL_BE_CLONES static void
block_grad_sums(int c, size_t r0, size_t r1, int act, const float *restrict x,
                const float *restrict dy, const float *restrict mean, const float *restrict scale,
                const float *restrict beta, float *restrict acc, float *restrict sq){
    DISPATCH_ACT(act, grad_sums_a, c, r0, r1, x, dy, mean, scale, beta, acc, sq)}

/* dx (=, fresh, or +=) a g + b (x - mean) + d per channel. A fresh dx gets a loop of its own,
 * which never reads it. */
DNNL_BE_INLINE
    void dx_rows_a(int A, int c, size_t r0, size_t r1, int fresh, const float *restrict x,
                   const float *restrict dy, const float *restrict mean,
                   const float *restrict scale, const float *restrict beta, const float *restrict a,
                   const float *restrict b, const float *restrict d, float *restrict dx)
{
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * (size_t)c, *gr = dy + r * (size_t)c;
        float *o = dx + r * (size_t)c;
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

DNNL_BE_CLONES static void dx_rows(int c, size_t r0, size_t r1, int act, int fresh,
                                   const float *restrict x, const float *restrict dy,
                                   const float *restrict mean, const float *restrict scale,
                                   const float *restrict beta, const float *restrict a,
                                   const float *restrict b, const float *restrict d,
                                   float *restrict dx)
{
    DISPATCH_ACT(act, dx_rows_a, c, r0, r1, fresh, x, dy, mean, scale, beta, a, b, d, dx)
}

/* With s1 = sum g, s2 = sum g (x - mean), g the gradient at BN's output: dbeta += s1,
 * dgamma += invstd s2, and dx = gamma invstd (g - s1 / M - (x - mean) invstd^2 s2 / M) (ref's
 * formula). */
static void own_backward_train(const NnBatchNorm *bn, int act, const float *x, const float *gamma,
                               const float *beta, const float *mean, const float *invstd,
                               const float *dy, float *dx, float *dgamma, float *dbeta)
{
    int c = bn->c;
    size_t m = (size_t)bn->n * bn->h * bn->w;
    OwnScratch o = own_scratch(bn);
    float *pa = o.pa, *pb = o.pb, *a = o.v[0], *b = o.v[1], *d = o.v[2];
    float *scale = o.v[3];
    double *ta = o.ta, *tb = o.tb;
    if (act != ACT_NONE)
        bn_scale(c, gamma, invstd, scale);
    int par = m * c >= DNNL_BE_PAR_MIN;
#pragma omp parallel for if (par) schedule(static)
    for (int k = 0; k < BN_BLOCKS; k++)
        block_grad_sums(c, block_row(m, k), block_row(m, k + 1), act, x, dy, mean, scale, beta,
                        pa + (size_t)k * c, pb + (size_t)k * c);
    blocks_total(c, pa, ta);
    blocks_total(c, pb, tb);
    for (int k = 0; k < c; k++) {
        dbeta[k] += (float)ta[k];
        dgamma[k] += (float)(tb[k] * invstd[k]);
        double g = (double)gamma[k] * invstd[k];
        a[k] = (float)g;
        b[k] = (float)(-g * invstd[k] * invstd[k] * tb[k] / (double)m);
        d[k] = (float)(-g * ta[k] / (double)m);
    }
    if (dx) {
        int fresh = dnnl_be_fresh & 1;
#pragma omp parallel for if (par) schedule(static)
        for (int k = 0; k < BN_BLOCKS; k++)
            dx_rows(c, block_row(m, k), block_row(m, k + 1), act, fresh, x, dy, mean, scale, beta,
                    a, b, d, dx);
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

void dnnl_be_batchnorm_forward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                    const float *beta, const float *running_mean,
                                    const float *running_var, float *y)
{
    bn_forward(bn, BN_FWD_EVAL, x, gamma, beta, running_mean, running_var, y);
}

/* Runs backward of one kind with the given statistics (var is the variance, not invstd) and
 * accumulates its outputs. Arena: [diff_src (N,H,W,C)][dgamma (C)][dbeta (C)]. */
static void bn_backward(const NnBatchNorm *bn, int kind, const float *x, const float *gamma,
                        const float *mean, const float *var, const float *dy, float *dx,
                        float *dgamma, float *dbeta, char *arena)
{
    char name[128];
    bn_name(bn, kind, name, sizeof name);
    size_t n = (size_t)bn->n * bn->c * bn->h * bn->w;
    float *dx_tmp = (float *)arena;
    float *dg_tmp = (float *)(arena + dnnl_be_round(n * sizeof(float)));
    float *db_tmp = dg_tmp + bn->c;
    DnnlBeExec *ex = bn_exec(bn, kind);
    dnnl_be_exec_bind(ex, DNNL_ARG_SRC, x);
    dnnl_be_exec_bind(ex, DNNL_ARG_MEAN, mean);
    dnnl_be_exec_bind(ex, DNNL_ARG_VARIANCE, var);
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_DST, dy);
    dnnl_be_exec_bind(ex, DNNL_ARG_SCALE, gamma);
    dnnl_be_exec_bind(ex, DNNL_ARG_SHIFT, gamma); /* required, never read (gotcha 1) */
    int fresh = dx && (dnnl_be_fresh & 1);        /* written in place (backend.h) */
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_SRC, fresh ? dx : dx_tmp);
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_SCALE, dg_tmp);
    dnnl_be_exec_bind(ex, DNNL_ARG_DIFF_SHIFT, db_tmp);
    dnnl_be_exec_run(ex, name);
    if (dx && !fresh)
        dnnl_be_accumulate(n, dx_tmp, dx);
    for (int c = 0; c < bn->c; c++) {
        dgamma[c] += dg_tmp[c];
        dbeta[c] += db_tmp[c];
    }
}

static size_t bn_arena_bytes(const NnBatchNorm *bn)
{
    size_t n = (size_t)bn->n * bn->c * bn->h * bn->w;
    return dnnl_be_round(n * sizeof(float)) + 3 * dnnl_be_round((size_t)bn->c * sizeof(float));
}

void dnnl_be_batchnorm_backward_train(const NnBatchNorm *bn, const float *x, const float *gamma,
                                      const float *save_mean, const float *save_invstd,
                                      const float *dy, float *dx, float *dgamma, float *dbeta)
{
    own_backward_train(bn, ACT_NONE, x, gamma, NULL, save_mean, save_invstd, dy, dx, dgamma, dbeta);
}

void dnnl_be_batchnorm_act_backward_train(const NnBatchNorm *bn, NnAct a, const float *x,
                                          const float *gamma, const float *beta,
                                          const float *save_mean, const float *save_invstd,
                                          const float *dy, float *dx, float *dgamma, float *dbeta)
{
    own_backward_train(bn, (int)a, x, gamma, beta, save_mean, save_invstd, dy, dx, dgamma, dbeta);
}

void dnnl_be_batchnorm_backward_eval(const NnBatchNorm *bn, const float *x, const float *gamma,
                                     const float *running_mean, const float *running_var,
                                     const float *dy, float *dx, float *dgamma, float *dbeta)
{
    char *arena = dnnl_be_arena(bn_arena_bytes(bn));
    bn_backward(bn, BN_BWD_EVAL, x, gamma, running_mean, running_var, dy, dx, dgamma, dbeta, arena);
}

#endif
