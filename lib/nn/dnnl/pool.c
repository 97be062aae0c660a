/* pool.c: max, average and adaptive average pooling in NHWC, forward and backward, by hand.
 *
 * Why not oneDNN's pooling: the contract (backend.h) wants an argmax of plane indices h W + w
 * with PyTorch's tie rule (first maximum in row-major window order, NaN wins), where oneDNN
 * keeps a private workspace; and PyTorch's average divisor with count_include_pad in ceil mode
 * (the window clipped to input + padding, not the full kernel) is not oneDNN's. Channels last
 * makes the hand loops cheap anyway: every window position is a contiguous run of C floats,
 * so the inner loop over channels vectorises and the window arithmetic is paid once per
 * output pixel, not once per value. y and dy may be channel views (ops.h ldy): an output
 * pixel's C floats then start ldy floats after the previous one's. NnPoolWindow rules and float
 * summation order are those of lib/nn/ref/pool.c, so results agree with ref exactly. Images run in
 * parallel; within an image backward's windows overlap and run in order. */
#if ONFH_HAVE_DNNL

#include <math.h>

#include "lib/nn/dnnl/dnnl_be.h"

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* Parallel only when the tensor is large enough to pay for the fork. */
static int worth_threads(size_t elements)
{
    return elements >= DNNL_BE_PAR_MIN;
}

void dnnl_be_maxpool2d_forward(const NnPool2d *p, const float *x, float *y, int32_t *argmax)
{
    int c = p->c, ldy = p->ldy ? p->ldy : c; /* y may be a channel view, argmax is dense */
#pragma omp parallel for collapse(2) if (worth_threads((size_t)p->n * c * p->h_in * p->w_in))
    for (int n = 0; n < p->n; n++)
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                size_t o = ((size_t)n * p->h_out + oh) * p->w_out + ow;
                float *best = y + o * ldy;
                int32_t *at = argmax + o * c;
                int h0 = oh * p->stride_h - p->pad_h;
                int w0 = ow * p->stride_w - p->pad_w;
                int h1 = min_int(h0 + p->kh, p->h_in);
                int w1 = min_int(w0 + p->kw, p->w_in);
                h0 = max_int(h0, 0), w0 = max_int(w0, 0);
                if (h0 >= h1 || w0 >= w1) { /* a window wholly in the padding */
                    for (int ch = 0; ch < c; ch++)
                        best[ch] = -INFINITY, at[ch] = -1;
                    continue;
                }
                /* the first tap, then branch-free selects (vectorised): a larger value or a NaN
                 * takes over, so the first maximum in row-major order wins, NaN propagates */
                const float *first = x + (((size_t)n * p->h_in + h0) * p->w_in + w0) * c;
                for (int ch = 0; ch < c; ch++)
                    best[ch] = first[ch], at[ch] = h0 * p->w_in + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = ih == h0 ? w0 + 1 : w0; iw < w1; iw++) {
                        const float *xp = x + (((size_t)n * p->h_in + ih) * p->w_in + iw) * c;
                        int32_t idx = ih * p->w_in + iw;
#pragma omp simd
                        for (int ch = 0; ch < c; ch++) {
                            float v = xp[ch];
                            int take = (v > best[ch]) | (v != v);
                            best[ch] = take ? v : best[ch];
                            at[ch] = take ? idx : at[ch];
                        }
                    }
            }
}

void dnnl_be_maxpool2d_backward(const NnPool2d *p, const int32_t *argmax, const float *dy,
                                float *dx)
{
    int c = p->c, ldy = p->ldy ? p->ldy : c;
    size_t plane_out = (size_t)p->h_out * p->w_out;
    size_t plane_in = (size_t)p->h_in * p->w_in;
#pragma omp parallel for if (worth_threads((size_t)p->n * c * plane_in))
    for (int n = 0; n < p->n; n++)
        for (size_t o = 0; o < plane_out; o++) {
            const int32_t *at = argmax + ((size_t)n * plane_out + o) * c;
            const float *g = dy + ((size_t)n * plane_out + o) * ldy;
            float *dxn = dx + (size_t)n * plane_in * c;
            for (int ch = 0; ch < c; ch++)
                if (at[ch] >= 0)
                    dxn[(size_t)at[ch] * c + ch] += g[ch];
        }
}

/* y: (C) = the average over rows h0..h1-1, columns w0..w1-1 of image xn (H,W,C). */
static void window_mean(const float *xn, int w_in, int c, int h0, int h1, int w0, int w1,
                        int divisor, float *y)
{
    for (int ch = 0; ch < c; ch++)
        y[ch] = 0.0f;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) {
            const float *xp = xn + ((size_t)ih * w_in + iw) * c;
#pragma omp simd
            for (int ch = 0; ch < c; ch++)
                y[ch] += xp[ch];
        }
    for (int ch = 0; ch < c; ch++)
        y[ch] = divisor ? y[ch] / divisor : 0.0f;
}

/* dxn (H,W,C) rows h0..h1-1, columns w0..w1-1 += g (C) / divisor. */
static void window_spread(float *dxn, int w_in, int c, int h0, int h1, int w0, int w1, int divisor,
                          const float *g)
{
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) {
            float *dp = dxn + ((size_t)ih * w_in + iw) * c;
#pragma omp simd
            for (int ch = 0; ch < c; ch++)
                dp[ch] += g[ch] / divisor;
        }
}

void dnnl_be_avgpool2d_forward(const NnPool2d *p, const float *x, float *y)
{
    size_t plane_in = (size_t)p->h_in * p->w_in * p->c;
    int ldy = p->ldy ? p->ldy : p->c; /* y may be a channel view */
#pragma omp parallel for collapse(2) if (worth_threads((size_t)p->n * plane_in))
    for (int n = 0; n < p->n; n++)
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                NnPoolWindow win = nn_avgpool_window(p, oh, ow);
                float *yo = y + (((size_t)n * p->h_out + oh) * p->w_out + ow) * ldy;
                window_mean(x + n * plane_in, p->w_in, p->c, win.h0, win.h1, win.w0, win.w1,
                            win.divisor, yo);
            }
}

void dnnl_be_avgpool2d_backward(const NnPool2d *p, const float *dy, float *dx)
{
    size_t plane_in = (size_t)p->h_in * p->w_in * p->c;
    int ldy = p->ldy ? p->ldy : p->c; /* dy may be a channel view */
#pragma omp parallel for if (worth_threads((size_t)p->n * plane_in))
    for (int n = 0; n < p->n; n++)
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                NnPoolWindow win = nn_avgpool_window(p, oh, ow);
                if (!win.divisor)
                    continue;
                const float *g = dy + (((size_t)n * p->h_out + oh) * p->w_out + ow) * ldy;
                window_spread(dx + n * plane_in, p->w_in, p->c, win.h0, win.h1, win.w0, win.w1,
                              win.divisor, g);
            }
}

void dnnl_be_adaptive_avgpool2d_forward(const NnAdaptivePool *p, const float *x, float *y)
{
    size_t plane_in = (size_t)p->h_in * p->w_in * p->c;
#pragma omp parallel for collapse(2) if (worth_threads((size_t)p->n * plane_in))
    for (int n = 0; n < p->n; n++)
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                int h0 = nn_adaptive_start(oh, p->h_in, p->h_out);
                int h1 = nn_adaptive_end(oh, p->h_in, p->h_out);
                int w0 = nn_adaptive_start(ow, p->w_in, p->w_out);
                int w1 = nn_adaptive_end(ow, p->w_in, p->w_out);
                float *yo = y + (((size_t)n * p->h_out + oh) * p->w_out + ow) * p->c;
                window_mean(x + n * plane_in, p->w_in, p->c, h0, h1, w0, w1, (h1 - h0) * (w1 - w0),
                            yo);
            }
}

void dnnl_be_adaptive_avgpool2d_backward(const NnAdaptivePool *p, const float *dy, float *dx)
{
    size_t plane_in = (size_t)p->h_in * p->w_in * p->c;
#pragma omp parallel for if (worth_threads((size_t)p->n * plane_in))
    for (int n = 0; n < p->n; n++)
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                int h0 = nn_adaptive_start(oh, p->h_in, p->h_out);
                int h1 = nn_adaptive_end(oh, p->h_in, p->h_out);
                int w0 = nn_adaptive_start(ow, p->w_in, p->w_out);
                int w1 = nn_adaptive_end(ow, p->w_in, p->w_out);
                const float *g = dy + (((size_t)n * p->h_out + oh) * p->w_out + ow) * p->c;
                window_spread(dx + n * plane_in, p->w_in, p->c, h0, h1, w0, w1,
                              (h1 - h0) * (w1 - w0), g);
            }
}

#endif
