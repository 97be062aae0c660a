/* act.c: reference pointwise activations, forward and backward.
 *
 * Backward reads the forward input x, never the output, so every activation has one
 * convention. At the kinks the derivative is PyTorch's CPU kernel's
 * (aten/src/ATen/native/cpu/Activation.cpp), listed in backend.h; golden data avoids the kinks
 * anyway because the GPU kernels disagree on them. */
#include <math.h>

#include "lib/nn/ref/ref.h"

static float relu6(float v)
{
    return v < 0.0f ? 0.0f : v > 6.0f ? 6.0f : v;
}

static float sigmoid(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

static float act(NnAct a, float v)
{
    switch (a) {
    case NN_RELU: return v < 0.0f ? 0.0f : v; /* NaN passes through, as in PyTorch */
    case NN_RELU6: return relu6(v);
    case NN_HARDSWISH: return v * relu6(v + 3.0f) / 6.0f;
    case NN_HARDSIGMOID: return relu6(v + 3.0f) / 6.0f;
    case NN_SILU: return v * sigmoid(v);
    case NN_SIGMOID: return sigmoid(v);
    }
    return v;
}

/* d act(v) / dv times g. */
static float act_grad(NnAct a, float v, float g)
{
    switch (a) {
    case NN_RELU: return v > 0.0f ? g : 0.0f;
    case NN_RELU6: return v > 0.0f && v < 6.0f ? g : 0.0f;
    case NN_HARDSWISH:
        if (v < -3.0f)
            return 0.0f;
        return v <= 3.0f ? g * (v / 3.0f + 0.5f) : g;
    case NN_HARDSIGMOID: return v > -3.0f && v < 3.0f ? g / 6.0f : 0.0f;
    case NN_SILU: {
        float s = sigmoid(v);
        return g * s * (1.0f + v * (1.0f - s));
    }
    case NN_SIGMOID: {
        float s = sigmoid(v);
        return g * s * (1.0f - s);
    }
    }
    return g;
}

void ref_act_forward(NnAct a, size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = act(a, x[i]);
}

void ref_act_backward(NnAct a, size_t n, const float *x, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] += act_grad(a, x[i], dy[i]);
}
