/* test_nn_backend.c: a fast backend against the reference backend, op by op.
 *
 *   test_nn_backend [BACKEND]     BACKEND: argv[1], else $ONFH_TEST_BACKEND, else dnnl
 *
 * Every case draws NCHW random inputs on the host, runs ref on them as they are, and hands the
 * backend under test copies in its own memory and layout: each buffer it sees is allocated
 * with be->mem->alloc, filled with upload, read back with download and freed with free, and
 * the test transposes to and from be->layout itself (be_at) on the host, so nothing assumes
 * that the host can touch the backend's memory. Run as "refdev" (ref's kernels on memory that
 * stands for a device's) the comparisons are exact, and a missed upload or download shows up
 * as zeros: that run checks this file's transfers, the others check the kernels.
 *
 * Errors are judged relative to the largest reference value of each tensor
 * (|got - ref| <= tol max|ref|): fast backends sum in other orders than ref, so single small
 * elements carry absolute, not relative, noise. The tolerances per backend are in `tolerances`
 * below; ops that only move, select or scale once (layout, shuffle, concat, split, maxpool,
 * add, dropout) must match exactly everywhere.
 *
 * Gradient buffers start at random values, not zero (uploaded with those contents), and
 * backward runs twice: the first call is compared with ref's (from the same start), and the
 * second must add the same amount again (the accumulate contract of backend.h). Shapes are
 * small and odd (odd H and W, stride 2, padding, dilation, groups, depthwise, ceil-mode
 * windows); activation inputs keep clear of the kinks, where backends may legitimately pick
 * different one-sided derivatives.
 *
 * A backend this build or machine cannot provide (dnnl without oneDNN, cuda without a GPU or
 * without CUDA) is a skip, not a failure: the one test prints why and passes. dnnl runs with 2
 * threads, so its OpenMP paths are covered. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/nn/backend.h"
#include "lib/nn/dnnl/nn_dnnl.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

/* Tolerances relative to max|ref| (above). The accumulate check compares differences of
 * gradients of magnitude ~1, whose rounding alone is ~1e-7 of them: TOL_ACCUM for all. */
typedef struct Tol {
    const char *backend; /* NULL: any backend not listed */
    double fwd;          /* forward outputs, batch-norm statistics, optimizer states, loss */
    double bwd;          /* gradients */
    double gemm_fwd;     /* conv and linear outputs */
    double gemm_bwd;     /* conv and linear gradients */
} Tol;

static const Tol tolerances[] = {
    /* ref's own kernels on the same numbers: any difference is a lost or misplaced transfer */
    {"refdev", 0.0, 0.0, 0.0, 0.0},
    /* oneDNN reorders sums (blocked, vectorised, threaded); its gradients sum over N H W in
     * chunks, so they get more room than the outputs */
    {"dnnl", 1e-5, 1e-4, 1e-5, 1e-4},
    /* cuDNN and cuBLAS pick an algorithm per shape (implicit GEMM, Winograd, FFT, split
     * reductions): fp32 rounding in other orders, ~1e-6 of max|ref| at these sizes, so 2e-5
     * holds with margin while TF32 (~1e-3) or a wrong algorithm fails */
    {"cuda", 1e-5, 1e-4, 2e-5, 2e-5},
    {NULL, 1e-5, 1e-4, 1e-5, 1e-4},
};

#define TOL_ACCUM 1e-4

static const NnBackend *rf; /* ref, the oracle */
static const NnBackend *be; /* the backend under test */
static const NnMemory *bm;  /* be->mem: the only way to its buffers */
static Tol tol;             /* be's row of tolerances */

// ---------------------------------------------------------------------------------------------
// Helpers

static uint64_t next_stream = 1;

/* Uniform in [offset - scale, offset + scale), from a fresh test stream. */
static float *rand_buf(size_t n, float scale, float offset)
{
    float *p = mem_alloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    Philox rng;
    philox_init(&rng, 77, PHILOX_TEST, next_stream++);
    for (size_t i = 0; i < n; i++)
        p[i] = offset + (2.0f * philox_uniformf(&rng) - 1.0f) * scale;
    return p;
}

static float *copy_buf(const float *x, size_t n)
{
    float *p = mem_alloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    memcpy(p, x, n * sizeof(float));
    return p;
}

/* Zeroed backend memory. */
static void *dev_alloc(size_t bytes)
{
    void *p = bm->alloc(bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

static void dev_free(void *p)
{
    bm->free(p);
}

/* n floats from the host -> a new backend buffer, as they are (parameters, (N,F) tensors). */
static float *put(const float *x, size_t n)
{
    float *d = dev_alloc(n * sizeof(float));
    bm->upload(d, x, n * sizeof(float));
    return d;
}

/* n floats of a backend buffer -> a new host buffer. */
static float *get(const float *d, size_t n)
{
    float *h = mem_alloc((n ? n : 1) * sizeof(float));
    assert_non_null(h);
    bm->download(h, d, n * sizeof(float));
    return h;
}

/* Where element (b, ch, p) of an (N,C,HW) tensor lies in the backend's layout. */
static size_t be_at(int b, int ch, int p, int c, int hw)
{
    if (be->layout == NN_LAYOUT_NHWC)
        return ((size_t)b * hw + p) * c + ch;
    return ((size_t)b * c + ch) * hw + p;
}

/* x: (N,C,HW) NCHW on the host -> a new backend buffer in the backend's layout. */
static float *put_act(const float *x, int n, int c, int hw)
{
    size_t len = (size_t)n * c * hw;
    float *t = mem_alloc((len ? len : 1) * sizeof(float));
    assert_non_null(t);
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                t[be_at(b, ch, p, c, hw)] = x[((size_t)b * c + ch) * hw + p];
    float *d = put(t, len);
    mem_free(t);
    return d;
}

/* x: (N,C,HW) in the backend's memory and layout -> a new NCHW host buffer. */
static float *get_act(const float *x, int n, int c, int hw)
{
    size_t len = (size_t)n * c * hw;
    float *t = get(x, len);
    float *y = mem_alloc((len ? len : 1) * sizeof(float));
    assert_non_null(y);
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                y[((size_t)b * c + ch) * hw + p] = t[be_at(b, ch, p, c, hw)];
    mem_free(t);
    return y;
}

/* Fails unless |got - want| <= tol max|want| everywhere; prints the error either way. */
static void expect_close(const char *what, const float *want, const float *got, size_t n,
                         double limit)
{
    double scale = 0.0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)want[i]));
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > worst || isnan(got[i]) != isnan(want[i])) {
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    double rel = scale > 0.0 ? worst / scale : worst;
    printf("# %-60s max err %.1e of %.1e\n", what, rel, scale);
    if (!(rel <= limit)) {
        fprintf(stderr, "%s: element %zu: %s %.9g, ref %.9g (tolerance %.1e)\n", what, at, be->name,
                got[at], want[at], limit);
        fail();
    }
}

/* Backend buffer d of n floats against host want. */
static void expect_close_dev(const char *what, const float *want, const float *d, size_t n,
                             double limit)
{
    float *got = get(d, n);
    expect_close(what, want, got, n, limit);
    mem_free(got);
}

/* The accumulate contract: after a second backward, g2 - g1 must equal g1 - g0. */
static void expect_doubled(const char *what, const float *g0, const float *g1, const float *g2,
                           size_t n)
{
    float *d1 = mem_alloc((n ? n : 1) * sizeof(float));
    float *d2 = mem_alloc((n ? n : 1) * sizeof(float));
    assert_non_null(d1);
    assert_non_null(d2);
    for (size_t i = 0; i < n; i++) {
        d1[i] = g1[i] - g0[i];
        d2[i] = g2[i] - g1[i];
    }
    char label[128];
    snprintf(label, sizeof label, "%s (second backward adds again)", what);
    expect_close(label, d1, d2, n, TOL_ACCUM);
    mem_free(d1);
    mem_free(d2);
}

/* A gradient buffer in both backends: the same random start, kept for the contract check. */
typedef struct Grad {
    size_t len;
    int n, c, hw;  /* activation shape for layout conversion; c = 0: layout-free */
    double tol;    /* of the first comparison with ref */
    float *start;  /* NCHW, host */
    float *r;      /* ref's, NCHW, host */
    float *d;      /* the backend's, in its memory and layout, uploaded from start */
    float *d_once; /* the backend's after one backward, NCHW, host */
} Grad;

/* An activation gradient (N,C,HW). */
static Grad grad_new(int n, int c, int hw)
{
    Grad g = {.len = (size_t)n * c * hw, .n = n, .c = c, .hw = hw, .tol = tol.bwd};
    g.start = rand_buf(g.len, 1.0f, 0.0f);
    g.r = copy_buf(g.start, g.len);
    g.d = put_act(g.start, n, c, hw);
    return g;
}

/* A parameter or (N,F) gradient: no layout conversion. */
static Grad grad_flat(size_t len)
{
    Grad g = {.len = len, .n = 1, .c = 0, .hw = 0, .tol = tol.bwd};
    g.start = rand_buf(len, 1.0f, 0.0f);
    g.r = copy_buf(g.start, len);
    g.d = put(g.start, len);
    return g;
}

/* The same, for gradients of conv and linear (tol.gemm_bwd). */
static Grad grad_gemm(Grad g)
{
    g.tol = tol.gemm_bwd;
    return g;
}

static float *grad_get(const Grad *g)
{
    return g->c ? get_act(g->d, g->n, g->c, g->hw) : get(g->d, g->len);
}

/* After the first backward of both: compare, remember the backend's. */
static void grad_check_first(Grad *g, const char *what)
{
    g->d_once = grad_get(g);
    expect_close(what, g->r, g->d_once, g->len, g->tol);
}

/* Frees g after only its first comparison. */
static void grad_free(Grad *g)
{
    mem_free(g->start);
    mem_free(g->r);
    dev_free(g->d);
    mem_free(g->d_once);
}

/* After the backend's second backward: the contract; frees g. */
static void grad_check_second(Grad *g, const char *what)
{
    float *twice = grad_get(g);
    expect_doubled(what, g->start, g->d_once, twice, g->len);
    mem_free(twice);
    mem_free(g->start);
    mem_free(g->r);
    dev_free(g->d);
    mem_free(g->d_once);
}

/* n NaNs in backend memory: the garbage a fresh gradient may hold. */
static float *nan_dev(size_t n)
{
    float *h = mem_alloc((n ? n : 1) * sizeof(float));
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        h[i] = NAN;
    float *d = put(h, n);
    mem_free(h);
    return d;
}

/* Moves values within `gap` of a kink to kink + gap. */
static void avoid_kinks(float *x, size_t n, const float *kinks, int n_kinks, float gap)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < n_kinks; k++)
            if (fabsf(x[i] - kinks[k]) < gap)
                x[i] = kinks[k] + gap;
}

// ---------------------------------------------------------------------------------------------
// Layout

/* The backend's own to_layout and from_layout, on its memory, against be_at, which every
 * other case relies on. */
static void test_layout(void **state)
{
    (void)state;
    int n = 2, c = 5, hw = 37;
    size_t len = (size_t)n * c * hw;
    float *x = rand_buf(len, 1.0f, 0.0f);
    float *x_d = put(x, len);
    float *y_d = dev_alloc(len * sizeof(float));
    float *z_d = dev_alloc(len * sizeof(float));
    be->to_layout(n, c, hw, x_d, y_d);
    float *y = get(y_d, len);
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++)
            for (int p = 0; p < hw; p++)
                assert_true(y[be_at(b, ch, p, c, hw)] == x[((size_t)b * c + ch) * hw + p]);
    be->from_layout(n, c, hw, y_d, z_d);
    float *z = get(z_d, len);
    assert_memory_equal(z, x, len * sizeof(float));
    mem_free(x);
    mem_free(y);
    mem_free(z);
    dev_free(x_d);
    dev_free(y_d);
    dev_free(z_d);
}

// ---------------------------------------------------------------------------------------------
// Convolution

static void conv_case(const char *label, NnConv2d c, int bias)
{
    Err e = {0};
    assert_int_equal(nn_conv2d_setup(&c, &e), 0);
    int hw_in = c.h_in * c.w_in;
    int hw_out = c.h_out * c.w_out;
    size_t nx = (size_t)c.n * c.c_in * hw_in;
    size_t nw = (size_t)c.c_out * (c.c_in / c.groups) * c.kh * c.kw;
    size_t ny = (size_t)c.n * c.c_out * hw_out;
    char what[160];
    float *x = rand_buf(nx, 1.0f, 0.0f);
    float *w = rand_buf(nw, 0.5f, 0.0f);
    float *b = bias ? rand_buf((size_t)c.c_out, 1.0f, 0.0f) : NULL;
    float *dy = rand_buf(ny, 1.0f, 0.0f);
    float *x_d = put_act(x, c.n, c.c_in, hw_in);
    float *w_d = put(w, nw);
    float *b_d = bias ? put(b, (size_t)c.c_out) : NULL;
    float *dy_d = put_act(dy, c.n, c.c_out, hw_out);
    void *ws_r = mem_alloc(rf->conv2d_workspace(&c) + 1);
    void *ws_d = dev_alloc(be->conv2d_workspace(&c) + 1);
    float *y_r = mem_alloc(ny * sizeof(float));
    float *y_d = dev_alloc(ny * sizeof(float));
    assert_true(ws_r && y_r);

    rf->conv2d_forward(&c, x, w, b, y_r, ws_r);
    be->conv2d_forward(&c, x_d, w_d, b_d, y_d, ws_d);
    float *y_back = get_act(y_d, c.n, c.c_out, hw_out);
    snprintf(what, sizeof what, "conv %s forward", label);
    expect_close(what, y_r, y_back, ny, tol.gemm_fwd);

    Grad gx = grad_gemm(grad_new(c.n, c.c_in, hw_in));
    Grad gw = grad_gemm(grad_flat(nw));
    Grad gb = grad_gemm(grad_flat((size_t)c.c_out));
    rf->conv2d_backward(&c, x, w, dy, gx.r, gw.r, bias ? gb.r : NULL, ws_r);
    be->conv2d_backward(&c, x_d, w_d, dy_d, gx.d, gw.d, bias ? gb.d : NULL, ws_d);
    snprintf(what, sizeof what, "conv %s dx", label);
    grad_check_first(&gx, what);
    snprintf(what, sizeof what, "conv %s dw", label);
    grad_check_first(&gw, what);
    snprintf(what, sizeof what, "conv %s db", label);
    grad_check_first(&gb, what);
    be->conv2d_backward(&c, x_d, w_d, dy_d, gx.d, gw.d, bias ? gb.d : NULL, ws_d);
    snprintf(what, sizeof what, "conv %s dx", label);
    grad_check_second(&gx, what);
    snprintf(what, sizeof what, "conv %s dw", label);
    grad_check_second(&gw, what);
    snprintf(what, sizeof what, "conv %s db", label);
    grad_check_second(&gb, what);

    /* without dx and db: dw alone, the same as with them */
    Grad gw2 = grad_gemm(grad_flat(nw));
    rf->conv2d_backward(&c, x, w, dy, NULL, gw2.r, NULL, ws_r);
    be->conv2d_backward(&c, x_d, w_d, dy_d, NULL, gw2.d, NULL, ws_d);
    snprintf(what, sizeof what, "conv %s dw (no dx, no db)", label);
    grad_check_first(&gw2, what);
    be->conv2d_backward(&c, x_d, w_d, dy_d, NULL, gw2.d, NULL, ws_d);
    grad_check_second(&gw2, what);

    mem_free(x);
    mem_free(w);
    mem_free(b);
    mem_free(dy);
    dev_free(x_d);
    dev_free(w_d);
    dev_free(b_d);
    dev_free(dy_d);
    mem_free(ws_r);
    dev_free(ws_d);
    mem_free(y_r);
    dev_free(y_d);
    mem_free(y_back);
}

static void test_conv(void **state)
{
    (void)state;
    conv_case("dense 3x3 p1, 7x5", nn_conv2d_square(2, 3, 7, 5, 4, 3, 1, 1, 1, 1), 1);
    conv_case("dense 3x3 s2 p1, 9x7, no bias", nn_conv2d_square(2, 3, 9, 7, 5, 3, 2, 1, 1, 1), 0);
    conv_case("stem 3x3 s2 p1 3->16, 23x21", nn_conv2d_square(2, 3, 23, 21, 16, 3, 2, 1, 1, 1), 0);
    conv_case("dense 3x3 24->40, 11x13", nn_conv2d_square(3, 24, 11, 13, 40, 3, 1, 1, 1, 1), 1);
    conv_case("grouped g2 3x3 s2, 8x7", nn_conv2d_square(2, 6, 8, 7, 4, 3, 2, 0, 1, 2), 1);
    conv_case("grouped g4 3x3 32->64, 9x9", nn_conv2d_square(2, 32, 9, 9, 64, 3, 1, 1, 1, 4), 0);
    conv_case("depthwise 3x3 s2 p1, 9x9", nn_conv2d_square(2, 4, 9, 9, 4, 3, 2, 1, 1, 4), 0);
    conv_case("depthwise 3x3 s1 p1 C72, 13x11", nn_conv2d_square(2, 72, 13, 11, 72, 3, 1, 1, 1, 72),
              0);
    conv_case("depthwise 5x5 s1 p2, 7x6", nn_conv2d_square(1, 3, 7, 6, 3, 5, 1, 2, 1, 3), 1);
    conv_case("depthwise 5x5 s2 p2 C40, 15x15", nn_conv2d_square(2, 40, 15, 15, 40, 5, 2, 2, 1, 40),
              0);
    conv_case("depthwise dilated 3x3 d2 p2 C16", nn_conv2d_square(2, 16, 9, 9, 16, 3, 1, 2, 2, 16),
              0);
    conv_case("dilated 3x3 d2 p2, 7x6", nn_conv2d_square(1, 3, 7, 6, 2, 3, 1, 2, 2, 1), 1);
    conv_case("pointwise 1x1, 5x3", nn_conv2d_square(2, 5, 5, 3, 3, 1, 1, 0, 1, 1), 1);
    conv_case("pointwise 1x1 40->120, 7x7", nn_conv2d_square(2, 40, 7, 7, 120, 1, 1, 0, 1, 1), 0);
    conv_case("pointwise 1x1 72->20, 5x6 (dnnl: backward-data as forward)",
              nn_conv2d_square(2, 72, 5, 6, 20, 1, 1, 0, 1, 1), 1);
    conv_case("pointwise grouped 1x1 g2", nn_conv2d_square(1, 4, 3, 3, 6, 1, 1, 0, 1, 2), 0);
    conv_case("1x1 s2 shortcut, 7x7", nn_conv2d_square(2, 4, 7, 7, 6, 1, 2, 0, 1, 1), 0);
    conv_case("squeeze-excite fc 1x1 on 1x1, 72->24",
              nn_conv2d_square(3, 72, 1, 1, 24, 1, 1, 0, 1, 1), 1);
    NnConv2d asym = nn_conv2d_square(2, 2, 5, 7, 3, 1, 1, 0, 1, 1);
    asym.kw = 3;
    asym.stride_w = 2;
    asym.pad_w = 1;
    conv_case("asymmetric 1x3 s(1,2) p(0,1)", asym, 1);
}

// ---------------------------------------------------------------------------------------------
// Batch norm

/* x: uniform in offset +- 2 */
static void bn_case(NnBatchNorm bn, float offset)
{
    int hw = bn.h * bn.w;
    size_t nx = (size_t)bn.n * bn.c * hw;
    size_t c = (size_t)bn.c;
    char what[128];
    char label[64];
    snprintf(label, sizeof label, "bn N%d C%d %dx%d eps %g x %g+-2", bn.n, bn.c, bn.h, bn.w, bn.eps,
             offset);
    float *x = rand_buf(nx, 2.0f, offset);
    float *x_d = put_act(x, bn.n, bn.c, hw);
    float *gamma = rand_buf(c, 1.0f, 0.2f);
    float *beta = rand_buf(c, 1.0f, 0.0f);
    float *gamma_d = put(gamma, c);
    float *beta_d = put(beta, c);
    float *dy = rand_buf(nx, 1.0f, 0.0f);
    float *dy_d = put_act(dy, bn.n, bn.c, hw);
    float *y_r = mem_alloc(nx * sizeof(float));
    float *y_d = dev_alloc(nx * sizeof(float));
    float *rm_r = rand_buf(c, 0.5f, 0.0f);
    float *rv_r = rand_buf(c, 0.5f, 1.0f);
    float *rm_d = put(rm_r, c);
    float *rv_d = put(rv_r, c);
    float *st_r = mem_alloc(2 * c * sizeof(float)); /* save_mean, save_invstd */
    float *st_d = dev_alloc(2 * c * sizeof(float));
    int64_t cnt_r = 3;
    int64_t *cnt_d = dev_alloc(sizeof(int64_t)); /* a parameter: the backend's memory */
    bm->upload(cnt_d, &cnt_r, sizeof(int64_t));
    assert_true(y_r && st_r);

    /* training forward, twice, so the running statistics move twice */
    for (int rep = 0; rep < 2; rep++) {
        rf->batchnorm_forward_train(&bn, x, gamma, beta, y_r, rm_r, rv_r, &cnt_r, st_r, st_r + c);
        be->batchnorm_forward_train(&bn, x_d, gamma_d, beta_d, y_d, rm_d, rv_d, cnt_d, st_d,
                                    st_d + c);
    }
    float *y_back = get_act(y_d, bn.n, bn.c, hw);
    snprintf(what, sizeof what, "%s train y", label);
    expect_close(what, y_r, y_back, nx, tol.fwd);
    snprintf(what, sizeof what, "%s running_mean", label);
    expect_close_dev(what, rm_r, rm_d, c, tol.fwd);
    snprintf(what, sizeof what, "%s running_var", label);
    expect_close_dev(what, rv_r, rv_d, c, tol.fwd);
    snprintf(what, sizeof what, "%s save_mean, save_invstd", label);
    expect_close_dev(what, st_r, st_d, 2 * c, tol.fwd);
    int64_t cnt_back = 0;
    bm->download(&cnt_back, cnt_d, sizeof(int64_t));
    assert_int_equal(cnt_r, 5);
    assert_int_equal(cnt_back, 5);

    /* training backward, through the saved statistics */
    Grad gx = grad_new(bn.n, bn.c, hw);
    Grad gg = grad_flat(c);
    Grad gb = grad_flat(c);
    rf->batchnorm_backward_train(&bn, x, gamma, st_r, st_r + c, dy, gx.r, gg.r, gb.r);
    be->batchnorm_backward_train(&bn, x_d, gamma_d, st_d, st_d + c, dy_d, gx.d, gg.d, gb.d);
    snprintf(what, sizeof what, "%s train dx", label);
    grad_check_first(&gx, what);
    snprintf(what, sizeof what, "%s train dgamma", label);
    grad_check_first(&gg, what);
    snprintf(what, sizeof what, "%s train dbeta", label);
    grad_check_first(&gb, what);
    be->batchnorm_backward_train(&bn, x_d, gamma_d, st_d, st_d + c, dy_d, gx.d, gg.d, gb.d);
    grad_check_second(&gx, "bn train dx");
    grad_check_second(&gg, "bn train dgamma");
    grad_check_second(&gb, "bn train dbeta");

    /* eval mode, both with ref's running statistics, forward and backward */
    float *rmr_d = put(rm_r, c);
    float *rvr_d = put(rv_r, c);
    rf->batchnorm_forward_eval(&bn, x, gamma, beta, rm_r, rv_r, y_r);
    be->batchnorm_forward_eval(&bn, x_d, gamma_d, beta_d, rmr_d, rvr_d, y_d);
    mem_free(y_back);
    y_back = get_act(y_d, bn.n, bn.c, hw);
    snprintf(what, sizeof what, "%s eval y", label);
    expect_close(what, y_r, y_back, nx, tol.fwd);
    gx = grad_new(bn.n, bn.c, hw);
    gg = grad_flat(c);
    gb = grad_flat(c);
    rf->batchnorm_backward_eval(&bn, x, gamma, rm_r, rv_r, dy, gx.r, gg.r, gb.r);
    be->batchnorm_backward_eval(&bn, x_d, gamma_d, rmr_d, rvr_d, dy_d, gx.d, gg.d, gb.d);
    snprintf(what, sizeof what, "%s eval dx", label);
    grad_check_first(&gx, what);
    snprintf(what, sizeof what, "%s eval dgamma", label);
    grad_check_first(&gg, what);
    snprintf(what, sizeof what, "%s eval dbeta", label);
    grad_check_first(&gb, what);
    be->batchnorm_backward_eval(&bn, x_d, gamma_d, rmr_d, rvr_d, dy_d, gx.d, gg.d, gb.d);
    grad_check_second(&gx, "bn eval dx");
    grad_check_second(&gg, "bn eval dgamma");
    grad_check_second(&gb, "bn eval dbeta");

    /* dx NULL: dgamma and dbeta alone */
    gg = grad_flat(c);
    gb = grad_flat(c);
    rf->batchnorm_backward_train(&bn, x, gamma, st_r, st_r + c, dy, NULL, gg.r, gb.r);
    be->batchnorm_backward_train(&bn, x_d, gamma_d, st_d, st_d + c, dy_d, NULL, gg.d, gb.d);
    grad_check_first(&gg, "bn train dgamma (no dx)");
    grad_check_first(&gb, "bn train dbeta (no dx)");
    be->batchnorm_backward_train(&bn, x_d, gamma_d, st_d, st_d + c, dy_d, NULL, gg.d, gb.d);
    grad_check_second(&gg, "bn train dgamma (no dx)");
    grad_check_second(&gb, "bn train dbeta (no dx)");

    mem_free(x);
    mem_free(gamma);
    mem_free(beta);
    mem_free(dy);
    mem_free(y_r);
    mem_free(y_back);
    mem_free(rm_r);
    mem_free(rv_r);
    mem_free(st_r);
    dev_free(x_d);
    dev_free(gamma_d);
    dev_free(beta_d);
    dev_free(dy_d);
    dev_free(y_d);
    dev_free(rm_d);
    dev_free(rv_d);
    dev_free(rmr_d);
    dev_free(rvr_d);
    dev_free(st_d);
    dev_free(cnt_d);
}

static void test_batchnorm(void **state)
{
    (void)state;
    bn_case((NnBatchNorm){2, 5, 7, 3, 1e-5f, 0.1f, 0}, 0.5f);
    bn_case((NnBatchNorm){4, 16, 9, 9, 1e-3f, 0.01f, 0}, 0.5f);
    bn_case((NnBatchNorm){3, 72, 5, 7, 1e-3f, 0.1f, 0}, 0.5f);
    bn_case((NnBatchNorm){8, 24, 1, 1, 1e-5f, 0.1f, 0}, 0.5f);
    bn_case((NnBatchNorm){16, 58, 28, 28, 1e-5f, 0.1f, 0}, 0.5f); /* dnnl: own kernels, threaded */
    bn_case((NnBatchNorm){4, 120, 8, 8, 1e-3f, 0.01f, 0}, 0.5f);
    /* a mean 90 standard deviations from 0, where one-pass statistics without a shift lose
     * the variance to cancellation (float's rounding of the mean itself, 4e-6 here, is as
     * much as the forward's tolerance allows: ref's mean rounds the same) */
    bn_case((NnBatchNorm){16, 58, 28, 28, 1e-5f, 0.1f, 0}, 100.0f);
    bn_case((NnBatchNorm){1, 3, 1, 2, 1e-5f, 0.1f, 0}, 0.5f); /* M = 2: the sample is a row */
}

/* The fused pair (backend.h batchnorm_act_*) against ref's batch norm then activation, and a
 * fresh dx (NaN to start with) against one from zero, bit for bit. Inputs are spread so that
 * every activation sees both sides of its kinks (hardswish's -3 and 3, relu6's 6). */
static void bn_act_case(NnBatchNorm bn, NnAct a)
{
    int hw = bn.h * bn.w;
    size_t nx = (size_t)bn.n * bn.c * hw, c = (size_t)bn.c;
    char what[128];
    char label[80];
    snprintf(label, sizeof label, "bn+%s N%d C%d %dx%d", nn_act_name(a), bn.n, bn.c, bn.h, bn.w);
    float *x = rand_buf(nx, 2.0f, 0.5f), *dy = rand_buf(nx, 1.0f, 0.0f);
    float *gamma = rand_buf(c, 2.0f, 2.5f), *beta = rand_buf(c, 2.0f, 1.0f);
    float *rs_r = rand_buf(2 * c, 0.5f, 1.0f); /* running mean, running var */
    float *x_d = put_act(x, bn.n, bn.c, hw), *dy_d = put_act(dy, bn.n, bn.c, hw);
    float *gamma_d = put(gamma, c), *beta_d = put(beta, c), *rs_d = put(rs_r, 2 * c);
    float *z_r = mem_alloc(nx * sizeof(float)), *y_r = mem_alloc(nx * sizeof(float));
    float *dz_r = mem_calloc(nx, sizeof(float)), *st_r = mem_alloc(2 * c * sizeof(float));
    float *y_d = dev_alloc(nx * sizeof(float)), *st_d = dev_alloc(2 * c * sizeof(float));
    int64_t cnt_r = 0, *cnt_d = dev_alloc(sizeof(int64_t));
    assert_true(z_r && y_r && dz_r && st_r);

    rf->batchnorm_forward_train(&bn, x, gamma, beta, z_r, rs_r, rs_r + c, &cnt_r, st_r, st_r + c);
    rf->act_forward(a, nx, z_r, y_r);
    be->batchnorm_act_forward_train(&bn, a, x_d, gamma_d, beta_d, y_d, rs_d, rs_d + c, cnt_d, st_d,
                                    st_d + c);
    float *y_back = get_act(y_d, bn.n, bn.c, hw);
    snprintf(what, sizeof what, "%s y", label);
    expect_close(what, y_r, y_back, nx, tol.fwd);
    snprintf(what, sizeof what, "%s running stats", label);
    expect_close_dev(what, rs_r, rs_d, 2 * c, tol.fwd);
    snprintf(what, sizeof what, "%s save_mean, save_invstd", label);
    expect_close_dev(what, st_r, st_d, 2 * c, tol.fwd);
    int64_t cnt_back = 0;
    bm->download(&cnt_back, cnt_d, sizeof cnt_back);
    assert_int_equal(cnt_back, 1);

    Grad gx = grad_new(bn.n, bn.c, hw), gg = grad_flat(c), gb = grad_flat(c);
    rf->act_backward(a, nx, z_r, dy, dz_r);
    rf->batchnorm_backward_train(&bn, x, gamma, st_r, st_r + c, dz_r, gx.r, gg.r, gb.r);
    for (int rep = 0; rep < 2; rep++) {
        be->batchnorm_act_backward_train(&bn, a, x_d, gamma_d, beta_d, st_d, st_d + c, dy_d, gx.d,
                                         gg.d, gb.d);
        if (rep == 0) {
            snprintf(what, sizeof what, "%s dx", label);
            grad_check_first(&gx, what);
            snprintf(what, sizeof what, "%s dgamma", label);
            grad_check_first(&gg, what);
            snprintf(what, sizeof what, "%s dbeta", label);
            grad_check_first(&gb, what);
        }
    }
    grad_check_second(&gx, "bn+act dx");
    grad_check_second(&gg, "bn+act dgamma");
    grad_check_second(&gb, "bn+act dbeta");

    /* eval mode, with the running statistics the training forward left */
    rf->batchnorm_forward_eval(&bn, x, gamma, beta, rs_r, rs_r + c, z_r);
    rf->act_forward(a, nx, z_r, y_r);
    float *rs_now = put(rs_r, 2 * c);
    be->batchnorm_act_forward_eval(&bn, a, x_d, gamma_d, beta_d, rs_now, rs_now + c, y_d);
    mem_free(y_back);
    y_back = get_act(y_d, bn.n, bn.c, hw);
    snprintf(what, sizeof what, "%s eval y", label);
    expect_close(what, y_r, y_back, nx, tol.fwd);
    dev_free(rs_now);

    if (be->set_fresh_grads && (be->fresh_grad_ops & NN_BWD_BN)) {
        float *za_d = dev_alloc(nx * sizeof(float)), *fb_d = nan_dev(nx);
        float *dg_d = dev_alloc(c * sizeof(float)), *db_d = dev_alloc(c * sizeof(float));
        be->batchnorm_act_backward_train(&bn, a, x_d, gamma_d, beta_d, st_d, st_d + c, dy_d, za_d,
                                         dg_d, db_d);
        be->set_fresh_grads(1);
        be->batchnorm_act_backward_train(&bn, a, x_d, gamma_d, beta_d, st_d, st_d + c, dy_d, fb_d,
                                         dg_d, db_d);
        be->set_fresh_grads(0);
        float *za = get(za_d, nx), *fb = get(fb_d, nx);
        snprintf(what, sizeof what, "%s fresh dx", label);
        expect_close(what, za, fb, nx, 0);
        mem_free(za), mem_free(fb);
        dev_free(za_d), dev_free(fb_d), dev_free(dg_d), dev_free(db_d);
    }
    mem_free(x), mem_free(dy), mem_free(gamma), mem_free(beta), mem_free(rs_r);
    mem_free(z_r), mem_free(y_r), mem_free(dz_r), mem_free(st_r), mem_free(y_back);
    dev_free(x_d), dev_free(dy_d), dev_free(gamma_d), dev_free(beta_d), dev_free(rs_d);
    dev_free(y_d), dev_free(st_d), dev_free(cnt_d);
}

static void test_batchnorm_act(void **state)
{
    (void)state;
    const NnAct acts[] = {NN_RELU, NN_RELU6, NN_HARDSWISH, NN_SILU};
    for (int k = 0; k < 4; k++) {
        bn_act_case((NnBatchNorm){2, 5, 7, 3, 1e-5f, 0.1f, 0}, acts[k]);
        bn_act_case((NnBatchNorm){16, 58, 28, 28, 1e-3f, 0.01f, 0}, acts[k]); /* threaded */
    }
}

// ---------------------------------------------------------------------------------------------
// Activations

static void act_case(NnAct a, size_t n)
{
    static const float kinks[] = {-3.0f, 0.0f, 3.0f, 6.0f};
    char what[96];
    float *x = rand_buf(n, 8.0f, 0.0f);
    avoid_kinks(x, n, kinks, 4, 1e-3f);
    float *dy = rand_buf(n, 1.0f, 0.0f);
    float *x_d = put(x, n);
    float *dy_d = put(dy, n);
    float *y_r = mem_alloc(n * sizeof(float));
    float *y_d = dev_alloc(n * sizeof(float));
    assert_non_null(y_r);
    rf->act_forward(a, n, x, y_r);
    be->act_forward(a, n, x_d, y_d);
    snprintf(what, sizeof what, "%s n=%zu forward", nn_act_name(a), n);
    expect_close_dev(what, y_r, y_d, n, tol.fwd);
    /* in place */
    bm->copy(y_d, x_d, n * sizeof(float));
    be->act_forward(a, n, y_d, y_d);
    snprintf(what, sizeof what, "%s n=%zu forward in place", nn_act_name(a), n);
    expect_close_dev(what, y_r, y_d, n, tol.fwd);

    Grad gx = grad_flat(n);
    rf->act_backward(a, n, x, dy, gx.r);
    be->act_backward(a, n, x_d, dy_d, gx.d);
    snprintf(what, sizeof what, "%s n=%zu backward", nn_act_name(a), n);
    grad_check_first(&gx, what);
    be->act_backward(a, n, x_d, dy_d, gx.d);
    grad_check_second(&gx, what);
    mem_free(x);
    mem_free(dy);
    mem_free(y_r);
    dev_free(x_d);
    dev_free(dy_d);
    dev_free(y_d);
}

static void test_activations(void **state)
{
    (void)state;
    const NnAct acts[] = {NN_RELU, NN_RELU6, NN_HARDSWISH, NN_HARDSIGMOID, NN_SILU, NN_SIGMOID};
    for (int i = 0; i < 6; i++) {
        act_case(acts[i], 1001);
        act_case(acts[i], 40000 + 7); /* chunked and threaded */
    }
}

// ---------------------------------------------------------------------------------------------
// Pooling

static void pool_case(const char *label, NnPool2d p)
{
    Err e = {0};
    assert_int_equal(nn_pool2d_setup(&p, &e), 0);
    int hw_in = p.h_in * p.w_in;
    int hw_out = p.h_out * p.w_out;
    size_t nx = (size_t)p.n * p.c * hw_in;
    size_t ny = (size_t)p.n * p.c * hw_out;
    char what[128];
    float *x = rand_buf(nx, 1.0f, 0.0f);
    float *dy = rand_buf(ny, 1.0f, 0.0f);
    float *x_d = put_act(x, p.n, p.c, hw_in);
    float *dy_d = put_act(dy, p.n, p.c, hw_out);
    float *y_r = mem_alloc(ny * sizeof(float));
    float *y_d = dev_alloc(ny * sizeof(float));
    int32_t *am_r = mem_alloc(ny * sizeof(int32_t));
    int32_t *am_d = dev_alloc(ny * sizeof(int32_t));
    int32_t *am = mem_alloc(ny * sizeof(int32_t));
    assert_true(y_r && am_r && am);

    /* max */
    rf->maxpool2d_forward(&p, x, y_r, am_r);
    be->maxpool2d_forward(&p, x_d, y_d, am_d);
    float *y_back = get_act(y_d, p.n, p.c, hw_out);
    snprintf(what, sizeof what, "maxpool %s forward", label);
    expect_close(what, y_r, y_back, ny, 0.0);
    bm->download(am, am_d, ny * sizeof(int32_t));
    for (int b = 0; b < p.n; b++) /* argmax: plane indices, in the backend's layout */
        for (int ch = 0; ch < p.c; ch++)
            for (int o = 0; o < hw_out; o++)
                assert_int_equal(am_r[((size_t)b * p.c + ch) * hw_out + o],
                                 am[be_at(b, ch, o, p.c, hw_out)]);
    Grad gx = grad_new(p.n, p.c, hw_in);
    rf->maxpool2d_backward(&p, am_r, dy, gx.r);
    be->maxpool2d_backward(&p, am_d, dy_d, gx.d);
    snprintf(what, sizeof what, "maxpool %s backward", label);
    grad_check_first(&gx, what);
    be->maxpool2d_backward(&p, am_d, dy_d, gx.d);
    grad_check_second(&gx, what);

    /* average, with and without count_include_pad */
    for (int cip = 0; cip < 2; cip++) {
        p.count_include_pad = cip;
        rf->avgpool2d_forward(&p, x, y_r);
        be->avgpool2d_forward(&p, x_d, y_d);
        mem_free(y_back);
        y_back = get_act(y_d, p.n, p.c, hw_out);
        snprintf(what, sizeof what, "avgpool %s cip=%d forward", label, cip);
        expect_close(what, y_r, y_back, ny, tol.fwd);
        gx = grad_new(p.n, p.c, hw_in);
        rf->avgpool2d_backward(&p, dy, gx.r);
        be->avgpool2d_backward(&p, dy_d, gx.d);
        snprintf(what, sizeof what, "avgpool %s cip=%d backward", label, cip);
        grad_check_first(&gx, what);
        be->avgpool2d_backward(&p, dy_d, gx.d);
        grad_check_second(&gx, what);
    }

    mem_free(x);
    mem_free(dy);
    mem_free(y_r);
    mem_free(am_r);
    mem_free(am);
    mem_free(y_back);
    dev_free(x_d);
    dev_free(dy_d);
    dev_free(y_d);
    dev_free(am_d);
}

static void test_pooling(void **state)
{
    (void)state;
    pool_case("3x3 s2 p1, 9x7", nn_pool2d_square(2, 3, 9, 7, 3, 2, 1, 0, 1));
    pool_case("3x3 s2 p1 ceil, 8x8", nn_pool2d_square(2, 5, 8, 8, 3, 2, 1, 1, 1));
    pool_case("2x2 s2 ceil, 7x5", nn_pool2d_square(2, 4, 7, 5, 2, 2, 0, 1, 1));
    pool_case("3x3 s2 ceil, 10x11", nn_pool2d_square(1, 17, 10, 11, 3, 2, 0, 1, 0));
    pool_case("3x3 s1 p1, 6x5", nn_pool2d_square(3, 8, 6, 5, 3, 1, 1, 0, 0));
    pool_case("2x2 s2 p1 ceil, 5x6", nn_pool2d_square(2, 3, 5, 6, 2, 2, 1, 1, 1));
    pool_case("3x3 s2 p1, 33x35 C64 (threaded)", nn_pool2d_square(2, 64, 33, 35, 3, 2, 1, 0, 1));
}

static void adaptive_case(NnAdaptivePool p)
{
    char what[128];
    int hw_in = p.h_in * p.w_in;
    int hw_out = p.h_out * p.w_out;
    size_t nx = (size_t)p.n * p.c * hw_in;
    size_t ny = (size_t)p.n * p.c * hw_out;
    float *x = rand_buf(nx, 1.0f, 0.0f);
    float *dy = rand_buf(ny, 1.0f, 0.0f);
    float *x_d = put_act(x, p.n, p.c, hw_in);
    float *dy_d = put_act(dy, p.n, p.c, hw_out);
    float *y_r = mem_alloc(ny * sizeof(float));
    float *y_d = dev_alloc(ny * sizeof(float));
    assert_non_null(y_r);
    rf->adaptive_avgpool2d_forward(&p, x, y_r);
    be->adaptive_avgpool2d_forward(&p, x_d, y_d);
    float *y_back = get_act(y_d, p.n, p.c, hw_out);
    snprintf(what, sizeof what, "adaptive avgpool %dx%d -> %dx%d C%d forward", p.h_in, p.w_in,
             p.h_out, p.w_out, p.c);
    expect_close(what, y_r, y_back, ny, tol.fwd);
    Grad gx = grad_new(p.n, p.c, hw_in);
    rf->adaptive_avgpool2d_backward(&p, dy, gx.r);
    be->adaptive_avgpool2d_backward(&p, dy_d, gx.d);
    snprintf(what, sizeof what, "adaptive avgpool %dx%d -> %dx%d C%d backward", p.h_in, p.w_in,
             p.h_out, p.w_out, p.c);
    grad_check_first(&gx, what);
    be->adaptive_avgpool2d_backward(&p, dy_d, gx.d);
    grad_check_second(&gx, what);
    mem_free(x);
    mem_free(dy);
    mem_free(y_r);
    mem_free(y_back);
    dev_free(x_d);
    dev_free(dy_d);
    dev_free(y_d);
}

static void test_adaptive_pool(void **state)
{
    (void)state;
    adaptive_case((NnAdaptivePool){2, 40, 7, 7, 1, 1});
    adaptive_case((NnAdaptivePool){2, 3, 10, 9, 3, 4});
    adaptive_case((NnAdaptivePool){1, 5, 5, 5, 7, 7});
    adaptive_case((NnAdaptivePool){4, 96, 14, 13, 1, 1});
}

// ---------------------------------------------------------------------------------------------
// Linear

static void linear_case(int n, int in, int out, int bias, int with_dx)
{
    char what[96];
    float *x = rand_buf((size_t)n * in, 1.0f, 0.0f);
    float *w = rand_buf((size_t)out * in, 0.5f, 0.0f);
    float *b = bias ? rand_buf((size_t)out, 1.0f, 0.0f) : NULL;
    float *dy = rand_buf((size_t)n * out, 1.0f, 0.0f);
    float *x_d = put(x, (size_t)n * in);
    float *w_d = put(w, (size_t)out * in);
    float *b_d = bias ? put(b, (size_t)out) : NULL;
    float *dy_d = put(dy, (size_t)n * out);
    float *y_r = mem_alloc((size_t)n * out * sizeof(float));
    float *y_d = dev_alloc((size_t)n * out * sizeof(float));
    assert_non_null(y_r);
    rf->linear_forward(n, in, out, x, w, b, y_r);
    be->linear_forward(n, in, out, x_d, w_d, b_d, y_d);
    snprintf(what, sizeof what, "linear N%d %d->%d bias=%d forward", n, in, out, bias);
    expect_close_dev(what, y_r, y_d, (size_t)n * out, tol.gemm_fwd);
    Grad gx = grad_gemm(grad_flat((size_t)n * in));
    Grad gw = grad_gemm(grad_flat((size_t)out * in));
    Grad gb = grad_gemm(grad_flat((size_t)out));
    rf->linear_backward(n, in, out, x, w, dy, with_dx ? gx.r : NULL, gw.r, bias ? gb.r : NULL);
    for (int rep = 0; rep < 2; rep++) {
        be->linear_backward(n, in, out, x_d, w_d, dy_d, with_dx ? gx.d : NULL, gw.d,
                            bias ? gb.d : NULL);
        snprintf(what, sizeof what, "linear N%d %d->%d dx=%d dx", n, in, out, with_dx);
        rep ? grad_check_second(&gx, what) : grad_check_first(&gx, what);
        snprintf(what, sizeof what, "linear N%d %d->%d dx=%d dw", n, in, out, with_dx);
        rep ? grad_check_second(&gw, what) : grad_check_first(&gw, what);
        snprintf(what, sizeof what, "linear N%d %d->%d bias=%d db", n, in, out, bias);
        rep ? grad_check_second(&gb, what) : grad_check_first(&gb, what);
    }
    mem_free(x);
    mem_free(w);
    mem_free(b);
    mem_free(dy);
    mem_free(y_r);
    dev_free(x_d);
    dev_free(w_d);
    dev_free(b_d);
    dev_free(dy_d);
    dev_free(y_d);
}

static void test_linear(void **state)
{
    (void)state;
    linear_case(5, 37, 11, 1, 1);
    linear_case(3, 64, 10, 0, 1);
    linear_case(32, 960, 1280, 1, 1);
    linear_case(7, 13, 2, 1, 0);
}

// ---------------------------------------------------------------------------------------------
// Tensor plumbing

static void test_add_chanmul(void **state)
{
    (void)state;
    int n = 3, c = 19, hw = 29;
    size_t len = (size_t)n * c * hw;
    float *a = rand_buf(len, 1.0f, 0.0f);
    float *b = rand_buf(len, 1.0f, 0.0f);
    float *s = rand_buf((size_t)n * c, 1.0f, 0.0f);
    float *dy = rand_buf(len, 1.0f, 0.0f);
    float *a_d = put_act(a, n, c, hw);
    float *b_d = put_act(b, n, c, hw);
    float *s_d = put(s, (size_t)n * c);
    float *dy_d = put_act(dy, n, c, hw);
    float *y_r = mem_alloc(len * sizeof(float));
    float *y_d = dev_alloc(len * sizeof(float));
    assert_non_null(y_r);

    rf->add_forward(len, a, b, y_r);
    be->add_forward(len, a_d, b_d, y_d);
    float *y_back = get_act(y_d, n, c, hw);
    expect_close("add forward", y_r, y_back, len, 0.0);
    mem_free(y_back);
    bm->copy(y_d, a_d, len * sizeof(float));
    be->add_forward(len, y_d, b_d, y_d); /* in place */
    y_back = get_act(y_d, n, c, hw);
    expect_close("add forward in place", y_r, y_back, len, 0.0);
    mem_free(y_back);
    Grad ga = grad_new(n, c, hw);
    Grad gb = grad_new(n, c, hw);
    rf->add_backward(len, dy, ga.r, gb.r);
    be->add_backward(len, dy_d, ga.d, gb.d);
    grad_check_first(&ga, "add da");
    grad_check_first(&gb, "add db");
    be->add_backward(len, dy_d, ga.d, NULL);
    be->add_backward(len, dy_d, NULL, gb.d);
    grad_check_second(&ga, "add da");
    grad_check_second(&gb, "add db");

    rf->chanmul_forward(n, c, hw, a, s, y_r);
    be->chanmul_forward(n, c, hw, a_d, s_d, y_d);
    y_back = get_act(y_d, n, c, hw);
    expect_close("chanmul forward", y_r, y_back, len, tol.fwd);
    mem_free(y_back);
    Grad gx = grad_new(n, c, hw);
    Grad gs = grad_flat((size_t)n * c);
    rf->chanmul_backward(n, c, hw, a, s, dy, gx.r, gs.r);
    be->chanmul_backward(n, c, hw, a_d, s_d, dy_d, gx.d, gs.d);
    grad_check_first(&gx, "chanmul dx");
    grad_check_first(&gs, "chanmul ds");
    be->chanmul_backward(n, c, hw, a_d, s_d, dy_d, gx.d, NULL);
    be->chanmul_backward(n, c, hw, a_d, s_d, dy_d, NULL, gs.d);
    grad_check_second(&gx, "chanmul dx");
    grad_check_second(&gs, "chanmul ds");

    mem_free(a);
    mem_free(b);
    mem_free(s);
    mem_free(dy);
    mem_free(y_r);
    dev_free(a_d);
    dev_free(b_d);
    dev_free(s_d);
    dev_free(dy_d);
    dev_free(y_d);
}

/* A large chanmul (squeeze-excitation at 56x56): the threaded path. */
/* The fused add + activation (backend.h add_act_*) against ref's add then activation: forward
 * (and in place), both gradients twice (the accumulate contract), one or the other NULL, and
 * fresh gradients (NaN to start with) against ones from zero, bit for bit. */
static void add_act_case(NnAct a, size_t n)
{
    char what[96];
    float *x1 = rand_buf(n, 4.0f, 1.0f), *x2 = rand_buf(n, 4.0f, 1.0f), *dy = rand_buf(n, 1, 0);
    float *s_r = mem_alloc(n * sizeof(float)), *y_r = mem_alloc(n * sizeof(float));
    float *ds_r = mem_calloc(n, sizeof(float));
    float *x1_d = put(x1, n), *x2_d = put(x2, n), *dy_d = put(dy, n);
    float *y_d = dev_alloc(n * sizeof(float));
    assert_true(s_r && y_r && ds_r);
    rf->add_forward(n, x1, x2, s_r);
    rf->act_forward(a, n, s_r, y_r);
    be->add_act_forward(a, n, x1_d, x2_d, y_d);
    snprintf(what, sizeof what, "add+%s n=%zu forward", nn_act_name(a), n);
    expect_close_dev(what, y_r, y_d, n, 0.0);
    float *in_place = put(x1, n);
    be->add_act_forward(a, n, in_place, x2_d, in_place);
    snprintf(what, sizeof what, "add+%s n=%zu forward in place", nn_act_name(a), n);
    expect_close_dev(what, y_r, in_place, n, 0.0);
    dev_free(in_place);

    rf->act_backward(a, n, s_r, dy, ds_r);
    for (int which = 0; which < 3; which++) { /* both, only the first, only the second */
        Grad ga = grad_flat(n), gb = grad_flat(n);
        float *da_d = which == 2 ? NULL : ga.d, *db_d = which == 1 ? NULL : gb.d;
        rf->add_backward(n, ds_r, which == 2 ? NULL : ga.r, which == 1 ? NULL : gb.r);
        be->add_act_backward(a, n, y_d, dy_d, da_d, db_d);
        snprintf(what, sizeof what, "add+%s n=%zu backward (%d) da", nn_act_name(a), n, which);
        grad_check_first(&ga, what);
        snprintf(what, sizeof what, "add+%s n=%zu backward (%d) db", nn_act_name(a), n, which);
        grad_check_first(&gb, what);
        be->add_act_backward(a, n, y_d, dy_d, da_d, db_d);
        grad_check_second(&ga, "add+act da");
        grad_check_second(&gb, "add+act db");
    }
    if (be->set_fresh_grads && (be->fresh_grad_ops & NN_BWD_ADD)) {
        for (unsigned mask = 1; mask <= 3; mask++) {
            float *za = dev_alloc(n * sizeof(float)), *zb = dev_alloc(n * sizeof(float));
            float *fa = mask & 1 ? nan_dev(n) : dev_alloc(n * sizeof(float));
            float *fb = mask & 2 ? nan_dev(n) : dev_alloc(n * sizeof(float));
            be->add_act_backward(a, n, y_d, dy_d, za, zb);
            be->set_fresh_grads(mask);
            be->add_act_backward(a, n, y_d, dy_d, fa, fb);
            be->set_fresh_grads(0);
            float *za_h = get(za, n), *zb_h = get(zb, n), *fa_h = get(fa, n), *fb_h = get(fb, n);
            snprintf(what, sizeof what, "add+%s fresh mask %u da", nn_act_name(a), mask);
            expect_close(what, za_h, fa_h, n, 0);
            snprintf(what, sizeof what, "add+%s fresh mask %u db", nn_act_name(a), mask);
            expect_close(what, zb_h, fb_h, n, 0);
            mem_free(za_h), mem_free(zb_h), mem_free(fa_h), mem_free(fb_h);
            dev_free(za), dev_free(zb), dev_free(fa), dev_free(fb);
        }
    }
    mem_free(x1), mem_free(x2), mem_free(dy), mem_free(s_r), mem_free(y_r), mem_free(ds_r);
    dev_free(x1_d), dev_free(x2_d), dev_free(dy_d), dev_free(y_d);
}

static void test_add_act(void **state)
{
    (void)state;
    add_act_case(NN_RELU, 999);
    add_act_case(NN_RELU6, 999);
    add_act_case(NN_RELU, 100003); /* threaded */
}

static void test_chanmul_large(void **state)
{
    (void)state;
    int n = 4, c = 72, hw = 56 * 56;
    size_t len = (size_t)n * c * hw;
    float *x = rand_buf(len, 1.0f, 0.0f);
    float *s = rand_buf((size_t)n * c, 1.0f, 0.0f);
    float *dy = rand_buf(len, 1.0f, 0.0f);
    float *x_d = put_act(x, n, c, hw);
    float *s_d = put(s, (size_t)n * c);
    float *dy_d = put_act(dy, n, c, hw);
    float *y_r = mem_alloc(len * sizeof(float));
    float *y_d = dev_alloc(len * sizeof(float));
    assert_non_null(y_r);
    rf->chanmul_forward(n, c, hw, x, s, y_r);
    be->chanmul_forward(n, c, hw, x_d, s_d, y_d);
    float *y_back = get_act(y_d, n, c, hw);
    expect_close("chanmul 4x72x56x56 forward", y_r, y_back, len, tol.fwd);
    Grad gx = grad_new(n, c, hw);
    Grad gs = grad_flat((size_t)n * c);
    rf->chanmul_backward(n, c, hw, x, s, dy, gx.r, gs.r);
    be->chanmul_backward(n, c, hw, x_d, s_d, dy_d, gx.d, gs.d);
    grad_check_first(&gx, "chanmul 4x72x56x56 dx");
    grad_check_first(&gs, "chanmul 4x72x56x56 ds");
    be->chanmul_backward(n, c, hw, x_d, s_d, dy_d, gx.d, gs.d);
    grad_check_second(&gx, "chanmul 4x72x56x56 dx");
    grad_check_second(&gs, "chanmul 4x72x56x56 ds");
    mem_free(x);
    mem_free(s);
    mem_free(dy);
    mem_free(y_r);
    mem_free(y_back);
    dev_free(x_d);
    dev_free(s_d);
    dev_free(dy_d);
    dev_free(y_d);
}

/* The pointer arrays are host arrays of backend pointers (backend.h). */
static void test_concat_split(void **state)
{
    (void)state;
    enum { PARTS = 3 };
    int n = 2, hw = 15;
    const int c[PARTS] = {3, 8, 5};
    int ct = 16;
    size_t len = (size_t)n * ct * hw;
    float *xs[PARTS];
    float *xs_d[PARTS];
    for (int i = 0; i < PARTS; i++) {
        xs[i] = rand_buf((size_t)n * c[i] * hw, 1.0f, 0.0f);
        xs_d[i] = put_act(xs[i], n, c[i], hw);
    }
    float *dy = rand_buf(len, 1.0f, 0.0f);
    float *dy_d = put_act(dy, n, ct, hw);
    float *y_r = mem_alloc(len * sizeof(float));
    float *y_d = dev_alloc(len * sizeof(float));
    assert_non_null(y_r);

    rf->concat_forward(n, hw, PARTS, c, (const float *const *)xs, y_r);
    be->concat_forward(n, hw, PARTS, c, (const float *const *)xs_d, y_d);
    float *y_back = get_act(y_d, n, ct, hw);
    expect_close("concat forward", y_r, y_back, len, 0.0);
    Grad g[PARTS];
    float *dr[PARTS];
    float *dd[PARTS];
    for (int i = 0; i < PARTS; i++) {
        g[i] = grad_new(n, c[i], hw);
        dr[i] = g[i].r;
        dd[i] = i == 1 ? NULL : g[i].d; /* part 1: no gradient wanted */
    }
    dr[1] = NULL;
    rf->concat_backward(n, hw, PARTS, c, dy, dr);
    be->concat_backward(n, hw, PARTS, c, dy_d, dd);
    for (int i = 0; i < PARTS; i += 2)
        grad_check_first(&g[i], "concat backward");
    be->concat_backward(n, hw, PARTS, c, dy_d, dd);
    for (int i = 0; i < PARTS; i++)
        if (i != 1)
            grad_check_second(&g[i], "concat backward");
    float *untouched = grad_get(&g[1]);
    expect_close("concat backward, NULL part untouched", g[1].start, untouched, g[1].len, 0.0);
    mem_free(untouched);
    mem_free(g[1].start);
    mem_free(g[1].r);
    dev_free(g[1].d);

    /* split is concat's inverse: split x = y into the parts */
    float *ys_r[PARTS];
    float *ys_d[PARTS];
    for (int i = 0; i < PARTS; i++) {
        ys_r[i] = mem_alloc((size_t)n * c[i] * hw * sizeof(float));
        ys_d[i] = dev_alloc((size_t)n * c[i] * hw * sizeof(float));
    }
    rf->split_forward(n, hw, PARTS, c, y_r, ys_r);
    be->split_forward(n, hw, PARTS, c, y_d, ys_d);
    for (int i = 0; i < PARTS; i++) {
        float *back = get_act(ys_d[i], n, c[i], hw);
        expect_close("split forward", ys_r[i], back, (size_t)n * c[i] * hw, 0.0);
        expect_close("split forward = concat input", xs[i], back, (size_t)n * c[i] * hw, 0.0);
        mem_free(back);
    }
    Grad gx = grad_new(n, ct, hw);
    float *dys_r[PARTS];
    float *dys_d[PARTS];
    for (int i = 0; i < PARTS; i++) {
        dys_r[i] = i == 2 ? NULL : xs[i];
        dys_d[i] = i == 2 ? NULL : xs_d[i];
    }
    rf->split_backward(n, hw, PARTS, c, (const float *const *)dys_r, gx.r);
    be->split_backward(n, hw, PARTS, c, (const float *const *)dys_d, gx.d);
    grad_check_first(&gx, "split backward");
    be->split_backward(n, hw, PARTS, c, (const float *const *)dys_d, gx.d);
    grad_check_second(&gx, "split backward");

    for (int i = 0; i < PARTS; i++) {
        mem_free(xs[i]);
        mem_free(ys_r[i]);
        dev_free(xs_d[i]);
        dev_free(ys_d[i]);
    }
    mem_free(dy);
    mem_free(y_r);
    mem_free(y_back);
    dev_free(dy_d);
    dev_free(y_d);
}

static void test_shuffle(void **state)
{
    (void)state;
    int n = 2, c = 12, hw = 13, groups = 3;
    size_t len = (size_t)n * c * hw;
    float *x = rand_buf(len, 1.0f, 0.0f);
    float *dy = rand_buf(len, 1.0f, 0.0f);
    float *x_d = put_act(x, n, c, hw);
    float *dy_d = put_act(dy, n, c, hw);
    float *y_r = mem_alloc(len * sizeof(float));
    float *y_d = dev_alloc(len * sizeof(float));
    assert_non_null(y_r);
    rf->shuffle_forward(n, c, hw, groups, x, y_r);
    be->shuffle_forward(n, c, hw, groups, x_d, y_d);
    float *y_back = get_act(y_d, n, c, hw);
    expect_close("shuffle forward", y_r, y_back, len, 0.0);
    Grad gx = grad_new(n, c, hw);
    rf->shuffle_backward(n, c, hw, groups, dy, gx.r);
    be->shuffle_backward(n, c, hw, groups, dy_d, gx.d);
    grad_check_first(&gx, "shuffle backward");
    be->shuffle_backward(n, c, hw, groups, dy_d, gx.d);
    grad_check_second(&gx, "shuffle backward");
    mem_free(x);
    mem_free(dy);
    mem_free(y_r);
    mem_free(y_back);
    dev_free(x_d);
    dev_free(dy_d);
    dev_free(y_d);
}

/* Forward must match bit for bit: the mask is a pure function of (seed, step, op, index)
 * (ops.h) and a kept value is one multiply by nn_mask_scale, exactly rounded everywhere. */
static void test_dropout(void **state)
{
    (void)state;
    const float ps[] = {0.0f, 0.2f, 0.5f, 1.0f};
    for (int k = 0; k < 4; k++) {
        NnDropout d = {.p = ps[k], .seed = 9, .step = 1234, .op = 17};
        size_t n = 32 * 1280 + 3; /* (N,F) of the MobileNetV3 classifier, and a tail */
        float *x = rand_buf(n, 1.0f, 0.0f);
        float *dy = rand_buf(n, 1.0f, 0.0f);
        float *x_d = put(x, n);
        float *dy_d = put(dy, n);
        float *y_r = mem_alloc(n * sizeof(float));
        float *y_d = dev_alloc(n * sizeof(float));
        assert_non_null(y_r);
        rf->dropout_forward(&d, n, x, y_r);
        be->dropout_forward(&d, n, x_d, y_d);
        expect_close_dev("dropout forward", y_r, y_d, n, 0.0);
        Grad gx = grad_flat(n);
        rf->dropout_backward(&d, n, dy, gx.r);
        be->dropout_backward(&d, n, dy_d, gx.d);
        grad_check_first(&gx, "dropout backward");
        be->dropout_backward(&d, n, dy_d, gx.d);
        grad_check_second(&gx, "dropout backward");

        /* stochastic depth: one draw per sample of (N, per_sample) */
        int ns = 7;
        size_t per = 5 * 9;
        rf->stochastic_depth_forward(&d, ns, per, x, y_r);
        be->stochastic_depth_forward(&d, ns, per, x_d, y_d);
        expect_close_dev("stochastic depth forward", y_r, y_d, ns * per, 0.0);
        Grad gs = grad_flat(ns * per);
        rf->stochastic_depth_backward(&d, ns, per, dy, gs.r);
        be->stochastic_depth_backward(&d, ns, per, dy_d, gs.d);
        grad_check_first(&gs, "stochastic depth backward");
        be->stochastic_depth_backward(&d, ns, per, dy_d, gs.d);
        grad_check_second(&gs, "stochastic depth backward");
        mem_free(x);
        mem_free(dy);
        mem_free(y_r);
        dev_free(x_d);
        dev_free(dy_d);
        dev_free(y_d);
    }
}

// ---------------------------------------------------------------------------------------------
// Loss

static void test_xent(void **state)
{
    (void)state;
    NnXent xe = {.n = 6, .k = 10, .smoothing = 0.1f};
    const int target[6] = {0, 3, 9, 3, 5, 7};
    float *logits = rand_buf(60, 3.0f, 0.0f);
    float *weight = rand_buf(10, 0.5f, 1.0f);
    float *logits_d = put(logits, 60);
    float *weight_d = put(weight, 10);
    int *target_d = dev_alloc(sizeof target);
    bm->upload(target_d, target, sizeof target);
    float *p_r = mem_alloc(60 * sizeof(float));
    float *p_d = dev_alloc(60 * sizeof(float));
    assert_non_null(p_r);
    for (int wi = 0; wi < 2; wi++) {
        const float *w = wi ? weight : NULL;
        const float *w_d = wi ? weight_d : NULL;
        float l_r = rf->xent_forward(&xe, logits, target, w, p_r);
        float l_d = be->xent_forward(&xe, logits_d, target_d, w_d, p_d);
        expect_close("xent loss", &l_r, &l_d, 1, tol.fwd);
        expect_close_dev("xent probs", p_r, p_d, 60, tol.fwd);
        Grad gz = grad_flat(60);
        rf->xent_backward(&xe, p_r, target, w, 0.7f, gz.r);
        be->xent_backward(&xe, p_d, target_d, w_d, 0.7f, gz.d);
        grad_check_first(&gz, "xent dlogits");
        be->xent_backward(&xe, p_d, target_d, w_d, 0.7f, gz.d);
        grad_check_second(&gz, "xent dlogits");
    }
    mem_free(logits);
    mem_free(weight);
    mem_free(p_r);
    dev_free(logits_d);
    dev_free(weight_d);
    dev_free(target_d);
    dev_free(p_d);
}

// ---------------------------------------------------------------------------------------------
// Optimizers: several steps from the same state must stay together.

/* Parameters and the two moment buffers (SGD and RMSprop use m, v as their buffers). */
typedef struct OptState {
    float *p, *m, *v;
} OptState;

/* ref's on the host; the backend's in its memory (alloc zeroes the moments). */
static OptState opt_state(size_t n, const float *p0, int dev)
{
    if (dev)
        return (OptState){put(p0, n), dev_alloc(n * sizeof(float)), dev_alloc(n * sizeof(float))};
    OptState s = {copy_buf(p0, n), mem_calloc(n, sizeof(float)), mem_calloc(n, sizeof(float))};
    assert_true(s.m && s.v);
    return s;
}

static void opt_free(OptState *r, OptState *d)
{
    mem_free(r->p);
    mem_free(r->m);
    mem_free(r->v);
    dev_free(d->p);
    dev_free(d->m);
    dev_free(d->v);
}

static void opt_compare(const char *what, const OptState *r, const OptState *d, size_t n)
{
    char label[96];
    snprintf(label, sizeof label, "%s params", what);
    expect_close_dev(label, r->p, d->p, n, tol.fwd);
    snprintf(label, sizeof label, "%s moment 1", what);
    expect_close_dev(label, r->m, d->m, n, tol.fwd);
    snprintf(label, sizeof label, "%s moment 2", what);
    expect_close_dev(label, r->v, d->v, n, tol.fwd);
}

static void test_optimizers(void **state)
{
    (void)state;
    size_t n = 40000 + 13; /* chunked and threaded, with a tail */
    float *p0 = rand_buf(n, 1.0f, 0.0f);
    const NnAdamW adam = {1e-3, 0.9, 0.999, 1e-8, 0.05};
    const NnSgd sgds[3] = {{0.1, 0.9, 1e-4, 0}, {0.1, 0.9, 1e-4, 1}, {0.05, 0.0, 1e-4, 0}};
    const NnRmsprop rms[2] = {{1e-2, 0.99, 1e-8, 1e-5, 0.0}, {1e-3, 0.9, 1e-3, 1e-5, 0.9}};
    for (int decay = 0; decay < 2; decay++) {
        OptState r = opt_state(n, p0, 0);
        OptState d = opt_state(n, p0, 1);
        for (long step = 1; step <= 4; step++) {
            float *g = rand_buf(n, 1.0f, 0.0f);
            float *g_d = put(g, n);
            rf->adamw_step(&adam, step, decay, n, r.p, g, r.m, r.v);
            be->adamw_step(&adam, step, decay, n, d.p, g_d, d.m, d.v);
            mem_free(g);
            dev_free(g_d);
        }
        opt_compare(decay ? "adamw decay" : "adamw", &r, &d, n);
        opt_free(&r, &d);
    }
    for (int k = 0; k < 3; k++) {
        OptState r = opt_state(n, p0, 0);
        OptState d = opt_state(n, p0, 1);
        for (long step = 1; step <= 4; step++) {
            float *g = rand_buf(n, 1.0f, 0.0f);
            float *g_d = put(g, n);
            int use_buf = sgds[k].momentum != 0.0;
            rf->sgd_step(&sgds[k], step, 1, n, r.p, g, use_buf ? r.m : NULL);
            be->sgd_step(&sgds[k], step, 1, n, d.p, g_d, use_buf ? d.m : NULL);
            mem_free(g);
            dev_free(g_d);
        }
        opt_compare(k == 0 ? "sgd momentum" : k == 1 ? "sgd nesterov" : "sgd plain", &r, &d, n);
        opt_free(&r, &d);
    }
    for (int k = 0; k < 2; k++) {
        OptState r = opt_state(n, p0, 0);
        OptState d = opt_state(n, p0, 1);
        for (long step = 1; step <= 4; step++) {
            float *g = rand_buf(n, 1.0f, 0.0f);
            float *g_d = put(g, n);
            rf->rmsprop_step(&rms[k], 1, n, r.p, g, r.m, k ? r.v : NULL);
            be->rmsprop_step(&rms[k], 1, n, d.p, g_d, d.m, k ? d.v : NULL);
            mem_free(g);
            dev_free(g_d);
        }
        opt_compare(k ? "rmsprop momentum" : "rmsprop", &r, &d, n);
        opt_free(&r, &d);
    }
    mem_free(p0);
}

// ---------------------------------------------------------------------------------------------
// Channel views (ops.h): only on backends that declare channel_views; ref, dense, is the oracle.

/* Channels [off, off + c) of an (N, ld, HW) tensor, all of it random, in backend memory. */
typedef struct View {
    int n, c, hw, ld, off;
    float *whole;   /* host, NCHW, as uploaded */
    float *whole_d; /* the backend's, its layout */
    float *d;       /* the view: whole_d at channel off of image 0 */
} View;

static View view_new(int n, int c, int hw, int ld, int off)
{
    View v = {.n = n, .c = c, .hw = hw, .ld = ld, .off = off};
    v.whole = rand_buf((size_t)n * ld * hw, 1.0f, 0.0f);
    v.whole_d = put_act(v.whole, n, ld, hw);
    v.d = v.whole_d + be_at(0, off, 0, ld, hw);
    return v;
}

/* The view's channels of the host copy, dense (N,C,HW) NCHW: what ref is given. */
static float *view_dense(const View *v)
{
    float *y = mem_alloc((size_t)v->n * v->c * v->hw * sizeof(float));
    assert_non_null(y);
    for (int b = 0; b < v->n; b++)
        memcpy(y + (size_t)b * v->c * v->hw, v->whole + ((size_t)b * v->ld + v->off) * v->hw,
               (size_t)v->c * v->hw * sizeof(float));
    return y;
}

/* The view's channels must match want (dense NCHW) within limit, the others be untouched. */
static void view_check(const View *v, const char *what, const float *want, double limit)
{
    float *all = get_act(v->whole_d, v->n, v->ld, v->hw);
    float *got = mem_alloc((size_t)v->n * v->c * v->hw * sizeof(float));
    assert_non_null(got);
    for (int b = 0; b < v->n; b++)
        for (int ch = 0; ch < v->ld; ch++) {
            const float *src = all + ((size_t)b * v->ld + ch) * v->hw;
            if (ch >= v->off && ch < v->off + v->c)
                memcpy(got + ((size_t)b * v->c + ch - v->off) * v->hw, src,
                       (size_t)v->hw * sizeof(float));
            else
                assert_memory_equal(src, v->whole + ((size_t)b * v->ld + ch) * v->hw,
                                    (size_t)v->hw * sizeof(float));
        }
    expect_close(what, want, got, (size_t)v->n * v->c * v->hw, limit);
    mem_free(all);
    mem_free(got);
}

static void view_free(View *v)
{
    mem_free(v->whole);
    dev_free(v->whole_d);
}

/* Conv with y and dy channels [3, 3 + c_out) of 3 + c_out + 4. */
static void conv_view_case(const char *label, NnConv2d c)
{
    Err e = {0};
    assert_int_equal(nn_conv2d_setup(&c, &e), 0);
    int hw_in = c.h_in * c.w_in, hw_out = c.h_out * c.w_out;
    size_t nx = (size_t)c.n * c.c_in * hw_in;
    size_t nw = (size_t)c.c_out * (c.c_in / c.groups) * c.kh * c.kw;
    size_t ny = (size_t)c.n * c.c_out * hw_out;
    NnConv2d cv = c;
    cv.ldy = 3 + c.c_out + 4;
    char what[160];
    float *x = rand_buf(nx, 1.0f, 0.0f), *w = rand_buf(nw, 0.5f, 0.0f);
    float *b = rand_buf((size_t)c.c_out, 1.0f, 0.0f);
    float *x_d = put_act(x, c.n, c.c_in, hw_in), *w_d = put(w, nw), *b_d = put(b, c.c_out);
    void *ws_r = mem_alloc(rf->conv2d_workspace(&c) + 1);
    void *ws_d = dev_alloc(be->conv2d_workspace(&cv) + 1);
    float *y_r = mem_alloc(ny * sizeof(float));
    assert_true(ws_r && y_r);
    View yv = view_new(c.n, c.c_out, hw_out, cv.ldy, 3);
    rf->conv2d_forward(&c, x, w, b, y_r, ws_r);
    be->conv2d_forward(&cv, x_d, w_d, b_d, yv.d, ws_d);
    snprintf(what, sizeof what, "conv %s, y a channel view, forward", label);
    view_check(&yv, what, y_r, tol.gemm_fwd);

    View dyv = view_new(c.n, c.c_out, hw_out, cv.ldy, 3);
    float *dy = view_dense(&dyv);
    Grad gx = grad_gemm(grad_new(c.n, c.c_in, hw_in));
    Grad gw = grad_gemm(grad_flat(nw));
    Grad gb = grad_gemm(grad_flat((size_t)c.c_out));
    rf->conv2d_backward(&c, x, w, dy, gx.r, gw.r, gb.r, ws_r);
    for (int rep = 0; rep < 2; rep++) {
        be->conv2d_backward(&cv, x_d, w_d, dyv.d, gx.d, gw.d, gb.d, ws_d);
        snprintf(what, sizeof what, "conv %s, dy a channel view, dx", label);
        rep ? grad_check_second(&gx, what) : grad_check_first(&gx, what);
        snprintf(what, sizeof what, "conv %s, dy a channel view, dw", label);
        rep ? grad_check_second(&gw, what) : grad_check_first(&gw, what);
        snprintf(what, sizeof what, "conv %s, dy a channel view, db", label);
        rep ? grad_check_second(&gb, what) : grad_check_first(&gb, what);
    }
    mem_free(x), mem_free(w), mem_free(b), mem_free(dy), mem_free(ws_r), mem_free(y_r);
    dev_free(x_d), dev_free(w_d), dev_free(b_d), dev_free(ws_d);
    view_free(&yv);
    view_free(&dyv);
}

/* Batch norm with x and dx channels [2, 2 + C) of 2 + C + 3 (a DenseNet block's input). */
static void bn_view_case(NnBatchNorm bn)
{
    int hw = bn.h * bn.w;
    size_t nx = (size_t)bn.n * bn.c * hw, c = (size_t)bn.c;
    NnBatchNorm bv = bn;
    bv.ldx = 2 + bn.c + 3;
    View xv = view_new(bn.n, bn.c, hw, bv.ldx, 2);
    View dxv = view_new(bn.n, bn.c, hw, bv.ldx, 2); /* its view: the gradient's start */
    float *x = view_dense(&xv), *dx_r = view_dense(&dxv);
    float *gamma = rand_buf(c, 1.0f, 0.2f), *beta = rand_buf(c, 1.0f, 0.0f);
    float *dy = rand_buf(nx, 1.0f, 0.0f);
    float *gamma_d = put(gamma, c), *beta_d = put(beta, c), *dy_d = put_act(dy, bn.n, bn.c, hw);
    float *y_r = mem_alloc(nx * sizeof(float)), *y_d = dev_alloc(nx * sizeof(float));
    float *st_r = mem_calloc(4 * c, sizeof(float)), *st_d = dev_alloc(4 * c * sizeof(float));
    float *rs_r = mem_calloc(2 * c, sizeof(float)), *rs_d = dev_alloc(2 * c * sizeof(float));
    int64_t cnt_r = 0, *cnt_d = dev_alloc(sizeof(int64_t));
    assert_true(y_r && st_r && rs_r);
    rf->batchnorm_forward_train(&bn, x, gamma, beta, y_r, rs_r, rs_r + c, &cnt_r, st_r, st_r + c);
    be->batchnorm_forward_train(&bv, xv.d, gamma_d, beta_d, y_d, rs_d, rs_d + c, cnt_d, st_d,
                                st_d + c);
    float *y_back = get_act(y_d, bn.n, bn.c, hw);
    expect_close("bn, x a channel view, train y", y_r, y_back, nx, tol.fwd);
    expect_close_dev("bn, x a channel view, save_mean, save_invstd", st_r, st_d, 2 * c, tol.fwd);
    view_check(&xv, "bn, x a channel view, x untouched", x, 0.0);
    Grad gg = grad_flat(c), gb = grad_flat(c);
    rf->batchnorm_backward_train(&bn, x, gamma, st_r, st_r + c, dy, dx_r, gg.r, gb.r);
    be->batchnorm_backward_train(&bv, xv.d, gamma_d, st_d, st_d + c, dy_d, dxv.d, gg.d, gb.d);
    view_check(&dxv, "bn, x and dx channel views, train dx", dx_r, tol.bwd);
    grad_check_first(&gg, "bn, x a channel view, train dgamma");
    grad_check_first(&gb, "bn, x a channel view, train dbeta");
    be->batchnorm_backward_train(&bv, xv.d, gamma_d, st_d, st_d + c, dy_d, NULL, gg.d, gb.d);
    grad_check_second(&gg, "bn, x a channel view, train dgamma");
    grad_check_second(&gb, "bn, x a channel view, train dbeta");

    /* eval mode with ref's running statistics, and the fused BN + ReLU (DenseNet's norm1) */
    float *rsr_d = put(rs_r, 2 * c);
    rf->batchnorm_forward_eval(&bn, x, gamma, beta, rs_r, rs_r + c, y_r);
    be->batchnorm_forward_eval(&bv, xv.d, gamma_d, beta_d, rsr_d, rsr_d + c, y_d);
    mem_free(y_back);
    y_back = get_act(y_d, bn.n, bn.c, hw);
    expect_close("bn, x a channel view, eval y", y_r, y_back, nx, tol.fwd);
    if (be->batchnorm_act_forward_train) {
        float *z_r = mem_alloc(nx * sizeof(float)), *dz_r = mem_calloc(nx, sizeof(float));
        assert_true(z_r && dz_r);
        rf->batchnorm_forward_train(&bn, x, gamma, beta, z_r, rs_r, rs_r + c, &cnt_r, st_r,
                                    st_r + c);
        rf->act_forward(NN_RELU, nx, z_r, y_r);
        be->batchnorm_act_forward_train(&bv, NN_RELU, xv.d, gamma_d, beta_d, y_d, rs_d, rs_d + c,
                                        cnt_d, st_d, st_d + c);
        mem_free(y_back);
        y_back = get_act(y_d, bn.n, bn.c, hw);
        expect_close("bn+relu, x a channel view, y", y_r, y_back, nx, tol.fwd);
        rf->act_backward(NN_RELU, nx, z_r, dy, dz_r);
        View dv = view_new(bn.n, bn.c, hw, bv.ldx, 2);
        float *dx2_r = view_dense(&dv);
        gg = grad_flat(c), gb = grad_flat(c);
        rf->batchnorm_backward_train(&bn, x, gamma, st_r, st_r + c, dz_r, dx2_r, gg.r, gb.r);
        be->batchnorm_act_backward_train(&bv, NN_RELU, xv.d, gamma_d, beta_d, st_d, st_d + c, dy_d,
                                         dv.d, gg.d, gb.d);
        view_check(&dv, "bn+relu, x and dx channel views, dx", dx2_r, tol.bwd);
        grad_check_first(&gg, "bn+relu, x a channel view, dgamma");
        grad_check_first(&gb, "bn+relu, x a channel view, dbeta");
        view_free(&dv);
        grad_free(&gg), grad_free(&gb);
        mem_free(z_r), mem_free(dz_r), mem_free(dx2_r);
    }
    dev_free(rsr_d);
    mem_free(x), mem_free(dx_r), mem_free(gamma), mem_free(beta), mem_free(dy), mem_free(y_r);
    mem_free(st_r), mem_free(rs_r), mem_free(y_back);
    dev_free(gamma_d), dev_free(beta_d), dev_free(dy_d), dev_free(y_d), dev_free(st_d);
    dev_free(rs_d), dev_free(cnt_d);
    view_free(&xv);
    view_free(&dxv);
}

/* Max and average pooling with y and dy channels [1, 1 + C) of 1 + C + 2. */
static void pool_view_case(NnPool2d p)
{
    Err e = {0};
    assert_int_equal(nn_pool2d_setup(&p, &e), 0);
    int hw_in = p.h_in * p.w_in, hw_out = p.h_out * p.w_out;
    size_t nx = (size_t)p.n * p.c * hw_in, ny = (size_t)p.n * p.c * hw_out;
    NnPool2d pv = p;
    pv.ldy = 1 + p.c + 2;
    float *x = rand_buf(nx, 1.0f, 0.0f), *x_d = put_act(x, p.n, p.c, hw_in);
    float *y_r = mem_alloc(ny * sizeof(float));
    int32_t *am_r = mem_alloc(ny * sizeof(int32_t)), *am_d = dev_alloc(ny * sizeof(int32_t));
    assert_true(y_r && am_r);
    View yv = view_new(p.n, p.c, hw_out, pv.ldy, 1);
    View dyv = view_new(p.n, p.c, hw_out, pv.ldy, 1);
    float *dy = view_dense(&dyv);
    rf->maxpool2d_forward(&p, x, y_r, am_r);
    be->maxpool2d_forward(&pv, x_d, yv.d, am_d);
    view_check(&yv, "maxpool, y a channel view, forward", y_r, 0.0);
    Grad gx = grad_new(p.n, p.c, hw_in);
    rf->maxpool2d_backward(&p, am_r, dy, gx.r);
    be->maxpool2d_backward(&pv, am_d, dyv.d, gx.d);
    grad_check_first(&gx, "maxpool, dy a channel view, backward");
    be->maxpool2d_backward(&pv, am_d, dyv.d, gx.d);
    grad_check_second(&gx, "maxpool, dy a channel view, backward");
    rf->avgpool2d_forward(&p, x, y_r);
    be->avgpool2d_forward(&pv, x_d, yv.d);
    view_check(&yv, "avgpool, y a channel view, forward", y_r, tol.fwd);
    gx = grad_new(p.n, p.c, hw_in);
    rf->avgpool2d_backward(&p, dy, gx.r);
    be->avgpool2d_backward(&pv, dyv.d, gx.d);
    grad_check_first(&gx, "avgpool, dy a channel view, backward");
    be->avgpool2d_backward(&pv, dyv.d, gx.d);
    grad_check_second(&gx, "avgpool, dy a channel view, backward");
    mem_free(x), mem_free(y_r), mem_free(am_r), mem_free(dy);
    dev_free(x_d), dev_free(am_d);
    view_free(&yv);
    view_free(&dyv);
}

static void test_channel_views(void **state)
{
    (void)state;
    conv_view_case("dense 3x3 s2 p1, 9x7", nn_conv2d_square(2, 3, 9, 7, 5, 3, 2, 1, 1, 1));
    conv_view_case("pointwise 1x1 8->6, 5x5", nn_conv2d_square(2, 8, 5, 5, 6, 1, 1, 0, 1, 1));
    conv_view_case("depthwise 3x3 p1 C6, 7x7", nn_conv2d_square(2, 6, 7, 7, 6, 3, 1, 1, 1, 6));
    bn_view_case((NnBatchNorm){3, 6, 5, 3, 1e-5f, 0.1f, 0});
    pool_view_case(nn_pool2d_square(2, 5, 9, 7, 3, 2, 1, 0, 1));
    pool_view_case(nn_pool2d_square(2, 4, 7, 5, 2, 2, 0, 1, 0));
}

// ---------------------------------------------------------------------------------------------
// Backend-specific

/* oneDNN's cache is released and rebuilt on demand; nothing of ours leaks. */
static void test_release(void **state)
{
    (void)state;
    nn_dnnl_release();
    size_t before = mem_bytes_in_use();
    conv_case("after release: depthwise 3x3 s2 p1", nn_conv2d_square(2, 8, 9, 9, 8, 3, 2, 1, 1, 8),
              1);
    bn_case((NnBatchNorm){2, 5, 7, 3, 1e-5f, 0.1f, 0}, 0.5f);
    act_case(NN_SILU, 999);
    linear_case(5, 37, 11, 1, 1);
    nn_dnnl_release();
    assert_int_equal(mem_bytes_in_use(), before);
}

/* set_fresh_grads (backend.h): with input k flagged, a kernel writes that gradient; the result
 * must equal accumulating into zeros, whatever garbage the buffer held (NaN here). Within one
 * backend, so exact. */
static void test_fresh_grads(void **state)
{
    (void)state;
    /* convolution, stride 2, odd sizes, depthwise, and stride 1 3x3 and 1x1 (dnnl: backward-data
     * as a forward convolution) */
    for (int kind = 0; kind < 4; kind++) {
        int depthwise = kind == 1, k = kind == 3 ? 1 : 3;
        /* (the 1x1 with 64 input channels: dnnl runs its backward-data as a forward from 64) */
        NnConv2d c = nn_conv2d_square(2, kind == 3 ? 64 : 6, 9, 7, depthwise ? 6 : 5, k,
                                      kind >= 2 ? 1 : 2, k / 2, 1, depthwise ? 6 : 1);
        Err e = {0};
        assert_int_equal(nn_conv2d_setup(&c, &e), 0);
        size_t nx = (size_t)c.n * c.c_in * c.h_in * c.w_in;
        size_t ny = (size_t)c.n * c.c_out * c.h_out * c.w_out;
        size_t nw = (size_t)c.c_out * (c.c_in / c.groups) * k * k;
        float *x = rand_buf(nx, 1, 0), *w = rand_buf(nw, 1, 0), *dy = rand_buf(ny, 1, 0);
        float *x_d = put(x, nx), *w_d = put(w, nw), *dy_d = put(dy, ny);
        float *dw_d = dev_alloc(nw * sizeof(float)), *a_d = dev_alloc(nx * sizeof(float));
        float *b_d = nan_dev(nx);
        void *ws = dev_alloc(be->conv2d_workspace(&c));
        be->conv2d_backward(&c, x_d, w_d, dy_d, a_d, dw_d, NULL, ws);
        be->set_fresh_grads(1);
        be->conv2d_backward(&c, x_d, w_d, dy_d, b_d, dw_d, NULL, ws);
        be->set_fresh_grads(0);
        float *a = get(a_d, nx), *b = get(b_d, nx);
        static const char *const what[] = {"fresh dx: conv", "fresh dx: depthwise conv",
                                           "fresh dx: conv, stride 1",
                                           "fresh dx: 1x1 conv, stride 1"};
        expect_close(what[kind], a, b, nx, 0);
        mem_free(x), mem_free(w), mem_free(dy), mem_free(a), mem_free(b);
        dev_free(x_d), dev_free(w_d), dev_free(dy_d), dev_free(dw_d), dev_free(a_d);
        dev_free(b_d), dev_free(ws);
    }
    /* batch norm, training */
    NnBatchNorm bn = {.n = 3, .c = 5, .h = 4, .w = 3, .eps = 1e-5f, .momentum = 0.1f};
    size_t n = (size_t)bn.n * bn.c * bn.h * bn.w;
    size_t fb = 5 * sizeof(float);
    float *x = rand_buf(n, 2, 0.5f), *dy = rand_buf(n, 1, 0), *gamma = rand_buf(5, 0.5f, 1);
    float *beta = rand_buf(5, 0.5f, 0), *da = rand_buf(n, 1, 0);
    float *x_d = put(x, n), *dy_d = put(dy, n), *gamma_d = put(gamma, 5), *beta_d = put(beta, 5);
    float *y_d = dev_alloc(n * sizeof(float)), *rm_d = dev_alloc(fb), *rv_d = dev_alloc(fb);
    float *mean_d = dev_alloc(fb), *invstd_d = dev_alloc(fb);
    float *dg_d = dev_alloc(fb), *db_d = dev_alloc(fb);
    int64_t *tracked_d = dev_alloc(sizeof(int64_t));
    be->batchnorm_forward_train(&bn, x_d, gamma_d, beta_d, y_d, rm_d, rv_d, tracked_d, mean_d,
                                invstd_d);
    float *a_d = dev_alloc(n * sizeof(float)), *b_d = nan_dev(n);
    be->batchnorm_backward_train(&bn, x_d, gamma_d, mean_d, invstd_d, dy_d, a_d, dg_d, db_d);
    be->set_fresh_grads(1);
    be->batchnorm_backward_train(&bn, x_d, gamma_d, mean_d, invstd_d, dy_d, b_d, dg_d, db_d);
    be->set_fresh_grads(0);
    float *a = get(a_d, n), *b = get(b_d, n);
    expect_close("fresh dx: batch norm", a, b, n, 0);
    mem_free(a), mem_free(b);
    /* activations: hand-written and library ones */
    NnAct acts[] = {NN_RELU, NN_HARDSWISH, NN_HARDSIGMOID, NN_SILU, NN_SIGMOID};
    for (int k = 0; k < 5; k++) {
        dev_free(b_d);
        b_d = nan_dev(n);
        bm->zero(a_d, n * sizeof(float));
        be->act_backward(acts[k], n, x_d, dy_d, a_d);
        be->set_fresh_grads(1);
        be->act_backward(acts[k], n, x_d, dy_d, b_d);
        be->set_fresh_grads(0);
        char what[64];
        snprintf(what, sizeof what, "fresh dx: %s", nn_act_name(acts[k]));
        a = get(a_d, n), b = get(b_d, n);
        expect_close(what, a, b, n, 0);
        mem_free(a), mem_free(b);
    }
    /* add: the second input fresh, the first accumulated */
    float *da_d = put(da, n), *da2_d = put(da, n);
    dev_free(b_d);
    b_d = nan_dev(n);
    bm->zero(a_d, n * sizeof(float));
    be->add_backward(n, dy_d, da_d, a_d);
    be->set_fresh_grads(2);
    be->add_backward(n, dy_d, da2_d, b_d);
    be->set_fresh_grads(0);
    a = get(a_d, n), b = get(b_d, n);
    expect_close("fresh db: add", a, b, n, 0);
    float *da1 = get(da_d, n), *da2 = get(da2_d, n);
    for (size_t i = 0; i < n; i++)
        assert_true(da2[i] == da1[i]); /* the unflagged input still accumulates */
    mem_free(x), mem_free(dy), mem_free(gamma), mem_free(beta), mem_free(da), mem_free(a);
    mem_free(b), mem_free(da1), mem_free(da2);
    dev_free(x_d), dev_free(dy_d), dev_free(gamma_d), dev_free(beta_d), dev_free(y_d);
    dev_free(rm_d), dev_free(rv_d), dev_free(mean_d), dev_free(invstd_d), dev_free(dg_d);
    dev_free(db_d), dev_free(tracked_d), dev_free(a_d), dev_free(b_d), dev_free(da_d);
    dev_free(da2_d);
}

// ---------------------------------------------------------------------------------------------

/* Backends that a build or a machine may lack: not obtaining them is a skip. Any other name
 * that fails (a typo in tests/unit/test_nn_backend.args) is an error. */
static int optional_backend(const char *name)
{
    return !strcmp(name, "dnnl") || !strcmp(name, "cuda");
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : getenv("ONFH_TEST_BACKEND");
    if (!name || !*name)
        name = "dnnl";
    Err e = {0};
    rf = nn_backend_ref();
    be = nn_backend_by_name(name, &e);
    if (!be) {
        if (!optional_backend(name)) {
            fprintf(stderr, "test_nn_backend: %s\n", e.msg);
            return 2;
        }
        /* TAP's skip-all (cmocka prints a skipped test as "not ok") */
        printf("1..0 # SKIP %s: %s\n", name, e.msg);
        return 0;
    }
    bm = be->mem;
    for (const Tol *t = tolerances;; t++)
        if (!t->backend || !strcmp(t->backend, be->name)) {
            tol = *t;
            break;
        }
    printf("# backend %s (%s memory, %s); tolerances fwd %.0e bwd %.0e conv/linear %.0e %.0e\n",
           be->name, bm->device ? "device" : "host", be->layout == NN_LAYOUT_NHWC ? "NHWC" : "NCHW",
           tol.fwd, tol.bwd, tol.gemm_fwd, tol.gemm_bwd);
    if (!strcmp(be->name, "dnnl"))
        nn_dnnl_set_threads(2);

    /* Cases a backend cannot run are left out, with a note (cmocka's skip() reads as a failure
     * in its TAP output). */
    struct CMUnitTest tests[32];
    size_t nt = 0;
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_layout),        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_batchnorm),     cmocka_unit_test(test_activations),
        cmocka_unit_test(test_pooling),       cmocka_unit_test(test_adaptive_pool),
        cmocka_unit_test(test_linear),        cmocka_unit_test(test_add_chanmul),
        cmocka_unit_test(test_chanmul_large), cmocka_unit_test(test_concat_split),
        cmocka_unit_test(test_shuffle),       cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_xent),          cmocka_unit_test(test_optimizers),
    };
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        tests[nt++] = common[i];
    if (be->channel_views)
        tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_channel_views);
    else
        printf("# skip test_channel_views: %s has channel_views = 0\n", be->name);
    if (be->batchnorm_act_forward_train)
        tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_batchnorm_act);
    else
        printf("# skip test_batchnorm_act: %s does not fuse batch norm and activation\n", be->name);
    if (be->add_act_forward)
        tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_add_act);
    else
        printf("# skip test_add_act: %s does not fuse add and activation\n", be->name);
    if (be->set_fresh_grads)
        tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_fresh_grads);
    else
        printf("# skip test_fresh_grads: %s has no set_fresh_grads\n", be->name);
    if (!strcmp(be->name, "dnnl"))
        tests[nt++] = (struct CMUnitTest)cmocka_unit_test(test_release);
    else
        printf("# skip test_release: nn_dnnl_release is dnnl's\n");
    const char *only = getenv("ONFH_TEST_ONLY"); /* one case, e.g. "test_conv" on a GPU node */
    if (only && *only)
        cmocka_set_test_filter(only);
    int rc = _cmocka_run_group_tests(be->name, tests, nt, NULL, NULL);
    if (!strcmp(be->name, "dnnl"))
        nn_dnnl_release();
    return rc;
}
