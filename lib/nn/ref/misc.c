/* misc.c: reference tensor plumbing: residual add, channel-broadcast multiply (the
 * squeeze-excitation scale) and its reduction, channel concat and split, channel shuffle,
 * dropout and stochastic depth.
 *
 * In NCHW one image's channels are consecutive planes, so a channel slice of an image is one
 * contiguous run of C_i H W floats: concat and split are memcpy-sized loops per image.
 * Dropout and stochastic depth draw their masks from nn_mask_uniform (ops.h) and redraw them
 * in backward rather than storing them: the mask is a pure function of (seed, step, op, index),
 * so this costs a few Philox rounds per element and no memory. */
#include <string.h>

#include "lib/nn/ref/ref.h"

/* ref keeps activations in NCHW: entering and leaving its layout is a copy. */
void ref_copy_layout(int n, int c, int hw, const float *x, float *y)
{
    memcpy(y, x, (size_t)n * c * hw * sizeof(float));
}

void ref_add_forward(size_t n, const float *a, const float *b, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void ref_add_backward(size_t n, const float *dy, float *da, float *db)
{
    for (size_t i = 0; da && i < n; i++)
        da[i] += dy[i];
    for (size_t i = 0; db && i < n; i++)
        db[i] += dy[i];
}

void ref_chanmul_forward(int n, int c, int hw, const float *x, const float *s, float *y)
{
    for (size_t pl = 0; pl < (size_t)n * c; pl++)
        for (int i = 0; i < hw; i++)
            y[pl * hw + i] = x[pl * hw + i] * s[pl];
}

void ref_chanmul_backward(int n, int c, int hw, const float *x, const float *s, const float *dy,
                          float *dx, float *ds)
{
    for (size_t pl = 0; pl < (size_t)n * c; pl++) {
        if (dx)
            for (int i = 0; i < hw; i++)
                dx[pl * hw + i] += dy[pl * hw + i] * s[pl];
        if (ds) {
            float sum = 0.0f;
            for (int i = 0; i < hw; i++)
                sum += dy[pl * hw + i] * x[pl * hw + i];
            ds[pl] += sum;
        }
    }
}

/* Total channels of the parts. */
static int total_channels(int parts, const int *c)
{
    int t = 0;
    for (int i = 0; i < parts; i++)
        t += c[i];
    return t;
}

void ref_concat_forward(int n, int hw, int parts, const int *c, const float *const *xs, float *y)
{
    int ct = total_channels(parts, c);
    for (int b = 0; b < n; b++) {
        float *dst = y + (size_t)b * ct * hw;
        for (int i = 0; i < parts; i++) {
            size_t len = (size_t)c[i] * hw;
            memcpy(dst, xs[i] + b * len, len * sizeof(float));
            dst += len;
        }
    }
}

void ref_concat_backward(int n, int hw, int parts, const int *c, const float *dy, float *const *dxs)
{
    int ct = total_channels(parts, c);
    for (int b = 0; b < n; b++) {
        const float *src = dy + (size_t)b * ct * hw;
        for (int i = 0; i < parts; i++) {
            size_t len = (size_t)c[i] * hw;
            if (dxs[i])
                for (size_t j = 0; j < len; j++)
                    dxs[i][b * len + j] += src[j];
            src += len;
        }
    }
}

void ref_split_forward(int n, int hw, int parts, const int *c, const float *x, float *const *ys)
{
    int ct = total_channels(parts, c);
    for (int b = 0; b < n; b++) {
        const float *src = x + (size_t)b * ct * hw;
        for (int i = 0; i < parts; i++) {
            size_t len = (size_t)c[i] * hw;
            if (ys[i])
                memcpy(ys[i] + b * len, src, len * sizeof(float));
            src += len;
        }
    }
}

void ref_split_backward(int n, int hw, int parts, const int *c, const float *const *dys, float *dx)
{
    int ct = total_channels(parts, c);
    for (int b = 0; b < n; b++) {
        float *dst = dx + (size_t)b * ct * hw;
        for (int i = 0; i < parts; i++) {
            size_t len = (size_t)c[i] * hw;
            if (dys[i])
                for (size_t j = 0; j < len; j++)
                    dst[j] += dys[i][b * len + j];
            dst += len;
        }
    }
}

/* Channel g (C/G) + j of the input goes to channel j G + g of the output. */
void ref_shuffle_forward(int n, int c, int hw, int groups, const float *x, float *y)
{
    int per = c / groups;
    for (int b = 0; b < n; b++)
        for (int g = 0; g < groups; g++)
            for (int j = 0; j < per; j++) {
                const float *src = x + ((size_t)b * c + g * per + j) * hw;
                float *dst = y + ((size_t)b * c + j * groups + g) * hw;
                memcpy(dst, src, (size_t)hw * sizeof(float));
            }
}

void ref_shuffle_backward(int n, int c, int hw, int groups, const float *dy, float *dx)
{
    int per = c / groups;
    for (int b = 0; b < n; b++)
        for (int g = 0; g < groups; g++)
            for (int j = 0; j < per; j++) {
                const float *src = dy + ((size_t)b * c + j * groups + g) * hw;
                float *dst = dx + ((size_t)b * c + g * per + j) * hw;
                for (int i = 0; i < hw; i++)
                    dst[i] += src[i];
            }
}

void ref_dropout_forward(const NnDropout *d, size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * nn_mask_scale(d, i);
}

void ref_dropout_backward(const NnDropout *d, size_t n, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * nn_mask_scale(d, i);
}

void ref_stochastic_depth_forward(const NnDropout *d, int n, size_t per_sample, const float *x,
                                  float *y)
{
    for (int b = 0; b < n; b++) {
        float scale = nn_mask_scale(d, (uint64_t)b);
        for (size_t i = 0; i < per_sample; i++)
            y[b * per_sample + i] = x[b * per_sample + i] * scale;
    }
}

void ref_stochastic_depth_backward(const NnDropout *d, int n, size_t per_sample, const float *dy,
                                   float *dx)
{
    for (int b = 0; b < n; b++) {
        float scale = nn_mask_scale(d, (uint64_t)b);
        for (size_t i = 0; i < per_sample; i++)
            dx[b * per_sample + i] += dy[b * per_sample + i] * scale;
    }
}
