/* ops.c: checks and output sizes of op descriptors, and the dropout mask rule (see ops.h).
 *
 * The size rules are PyTorch's (aten/src/ATen/native/Pool.h pooling_output_shape, and the
 * convolution formula of torch.nn.Conv2d) so that a model built here has the shapes of its
 * torchvision twin; a mismatch would surface only as a wrong parameter count far later. */
#include "lib/nn/ops.h"

#include "lib/util/philox.h"

int nn_conv2d_setup(NnConv2d *c, Err *e)
{
    if (c->n < 1 || c->c_in < 1 || c->h_in < 1 || c->w_in < 1 || c->c_out < 1 || c->kh < 1 ||
        c->kw < 1)
        return err_set(e, ERR_INTERNAL, "conv2d: empty size");
    if (c->stride_h < 1 || c->stride_w < 1 || c->dil_h < 1 || c->dil_w < 1 || c->pad_h < 0 ||
        c->pad_w < 0)
        return err_set(e, ERR_INTERNAL, "conv2d: bad stride, dilation or padding");
    if (c->groups < 1 || c->c_in % c->groups || c->c_out % c->groups)
        return err_set(e, ERR_INTERNAL, "conv2d: groups %d do not divide %d in and %d out channels",
                       c->groups, c->c_in, c->c_out);
    int eh = c->h_in + 2 * c->pad_h - c->dil_h * (c->kh - 1) - 1;
    int ew = c->w_in + 2 * c->pad_w - c->dil_w * (c->kw - 1) - 1;
    if (eh < 0 || ew < 0)
        return err_set(e, ERR_INTERNAL, "conv2d: kernel larger than the padded %dx%d input",
                       c->h_in, c->w_in);
    c->h_out = eh / c->stride_h + 1;
    c->w_out = ew / c->stride_w + 1;
    return 0;
}

NnConv2d nn_conv2d_square(int n, int c_in, int h, int w, int c_out, int k, int stride, int pad,
                          int dil, int groups)
{
    return (NnConv2d){.n = n,
                      .c_in = c_in,
                      .h_in = h,
                      .w_in = w,
                      .c_out = c_out,
                      .kh = k,
                      .kw = k,
                      .stride_h = stride,
                      .stride_w = stride,
                      .pad_h = pad,
                      .pad_w = pad,
                      .dil_h = dil,
                      .dil_w = dil,
                      .groups = groups};
}

NnPool2d nn_pool2d_square(int n, int c, int h, int w, int k, int stride, int pad, int ceil_mode,
                          int count_include_pad)
{
    return (NnPool2d){.n = n,
                      .c = c,
                      .h_in = h,
                      .w_in = w,
                      .kh = k,
                      .kw = k,
                      .stride_h = stride,
                      .stride_w = stride,
                      .pad_h = pad,
                      .pad_w = pad,
                      .ceil_mode = ceil_mode,
                      .count_include_pad = count_include_pad};
}

int nn_batchnorm_setup(const NnBatchNorm *bn, int training, Err *e)
{
    if (bn->n < 1 || bn->c < 1 || bn->h < 1 || bn->w < 1)
        return err_set(e, ERR_INTERNAL, "batchnorm: empty size");
    if (!(bn->eps > 0) || !(bn->momentum >= 0 && bn->momentum <= 1))
        return err_set(e, ERR_INTERNAL, "batchnorm: eps %g or momentum %g out of range",
                       (double)bn->eps, (double)bn->momentum);
    /* PyTorch refuses too: the unbiased variance of one value is 0/0 */
    if (training && (long)bn->n * bn->h * bn->w < 2)
        return err_set(e, ERR_CONFIG,
                       "batchnorm: expected more than 1 value per channel when training");
    return 0;
}

/* PyTorch's pooling_output_shape for one dimension, dilation 1. */
static int pool_out(int in, int k, int stride, int pad, int ceil_mode)
{
    int num = in + 2 * pad - (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
    int out = num / stride + 1; /* num >= 0 is checked by the caller: floor = truncation */
    /* the last window must start inside the input or the left padding */
    if (ceil_mode && (out - 1) * stride >= in + pad)
        out--;
    return out;
}

int nn_pool2d_setup(NnPool2d *p, Err *e)
{
    if (p->n < 1 || p->c < 1 || p->h_in < 1 || p->w_in < 1 || p->kh < 1 || p->kw < 1)
        return err_set(e, ERR_INTERNAL, "pool2d: empty size");
    if (p->stride_h < 1 || p->stride_w < 1 || p->pad_h < 0 || p->pad_w < 0)
        return err_set(e, ERR_INTERNAL, "pool2d: bad stride or padding");
    if (p->pad_h > p->kh / 2 || p->pad_w > p->kw / 2)
        return err_set(e, ERR_INTERNAL, "pool2d: padding %dx%d over half the %dx%d kernel",
                       p->pad_h, p->pad_w, p->kh, p->kw);
    if (p->h_in + 2 * p->pad_h < p->kh || p->w_in + 2 * p->pad_w < p->kw)
        return err_set(e, ERR_INTERNAL, "pool2d: kernel larger than the padded %dx%d input",
                       p->h_in, p->w_in);
    p->h_out = pool_out(p->h_in, p->kh, p->stride_h, p->pad_h, p->ceil_mode);
    p->w_out = pool_out(p->w_in, p->kw, p->stride_w, p->pad_w, p->ceil_mode);
    return 0;
}

int nn_adaptive_pool_setup(const NnAdaptivePool *p, Err *e)
{
    if (p->n < 1 || p->c < 1 || p->h_in < 1 || p->w_in < 1 || p->h_out < 1 || p->w_out < 1)
        return err_set(e, ERR_INTERNAL, "adaptive pool: empty size");
    return 0;
}

const char *nn_act_name(NnAct a)
{
    switch (a) {
    case NN_RELU: return "relu";
    case NN_RELU6: return "relu6";
    case NN_HARDSWISH: return "hardswish";
    case NN_HARDSIGMOID: return "hardsigmoid";
    case NN_SILU: return "silu";
    case NN_SIGMOID: return "sigmoid";
    }
    return "unknown";
}

float nn_mask_uniform(uint64_t seed, uint64_t step, uint32_t op, uint64_t j)
{
    uint64_t stream = (step << 24) | (op & 0xffffffu);
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)(j / 4), PHILOX_DROPOUT, (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    uint32_t out[4];
    philox4x32_10(ctr, key, out);
    return (float)(out[j % 4] >> 8) * 0x1.0p-24f;
}

int nn_xent_setup(const NnXent *x, const int *target, Err *e)
{
    if (x->n < 1 || x->k < 1)
        return err_set(e, ERR_INTERNAL, "cross-entropy: empty size");
    if (!(x->smoothing >= 0 && x->smoothing <= 1))
        return err_set(e, ERR_CONFIG, "cross-entropy: label smoothing %g outside [0, 1]",
                       (double)x->smoothing);
    if (target)
        for (int i = 0; i < x->n; i++)
            if (target[i] < 0 || target[i] >= x->k)
                return err_set(e, ERR_FORMAT,
                               "cross-entropy: target %d of sample %d outside [0, %d)", target[i],
                               i, x->k);
    return 0;
}

NnPoolWindow nn_avgpool_window(const NnPool2d *p, int oh, int ow)
{
    int h0 = oh * p->stride_h - p->pad_h;
    int w0 = ow * p->stride_w - p->pad_w;
    int h1 = h0 + p->kh < p->h_in + p->pad_h ? h0 + p->kh : p->h_in + p->pad_h;
    int w1 = w0 + p->kw < p->w_in + p->pad_w ? w0 + p->kw : p->w_in + p->pad_w;
    int padded = (h1 - h0) * (w1 - w0);
    NnPoolWindow win = {.h0 = h0 > 0 ? h0 : 0,
                        .w0 = w0 > 0 ? w0 : 0,
                        .h1 = h1 < p->h_in ? h1 : p->h_in,
                        .w1 = w1 < p->w_in ? w1 : p->w_in};
    if (win.h0 >= win.h1 || win.w0 >= win.w1)
        win.divisor = 0;
    else
        win.divisor = p->count_include_pad ? padded : (win.h1 - win.h0) * (win.w1 - win.w0);
    return win;
}

float nn_mask_scale(const NnDropout *d, uint64_t j)
{
    if (d->p <= 0.0f)
        return 1.0f;
    if (d->p >= 1.0f)
        return 0.0f; /* everything dropped; avoids 0 times inf */
    return nn_mask_uniform(d->seed, d->step, d->op, d->first + j) >= d->p ? 1.0f / (1.0f - d->p)
                                                                          : 0.0f;
}
