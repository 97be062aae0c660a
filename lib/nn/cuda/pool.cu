/* pool.cu: max, average and adaptive average pooling in NHWC, forward and backward (see
 * cuda_be.h, backend.h).
 *
 * Forward: one thread per output value (n, oh, ow, c), channels fastest, so a warp reads 32
 * consecutive channels of each window pixel. Window rules are lib/nn/ref/pool.c's (and
 * ops.c's nn_avgpool_window, ported below), summation in the same row-major order, so outputs
 * equal ref's bit for bit.
 *
 * Backward is a gather, not a scatter: one thread per input value walks the outputs whose
 * window holds it, in row-major output order, and adds their share to dx. That is the order in
 * which ref's scatter loop adds into the same dx element, so the result is ref's to the bit,
 * deterministic, and free of atomics even where windows overlap.
 *
 * y and dy may be channel views (ldy, ops.h): pixel p of image n at (n HoWo + p) ldy. x, dx and
 * argmax are dense. */
#include "lib/nn/cuda/cu_core.cuh"

#include <cmath>

enum { THREADS = 256 };

#define GRID_STRIDE(i, total)                                                                      \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (total);                    \
         i += (size_t)gridDim.x * blockDim.x)

/* Element i of a dense (N, H, W, C) tensor as (n, h, w, c). */
struct Pix {
    int n, h, w, c;
};

__device__ __forceinline__ Pix unflatten(size_t i, int h, int w, int c)
{
    Pix p;
    p.c = (int)(i % c);
    size_t t = i / c;
    p.w = (int)(t % w);
    t /= w;
    p.h = (int)(t % h);
    p.n = (int)(t / h);
    return p;
}

/* Offset of output (n, oh, ow) channel 0 in y or dy. */
__device__ __forceinline__ size_t out_at(const NnPool2d &p, int n, int oh, int ow)
{
    size_t ld = (size_t)(p.ldy ? p.ldy : p.c);
    return (((size_t)n * p.h_out + oh) * p.w_out + ow) * ld;
}

/* Outputs o of one dimension whose unclipped window [o s - pad, o s - pad + k) holds input i:
 * [lo, hi], clipped to [0, out). Callers still check the exact (clipped) window. */
__device__ __forceinline__ void out_range(int i, int k, int s, int pad, int out, int *lo, int *hi)
{
    int first = i + pad - k + 1; /* o s >= first */
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    int last = (i + pad) / s; /* o s <= i + pad */
    *hi = last < out - 1 ? last : out - 1;
}

// --- max -------------------------------------------------------------------------------------

/* x: (N,H,W,C) -> y: (N,Ho,Wo,ldy), argmax: (N,Ho,Wo,C) plane index h W + w. */
__global__ void maxpool_forward_kernel(NnPool2d p, const float *__restrict__ x,
                                       float *__restrict__ y, int32_t *__restrict__ argmax)
{
    size_t total = (size_t)p.n * p.h_out * p.w_out * p.c;
    GRID_STRIDE(i, total)
    {
        Pix o = unflatten(i, p.h_out, p.w_out, p.c);
        int h0 = o.h * p.stride_h - p.pad_h;
        int w0 = o.w * p.stride_w - p.pad_w;
        int h1 = min(h0 + p.kh, p.h_in);
        int w1 = min(w0 + p.kw, p.w_in);
        const float *xn = x + (size_t)o.n * p.h_in * p.w_in * p.c + o.c;
        float best = -INFINITY;
        int32_t at = -1;
        for (int ih = max(h0, 0); ih < h1; ih++)
            for (int iw = max(w0, 0); iw < w1; iw++) {
                float v = xn[((size_t)ih * p.w_in + iw) * p.c];
                /* first maximum in row-major order; a NaN wins (the last one) */
                if (v > best || isnan(v) || at < 0) {
                    best = v;
                    at = ih * p.w_in + iw;
                }
            }
        y[out_at(p, o.n, o.h, o.w) + o.c] = best;
        argmax[i] = at;
    }
}

/* dx: (N,H,W,C) += dy of every output whose argmax is this input. */
__global__ void maxpool_backward_kernel(NnPool2d p, const int32_t *__restrict__ argmax,
                                        const float *__restrict__ dy, float *__restrict__ dx)
{
    size_t total = (size_t)p.n * p.h_in * p.w_in * p.c;
    GRID_STRIDE(i, total)
    {
        Pix x = unflatten(i, p.h_in, p.w_in, p.c);
        int32_t me = x.h * p.w_in + x.w;
        int oh0, oh1, ow0, ow1;
        out_range(x.h, p.kh, p.stride_h, p.pad_h, p.h_out, &oh0, &oh1);
        out_range(x.w, p.kw, p.stride_w, p.pad_w, p.w_out, &ow0, &ow1);
        float acc = dx[i];
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) {
                size_t o = ((size_t)x.n * p.h_out + oh) * p.w_out + ow;
                if (argmax[o * p.c + x.c] == me)
                    acc += dy[out_at(p, x.n, oh, ow) + x.c];
            }
        dx[i] = acc;
    }
}

void cu_maxpool2d_forward(const NnPool2d *p, const float *x, float *y, int32_t *argmax)
{
    size_t total = (size_t)p->n * p->h_out * p->w_out * p->c;
    maxpool_forward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(*p, x, y,
                                                                                   argmax);
    CU_AFTER("maxpool2d forward");
}

void cu_maxpool2d_backward(const NnPool2d *p, const int32_t *argmax, const float *dy, float *dx)
{
    size_t total = (size_t)p->n * p->h_in * p->w_in * p->c;
    maxpool_backward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(*p, argmax, dy,
                                                                                    dx);
    CU_AFTER("maxpool2d backward");
}

// --- average ---------------------------------------------------------------------------------

/* ops.c's nn_avgpool_window, the same integer arithmetic. */
__device__ __forceinline__ NnPoolWindow avg_window(const NnPool2d &p, int oh, int ow)
{
    int h0 = oh * p.stride_h - p.pad_h;
    int w0 = ow * p.stride_w - p.pad_w;
    int h1 = h0 + p.kh < p.h_in + p.pad_h ? h0 + p.kh : p.h_in + p.pad_h;
    int w1 = w0 + p.kw < p.w_in + p.pad_w ? w0 + p.kw : p.w_in + p.pad_w;
    int padded = (h1 - h0) * (w1 - w0);
    NnPoolWindow win;
    win.h0 = h0 > 0 ? h0 : 0;
    win.w0 = w0 > 0 ? w0 : 0;
    win.h1 = h1 < p.h_in ? h1 : p.h_in;
    win.w1 = w1 < p.w_in ? w1 : p.w_in;
    if (win.h0 >= win.h1 || win.w0 >= win.w1)
        win.divisor = 0;
    else
        win.divisor = p.count_include_pad ? padded : (win.h1 - win.h0) * (win.w1 - win.w0);
    return win;
}

/* x: (N,H,W,C), xc = x + c; the float sum of rows h0..h1-1, columns w0..w1-1 of image n in
 * ref's order. */
__device__ __forceinline__ float window_sum(const float *xc, int n, int h, int w, int c, int h0,
                                            int h1, int w0, int w1)
{
    const float *xn = xc + (size_t)n * h * w * c;
    float sum = 0.0f;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++)
            sum += xn[((size_t)ih * w + iw) * c];
    return sum;
}

/* x: (N,H,W,C) -> y: (N,Ho,Wo,ldy); an empty window gives 0. */
__global__ void avgpool_forward_kernel(NnPool2d p, const float *__restrict__ x,
                                       float *__restrict__ y)
{
    size_t total = (size_t)p.n * p.h_out * p.w_out * p.c;
    GRID_STRIDE(i, total)
    {
        Pix o = unflatten(i, p.h_out, p.w_out, p.c);
        NnPoolWindow win = avg_window(p, o.h, o.w);
        float sum = window_sum(x + o.c, o.n, p.h_in, p.w_in, p.c, win.h0, win.h1, win.w0, win.w1);
        y[out_at(p, o.n, o.h, o.w) + o.c] = win.divisor ? sum / win.divisor : 0.0f;
    }
}

/* dx: (N,H,W,C) += dy / divisor of every output whose clipped window holds this input. */
__global__ void avgpool_backward_kernel(NnPool2d p, const float *__restrict__ dy,
                                        float *__restrict__ dx)
{
    size_t total = (size_t)p.n * p.h_in * p.w_in * p.c;
    GRID_STRIDE(i, total)
    {
        Pix x = unflatten(i, p.h_in, p.w_in, p.c);
        int oh0, oh1, ow0, ow1;
        out_range(x.h, p.kh, p.stride_h, p.pad_h, p.h_out, &oh0, &oh1);
        out_range(x.w, p.kw, p.stride_w, p.pad_w, p.w_out, &ow0, &ow1);
        float acc = dx[i];
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) {
                NnPoolWindow win = avg_window(p, oh, ow);
                if (win.divisor && x.h >= win.h0 && x.h < win.h1 && x.w >= win.w0 && x.w < win.w1)
                    acc += dy[out_at(p, x.n, oh, ow) + x.c] / win.divisor;
            }
        dx[i] = acc;
    }
}

void cu_avgpool2d_forward(const NnPool2d *p, const float *x, float *y)
{
    size_t total = (size_t)p->n * p->h_out * p->w_out * p->c;
    avgpool_forward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(*p, x, y);
    CU_AFTER("avgpool2d forward");
}

void cu_avgpool2d_backward(const NnPool2d *p, const float *dy, float *dx)
{
    size_t total = (size_t)p->n * p->h_in * p->w_in * p->c;
    avgpool_backward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(*p, dy, dx);
    CU_AFTER("avgpool2d backward");
}

// --- adaptive average ------------------------------------------------------------------------

/* ops.h's nn_adaptive_start / nn_adaptive_end. */
__device__ __forceinline__ int ad_start(int i, int in, int out)
{
    return (int)((long long)i * in / out);
}

__device__ __forceinline__ int ad_end(int i, int in, int out)
{
    return (int)(((long long)(i + 1) * in + out - 1) / out);
}

/* x: (N,H,W,C) -> y: (N,Ho,Wo,C). */
__global__ void adaptive_forward_kernel(NnAdaptivePool p, const float *__restrict__ x,
                                        float *__restrict__ y)
{
    size_t total = (size_t)p.n * p.h_out * p.w_out * p.c;
    GRID_STRIDE(i, total)
    {
        Pix o = unflatten(i, p.h_out, p.w_out, p.c);
        int h0 = ad_start(o.h, p.h_in, p.h_out), h1 = ad_end(o.h, p.h_in, p.h_out);
        int w0 = ad_start(o.w, p.w_in, p.w_out), w1 = ad_end(o.w, p.w_in, p.w_out);
        y[i] =
            window_sum(x + o.c, o.n, p.h_in, p.w_in, p.c, h0, h1, w0, w1) / ((h1 - h0) * (w1 - w0));
    }
}

/* dx: (N,H,W,C) += dy / window size of every output cell holding this input. Output rows
 * holding input row i are start(i, Ho, H) .. end(i, Ho, H) - 1: the adaptive rule inverted. */
__global__ void adaptive_backward_kernel(NnAdaptivePool p, const float *__restrict__ dy,
                                         float *__restrict__ dx)
{
    size_t total = (size_t)p.n * p.h_in * p.w_in * p.c;
    GRID_STRIDE(i, total)
    {
        Pix x = unflatten(i, p.h_in, p.w_in, p.c);
        int oh0 = ad_start(x.h, p.h_out, p.h_in), oh1 = ad_end(x.h, p.h_out, p.h_in);
        int ow0 = ad_start(x.w, p.w_out, p.w_in), ow1 = ad_end(x.w, p.w_out, p.w_in);
        float acc = dx[i];
        for (int oh = oh0; oh < oh1; oh++) {
            int h0 = ad_start(oh, p.h_in, p.h_out), h1 = ad_end(oh, p.h_in, p.h_out);
            if (x.h < h0 || x.h >= h1)
                continue;
            for (int ow = ow0; ow < ow1; ow++) {
                int w0 = ad_start(ow, p.w_in, p.w_out), w1 = ad_end(ow, p.w_in, p.w_out);
                if (x.w >= w0 && x.w < w1)
                    acc += dy[(((size_t)x.n * p.h_out + oh) * p.w_out + ow) * p.c + x.c] /
                           ((h1 - h0) * (w1 - w0));
            }
        }
        dx[i] = acc;
    }
}

void cu_adaptive_avgpool2d_forward(const NnAdaptivePool *p, const float *x, float *y)
{
    size_t total = (size_t)p->n * p->h_out * p->w_out * p->c;
    adaptive_forward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(*p, x, y);
    CU_AFTER("adaptive avgpool2d forward");
}

void cu_adaptive_avgpool2d_backward(const NnAdaptivePool *p, const float *dy, float *dx)
{
    size_t total = (size_t)p->n * p->h_in * p->w_in * p->c;
    adaptive_backward_kernel<<<cu_blocks(total, THREADS), THREADS, 0, cu_stream()>>>(*p, dy, dx);
    CU_AFTER("adaptive avgpool2d backward");
}
