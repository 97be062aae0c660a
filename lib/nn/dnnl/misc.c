/* misc.c: the oneDNN backend's tensor plumbing in NHWC, by hand: layout conversion, residual
 * add, channel-broadcast multiply, channel concat / split / shuffle, dropout, stochastic depth
 * and the cross-entropy loss.
 *
 * In NHWC one pixel's channels are one contiguous run of C floats, so every channel operation
 * is a loop over pixels (in parallel) around a short contiguous loop over channels: concat
 * copies C_i floats per part and pixel, chanmul scales a pixel by the (C) row of s of its
 * image. None of this is worth a oneDNN primitive: the loops run at memory speed and the
 * backward passes add straight into their outputs, as backend.h wants.
 *
 * Dropout and stochastic depth use the flat element (or sample) index, as ref does: dropout
 * is only applied to (N,F) tensors, the same in both layouts, so masks agree with ref. The
 * loss works on (N,K) logits, also the same in both layouts, and reuses ref's kernel: it runs
 * once per step on a few thousand values. */
#if ONFH_HAVE_DNNL

#include <math.h>
#include <string.h>

#include "lib/nn/backend.h"
#include "lib/nn/dnnl/dnnl_be.h"

#define CHUNK 4096
#define TILE  32

// --- layout ----------------------------------------------------------------------------------

/* x: (N,C,HW) -> y: (N,HW,C), in 32x32 tiles so both sides are read and written in runs. */
void dnnl_be_to_nhwc(int n, int c, int hw, const float *x, float *y)
{
#pragma omp parallel for collapse(2) if ((size_t)n * c * hw >= DNNL_BE_PAR_MIN)
    for (int b = 0; b < n; b++)
        for (int p0 = 0; p0 < hw; p0 += TILE)
            for (int c0 = 0; c0 < c; c0 += TILE) {
                const float *xb = x + (size_t)b * c * hw;
                float *yb = y + (size_t)b * c * hw;
                int p1 = p0 + TILE < hw ? p0 + TILE : hw;
                int c1 = c0 + TILE < c ? c0 + TILE : c;
                for (int p = p0; p < p1; p++)
                    for (int ch = c0; ch < c1; ch++)
                        yb[(size_t)p * c + ch] = xb[(size_t)ch * hw + p];
            }
}

/* x: (N,HW,C) -> y: (N,C,HW). */
void dnnl_be_from_nhwc(int n, int c, int hw, const float *x, float *y)
{
#pragma omp parallel for collapse(2) if ((size_t)n * c * hw >= DNNL_BE_PAR_MIN)
    for (int b = 0; b < n; b++)
        for (int c0 = 0; c0 < c; c0 += TILE)
            for (int p0 = 0; p0 < hw; p0 += TILE) {
                const float *xb = x + (size_t)b * c * hw;
                float *yb = y + (size_t)b * c * hw;
                int p1 = p0 + TILE < hw ? p0 + TILE : hw;
                int c1 = c0 + TILE < c ? c0 + TILE : c;
                for (int ch = c0; ch < c1; ch++)
                    for (int p = p0; p < p1; p++)
                        yb[(size_t)ch * hw + p] = xb[(size_t)p * c + ch];
            }
}

// --- add and chanmul -------------------------------------------------------------------------

/* y may equal a or b, so no restrict. */
DNNL_BE_CLONES static void add_range(size_t n, const float *a, const float *b, float *y)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void dnnl_be_add_forward(size_t n, const float *a, const float *b, float *y)
{
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t i0 = ch * CHUNK;
        add_range(n - i0 < CHUNK ? n - i0 : CHUNK, a + i0, b + i0, y + i0);
    }
}

void dnnl_be_add_backward(size_t n, const float *dy, float *da, float *db)
{
    if (da)
        dnnl_be_deliver(0, n, dy, da);
    if (db)
        dnnl_be_deliver(1, n, dy, db);
}

/* y = a(x1 + x2) with a relu (hi = infinity) or relu6 (hi = 6); y may be x1 or x2. */
DNNL_BE_CLONES static void add_act_range(size_t n, float hi, const float *a, const float *b,
                                         float *y)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = v < 0.0f ? 0.0f : v > hi ? hi : v;
    }
}

void dnnl_be_add_act_forward(NnAct act, size_t n, const float *a, const float *b, float *y)
{
    float hi = act == NN_RELU6 ? 6.0f : INFINITY;
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t i0 = ch * CHUNK;
        add_act_range(n - i0 < CHUNK ? n - i0 : CHUNK, hi, a + i0, b + i0, y + i0);
    }
}

/* Gradient modes of one input of the fused add: none (NULL), written (fresh), added to. */
enum { GRAD_NONE, GRAD_WRITE, GRAD_ADD };

/* g = a'(y) dy, read off the output (relu' = 0 at y = 0, relu6' also at y = 6, backend.h's
 * kink rules), into da and db by their modes. */
DNNL_BE_INLINE void add_act_grad_a(int ma, int mb, size_t n, float hi, const float *restrict y,
                                   const float *restrict dy, float *restrict da, float *restrict db)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float g = y[i] > 0.0f && y[i] < hi ? dy[i] : 0.0f;
        if (ma == GRAD_WRITE)
            da[i] = g;
        else if (ma == GRAD_ADD)
            da[i] += g;
        if (mb == GRAD_WRITE)
            db[i] = g;
        else if (mb == GRAD_ADD)
            db[i] += g;
    }
}

DNNL_BE_CLONES static void add_act_grad_range(int ma, int mb, size_t n, float hi,
                                              const float *restrict y, const float *restrict dy,
                                              float *restrict da, float *restrict db)
{
#define MODES(a, b)                                                                                \
    case (a)*3 + (b): add_act_grad_a(a, b, n, hi, y, dy, da, db); break
    switch (ma * 3 + mb) {
        MODES(GRAD_NONE, GRAD_WRITE);
        MODES(GRAD_NONE, GRAD_ADD);
        MODES(GRAD_WRITE, GRAD_NONE);
        MODES(GRAD_WRITE, GRAD_WRITE);
        MODES(GRAD_WRITE, GRAD_ADD);
        MODES(GRAD_ADD, GRAD_NONE);
        MODES(GRAD_ADD, GRAD_WRITE);
        MODES(GRAD_ADD, GRAD_ADD);
    default: break;
    }
#undef MODES
}

/* One pass where add's and relu's backward take three: y and dy read once, da and db written
 * (or added to) from the same g. */
void dnnl_be_add_act_backward(NnAct act, size_t n, const float *y, const float *dy, float *da,
                              float *db)
{
    float hi = act == NN_RELU6 ? 6.0f : INFINITY;
    int ma = !da ? GRAD_NONE : dnnl_be_fresh & 1 ? GRAD_WRITE : GRAD_ADD;
    int mb = !db ? GRAD_NONE : dnnl_be_fresh & 2 ? GRAD_WRITE : GRAD_ADD;
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN) schedule(static)
    for (size_t ch = 0; ch < chunks; ch++) {
        size_t i0 = ch * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        add_act_grad_range(ma, mb, len, hi, y + i0, dy + i0, da ? da + i0 : NULL,
                           db ? db + i0 : NULL);
    }
}

/* y: (P,C) = x: (P,C) times s: (C) per row. */
DNNL_BE_CLONES static void scale_rows(int rows, int c, const float *restrict x,
                                      const float *restrict s, float *restrict y)
{
    for (int p = 0; p < rows; p++)
#pragma omp simd
        for (int ch = 0; ch < c; ch++)
            y[(size_t)p * c + ch] = x[(size_t)p * c + ch] * s[ch];
}

/* Row block of pixels one thread takes. */
static int row_block(int c)
{
    int rows = CHUNK / (c > 0 ? c : 1);
    return rows > 0 ? rows : 1;
}

/* x, y: (N,HW,C), s: (N,C). y may equal x only if the caller says so; backend.h does not. */
void dnnl_be_chanmul_forward(int n, int c, int hw, const float *x, const float *s, float *y)
{
    int rb = row_block(c);
    int blocks = (hw + rb - 1) / rb;
#pragma omp parallel for collapse(2) if ((size_t)n * c * hw >= DNNL_BE_PAR_MIN)
    for (int b = 0; b < n; b++)
        for (int k = 0; k < blocks; k++) {
            int p0 = k * rb;
            int rows = hw - p0 < rb ? hw - p0 : rb;
            size_t at = ((size_t)b * hw + p0) * c;
            scale_rows(rows, c, x + at, s + (size_t)b * c, y + at);
        }
}

/* One image: dx (HW,C) += dy s (or NULL); ds (C) += sum over pixels of dy x (or NULL). */
DNNL_BE_CLONES static void chanmul_image_backward(int c, int hw, const float *restrict x,
                                                  const float *restrict s, const float *restrict dy,
                                                  float *restrict dx, float *restrict ds)
{
    for (int p = 0; p < hw; p++) {
        const float *xp = x + (size_t)p * c;
        const float *gp = dy + (size_t)p * c;
        if (dx) {
            float *dp = dx + (size_t)p * c;
#pragma omp simd
            for (int ch = 0; ch < c; ch++)
                dp[ch] += gp[ch] * s[ch];
        }
        if (ds)
#pragma omp simd
            for (int ch = 0; ch < c; ch++)
                ds[ch] += gp[ch] * xp[ch];
    }
}

void dnnl_be_chanmul_backward(int n, int c, int hw, const float *x, const float *s, const float *dy,
                              float *dx, float *ds)
{
#pragma omp parallel for if ((size_t)n * c * hw >= DNNL_BE_PAR_MIN)
    for (int b = 0; b < n; b++) {
        size_t at = (size_t)b * hw * c;
        chanmul_image_backward(c, hw, x + at, s + (size_t)b * c, dy + at, dx ? dx + at : NULL,
                               ds ? ds + (size_t)b * c : NULL);
    }
}

// --- concat, split, shuffle ------------------------------------------------------------------

static int total_channels(int parts, const int *c)
{
    int t = 0;
    for (int i = 0; i < parts; i++)
        t += c[i];
    return t;
}

/* y: (N*HW, sum C_i) row by row; part i fills columns [off_i, off_i + C_i). */
void dnnl_be_concat_forward(int n, int hw, int parts, const int *c, const float *const *xs,
                            float *y)
{
    int ct = total_channels(parts, c);
    size_t pixels = (size_t)n * hw;
#pragma omp parallel for if (pixels * ct >= DNNL_BE_PAR_MIN)
    for (size_t p = 0; p < pixels; p++) {
        float *dst = y + p * ct;
        for (int i = 0; i < parts; i++) {
            memcpy(dst, xs[i] + p * c[i], (size_t)c[i] * sizeof(float));
            dst += c[i];
        }
    }
}

void dnnl_be_concat_backward(int n, int hw, int parts, const int *c, const float *dy,
                             float *const *dxs)
{
    int ct = total_channels(parts, c);
    size_t pixels = (size_t)n * hw;
#pragma omp parallel for if (pixels * ct >= DNNL_BE_PAR_MIN)
    for (size_t p = 0; p < pixels; p++) {
        const float *src = dy + p * ct;
        for (int i = 0; i < parts; i++) {
            if (dxs[i]) {
                float *dst = dxs[i] + p * c[i];
#pragma omp simd
                for (int ch = 0; ch < c[i]; ch++)
                    dst[ch] += src[ch];
            }
            src += c[i];
        }
    }
}

void dnnl_be_split_forward(int n, int hw, int parts, const int *c, const float *x, float *const *ys)
{
    int ct = total_channels(parts, c);
    size_t pixels = (size_t)n * hw;
#pragma omp parallel for if (pixels * ct >= DNNL_BE_PAR_MIN)
    for (size_t p = 0; p < pixels; p++) {
        const float *src = x + p * ct;
        for (int i = 0; i < parts; i++) {
            if (ys[i])
                memcpy(ys[i] + p * c[i], src, (size_t)c[i] * sizeof(float));
            src += c[i];
        }
    }
}

void dnnl_be_split_backward(int n, int hw, int parts, const int *c, const float *const *dys,
                            float *dx)
{
    int ct = total_channels(parts, c);
    size_t pixels = (size_t)n * hw;
#pragma omp parallel for if (pixels * ct >= DNNL_BE_PAR_MIN)
    for (size_t p = 0; p < pixels; p++) {
        float *dst = dx + p * ct;
        for (int i = 0; i < parts; i++) {
            if (dys[i]) {
                const float *src = dys[i] + p * c[i];
#pragma omp simd
                for (int ch = 0; ch < c[i]; ch++)
                    dst[ch] += src[ch];
            }
            dst += c[i];
        }
    }
}

/* Per pixel: channel g (C/G) + j of x goes to channel j G + g of y. */
void dnnl_be_shuffle_forward(int n, int c, int hw, int groups, const float *x, float *y)
{
    int per = c / groups;
    size_t pixels = (size_t)n * hw;
#pragma omp parallel for if (pixels * c >= DNNL_BE_PAR_MIN)
    for (size_t p = 0; p < pixels; p++) {
        const float *src = x + p * c;
        float *dst = y + p * c;
        for (int j = 0; j < per; j++)
            for (int g = 0; g < groups; g++)
                dst[j * groups + g] = src[g * per + j];
    }
}

void dnnl_be_shuffle_backward(int n, int c, int hw, int groups, const float *dy, float *dx)
{
    int per = c / groups;
    size_t pixels = (size_t)n * hw;
#pragma omp parallel for if (pixels * c >= DNNL_BE_PAR_MIN)
    for (size_t p = 0; p < pixels; p++) {
        const float *src = dy + p * c;
        float *dst = dx + p * c;
        for (int j = 0; j < per; j++)
            for (int g = 0; g < groups; g++)
                dst[g * per + j] += src[j * groups + g];
    }
}

// --- dropout and stochastic depth ------------------------------------------------------------

void dnnl_be_dropout_forward(const NnDropout *d, size_t n, const float *x, float *y)
{
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN / 8)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * nn_mask_scale(d, i);
}

void dnnl_be_dropout_backward(const NnDropout *d, size_t n, const float *dy, float *dx)
{
#pragma omp parallel for if (n >= DNNL_BE_PAR_MIN / 8)
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * nn_mask_scale(d, i);
}

void dnnl_be_stochastic_depth_forward(const NnDropout *d, int n, size_t per_sample, const float *x,
                                      float *y)
{
#pragma omp parallel for if ((size_t)n * per_sample >= DNNL_BE_PAR_MIN)
    for (int b = 0; b < n; b++) {
        float scale = nn_mask_scale(d, (uint64_t)b);
        for (size_t i = 0; i < per_sample; i++)
            y[b * per_sample + i] = x[b * per_sample + i] * scale;
    }
}

void dnnl_be_stochastic_depth_backward(const NnDropout *d, int n, size_t per_sample,
                                       const float *dy, float *dx)
{
#pragma omp parallel for if ((size_t)n * per_sample >= DNNL_BE_PAR_MIN)
    for (int b = 0; b < n; b++) {
        float scale = nn_mask_scale(d, (uint64_t)b);
        for (size_t i = 0; i < per_sample; i++)
            dx[b * per_sample + i] += dy[b * per_sample + i] * scale;
    }
}

// --- loss ------------------------------------------------------------------------------------

float dnnl_be_xent_forward(const NnXent *x, const float *logits, const int *target,
                           const float *weight, float *probs)
{
    return nn_backend_ref()->xent_forward(x, logits, target, weight, probs);
}

void dnnl_be_xent_backward(const NnXent *x, const float *probs, const int *target,
                           const float *weight, float dloss, float *dlogits)
{
    nn_backend_ref()->xent_backward(x, probs, target, weight, dloss, dlogits);
}

#endif
