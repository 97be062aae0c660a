/* test_nn_grad.c: finite-difference checks of every backward of the reference backend, and
 * of the accumulate contract (lib/nn/backend.h).
 *
 * For an op y = f(x1, x2, ...) and a random projection r, L = sum r y is a scalar whose
 * gradient with respect to each input is exactly what backward computes from dy = r. Each
 * probed input element is moved by +-h and L re-evaluated, summing in double; the central
 * difference (L+ - L-) / (x+ - x-), with the step measured after rounding x +- h to float, is
 * compared with the analytic gradient. Errors are judged relative to the largest analytic
 * gradient of that input, because float32 forward passes leave an absolute noise of about
 * 1e-7 |L| / h in every difference.
 *
 * Shapes are small and odd on purpose (odd H and W, stride 2 windows that do not tile, groups,
 * depthwise, ceil-mode edges, padding). Inputs stay clear of kinks (ReLU at 0, hardswish at
 * +-3, ties in max pooling) by more than the step, where a difference quotient means nothing.
 *
 * The accumulate contract: backward called twice into the same buffers must give twice the
 * gradient of one call, for every op. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/nn/backend.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

#define MAX_IN     4
#define MAX_PROBES 240 /* elements probed per input (all when fewer): keeps the test in seconds */

static const NnBackend *be;

// ---------------------------------------------------------------------------------------------
// The harness

typedef struct GradCase GradCase;
struct GradCase {
    char name[96];
    int n_in;
    const char *in_name[MAX_IN];
    float *in[MAX_IN];
    size_t size[MAX_IN];
    size_t n_out;
    /* forward writes the op's output into out; backward adds the gradients of sum dout out
     * into din[i] (NULL entries: not wanted). backward always runs right after a forward at
     * the same inputs, so state saved by forward (argmax, batch stats, softmax) is current. */
    void (*forward)(GradCase *g, float *out);
    void (*backward)(GradCase *g, const float *dout, float *const *din);
    double h;
    /* op state, whichever the op uses */
    NnConv2d conv;
    NnBatchNorm bn;
    NnPool2d pool;
    NnAdaptivePool ap;
    NnAct act;
    NnDropout drop;
    NnXent xent;
    int dims[6];
    int parts;
    int chans[4];
    int has_bias;
    void *ws;
    int32_t *argmax;
    float *stats[4];
    int64_t counter;
    int *target;
    float *weight;
    float *scratch;
};

static uint64_t next_stream = 1;

/* Uniform in [-scale, scale), from a fresh test stream. */
static float *rand_buf(size_t n, float scale)
{
    float *p = mem_alloc(n * sizeof(float));
    assert_non_null(p);
    Philox rng;
    philox_init(&rng, 2024, PHILOX_TEST, next_stream++);
    for (size_t i = 0; i < n; i++)
        p[i] = (2.0f * philox_uniformf(&rng) - 1.0f) * scale;
    return p;
}

static float *zeros(size_t n)
{
    float *p = mem_calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static void add_input(GradCase *g, const char *name, size_t n, float scale)
{
    g->in_name[g->n_in] = name;
    g->size[g->n_in] = n;
    g->in[g->n_in] = rand_buf(n, scale);
    g->n_in++;
}

/* Moves values within `gap` of a kink to kink + gap. */
static void avoid_kinks(float *x, size_t n, const float *kinks, int n_kinks, float gap)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < n_kinks; k++)
            if (fabsf(x[i] - kinks[k]) < gap)
                x[i] = kinks[k] + gap;
}

/* Values spread `spacing` apart in random order, so no two are within a step of each other
 * (max pooling's argmax cannot flip under +-h). */
static void distinct_values(float *x, size_t n, float spacing)
{
    Philox rng;
    philox_init(&rng, 2024, PHILOX_TEST, next_stream++);
    for (size_t i = 0; i < n; i++)
        x[i] = ((float)i - (float)n / 2) * spacing;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = philox_below(&rng, (uint32_t)(i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

static double project(const float *y, const float *r, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)r[i] * y[i];
    return s;
}

static double max_abs(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)x[i]));
    return m;
}

/* Runs the checks on g and frees its inputs; tol is relative to the largest gradient. */
static void grad_check(GradCase *g, double tol)
{
    float *out = zeros(g->n_out);
    float *r = rand_buf(g->n_out, 1.0f);
    float *din[MAX_IN] = {0};
    float *din2[MAX_IN] = {0};
    for (int i = 0; i < g->n_in; i++) {
        din[i] = zeros(g->size[i]);
        din2[i] = zeros(g->size[i]);
    }

    g->forward(g, out);
    g->backward(g, r, din);
    g->backward(g, r, din2);
    g->backward(g, r, din2);
    for (int i = 0; i < g->n_in; i++) {
        double scale = max_abs(din[i], g->size[i]);
        assert_true(scale > 0.0); /* a zero gradient would make the check vacuous */
        for (size_t j = 0; j < g->size[i]; j++)
            if (fabs(din2[i][j] - 2.0 * din[i][j]) > 1e-6 * scale) {
                fprintf(stderr, "%s: d%s[%zu]: two backward calls gave %g, one gave %g\n", g->name,
                        g->in_name[i], j, din2[i][j], din[i][j]);
                fail();
            }
    }

    for (int i = 0; i < g->n_in; i++) {
        float *x = g->in[i];
        size_t stride = (g->size[i] + MAX_PROBES - 1) / MAX_PROBES;
        double worst = 0.0;
        size_t worst_at = 0;
        double worst_num = 0.0;
        for (size_t j = (size_t)(next_stream % stride); j < g->size[i]; j += stride) {
            float keep = x[j];
            float up = (float)(keep + g->h);
            float down = (float)(keep - g->h);
            x[j] = up;
            g->forward(g, out);
            double lp = project(out, r, g->n_out);
            x[j] = down;
            g->forward(g, out);
            double lm = project(out, r, g->n_out);
            x[j] = keep;
            double num = (lp - lm) / ((double)up - (double)down);
            double err = fabs(num - din[i][j]);
            if (err > worst) {
                worst = err;
                worst_at = j;
                worst_num = num;
            }
        }
        double scale = max_abs(din[i], g->size[i]);
        printf("# %-44s d%-6s max|fd - bwd| %.1e = %.1e of max|grad| %.1e\n", g->name,
               g->in_name[i], worst, worst / scale, scale);
        if (worst > tol * scale) {
            fprintf(stderr, "%s: d%s[%zu]: finite difference %g, backward %g\n", g->name,
                    g->in_name[i], worst_at, worst_num, din[i][worst_at]);
            fail();
        }
    }

    for (int i = 0; i < g->n_in; i++) {
        mem_free(g->in[i]);
        mem_free(din[i]);
        mem_free(din2[i]);
    }
    mem_free(out);
    mem_free(r);
}

#define TOL 1e-3

// ---------------------------------------------------------------------------------------------
// Convolution

static void conv_fwd(GradCase *g, float *out)
{
    be->conv2d_forward(&g->conv, g->in[0], g->in[1], g->has_bias ? g->in[2] : NULL, out, g->ws);
}

static void conv_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->conv2d_backward(&g->conv, g->in[0], g->in[1], dy, din[0], din[1],
                        g->has_bias ? din[2] : NULL, g->ws);
}

static void conv_case(const char *label, NnConv2d c, int bias)
{
    GradCase g = {.forward = conv_fwd, .backward = conv_bwd, .h = 1e-2, .has_bias = bias};
    Err e = {0};
    assert_int_equal(nn_conv2d_setup(&c, &e), 0);
    g.conv = c;
    snprintf(g.name, sizeof g.name, "conv %s", label);
    add_input(&g, "x", (size_t)c.n * c.c_in * c.h_in * c.w_in, 1.0f);
    add_input(&g, "w", (size_t)c.c_out * (c.c_in / c.groups) * c.kh * c.kw, 0.5f);
    if (bias)
        add_input(&g, "b", (size_t)c.c_out, 1.0f);
    g.n_out = (size_t)c.n * c.c_out * c.h_out * c.w_out;
    g.ws = mem_alloc(be->conv2d_workspace(&c) + 1);
    assert_non_null(g.ws);
    grad_check(&g, TOL);
    mem_free(g.ws);
}

static NnConv2d conv_desc(int n, int cin, int h, int w, int cout, int kh, int kw, int stride,
                          int pad, int dil, int groups)
{
    return (NnConv2d){.n = n,
                      .c_in = cin,
                      .h_in = h,
                      .w_in = w,
                      .c_out = cout,
                      .kh = kh,
                      .kw = kw,
                      .stride_h = stride,
                      .stride_w = stride,
                      .pad_h = pad,
                      .pad_w = pad,
                      .dil_h = dil,
                      .dil_w = dil,
                      .groups = groups};
}

static void test_conv(void **state)
{
    (void)state;
    conv_case("dense 3x3 p1, 7x5", conv_desc(2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1), 1);
    conv_case("dense 3x3 s2 p1, 9x7, no bias", conv_desc(2, 3, 9, 7, 5, 3, 3, 2, 1, 1, 1), 0);
    conv_case("grouped g2 3x3 s2, 8x7", conv_desc(2, 6, 8, 7, 4, 3, 3, 2, 0, 1, 2), 1);
    conv_case("depthwise 3x3 s2 p1, 9x9", conv_desc(2, 4, 9, 9, 4, 3, 3, 2, 1, 1, 4), 0);
    conv_case("depthwise 5x5 s1 p2, 7x6", conv_desc(1, 3, 7, 6, 3, 5, 5, 1, 2, 1, 3), 1);
    conv_case("dilated 3x3 d2 p2, 7x6", conv_desc(1, 3, 7, 6, 2, 3, 3, 1, 2, 2, 1), 1);
    conv_case("pointwise 1x1, 5x3", conv_desc(2, 5, 5, 3, 3, 1, 1, 1, 0, 1, 1), 1);
    conv_case("pointwise grouped 1x1 g2", conv_desc(1, 4, 3, 3, 6, 1, 1, 1, 0, 1, 2), 0);
    conv_case("1x1 s2 shortcut, 7x7", conv_desc(2, 4, 7, 7, 6, 1, 1, 2, 0, 1, 1), 0);
    NnConv2d asym = conv_desc(2, 2, 5, 7, 3, 1, 3, 1, 0, 1, 1);
    asym.stride_w = 2;
    asym.pad_w = 1;
    conv_case("asymmetric 1x3 s(1,2) p(0,1)", asym, 1);
}

/* NULL gradient pointers skip exactly that gradient and nothing else. */
static void test_conv_null_grads(void **state)
{
    (void)state;
    NnConv2d c = conv_desc(2, 4, 6, 5, 6, 3, 3, 2, 1, 1, 2);
    Err e = {0};
    assert_int_equal(nn_conv2d_setup(&c, &e), 0);
    size_t nx = (size_t)c.n * c.c_in * c.h_in * c.w_in;
    size_t nw = (size_t)c.c_out * (c.c_in / c.groups) * c.kh * c.kw;
    size_t ny = (size_t)c.n * c.c_out * c.h_out * c.w_out;
    float *x = rand_buf(nx, 1.0f);
    float *w = rand_buf(nw, 1.0f);
    float *dy = rand_buf(ny, 1.0f);
    float *dx = zeros(nx);
    float *dw = zeros(nw);
    float *db = zeros((size_t)c.c_out);
    float *dw2 = zeros(nw);
    void *ws = mem_alloc(be->conv2d_workspace(&c));
    be->conv2d_backward(&c, x, w, dy, dx, dw, db, ws);
    be->conv2d_backward(&c, x, w, dy, NULL, dw2, NULL, ws);
    assert_memory_equal(dw, dw2, nw * sizeof(float));
    mem_free(x);
    mem_free(w);
    mem_free(dy);
    mem_free(dx);
    mem_free(dw);
    mem_free(db);
    mem_free(dw2);
    mem_free(ws);
}

// ---------------------------------------------------------------------------------------------
// Batch norm

static size_t bn_size(const NnBatchNorm *bn)
{
    return (size_t)bn->n * bn->c * bn->h * bn->w;
}

static void bn_train_fwd(GradCase *g, float *out)
{
    be->batchnorm_forward_train(&g->bn, g->in[0], g->in[1], g->in[2], out, g->stats[0], g->stats[1],
                                &g->counter, g->stats[2], g->stats[3]);
}

static void bn_train_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->batchnorm_backward_train(&g->bn, g->in[0], g->in[1], g->stats[2], g->stats[3], dy, din[0],
                                 din[1], din[2]);
}

static void bn_eval_fwd(GradCase *g, float *out)
{
    be->batchnorm_forward_eval(&g->bn, g->in[0], g->in[1], g->in[2], g->stats[0], g->stats[1], out);
}

static void bn_eval_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->batchnorm_backward_eval(&g->bn, g->in[0], g->in[1], g->stats[0], g->stats[1], dy, din[0],
                                din[1], din[2]);
}

static void bn_case(const char *label, NnBatchNorm bn, int training)
{
    GradCase g = {.bn = bn, .h = 1e-2};
    g.forward = training ? bn_train_fwd : bn_eval_fwd;
    g.backward = training ? bn_train_bwd : bn_eval_bwd;
    Err e = {0};
    assert_int_equal(nn_batchnorm_setup(&bn, training, &e), 0);
    snprintf(g.name, sizeof g.name, "batchnorm %s", label);
    add_input(&g, "x", bn_size(&bn), 2.0f);
    add_input(&g, "gamma", (size_t)bn.c, 1.0f);
    add_input(&g, "beta", (size_t)bn.c, 1.0f);
    for (int i = 0; i < 4; i++)
        g.stats[i] = zeros((size_t)bn.c);
    for (int c = 0; c < bn.c; c++) {
        g.stats[0][c] = 0.1f * (float)c;
        g.stats[1][c] = 0.5f + 0.3f * (float)c;
    }
    g.n_out = bn_size(&bn);
    grad_check(&g, TOL);
    for (int i = 0; i < 4; i++)
        mem_free(g.stats[i]);
}

static void test_batchnorm(void **state)
{
    (void)state;
    bn_case("train 2x3x5x3", (NnBatchNorm){2, 3, 5, 3, 1e-5f, 0.1f, 0}, 1);
    bn_case("train 3x2x3x1, eps 1e-3", (NnBatchNorm){3, 2, 3, 1, 1e-3f, 0.01f, 0}, 1);
    bn_case("train 4x3x1x1 (after pooling)", (NnBatchNorm){4, 3, 1, 1, 1e-5f, 0.1f, 0}, 1);
    bn_case("eval 2x3x5x3", (NnBatchNorm){2, 3, 5, 3, 1e-5f, 0.1f, 0}, 0);
}

// ---------------------------------------------------------------------------------------------
// Activations

static void act_fwd(GradCase *g, float *out)
{
    be->act_forward(g->act, g->size[0], g->in[0], out);
}

static void act_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->act_backward(g->act, g->size[0], g->in[0], dy, din[0]);
}

static void test_activations(void **state)
{
    (void)state;
    static const float kinks[] = {-3.0f, 0.0f, 3.0f, 6.0f};
    const NnAct acts[] = {NN_RELU, NN_RELU6, NN_HARDSWISH, NN_HARDSIGMOID, NN_SILU, NN_SIGMOID};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        GradCase g = {.forward = act_fwd, .backward = act_bwd, .h = 1e-3, .act = acts[a]};
        snprintf(g.name, sizeof g.name, "%s 3x5x7", nn_act_name(acts[a]));
        add_input(&g, "x", 105, 8.0f); /* spans every kink */
        avoid_kinks(g.in[0], g.size[0], kinks, 4, 1e-2f);
        g.n_out = g.size[0];
        grad_check(&g, TOL);
    }
}

// ---------------------------------------------------------------------------------------------
// Pooling

static void maxpool_fwd(GradCase *g, float *out)
{
    be->maxpool2d_forward(&g->pool, g->in[0], out, g->argmax);
}

static void maxpool_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->maxpool2d_backward(&g->pool, g->argmax, dy, din[0]);
}

static void avgpool_fwd(GradCase *g, float *out)
{
    be->avgpool2d_forward(&g->pool, g->in[0], out);
}

static void avgpool_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->avgpool2d_backward(&g->pool, dy, din[0]);
}

static void pool_case(int max, int n, int c, int h, int w, int k, int s, int pad, int ceil_mode,
                      int include_pad)
{
    NnPool2d p = nn_pool2d_square(n, c, h, w, k, s, pad, ceil_mode, include_pad);
    Err e = {0};
    assert_int_equal(nn_pool2d_setup(&p, &e), 0);
    GradCase g = {.pool = p, .h = 1e-2};
    g.forward = max ? maxpool_fwd : avgpool_fwd;
    g.backward = max ? maxpool_bwd : avgpool_bwd;
    snprintf(g.name, sizeof g.name, "%spool %dx%d k%d s%d p%d%s%s -> %dx%d", max ? "max" : "avg", h,
             w, k, s, pad, ceil_mode ? " ceil" : "", !max && !include_pad ? " excl" : "", p.h_out,
             p.w_out);
    add_input(&g, "x", (size_t)n * c * h * w, 1.0f);
    if (max)
        distinct_values(g.in[0], g.size[0], 0.05f);
    g.n_out = (size_t)n * c * p.h_out * p.w_out;
    g.argmax = mem_alloc(g.n_out * sizeof(int32_t));
    assert_non_null(g.argmax);
    grad_check(&g, TOL);
    mem_free(g.argmax);
}

static void test_pooling(void **state)
{
    (void)state;
    pool_case(1, 2, 2, 9, 9, 3, 2, 1, 0, 0);  /* resnet stem */
    pool_case(1, 1, 2, 8, 10, 3, 2, 0, 1, 0); /* ceil adds a window */
    pool_case(1, 1, 3, 7, 7, 2, 2, 0, 1, 0);  /* partial last window */
    pool_case(1, 1, 2, 5, 6, 2, 2, 1, 1, 0);  /* last window would start in the padding */
    pool_case(0, 1, 3, 7, 7, 2, 2, 0, 0, 1);  /* densenet transition, odd input */
    pool_case(0, 1, 2, 6, 5, 3, 1, 1, 0, 1);  /* count_include_pad */
    pool_case(0, 1, 2, 6, 5, 3, 1, 1, 0, 0);  /* exclude padding */
    pool_case(0, 1, 2, 6, 6, 3, 2, 1, 1, 1);  /* ceil overhang changes the divisor */
    pool_case(0, 1, 2, 5, 6, 2, 2, 1, 1, 0);
    pool_case(0, 1, 2, 8, 8, 5, 3, 0, 1, 1);
}

static void adaptive_fwd(GradCase *g, float *out)
{
    be->adaptive_avgpool2d_forward(&g->ap, g->in[0], out);
}

static void adaptive_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->adaptive_avgpool2d_backward(&g->ap, dy, din[0]);
}

static void test_adaptive_pool(void **state)
{
    (void)state;
    const NnAdaptivePool cases[] = {
        {2, 3, 7, 5, 1, 1}, {1, 2, 7, 5, 3, 2}, {1, 2, 5, 5, 7, 7}, {1, 2, 6, 6, 4, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        NnAdaptivePool p = cases[i];
        Err e = {0};
        assert_int_equal(nn_adaptive_pool_setup(&p, &e), 0);
        GradCase g = {.forward = adaptive_fwd, .backward = adaptive_bwd, .h = 1e-2, .ap = p};
        snprintf(g.name, sizeof g.name, "adaptive avgpool %dx%d -> %dx%d", p.h_in, p.w_in, p.h_out,
                 p.w_out);
        add_input(&g, "x", (size_t)p.n * p.c * p.h_in * p.w_in, 1.0f);
        g.n_out = (size_t)p.n * p.c * p.h_out * p.w_out;
        grad_check(&g, TOL);
    }
}

// ---------------------------------------------------------------------------------------------
// Linear

static void linear_fwd(GradCase *g, float *out)
{
    be->linear_forward(g->dims[0], g->dims[1], g->dims[2], g->in[0], g->in[1],
                       g->has_bias ? g->in[2] : NULL, out);
}

static void linear_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->linear_backward(g->dims[0], g->dims[1], g->dims[2], g->in[0], g->in[1], dy, din[0], din[1],
                        g->has_bias ? din[2] : NULL);
}

static void test_linear(void **state)
{
    (void)state;
    const int cases[][4] = {{3, 7, 5, 1}, {4, 9, 2, 0}, {1, 19, 3, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = cases[i][0], in = cases[i][1], out = cases[i][2];
        GradCase g = {.forward = linear_fwd, .backward = linear_bwd, .h = 1e-2};
        g.dims[0] = n;
        g.dims[1] = in;
        g.dims[2] = out;
        g.has_bias = cases[i][3];
        snprintf(g.name, sizeof g.name, "linear %d x %d -> %d%s", n, in, out,
                 g.has_bias ? "" : ", no bias");
        add_input(&g, "x", (size_t)n * in, 1.0f);
        add_input(&g, "w", (size_t)out * in, 0.5f);
        if (g.has_bias)
            add_input(&g, "b", (size_t)out, 1.0f);
        g.n_out = (size_t)n * out;
        grad_check(&g, TOL);
    }
}

// ---------------------------------------------------------------------------------------------
// Plumbing: add, channel multiply, concat, split, shuffle, dropout, stochastic depth

static void add_fwd(GradCase *g, float *out)
{
    be->add_forward(g->size[0], g->in[0], g->in[1], out);
}

static void add_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->add_backward(g->size[0], dy, din[0], din[1]);
}

static void chanmul_fwd(GradCase *g, float *out)
{
    be->chanmul_forward(g->dims[0], g->dims[1], g->dims[2], g->in[0], g->in[1], out);
}

static void chanmul_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->chanmul_backward(g->dims[0], g->dims[1], g->dims[2], g->in[0], g->in[1], dy, din[0],
                         din[1]);
}

static void concat_fwd(GradCase *g, float *out)
{
    be->concat_forward(g->dims[0], g->dims[1], g->parts, g->chans, (const float *const *)g->in,
                       out);
}

static void concat_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->concat_backward(g->dims[0], g->dims[1], g->parts, g->chans, dy, din);
}

/* The parts of split's output, laid end to end in out. */
static void split_parts(GradCase *g, float *out, float **parts)
{
    for (int i = 0; i < g->parts; i++) {
        parts[i] = out;
        out += (size_t)g->dims[0] * g->chans[i] * g->dims[1];
    }
}

static void split_fwd(GradCase *g, float *out)
{
    float *ys[4];
    split_parts(g, out, ys);
    be->split_forward(g->dims[0], g->dims[1], g->parts, g->chans, g->in[0], ys);
}

static void split_bwd(GradCase *g, const float *dy, float *const *din)
{
    float *dys[4];
    split_parts(g, (float *)dy, dys);
    be->split_backward(g->dims[0], g->dims[1], g->parts, g->chans, (const float *const *)dys,
                       din[0]);
}

static void shuffle_fwd(GradCase *g, float *out)
{
    be->shuffle_forward(g->dims[0], g->dims[1], g->dims[2], g->dims[3], g->in[0], out);
}

static void shuffle_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->shuffle_backward(g->dims[0], g->dims[1], g->dims[2], g->dims[3], dy, din[0]);
}

static void dropout_fwd(GradCase *g, float *out)
{
    be->dropout_forward(&g->drop, g->size[0], g->in[0], out);
}

static void dropout_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->dropout_backward(&g->drop, g->size[0], dy, din[0]);
}

static void sd_fwd(GradCase *g, float *out)
{
    be->stochastic_depth_forward(&g->drop, g->dims[0], g->size[0] / (size_t)g->dims[0], g->in[0],
                                 out);
}

static void sd_bwd(GradCase *g, const float *dy, float *const *din)
{
    be->stochastic_depth_backward(&g->drop, g->dims[0], g->size[0] / (size_t)g->dims[0], dy,
                                  din[0]);
}

static void test_plumbing(void **state)
{
    (void)state;
    GradCase add = {.name = "add 2x3x5x3", .forward = add_fwd, .backward = add_bwd, .h = 1e-2};
    add_input(&add, "a", 90, 1.0f);
    add_input(&add, "b", 90, 1.0f);
    add.n_out = 90;
    grad_check(&add, TOL);

    const int cm[][3] = {{2, 5, 9}, {3, 4, 1}, {1, 3, 35}};
    for (size_t i = 0; i < 3; i++) {
        GradCase g = {.forward = chanmul_fwd, .backward = chanmul_bwd, .h = 1e-2};
        memcpy(g.dims, cm[i], sizeof cm[i]);
        snprintf(g.name, sizeof g.name, "chanmul N%d C%d HW%d", cm[i][0], cm[i][1], cm[i][2]);
        add_input(&g, "x", (size_t)cm[i][0] * cm[i][1] * cm[i][2], 1.0f);
        add_input(&g, "s", (size_t)cm[i][0] * cm[i][1], 1.0f);
        g.n_out = g.size[0];
        grad_check(&g, TOL);
    }

    GradCase cat = {.name = "concat (3,2,4) ch, N2 HW15",
                    .forward = concat_fwd,
                    .backward = concat_bwd,
                    .h = 1e-2,
                    .parts = 3,
                    .chans = {3, 2, 4},
                    .dims = {2, 15}};
    add_input(&cat, "x0", 2 * 3 * 15, 1.0f);
    add_input(&cat, "x1", 2 * 2 * 15, 1.0f);
    add_input(&cat, "x2", 2 * 4 * 15, 1.0f);
    cat.n_out = 2 * 9 * 15;
    grad_check(&cat, TOL);

    GradCase split = {.name = "split (2,5,1) ch, N2 HW9",
                      .forward = split_fwd,
                      .backward = split_bwd,
                      .h = 1e-2,
                      .parts = 3,
                      .chans = {2, 5, 1},
                      .dims = {2, 9}};
    add_input(&split, "x", 2 * 8 * 9, 1.0f);
    split.n_out = 2 * 8 * 9;
    grad_check(&split, TOL);

    const int sh[][4] = {{2, 6, 15, 2}, {1, 12, 6, 3}};
    for (size_t i = 0; i < 2; i++) {
        GradCase g = {.forward = shuffle_fwd, .backward = shuffle_bwd, .h = 1e-2};
        memcpy(g.dims, sh[i], sizeof sh[i]);
        snprintf(g.name, sizeof g.name, "shuffle C%d groups %d", sh[i][1], sh[i][3]);
        add_input(&g, "x", (size_t)sh[i][0] * sh[i][1] * sh[i][2], 1.0f);
        g.n_out = g.size[0];
        grad_check(&g, TOL);
    }

    GradCase drop = {.name = "dropout p0.3, 2x3x5x5",
                     .forward = dropout_fwd,
                     .backward = dropout_bwd,
                     .h = 1e-2,
                     .drop = {0.3f, 42, 3, 7}};
    add_input(&drop, "x", 150, 1.0f);
    drop.n_out = 150;
    grad_check(&drop, TOL);

    GradCase sd = {.name = "stochastic depth p0.5, 8x3x3x3",
                   .forward = sd_fwd,
                   .backward = sd_bwd,
                   .h = 1e-2,
                   .drop = {0.5f, 42, 5, 11},
                   .dims = {8}};
    add_input(&sd, "x", 8 * 27, 1.0f);
    sd.n_out = 8 * 27;
    grad_check(&sd, TOL);
}

// ---------------------------------------------------------------------------------------------
// Loss

static void xent_fwd(GradCase *g, float *out)
{
    out[0] = be->xent_forward(&g->xent, g->in[0], g->target, g->weight, g->scratch);
}

static void xent_bwd(GradCase *g, const float *dout, float *const *din)
{
    be->xent_backward(&g->xent, g->scratch, g->target, g->weight, dout[0], din[0]);
}

static void test_xent(void **state)
{
    (void)state;
    static const int target[7] = {0, 4, 2, 2, 1, 3, 0};
    static float weight[5] = {0.5f, 2.0f, 1.0f, 0.25f, 3.0f};
    const struct {
        int n, k, weighted;
        float smoothing;
    } cases[] = {
        {7, 5, 0, 0.0f}, {7, 5, 1, 0.0f}, {7, 5, 0, 0.1f}, {7, 5, 1, 0.2f}, {6, 2, 1, 0.1f}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        GradCase g = {.forward = xent_fwd, .backward = xent_bwd, .h = 1e-2};
        g.xent = (NnXent){cases[i].n, cases[i].k, cases[i].smoothing};
        int tg[7];
        for (int j = 0; j < cases[i].n; j++)
            tg[j] = target[j] % cases[i].k;
        g.target = tg;
        g.weight = cases[i].weighted ? weight : NULL;
        Err e = {0};
        assert_int_equal(nn_xent_setup(&g.xent, tg, &e), 0);
        snprintf(g.name, sizeof g.name, "cross-entropy N%d K%d%s smoothing %.1f", cases[i].n,
                 cases[i].k, cases[i].weighted ? " weighted" : "", (double)cases[i].smoothing);
        add_input(&g, "logits", (size_t)cases[i].n * cases[i].k, 3.0f);
        g.scratch = zeros(g.size[0]);
        g.n_out = 1;
        grad_check(&g, TOL);
        mem_free(g.scratch);
    }
}

// ---------------------------------------------------------------------------------------------
// The rules that finite differences cannot see

/* Masks: a pure function of (seed, step, op, index), keep rate 1 - p, and p = 0 / p = 1
 * are the identity / zero. */
static void test_mask_rule(void **state)
{
    (void)state;
    const size_t n = 100000;
    float *x = zeros(n);
    float *y = zeros(n);
    float *y2 = zeros(n);
    for (size_t i = 0; i < n; i++)
        x[i] = 1.0f;
    NnDropout d = {0.2f, 7, 11, 3, 0};
    be->dropout_forward(&d, n, x, y);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(y[i] == 0.0f || y[i] == 1.0f / 0.8f);
        kept += y[i] != 0.0f;
        assert_int_equal(y[i] != 0.0f, nn_mask_uniform(7, 11, 3, i) >= 0.2f);
    }
    /* 80000 expected, sd 126: 5 sd either way */
    assert_true(kept > 79370 && kept < 80630);
    be->dropout_forward(&d, n, x, y2);
    assert_memory_equal(y, y2, n * sizeof(float));
    /* a rank holding elements [1000, n) of the global batch draws the global batch's mask */
    NnDropout share = {0.2f, 7, 11, 3, 1000};
    be->dropout_forward(&share, n - 1000, x + 1000, y2 + 1000);
    assert_memory_equal(y + 1000, y2 + 1000, (n - 1000) * sizeof(float));
    NnDropout other_step = {0.2f, 7, 12, 3, 0};
    NnDropout other_op = {0.2f, 7, 11, 4, 0};
    be->dropout_forward(&other_step, n, x, y2);
    assert_true(memcmp(y, y2, n * sizeof(float)) != 0);
    be->dropout_forward(&other_op, n, x, y2);
    assert_true(memcmp(y, y2, n * sizeof(float)) != 0);

    NnDropout none = {0.0f, 7, 11, 3, 0};
    be->dropout_forward(&none, n, x, y);
    assert_memory_equal(x, y, n * sizeof(float));
    NnDropout all = {1.0f, 7, 11, 3, 0};
    be->dropout_forward(&all, n, x, y);
    be->stochastic_depth_forward(&all, 10, n / 10, x, y2);
    for (size_t i = 0; i < n; i++)
        assert_true(y[i] == 0.0f && y2[i] == 0.0f);

    /* stochastic depth: whole samples kept or dropped, by sample index */
    NnDropout sd = {0.5f, 9, 2, 1, 0};
    be->stochastic_depth_forward(&sd, 100, n / 100, x, y);
    for (int b = 0; b < 100; b++) {
        float want = nn_mask_uniform(9, 2, 1, (uint64_t)b) >= 0.5f ? 2.0f : 0.0f;
        for (size_t i = 0; i < n / 100; i++)
            assert_true(y[(size_t)b * (n / 100) + i] == want);
    }
    mem_free(x);
    mem_free(y);
    mem_free(y2);
}

/* Output sizes against values worked out by hand from PyTorch's rules. */
static void test_output_sizes(void **state)
{
    (void)state;
    Err e = {0};
    NnConv2d c = conv_desc(1, 3, 224, 224, 16, 3, 3, 2, 1, 1, 1);
    assert_int_equal(nn_conv2d_setup(&c, &e), 0);
    assert_int_equal(c.h_out, 112);
    c = conv_desc(1, 3, 7, 7, 4, 3, 3, 1, 2, 2, 1);
    assert_int_equal(nn_conv2d_setup(&c, &e), 0);
    assert_int_equal(c.h_out, 7);
    c = conv_desc(1, 6, 7, 7, 4, 3, 3, 1, 0, 1, 4); /* 4 does not divide 6 */
    assert_int_equal(nn_conv2d_setup(&c, &e), ERR_INTERNAL);

    NnPool2d p = {.n = 1,
                  .c = 1,
                  .h_in = 112,
                  .w_in = 112,
                  .kh = 3,
                  .kw = 3,
                  .stride_h = 2,
                  .stride_w = 2,
                  .pad_h = 1,
                  .pad_w = 1};
    assert_int_equal(nn_pool2d_setup(&p, &e), 0);
    assert_int_equal(p.h_out, 56);
    /* ceil: (5 + 2 - 1 - 1 + 1) / 2 + 1 = 4, but window 3 would start at 6 >= 5 + 1: 3 */
    p = (NnPool2d){.n = 1,
                   .c = 1,
                   .h_in = 5,
                   .w_in = 6,
                   .kh = 2,
                   .kw = 2,
                   .stride_h = 2,
                   .stride_w = 2,
                   .pad_h = 1,
                   .pad_w = 1,
                   .ceil_mode = 1};
    assert_int_equal(nn_pool2d_setup(&p, &e), 0);
    assert_int_equal(p.h_out, 3);
    assert_int_equal(p.w_out, 4);
    p.pad_h = 2; /* over half the kernel */
    assert_int_equal(nn_pool2d_setup(&p, &e), ERR_INTERNAL);

    NnBatchNorm bn = {1, 4, 1, 1, 1e-5f, 0.1f, 0};
    assert_int_equal(nn_batchnorm_setup(&bn, 1, &e), ERR_CONFIG);
    assert_int_equal(nn_batchnorm_setup(&bn, 0, &e), 0);

    NnXent x = {2, 3, 0.1f};
    const int bad[2] = {0, 3};
    assert_int_equal(nn_xent_setup(&x, bad, &e), ERR_FORMAT);
}

int main(void)
{
    be = nn_backend_ref();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),         cmocka_unit_test(test_conv_null_grads),
        cmocka_unit_test(test_batchnorm),    cmocka_unit_test(test_activations),
        cmocka_unit_test(test_pooling),      cmocka_unit_test(test_adaptive_pool),
        cmocka_unit_test(test_linear),       cmocka_unit_test(test_plumbing),
        cmocka_unit_test(test_xent),         cmocka_unit_test(test_mask_rule),
        cmocka_unit_test(test_output_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
