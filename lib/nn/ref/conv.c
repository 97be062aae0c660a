/* conv.c: reference 2-D convolution (dense, grouped, depthwise), forward and backward, by
 * im2col and the plain gemm of gemm.c.
 *
 * For each image and group, im2col lays the receptive fields out as columns:
 *   col: (K, P) with K = Cin/groups * KH * KW rows and P = Ho * Wo columns,
 * so the convolution is one matrix product, y_g (Cout/groups, P) = w_g (Cout/groups, K) col.
 * Backward is two more products: dw_g += dy_g col^T, and dcol = w_g^T dy_g, which col2im
 * scatters back (adds) into dx. A 1x1 convolution with stride 1 and no padding needs no col at
 * all: the input plane already is (K, P). Depthwise convolution goes through the same path with
 * K = KH * KW; slow-ish but one path is easier to trust than two. y and dy may be channel
 * views (ops.h): image n's output block starts at n ldy HW instead of n Cout HW. */
#include <string.h>

#include "lib/nn/ref/ref.h"

/* True when the input itself is the column matrix. */
static int is_pointwise(const NnConv2d *c)
{
    return c->kh == 1 && c->kw == 1 && c->stride_h == 1 && c->stride_w == 1 && c->pad_h == 0 &&
           c->pad_w == 0;
}

size_t ref_conv2d_workspace(const NnConv2d *c)
{
    if (is_pointwise(c))
        return 0;
    size_t k = (size_t)(c->c_in / c->groups) * c->kh * c->kw;
    size_t p = (size_t)c->h_out * c->w_out;
    return 2 * k * p * sizeof(float); /* col and dcol */
}

/* x: (Cg,H,W) one image's group of channels -> col: (Cg*KH*KW, Ho*Wo), zeros where the window
 * falls in the padding. */
static void im2col(const NnConv2d *c, const float *x, float *col)
{
    int cg = c->c_in / c->groups;
    int p = c->h_out * c->w_out;
    for (int ci = 0; ci < cg; ci++)
        for (int ki = 0; ki < c->kh; ki++)
            for (int kj = 0; kj < c->kw; kj++) {
                float *row = col + (size_t)((ci * c->kh + ki) * c->kw + kj) * p;
                for (int oh = 0; oh < c->h_out; oh++) {
                    int ih = oh * c->stride_h - c->pad_h + ki * c->dil_h;
                    for (int ow = 0; ow < c->w_out; ow++) {
                        int iw = ow * c->stride_w - c->pad_w + kj * c->dil_w;
                        int inside = ih >= 0 && ih < c->h_in && iw >= 0 && iw < c->w_in;
                        row[oh * c->w_out + ow] =
                            inside ? x[((size_t)ci * c->h_in + ih) * c->w_in + iw] : 0.0f;
                    }
                }
            }
}

/* The adjoint of im2col: dx: (Cg,H,W) += each column entry at the input it came from. */
static void col2im(const NnConv2d *c, const float *dcol, float *dx)
{
    int cg = c->c_in / c->groups;
    int p = c->h_out * c->w_out;
    for (int ci = 0; ci < cg; ci++)
        for (int ki = 0; ki < c->kh; ki++)
            for (int kj = 0; kj < c->kw; kj++) {
                const float *row = dcol + (size_t)((ci * c->kh + ki) * c->kw + kj) * p;
                for (int oh = 0; oh < c->h_out; oh++) {
                    int ih = oh * c->stride_h - c->pad_h + ki * c->dil_h;
                    if (ih < 0 || ih >= c->h_in)
                        continue;
                    for (int ow = 0; ow < c->w_out; ow++) {
                        int iw = ow * c->stride_w - c->pad_w + kj * c->dil_w;
                        if (iw >= 0 && iw < c->w_in)
                            dx[((size_t)ci * c->h_in + ih) * c->w_in + iw] +=
                                row[oh * c->w_out + ow];
                    }
                }
            }
}

void ref_conv2d_forward(const NnConv2d *c, const float *x, const float *w, const float *b, float *y,
                        void *workspace)
{
    int cg = c->c_in / c->groups;
    int og = c->c_out / c->groups;
    int k = cg * c->kh * c->kw;
    int p = c->h_out * c->w_out;
    size_t plane_in = (size_t)c->h_in * c->w_in;
    size_t ldy = (size_t)(c->ldy ? c->ldy : c->c_out); /* y's channel stride per image */
    float *col = workspace;
    for (int n = 0; n < c->n; n++)
        for (int g = 0; g < c->groups; g++) {
            const float *xg = x + ((size_t)n * c->c_in + (size_t)g * cg) * plane_in;
            float *yg = y + ((size_t)n * ldy + (size_t)g * og) * p;
            const float *wg = w + (size_t)g * og * k;
            /* the gemm accumulates, so start from the bias (or zero) */
            for (int o = 0; o < og; o++) {
                float bias = b ? b[g * og + o] : 0.0f;
                for (int j = 0; j < p; j++)
                    yg[(size_t)o * p + j] = bias;
            }
            const float *cols = xg;
            if (!is_pointwise(c)) {
                im2col(c, xg, col);
                cols = col;
            }
            /* y_g (og, p) += w_g (og, k) col (k, p) */
            ref_sgemm(0, 0, og, p, k, wg, k, cols, p, yg, p);
        }
}

void ref_conv2d_backward(const NnConv2d *c, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db, void *workspace)
{
    int cg = c->c_in / c->groups;
    int og = c->c_out / c->groups;
    int k = cg * c->kh * c->kw;
    int p = c->h_out * c->w_out;
    size_t plane_in = (size_t)c->h_in * c->w_in;
    size_t ldy = (size_t)(c->ldy ? c->ldy : c->c_out);
    float *col = workspace;
    float *dcol = col ? col + (size_t)k * p : NULL;
    for (int n = 0; n < c->n; n++)
        for (int g = 0; g < c->groups; g++) {
            const float *xg = x + ((size_t)n * c->c_in + (size_t)g * cg) * plane_in;
            const float *dyg = dy + ((size_t)n * ldy + (size_t)g * og) * p;
            const float *wg = w + (size_t)g * og * k;
            float *dwg = dw + (size_t)g * og * k;
            if (db)
                for (int o = 0; o < og; o++)
                    for (int j = 0; j < p; j++)
                        db[g * og + o] += dyg[(size_t)o * p + j];

            const float *cols = xg;
            if (!is_pointwise(c)) {
                im2col(c, xg, col);
                cols = col;
            }
            /* dw_g (og, k) += dy_g (og, p) col^T (p, k) */
            ref_sgemm(0, 1, og, k, p, dyg, p, cols, p, dwg, k);
            if (!dx)
                continue;
            float *dxg = dx + ((size_t)n * c->c_in + (size_t)g * cg) * plane_in;
            if (is_pointwise(c)) {
                /* dx_g (k, p) += w_g^T (k, og) dy_g (og, p), straight into dx */
                ref_sgemm(1, 0, k, p, og, wg, k, dyg, p, dxg, p);
            } else {
                memset(dcol, 0, (size_t)k * p * sizeof(float));
                ref_sgemm(1, 0, k, p, og, wg, k, dyg, p, dcol, p);
                col2im(c, dcol, dxg);
            }
        }
}
