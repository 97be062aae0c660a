/* dwconv.c: the weight gradient of a depthwise convolution in NHWC, by hand, for the kernel
 * sizes oneDNN 2.6 has no depthwise backward-weights kernel for.
 *
 * oneDNN's jit_dw backward-weights covers 3x3 only; a 5x5 depthwise (MobileNetV3's blocks 4-6
 * and 13-15) falls to the generic jit:avx512_core kernel, 10x slower than its own forward
 * (1.6 ms against 0.15 ms for N8 C72 56x56 s2), and in a MobileNetV3-Large step these few
 * convolutions took a third of all convolution backward time. The gradient is
 *   dw[c][kh][kw] += sum over n, oh, ow of dy[n,oh,ow,c] x[n, oh s - p + kh d, ow s - p + kw d, c]
 *   db[c]         += sum over n, oh, ow of dy[n,oh,ow,c]
 * and channels last makes it easy: each thread owns a block of 16 channels (one AVX-512
 * vector, one cache line), keeps that block's KH*KW*16 sums in L1 and streams x and dy once.
 * No reduction between threads, no workspace, no reorder of dw. */
#if ONFH_HAVE_DNNL

#include <string.h>

#include "lib/nn/dnnl/dnnl_be.h"

#define BLOCK 16

int dnnl_be_dw_hand_ok(const NnConv2d *c)
{
    return c->groups == c->c_in && c->c_out == c->c_in && c->kh * c->kw <= DNNL_BE_DW_MAX_TAPS;
}

/* First output index o in [0, out) whose input o s - p + k d lies in [0, in), and one past the
 * last: the outputs a tap touches, so the loops below need no bounds test. */
static void tap_range(int out, int in, int s, int p, int kd, int *o0, int *o1)
{
    int lo = p - kd > 0 ? (p - kd + s - 1) / s : 0;
    int hi = in - 1 + p - kd < 0 ? -1 : (in - 1 + p - kd) / s;
    *o0 = lo;
    *o1 = hi + 1 < out ? hi + 1 : out;
}

/* Image n, channels [c0, c0 + LEN): acc (KH*KW, BLOCK) += the tap sums, bias (BLOCK) += the
 * sum of dy. One tap at a time over all its output pixels, so the tap's 16 sums stay in one
 * register while x and dy stream from L2 (an image's block of 16 channels is small). LEN is
 * BLOCK for full blocks, a compile-time trip count that becomes one AVX-512 (two AVX2)
 * multiply-adds; the tail block of C % BLOCK channels runs the same code with len. */
#define DW_BLOCK_BODY(LEN)                                                                         \
    do {                                                                                           \
        size_t ch = (size_t)c->c_in;                                                               \
        const float *dyn = dy + (size_t)n * c->h_out * c->w_out * ch + c0;                         \
        const float *xn = x + (size_t)n * c->h_in * c->w_in * ch + c0;                             \
        for (size_t p = 0; p < (size_t)c->h_out * c->w_out; p++)                                   \
            for (int j = 0; j < (LEN); j++)                                                        \
                bias[j] += dyn[p * ch + j];                                                        \
        for (int kh = 0; kh < c->kh; kh++) {                                                       \
            int oh0, oh1;                                                                          \
            tap_range(c->h_out, c->h_in, c->stride_h, c->pad_h, kh * c->dil_h, &oh0, &oh1);        \
            for (int kw = 0; kw < c->kw; kw++) {                                                   \
                int ow0, ow1;                                                                      \
                tap_range(c->w_out, c->w_in, c->stride_w, c->pad_w, kw * c->dil_w, &ow0, &ow1);    \
                float a[BLOCK] = {0};                                                              \
                for (int oh = oh0; oh < oh1; oh++) {                                               \
                    int ih = oh * c->stride_h - c->pad_h + kh * c->dil_h;                          \
                    const float *g = dyn + (size_t)oh * c->w_out * ch;                             \
                    const float *xr = xn + (size_t)ih * c->w_in * ch;                              \
                    for (int ow = ow0; ow < ow1; ow++) {                                           \
                        int iw = ow * c->stride_w - c->pad_w + kw * c->dil_w;                      \
                        const float *gp = g + (size_t)ow * ch;                                     \
                        const float *xp = xr + (size_t)iw * ch;                                    \
                        for (int j = 0; j < (LEN); j++)                                            \
                            a[j] += gp[j] * xp[j];                                                 \
                    }                                                                              \
                }                                                                                  \
                float *dst = acc + (kh * c->kw + kw) * BLOCK;                                      \
                for (int j = 0; j < (LEN); j++)                                                    \
                    dst[j] += a[j];                                                                \
            }                                                                                      \
        }                                                                                          \
    } while (0)

DNNL_BE_CLONES static void dw_block_image(const NnConv2d *c, const float *restrict x,
                                          const float *restrict dy, int n, int c0,
                                          float *restrict acc, float *restrict bias)
{
    DW_BLOCK_BODY(BLOCK);
}

static void dw_tail_image(const NnConv2d *c, const float *restrict x, const float *restrict dy,
                          int n, int c0, int len, float *restrict acc, float *restrict bias)
{
    DW_BLOCK_BODY(len);
}

void dnnl_be_dw_backward_weights(const NnConv2d *c, const float *x, const float *dy, float *dw,
                                 float *db)
{
    int blocks = (c->c_in + BLOCK - 1) / BLOCK;
    int taps = c->kh * c->kw;
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
    for (int b = 0; b < blocks; b++) {
        float acc[DNNL_BE_DW_MAX_TAPS * BLOCK];
        float bias[BLOCK];
        int c0 = b * BLOCK;
        int len = c->c_in - c0 < BLOCK ? c->c_in - c0 : BLOCK;
        memset(acc, 0, sizeof acc);
        memset(bias, 0, sizeof bias);
        for (int n = 0; n < c->n; n++)
            if (len == BLOCK)
                dw_block_image(c, x, dy, n, c0, acc, bias);
            else
                dw_tail_image(c, x, dy, n, c0, len, acc, bias);
        /* dw is (C,1,KH,KW): channel c's taps are contiguous */
        for (int j = 0; j < len; j++) {
            for (int t = 0; t < taps; t++)
                dw[(size_t)(c0 + j) * taps + t] += acc[t * BLOCK + j];
            if (db)
                db[c0 + j] += bias[j];
        }
    }
}

#endif
