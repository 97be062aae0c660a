/* pool.c: reference max, average and adaptive average pooling, forward and backward.
 *
 * NnPoolWindow arithmetic is PyTorch's CPU kernels' (aten/src/ATen/native/cpu/MaxPoolKernel.cpp,
 * AvgPoolKernel.cpp, AdaptiveAvgPoolKernel.cpp), because ceil mode and padding decide which
 * inputs a border window covers and what it divides by:
 *   max: window [o s - pad, o s - pad + k) clipped to the input; the first maximum in
 *        row-major order wins, and a NaN beats everything (the last NaN, as PyTorch's loop).
 *   avg: the same window clipped first to input + padding (its size is the divisor with
 *        count_include_pad) and then to the input (its size is the divisor without). In ceil
 *        mode the last window can overhang the right padding, so even count_include_pad does
 *        not always divide by kh kw.
 *   adaptive avg: rows floor(i H / Ho) .. ceil((i + 1) H / Ho) - 1 (ops.h). */
#include <math.h>

#include "lib/nn/ref/ref.h"

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

static int min_int(int a, int b)
{
    return a < b ? a : b;
}

/* Output plane pl = n C + c of y or dy, a channel view when ldy != 0 (ops.h). */
static size_t yplane(const NnPool2d *p, size_t pl)
{
    size_t ld = (size_t)(p->ldy ? p->ldy : p->c);
    return (pl / (size_t)p->c * ld + pl % (size_t)p->c) * p->h_out * p->w_out;
}

void ref_maxpool2d_forward(const NnPool2d *p, const float *x, float *y, int32_t *argmax)
{
    size_t plane_in = (size_t)p->h_in * p->w_in;
    size_t plane_out = (size_t)p->h_out * p->w_out;
    for (size_t pl = 0; pl < (size_t)p->n * p->c; pl++) {
        const float *xp = x + pl * plane_in;
        float *yp = y + yplane(p, pl);
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                int h0 = oh * p->stride_h - p->pad_h;
                int w0 = ow * p->stride_w - p->pad_w;
                int h1 = min_int(h0 + p->kh, p->h_in);
                int w1 = min_int(w0 + p->kw, p->w_in);
                h0 = max_int(h0, 0);
                w0 = max_int(w0, 0);
                float best = -INFINITY;
                int32_t at = -1; /* an empty window (excluded by nn_pool2d_setup) stays -1 */
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        float v = xp[ih * p->w_in + iw];
                        if (v > best || isnan(v) || at < 0) {
                            best = v;
                            at = ih * p->w_in + iw;
                        }
                    }
                yp[oh * p->w_out + ow] = best;
                argmax[pl * plane_out + oh * p->w_out + ow] = at;
            }
    }
}

void ref_maxpool2d_backward(const NnPool2d *p, const int32_t *argmax, const float *dy, float *dx)
{
    size_t plane_in = (size_t)p->h_in * p->w_in;
    size_t plane_out = (size_t)p->h_out * p->w_out;
    for (size_t pl = 0; pl < (size_t)p->n * p->c; pl++)
        for (size_t o = 0; o < plane_out; o++) {
            int32_t at = argmax[pl * plane_out + o];
            if (at >= 0)
                dx[pl * plane_in + (size_t)at] += dy[yplane(p, pl) + o];
        }
}

void ref_avgpool2d_forward(const NnPool2d *p, const float *x, float *y)
{
    size_t plane_in = (size_t)p->h_in * p->w_in;
    for (size_t pl = 0; pl < (size_t)p->n * p->c; pl++) {
        const float *xp = x + pl * plane_in;
        float *yp = y + yplane(p, pl);
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                NnPoolWindow win = nn_avgpool_window(p, oh, ow);
                float sum = 0.0f;
                for (int ih = win.h0; ih < win.h1; ih++)
                    for (int iw = win.w0; iw < win.w1; iw++)
                        sum += xp[ih * p->w_in + iw];
                yp[oh * p->w_out + ow] = win.divisor ? sum / win.divisor : 0.0f;
            }
    }
}

void ref_avgpool2d_backward(const NnPool2d *p, const float *dy, float *dx)
{
    size_t plane_in = (size_t)p->h_in * p->w_in;
    for (size_t pl = 0; pl < (size_t)p->n * p->c; pl++) {
        float *dxp = dx + pl * plane_in;
        const float *dyp = dy + yplane(p, pl);
        for (int oh = 0; oh < p->h_out; oh++)
            for (int ow = 0; ow < p->w_out; ow++) {
                NnPoolWindow win = nn_avgpool_window(p, oh, ow);
                if (!win.divisor)
                    continue;
                float g = dyp[oh * p->w_out + ow] / win.divisor;
                for (int ih = win.h0; ih < win.h1; ih++)
                    for (int iw = win.w0; iw < win.w1; iw++)
                        dxp[ih * p->w_in + iw] += g;
            }
    }
}

void ref_adaptive_avgpool2d_forward(const NnAdaptivePool *p, const float *x, float *y)
{
    size_t plane_in = (size_t)p->h_in * p->w_in;
    size_t plane_out = (size_t)p->h_out * p->w_out;
    for (size_t pl = 0; pl < (size_t)p->n * p->c; pl++) {
        const float *xp = x + pl * plane_in;
        for (int oh = 0; oh < p->h_out; oh++) {
            int h0 = nn_adaptive_start(oh, p->h_in, p->h_out);
            int h1 = nn_adaptive_end(oh, p->h_in, p->h_out);
            for (int ow = 0; ow < p->w_out; ow++) {
                int w0 = nn_adaptive_start(ow, p->w_in, p->w_out);
                int w1 = nn_adaptive_end(ow, p->w_in, p->w_out);
                float sum = 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        sum += xp[ih * p->w_in + iw];
                y[pl * plane_out + oh * p->w_out + ow] = sum / ((h1 - h0) * (w1 - w0));
            }
        }
    }
}

void ref_adaptive_avgpool2d_backward(const NnAdaptivePool *p, const float *dy, float *dx)
{
    size_t plane_in = (size_t)p->h_in * p->w_in;
    size_t plane_out = (size_t)p->h_out * p->w_out;
    for (size_t pl = 0; pl < (size_t)p->n * p->c; pl++) {
        float *dxp = dx + pl * plane_in;
        for (int oh = 0; oh < p->h_out; oh++) {
            int h0 = nn_adaptive_start(oh, p->h_in, p->h_out);
            int h1 = nn_adaptive_end(oh, p->h_in, p->h_out);
            for (int ow = 0; ow < p->w_out; ow++) {
                int w0 = nn_adaptive_start(ow, p->w_in, p->w_out);
                int w1 = nn_adaptive_end(ow, p->w_in, p->w_out);
                float g = dy[pl * plane_out + oh * p->w_out + ow] / ((h1 - h0) * (w1 - w0));
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++)
                        dxp[ih * p->w_in + iw] += g;
            }
        }
    }
}
