/* test_nn_golden.c: the reference backend against PyTorch, op by op and optimizer by optimizer.
 *
 * tests/fixtures/nn/ops.h5 holds, for a handful of configurations per op, float32 inputs,
 * parameters and an upstream gradient, with PyTorch's outputs and gradients (computed in
 * float64 and rounded once, see tools/golden_ops.py, which documents the layout). Each case is
 * run through nn_backend_ref() and compared:
 *   forward outputs (and batch-norm running statistics, optimizer trajectories): within 1e-5
 *     relative or 1e-6 absolute;
 *   gradients: within 1e-4 relative or 1e-5 absolute.
 * Output shapes come from nn_*_setup and must equal PyTorch's, which checks the ceil-mode and
 * padding rules as much as the values. The largest error of each op is printed as a TAP
 * comment, relative to its tolerance. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/h5/h5read.h"
#include "lib/nn/backend.h"
#include "lib/nn/optimizer.h"
#include "lib/nn/tensor.h"
#include "lib/util/mem.h"

#define FWD_REL    1e-5
#define FWD_ABS    1e-6
#define GRAD_REL   1e-4
#define GRAD_ABS   1e-5
#define MAX_ARRAYS 24

static const NnBackend *be;
static hid_t file = -1;

// ---------------------------------------------------------------------------------------------
// Reading a case and comparing against it

typedef struct Case {
    char group[64]; /* "/conv/c3" */
    int n;
    char names[MAX_ARRAYS][16];
    H5Array arrays[MAX_ARRAYS];
    double worst_fwd; /* largest error / tolerance seen */
    double worst_grad;
} Case;

typedef struct OpReport {
    const char *op;
    int cases;
    double worst_fwd;
    double worst_grad;
} OpReport;

static void case_open(Case *c, const char *op, int i)
{
    memset(c, 0, sizeof *c);
    snprintf(c->group, sizeof c->group, "/%s/c%d", op, i);
}

static H5Array *load(Case *c, const char *name, int integer)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->names[i], name) == 0)
            return &c->arrays[i];
    assert_true(c->n < MAX_ARRAYS);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", c->group, name);
    Err e = {0};
    int rc = integer ? h5_read_int(file, path, &c->arrays[c->n], &e)
                     : h5_read_float(file, path, &c->arrays[c->n], &e);
    if (rc) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    snprintf(c->names[c->n], sizeof c->names[c->n], "%s", name);
    return &c->arrays[c->n++];
}

static float *get(Case *c, const char *name)
{
    return load(c, name, 0)->data;
}

static int64_t dim(Case *c, const char *name, int d)
{
    return load(c, name, 0)->dims[d];
}

static size_t numel(Case *c, const char *name)
{
    return load(c, name, 0)->numel;
}

static int has(Case *c, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", c->group, name);
    return h5_exists(file, path);
}

static double attr(Case *c, const char *name)
{
    double v = 0.0;
    Err e = {0};
    if (h5_attr_double(file, c->group, name, &v, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    return v;
}

static int iattr(Case *c, const char *name)
{
    return (int)lround(attr(c, name));
}

/* Zeroed float scratch of the size of dataset `like` (gradients accumulate into it). */
static float *zeros_like(Case *c, const char *like)
{
    float *p = mem_calloc(numel(c, like) + 1, sizeof(float));
    assert_non_null(p);
    return p;
}

/* got[0..n) against want[0..n); label names them in a failure message. */
static void compare_values(Case *c, const char *label, const float *got, const float *want,
                           size_t n, int grad)
{
    double rel = grad ? GRAD_REL : FWD_REL;
    double abs_tol = grad ? GRAD_ABS : FWD_ABS;
    double worst = 0.0;
    size_t worst_at = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - (double)want[i]);
        double ratio = err / fmax(abs_tol, rel * fabs((double)want[i]));
        if (!(ratio <= worst)) { /* catches NaN too */
            worst = ratio;
            worst_at = i;
        }
    }
    if (grad)
        c->worst_grad = fmax(c->worst_grad, worst);
    else
        c->worst_fwd = fmax(c->worst_fwd, worst);
    if (!(worst <= 1.0)) {
        fprintf(stderr, "%s/%s[%zu]: got %.9g, PyTorch %.9g (%.2f x tolerance)\n", c->group, label,
                worst_at, got[worst_at], want[worst_at], worst);
        fail();
    }
}

/* got against the whole dataset `name` of the case. */
static void compare(Case *c, const char *name, const float *got, int grad)
{
    H5Array *want = load(c, name, 0);
    compare_values(c, name, got, want->data, want->numel, grad);
}

static void case_close(Case *c, OpReport *r)
{
    r->cases++;
    r->worst_fwd = fmax(r->worst_fwd, c->worst_fwd);
    r->worst_grad = fmax(r->worst_grad, c->worst_grad);
    for (int i = 0; i < c->n; i++)
        h5_array_free(&c->arrays[i]);
}

static int n_cases(const char *op)
{
    char path[64];
    snprintf(path, sizeof path, "/%s", op);
    double n = 0;
    Err e = {0};
    if (h5_attr_double(file, path, "n_cases", &n, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    assert_true(n >= 1);
    return (int)n;
}

static void report(const OpReport *r)
{
    printf("# %-17s %2d cases, worst error / tolerance: forward %.3f, gradients %.3f\n", r->op,
           r->cases, r->worst_fwd, r->worst_grad);
}

// ---------------------------------------------------------------------------------------------
// Ops

static void test_conv(void **state)
{
    (void)state;
    OpReport r = {.op = "conv2d"};
    for (int i = 0; i < n_cases("conv"); i++) {
        Case c;
        case_open(&c, "conv", i);
        int bias = iattr(&c, "bias");
        NnConv2d d = {.n = (int)dim(&c, "x", 0),
                      .c_in = (int)dim(&c, "x", 1),
                      .h_in = (int)dim(&c, "x", 2),
                      .w_in = (int)dim(&c, "x", 3),
                      .c_out = (int)dim(&c, "w", 0),
                      .kh = (int)dim(&c, "w", 2),
                      .kw = (int)dim(&c, "w", 3),
                      .stride_h = iattr(&c, "stride_h"),
                      .stride_w = iattr(&c, "stride_w"),
                      .pad_h = iattr(&c, "pad_h"),
                      .pad_w = iattr(&c, "pad_w"),
                      .dil_h = iattr(&c, "dil_h"),
                      .dil_w = iattr(&c, "dil_w"),
                      .groups = iattr(&c, "groups")};
        Err e = {0};
        assert_int_equal(nn_conv2d_setup(&d, &e), 0);
        assert_int_equal(d.h_out, dim(&c, "y", 2));
        assert_int_equal(d.w_out, dim(&c, "y", 3));
        void *ws = mem_alloc(be->conv2d_workspace(&d) + 1);
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        float *dw = zeros_like(&c, "w");
        float *db = mem_calloc((size_t)d.c_out, sizeof(float));
        assert_true(ws && db);
        const float *b = bias ? get(&c, "b") : NULL;
        be->conv2d_forward(&d, get(&c, "x"), get(&c, "w"), b, y, ws);
        compare(&c, "y", y, 0);
        be->conv2d_backward(&d, get(&c, "x"), get(&c, "w"), get(&c, "dy"), dx, dw, bias ? db : NULL,
                            ws);
        compare(&c, "dx", dx, 1);
        compare(&c, "dw", dw, 1);
        if (bias)
            compare(&c, "db", db, 1);
        mem_free(ws);
        mem_free(y);
        mem_free(dx);
        mem_free(dw);
        mem_free(db);
        case_close(&c, &r);
    }
    report(&r);
}

static void test_batchnorm(void **state)
{
    (void)state;
    OpReport r = {.op = "batchnorm2d"};
    for (int i = 0; i < n_cases("batchnorm"); i++) {
        Case c;
        case_open(&c, "batchnorm", i);
        int training = iattr(&c, "training");
        NnBatchNorm bn = {(int)dim(&c, "x", 0),
                          (int)dim(&c, "x", 1),
                          (int)dim(&c, "x", 2),
                          (int)dim(&c, "x", 3),
                          (float)attr(&c, "eps"),
                          (float)attr(&c, "momentum"),
                          0};
        Err e = {0};
        assert_int_equal(nn_batchnorm_setup(&bn, training, &e), 0);
        size_t ch = (size_t)bn.c;
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        float *dgamma = zeros_like(&c, "gamma");
        float *dbeta = zeros_like(&c, "beta");
        float *rm = zeros_like(&c, "gamma");
        float *rv = zeros_like(&c, "gamma");
        float *mean = zeros_like(&c, "gamma");
        float *invstd = zeros_like(&c, "gamma");
        memcpy(rm, get(&c, "running_mean"), ch * sizeof(float));
        memcpy(rv, get(&c, "running_var"), ch * sizeof(float));
        int64_t tracked = iattr(&c, "num_batches_tracked");
        const float *x = get(&c, "x");
        const float *gamma = get(&c, "gamma");
        if (training) {
            be->batchnorm_forward_train(&bn, x, gamma, get(&c, "beta"), y, rm, rv, &tracked, mean,
                                        invstd);
            be->batchnorm_backward_train(&bn, x, gamma, mean, invstd, get(&c, "dy"), dx, dgamma,
                                         dbeta);
        } else {
            be->batchnorm_forward_eval(&bn, x, gamma, get(&c, "beta"), rm, rv, y);
            be->batchnorm_backward_eval(&bn, x, gamma, rm, rv, get(&c, "dy"), dx, dgamma, dbeta);
        }
        compare(&c, "y", y, 0);
        compare(&c, "running_mean_out", rm, 0);
        compare(&c, "running_var_out", rv, 0);
        assert_int_equal(tracked, iattr(&c, "num_batches_tracked_out"));
        compare(&c, "dx", dx, 1);
        compare(&c, "dgamma", dgamma, 1);
        compare(&c, "dbeta", dbeta, 1);
        mem_free(y);
        mem_free(dx);
        mem_free(dgamma);
        mem_free(dbeta);
        mem_free(rm);
        mem_free(rv);
        mem_free(mean);
        mem_free(invstd);
        case_close(&c, &r);
    }
    report(&r);
}

static void test_activations(void **state)
{
    (void)state;
    static const NnAct acts[] = {NN_RELU,        NN_RELU6, NN_HARDSWISH,
                                 NN_HARDSIGMOID, NN_SILU,  NN_SIGMOID};
    int seen = 0;
    OpReport r = {.op = "activations"};
    for (int i = 0; i < n_cases("act"); i++) {
        Case c;
        case_open(&c, "act", i);
        char kind[32];
        Err e = {0};
        assert_int_equal(h5_attr_string(file, c.group, "kind", kind, sizeof kind, &e), 0);
        int a = -1;
        for (int k = 0; k < 6; k++)
            if (strcmp(kind, nn_act_name(acts[k])) == 0)
                a = k;
        assert_true(a >= 0);
        seen |= 1 << a;
        size_t n = numel(&c, "x");
        float *y = zeros_like(&c, "x");
        float *dx = zeros_like(&c, "x");
        be->act_forward(acts[a], n, get(&c, "x"), y);
        compare(&c, "y", y, 0);
        be->act_backward(acts[a], n, get(&c, "x"), get(&c, "dy"), dx);
        compare(&c, "dx", dx, 1);
        mem_free(y);
        mem_free(dx);
        case_close(&c, &r);
    }
    assert_int_equal(seen, 0x3f); /* every activation has a golden */
    report(&r);
}

static NnPool2d pool_desc(Case *c)
{
    NnPool2d p = {.n = (int)dim(c, "x", 0),
                  .c = (int)dim(c, "x", 1),
                  .h_in = (int)dim(c, "x", 2),
                  .w_in = (int)dim(c, "x", 3),
                  .kh = iattr(c, "kh"),
                  .kw = iattr(c, "kw"),
                  .stride_h = iattr(c, "stride_h"),
                  .stride_w = iattr(c, "stride_w"),
                  .pad_h = iattr(c, "pad_h"),
                  .pad_w = iattr(c, "pad_w"),
                  .ceil_mode = iattr(c, "ceil_mode"),
                  .count_include_pad = iattr(c, "count_include_pad")};
    Err e = {0};
    assert_int_equal(nn_pool2d_setup(&p, &e), 0);
    assert_int_equal(p.h_out, dim(c, "y", 2));
    assert_int_equal(p.w_out, dim(c, "y", 3));
    return p;
}

static void test_maxpool(void **state)
{
    (void)state;
    OpReport r = {.op = "maxpool2d"};
    for (int i = 0; i < n_cases("maxpool"); i++) {
        Case c;
        case_open(&c, "maxpool", i);
        NnPool2d p = pool_desc(&c);
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        int32_t *argmax = mem_calloc(numel(&c, "y"), sizeof(int32_t));
        assert_non_null(argmax);
        be->maxpool2d_forward(&p, get(&c, "x"), y, argmax);
        compare(&c, "y", y, 0);
        be->maxpool2d_backward(&p, argmax, get(&c, "dy"), dx);
        compare(&c, "dx", dx, 1);
        mem_free(y);
        mem_free(dx);
        mem_free(argmax);
        case_close(&c, &r);
    }
    report(&r);
}

static void test_avgpool(void **state)
{
    (void)state;
    OpReport r = {.op = "avgpool2d"};
    for (int i = 0; i < n_cases("avgpool"); i++) {
        Case c;
        case_open(&c, "avgpool", i);
        NnPool2d p = pool_desc(&c);
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        be->avgpool2d_forward(&p, get(&c, "x"), y);
        compare(&c, "y", y, 0);
        be->avgpool2d_backward(&p, get(&c, "dy"), dx);
        compare(&c, "dx", dx, 1);
        mem_free(y);
        mem_free(dx);
        case_close(&c, &r);
    }
    report(&r);
}

static void test_adaptive_avgpool(void **state)
{
    (void)state;
    OpReport r = {.op = "adaptive_avgpool"};
    for (int i = 0; i < n_cases("adaptive_avgpool"); i++) {
        Case c;
        case_open(&c, "adaptive_avgpool", i);
        NnAdaptivePool p = {(int)dim(&c, "x", 0), (int)dim(&c, "x", 1), (int)dim(&c, "x", 2),
                            (int)dim(&c, "x", 3), iattr(&c, "h_out"),   iattr(&c, "w_out")};
        Err e = {0};
        assert_int_equal(nn_adaptive_pool_setup(&p, &e), 0);
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        be->adaptive_avgpool2d_forward(&p, get(&c, "x"), y);
        compare(&c, "y", y, 0);
        be->adaptive_avgpool2d_backward(&p, get(&c, "dy"), dx);
        compare(&c, "dx", dx, 1);
        mem_free(y);
        mem_free(dx);
        case_close(&c, &r);
    }
    report(&r);
}

static void test_linear(void **state)
{
    (void)state;
    OpReport r = {.op = "linear"};
    for (int i = 0; i < n_cases("linear"); i++) {
        Case c;
        case_open(&c, "linear", i);
        int bias = iattr(&c, "bias");
        int n = (int)dim(&c, "x", 0), in = (int)dim(&c, "x", 1), out = (int)dim(&c, "w", 0);
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        float *dw = zeros_like(&c, "w");
        float *db = mem_calloc((size_t)out, sizeof(float));
        assert_non_null(db);
        be->linear_forward(n, in, out, get(&c, "x"), get(&c, "w"), bias ? get(&c, "b") : NULL, y);
        compare(&c, "y", y, 0);
        be->linear_backward(n, in, out, get(&c, "x"), get(&c, "w"), get(&c, "dy"), dx, dw,
                            bias ? db : NULL);
        compare(&c, "dx", dx, 1);
        compare(&c, "dw", dw, 1);
        if (bias)
            compare(&c, "db", db, 1);
        mem_free(y);
        mem_free(dx);
        mem_free(dw);
        mem_free(db);
        case_close(&c, &r);
    }
    report(&r);
}

static void test_add_and_chanmul(void **state)
{
    (void)state;
    OpReport ra = {.op = "add"};
    for (int i = 0; i < n_cases("add"); i++) {
        Case c;
        case_open(&c, "add", i);
        size_t n = numel(&c, "a");
        float *y = zeros_like(&c, "y");
        float *da = zeros_like(&c, "a");
        float *db = zeros_like(&c, "b");
        be->add_forward(n, get(&c, "a"), get(&c, "b"), y);
        compare(&c, "y", y, 0);
        be->add_backward(n, get(&c, "dy"), da, db);
        compare(&c, "da", da, 1);
        compare(&c, "db", db, 1);
        mem_free(y);
        mem_free(da);
        mem_free(db);
        case_close(&c, &ra);
    }
    report(&ra);

    OpReport rm = {.op = "chanmul"};
    for (int i = 0; i < n_cases("chanmul"); i++) {
        Case c;
        case_open(&c, "chanmul", i);
        int n = (int)dim(&c, "x", 0), ch = (int)dim(&c, "x", 1);
        int hw = (int)(dim(&c, "x", 2) * dim(&c, "x", 3));
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        float *ds = zeros_like(&c, "s");
        be->chanmul_forward(n, ch, hw, get(&c, "x"), get(&c, "s"), y);
        compare(&c, "y", y, 0);
        be->chanmul_backward(n, ch, hw, get(&c, "x"), get(&c, "s"), get(&c, "dy"), dx, ds);
        compare(&c, "dx", dx, 1);
        compare(&c, "ds", ds, 1);
        mem_free(y);
        mem_free(dx);
        mem_free(ds);
        case_close(&c, &rm);
    }
    report(&rm);
}

/* Name of part i of a multi-part case: "x0", "dy2" ... */
static const char *part(char buf[16], const char *prefix, int i)
{
    snprintf(buf, 16, "%s%d", prefix, i);
    return buf;
}

static void test_concat_split(void **state)
{
    (void)state;
    OpReport rc = {.op = "concat"};
    for (int i = 0; i < n_cases("concat"); i++) {
        Case c;
        case_open(&c, "concat", i);
        int parts = iattr(&c, "parts");
        assert_true(parts <= 4);
        const int *chans = load(&c, "channels", 1)->data;
        int n = (int)dim(&c, "y", 0);
        int hw = (int)(dim(&c, "y", 2) * dim(&c, "y", 3));
        const float *xs[4];
        float *dxs[4];
        char name[16];
        for (int p = 0; p < parts; p++) {
            xs[p] = get(&c, part(name, "x", p));
            dxs[p] = zeros_like(&c, name);
        }
        float *y = zeros_like(&c, "y");
        be->concat_forward(n, hw, parts, chans, xs, y);
        compare(&c, "y", y, 0);
        be->concat_backward(n, hw, parts, chans, get(&c, "dy"), dxs);
        for (int p = 0; p < parts; p++) {
            compare(&c, part(name, "dx", p), dxs[p], 1);
            mem_free(dxs[p]);
        }
        mem_free(y);
        case_close(&c, &rc);
    }
    report(&rc);

    OpReport rs = {.op = "split"};
    for (int i = 0; i < n_cases("split"); i++) {
        Case c;
        case_open(&c, "split", i);
        int parts = iattr(&c, "parts");
        assert_true(parts <= 4);
        const int *chans = load(&c, "channels", 1)->data;
        int n = (int)dim(&c, "x", 0);
        int hw = (int)(dim(&c, "x", 2) * dim(&c, "x", 3));
        float *ys[4];
        const float *dys[4];
        char name[16];
        for (int p = 0; p < parts; p++) {
            ys[p] = zeros_like(&c, part(name, "y", p));
            dys[p] = get(&c, part(name, "dy", p));
        }
        float *dx = zeros_like(&c, "x");
        be->split_forward(n, hw, parts, chans, get(&c, "x"), ys);
        for (int p = 0; p < parts; p++) {
            compare(&c, part(name, "y", p), ys[p], 0);
            mem_free(ys[p]);
        }
        be->split_backward(n, hw, parts, chans, dys, dx);
        compare(&c, "dx", dx, 1);
        mem_free(dx);
        case_close(&c, &rs);
    }
    report(&rs);
}

static void test_shuffle(void **state)
{
    (void)state;
    OpReport r = {.op = "channel_shuffle"};
    for (int i = 0; i < n_cases("shuffle"); i++) {
        Case c;
        case_open(&c, "shuffle", i);
        int n = (int)dim(&c, "x", 0), ch = (int)dim(&c, "x", 1);
        int hw = (int)(dim(&c, "x", 2) * dim(&c, "x", 3));
        int groups = iattr(&c, "groups");
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        be->shuffle_forward(n, ch, hw, groups, get(&c, "x"), y);
        compare(&c, "y", y, 0);
        be->shuffle_backward(n, ch, hw, groups, get(&c, "dy"), dx);
        compare(&c, "dx", dx, 1);
        mem_free(y);
        mem_free(dx);
        case_close(&c, &r);
    }
    report(&r);
}

static NnDropout dropout_desc(Case *c)
{
    return (NnDropout){(float)attr(c, "p"), (uint64_t)attr(c, "seed"), (uint64_t)attr(c, "step"),
                       (uint32_t)attr(c, "op"), 0};
}

static void test_dropout(void **state)
{
    (void)state;
    OpReport r = {.op = "dropout"};
    for (int i = 0; i < n_cases("dropout"); i++) {
        Case c;
        case_open(&c, "dropout", i);
        NnDropout d = dropout_desc(&c);
        size_t n = numel(&c, "x");
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        be->dropout_forward(&d, n, get(&c, "x"), y);
        compare(&c, "y", y, 0);
        be->dropout_backward(&d, n, get(&c, "dy"), dx);
        compare(&c, "dx", dx, 1);
        mem_free(y);
        mem_free(dx);
        case_close(&c, &r);
    }
    report(&r);

    OpReport rs = {.op = "stochastic_depth"};
    for (int i = 0; i < n_cases("stochastic_depth"); i++) {
        Case c;
        case_open(&c, "stochastic_depth", i);
        NnDropout d = dropout_desc(&c);
        int n = (int)dim(&c, "x", 0);
        size_t per = numel(&c, "x") / (size_t)n;
        float *y = zeros_like(&c, "y");
        float *dx = zeros_like(&c, "x");
        be->stochastic_depth_forward(&d, n, per, get(&c, "x"), y);
        compare(&c, "y", y, 0);
        be->stochastic_depth_backward(&d, n, per, get(&c, "dy"), dx);
        compare(&c, "dx", dx, 1);
        mem_free(y);
        mem_free(dx);
        case_close(&c, &rs);
    }
    report(&rs);
}

static void test_xent(void **state)
{
    (void)state;
    OpReport r = {.op = "cross_entropy"};
    for (int i = 0; i < n_cases("xent"); i++) {
        Case c;
        case_open(&c, "xent", i);
        NnXent x = {(int)dim(&c, "logits", 0), (int)dim(&c, "logits", 1),
                    (float)attr(&c, "smoothing")};
        const int *target = load(&c, "target", 1)->data;
        const float *weight = iattr(&c, "weighted") ? get(&c, "weight") : NULL;
        assert_int_equal(has(&c, "weight"), weight != NULL);
        Err e = {0};
        assert_int_equal(nn_xent_setup(&x, target, &e), 0);
        float *probs = zeros_like(&c, "logits");
        float *dz = zeros_like(&c, "logits");
        float loss = be->xent_forward(&x, get(&c, "logits"), target, weight, probs);
        compare(&c, "loss", &loss, 0);
        be->xent_backward(&x, probs, target, weight, (float)attr(&c, "dloss"), dz);
        compare(&c, "dlogits", dz, 1);
        mem_free(probs);
        mem_free(dz);
        case_close(&c, &r);
    }
    report(&r);
}

// ---------------------------------------------------------------------------------------------
// Optimizers: a store with "w" (decayed) and "b" (not), five steps through nn_optim_step

static void run_optimizer(const char *op, NnOptim (*make)(Case *c))
{
    OpReport r = {.op = op};
    for (int i = 0; i < n_cases(op); i++) {
        Case c;
        case_open(&c, op, i);
        NnOptim o = make(&c);
        ParamStore s;
        Err e = {0};
        const int wshape[2] = {(int)dim(&c, "w0", 0), (int)dim(&c, "w0", 1)};
        const int bshape[1] = {(int)dim(&c, "b0", 0)};
        size_t nw = numel(&c, "w0"), nb = numel(&c, "b0");
        nn_store_init(&s);
        assert_int_equal(nn_store_add(&s, NN_PARAM, "w", 2, wshape, 1, &e), 0);
        assert_int_equal(nn_store_add(&s, NN_PARAM, "b", 1, bshape, 0, &e), 0);
        assert_int_equal(nn_store_alloc(&s, nn_optim_moments(&o), &e), 0);
        memcpy(nn_store_param(&s, 0), get(&c, "w0"), nw * sizeof(float));
        memcpy(nn_store_param(&s, 1), get(&c, "b0"), nb * sizeof(float));
        int steps = iattr(&c, "steps");
        for (int t = 0; t < steps; t++) {
            memcpy(nn_store_grad(&s, 0), get(&c, "grad_w") + t * nw, nw * sizeof(float));
            memcpy(nn_store_grad(&s, 1), get(&c, "grad_b") + t * nb, nb * sizeof(float));
            assert_int_equal(nn_optim_step(be, &o, &s, t + 1, &e), 0);
            /* row t of the trajectories: the parameters after step t + 1 */
            char label[32];
            snprintf(label, sizeof label, "traj_w[step %d]", t + 1);
            compare_values(&c, label, nn_store_param(&s, 0), get(&c, "traj_w") + t * nw, nw, 0);
            snprintf(label, sizeof label, "traj_b[step %d]", t + 1);
            compare_values(&c, label, nn_store_param(&s, 1), get(&c, "traj_b") + t * nb, nb, 0);
        }
        nn_store_free(&s);
        case_close(&c, &r);
    }
    report(&r);
}

static NnOptim make_adamw(Case *c)
{
    return (NnOptim){.kind = NN_ADAMW,
                     .adamw = {attr(c, "lr"), attr(c, "beta1"), attr(c, "beta2"), attr(c, "eps"),
                               attr(c, "weight_decay")}};
}

static NnOptim make_sgd(Case *c)
{
    return (NnOptim){
        .kind = NN_SGD,
        .sgd = {attr(c, "lr"), attr(c, "momentum"), attr(c, "weight_decay"), iattr(c, "nesterov")}};
}

static NnOptim make_rmsprop(Case *c)
{
    return (NnOptim){.kind = NN_RMSPROP,
                     .rmsprop = {attr(c, "lr"), attr(c, "alpha"), attr(c, "eps"),
                                 attr(c, "weight_decay"), attr(c, "momentum")}};
}

static void test_adamw(void **state)
{
    (void)state;
    run_optimizer("adamw", make_adamw);
}

static void test_sgd(void **state)
{
    (void)state;
    run_optimizer("sgd", make_sgd);
}

static void test_rmsprop(void **state)
{
    (void)state;
    run_optimizer("rmsprop", make_rmsprop);
}

/* The helpers' error paths: a missing file, dataset and attribute are errors with names. */
static void test_h5_errors(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    Err e = {0};
    hid_t f;
    assert_int_equal(h5_open_read("/nonexistent/ops.h5", &f, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/ops.h5"));
    char path[4096];
    const char *root = getenv("ONFH_ROOT");
    snprintf(path, sizeof path, "%s/tools/golden_ops.py", root ? root : ".");
    assert_int_equal(h5_open_read(path, &f, &e), ERR_FORMAT);
    assert_non_null(strstr(e.msg, "not an HDF5 file"));
    H5Array a;
    assert_int_equal(h5_read_float(file, "/conv/c0/nothing", &a, &e), ERR_FORMAT);
    assert_non_null(strstr(e.msg, "/conv/c0/nothing"));
    assert_int_equal(h5_read_float(file, "/nogroup/c0/x", &a, &e), ERR_FORMAT);
    assert_int_equal(h5_read_float(file, "/xent/c0/target", &a, &e), ERR_FORMAT); /* integer */
    double v;
    assert_int_equal(h5_attr_double(file, "/conv/c0", "nothing", &v, &e), ERR_FORMAT);
    assert_non_null(strstr(e.msg, "nothing"));
    long l;
    assert_int_equal(h5_attr_long(file, "/conv/c0", "groups", &l, &e), 0);
    assert_int_equal(l, 1);
    char s[4];
    assert_int_equal(h5_attr_string(file, "/act/c2", "kind", s, sizeof s, &e), ERR_FORMAT);
    assert_int_equal(h5_read_float(file, "/conv/c0/x", &a, &e), 0);
    assert_int_equal(a.ndim, 4);
    mem_fail_at(1);
    H5Array b;
    assert_int_equal(h5_read_float(file, "/conv/c0/x", &b, &e), ERR_NOMEM);
    mem_fail_at(0);
    h5_array_free(&a);
    assert_int_equal(mem_bytes_in_use(), base);
}

static int open_fixture(void **state)
{
    (void)state;
    char path[4096];
    const char *root = getenv("ONFH_ROOT");
    snprintf(path, sizeof path, "%s/tests/fixtures/nn/ops.h5", root ? root : ".");
    Err e = {0};
    if (h5_open_read(path, &file, &e)) {
        fprintf(stderr, "%s (run from the repository root, or set ONFH_ROOT)\n", e.msg);
        return -1;
    }
    be = nn_backend_ref();
    return 0;
}

static int close_fixture(void **state)
{
    (void)state;
    h5_close(file);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),         cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_activations),  cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_avgpool),      cmocka_unit_test(test_adaptive_avgpool),
        cmocka_unit_test(test_linear),       cmocka_unit_test(test_add_and_chanmul),
        cmocka_unit_test(test_concat_split), cmocka_unit_test(test_shuffle),
        cmocka_unit_test(test_dropout),      cmocka_unit_test(test_xent),
        cmocka_unit_test(test_adamw),        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_rmsprop),      cmocka_unit_test(test_h5_errors),
    };
    return cmocka_run_group_tests(tests, open_fixture, close_fixture);
}
