/* test_nn_lstm.c: the LSTM sequence classifier (lib/nn/lstm.h) against torch.nn.LSTM, against
 * finite differences, under AdamW, with missing visits, and on every host backend.
 *
 * tests/fixtures/nn/lstm.h5 (tools/golden_lstm.py, which documents it) holds three cases: one
 * layer; two layers; two layers with inter-layer dropout in training (onfh's mask rule), all
 * with sequences of unequal lengths. Each is run on the ref backend in float32 and compared:
 * top-layer outputs, logits and loss within 1e-5 relative or 1e-6 absolute; every parameter
 * gradient and the input gradient within 1e-4 relative or 1e-5 absolute. The largest error
 * of each, over its tolerance, is printed as a TAP comment. */
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
#include "lib/nn/lstm.h"
#include "lib/nn/optimizer.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

#define FWD_REL  1e-5
#define FWD_ABS  1e-6
#define GRAD_REL 1e-4
#define GRAD_ABS 1e-5

static hid_t file = -1;

static H5Array read_array(const char *group, const char *name, int integer)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", group, name);
    H5Array a = {0};
    Err e = {0};
    int rc = integer ? h5_read_int(file, path, &a, &e) : h5_read_float(file, path, &a, &e);
    if (rc) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    return a;
}

static int iattr(const char *group, const char *name)
{
    double v = 0.0;
    Err e = {0};
    assert_int_equal(h5_attr_double(file, group, name, &v, &e), 0);
    return (int)lround(v);
}

static double dattr(const char *group, const char *name)
{
    double v = 0.0;
    Err e = {0};
    assert_int_equal(h5_attr_double(file, group, name, &v, &e), 0);
    return v;
}

/* Largest |got - want| / (abs + rel |want|) over n values; fails above 1. */
static double compare(const char *what, const float *got, const float *want, size_t n, double rel,
                      double abs_tol)
{
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]) / (abs_tol + rel * fabs(want[i]));
        if (!(err <= worst)) {
            worst = err;
            at = i;
        }
    }
    if (!(worst <= 1.0)) {
        fprintf(stderr, "%s[%zu]: got %.9g, want %.9g (error %.3g of tolerance)\n", what, at,
                got[at], want[at], worst);
        fail();
    }
    return worst;
}

/* A golden case: config from attributes, weights by view name. */
static void load_case(const char *group, const NnBackend *be, NnLstm *m, H5Array *x, H5Array *len,
                      H5Array *target)
{
    NnLstmConfig cfg = {
        .input = iattr(group, "input"),
        .hidden = iattr(group, "hidden"),
        .layers = iattr(group, "layers"),
        .classes = iattr(group, "classes"),
        .dropout = (float)dattr(group, "dropout"),
        .seed = (uint64_t)dattr(group, "seed"),
    };
    Err e = {0};
    assert_int_equal(nn_lstm_init(m, &cfg, be, 0, &e), 0);
    for (int i = 0; i < m->store.n_views; i++) {
        char name[NN_NAME_MAX + 2];
        snprintf(name, sizeof name, "w.%s", m->store.views[i].name);
        H5Array w = read_array(group, name, 0);
        assert_int_equal(w.numel, m->store.views[i].numel);
        memcpy(nn_store_param(&m->store, i), w.data, w.numel * sizeof(float));
        h5_array_free(&w);
    }
    *x = read_array(group, "x", 0);
    *len = read_array(group, "len", 1);
    *target = read_array(group, "target", 1);
}

static void run_golden(const NnBackend *be)
{
    Err e = {0};
    char group[32];
    double n_cases = 0;
    assert_int_equal(h5_attr_double(file, "/lstm", "n_cases", &n_cases, &e), 0);
    assert_true(n_cases >= 3);
    for (int c = 0; c < (int)n_cases; c++) {
        snprintf(group, sizeof group, "/lstm/c%d", c);
        NnLstm m;
        H5Array x, len, target;
        load_case(group, be, &m, &x, &len, &target);
        int n = (int)x.dims[0], t = (int)x.dims[1], H = m.cfg.hidden;
        float loss = 0.0f;
        assert_int_equal(nn_lstm_forward(&m, n, t, x.data, len.data, target.data,
                                         iattr(group, "training"), (uint64_t)iattr(group, "step"),
                                         &loss, &e),
                         0);
        H5Array want_out = read_array(group, "out", 0),
                want_logits = read_array(group, "logits", 0);
        H5Array want_loss = read_array(group, "loss", 0), want_dx = read_array(group, "dx", 0);
        float *out = mem_alloc((size_t)n * t * H * sizeof(float));
        nn_lstm_outputs(&m, out);
        double wf = compare("out", out, want_out.data, want_out.numel, FWD_REL, FWD_ABS);
        double w2 =
            compare("logits", m.logits, want_logits.data, want_logits.numel, FWD_REL, FWD_ABS);
        double w3 = compare("loss", &loss, want_loss.data, 1, FWD_REL, FWD_ABS);
        wf = fmax(wf, fmax(w2, w3));

        nn_store_zero_grads(&m.store);
        float *dx = mem_calloc(x.numel, sizeof(float));
        nn_lstm_backward(&m, dx);
        double wg = compare("dx", dx, want_dx.data, want_dx.numel, GRAD_REL, GRAD_ABS);
        for (int i = 0; i < m.store.n_views; i++) {
            char name[NN_NAME_MAX + 2];
            snprintf(name, sizeof name, "g.%s", m.store.views[i].name);
            H5Array g = read_array(group, name, 0);
            assert_int_equal(g.numel, m.store.views[i].numel);
            wg = fmax(
                wg, compare(name, nn_store_grad(&m.store, i), g.data, g.numel, GRAD_REL, GRAD_ABS));
            h5_array_free(&g);
        }
        printf("# %s %s (layers %d, dropout %g): worst forward %.3f, gradient %.3f of "
               "tolerance\n",
               be->name, group, m.cfg.layers, m.cfg.dropout, wf, wg);
        mem_free(out);
        mem_free(dx);
        h5_array_free(&want_out);
        h5_array_free(&want_logits);
        h5_array_free(&want_loss);
        h5_array_free(&want_dx);
        h5_array_free(&x);
        h5_array_free(&len);
        h5_array_free(&target);
        nn_lstm_free(&m);
    }
}

static void test_golden_ref(void **state)
{
    (void)state;
    run_golden(nn_backend_ref());
}

/* Item 4 of the design: dnnl runs the same loop with oneDNN's matmuls; it must meet the same
 * goldens. Skipped (passes) where onfh was built without oneDNN. */
static void test_golden_dnnl(void **state)
{
    (void)state;
    Err e = {0};
    const NnBackend *be = nn_backend_by_name("dnnl", &e);
    if (!be) {
        printf("# dnnl: not built, skipped\n");
        return;
    }
    run_golden(be);
}

// ---------------------------------------------------------------------------------------------
// Finite differences on a tiny case: two layers with dropout in training, unequal lengths.

enum { FD_N = 3, FD_T = 4, FD_I = 3, FD_H = 3, FD_K = 3 };
static const int fd_len[FD_N] = {4, 2, 3};
static const int fd_target[FD_N] = {2, 0, 1};

static void fill_uniform(float *p, size_t n, float scale, uint64_t stream)
{
    Philox r;
    philox_init(&r, 77, PHILOX_TEST, stream);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (2.0f * philox_uniformf(&r) - 1.0f);
}

static double fd_loss(NnLstm *m, const float *x)
{
    float loss = 0.0f;
    Err e = {0};
    assert_int_equal(nn_lstm_forward(m, FD_N, FD_T, x, fd_len, fd_target, 1, 3, &loss, &e), 0);
    return loss;
}

/* Central differences of every element of p (n) against the analytic gradient g, judged
 * relative to the largest |g| (float32 forwards leave ~1e-7 / h absolute noise). */
static void fd_check(const char *what, NnLstm *m, float *p, const float *g, size_t n,
                     const float *x)
{
    const float h = 4e-3f;
    double gmax = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(g[i]));
    assert_true(gmax > 0.0);
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + h;
        double up = fd_loss(m, x), xu = p[i];
        p[i] = keep - h;
        double down = fd_loss(m, x), xd = p[i];
        p[i] = keep;
        double fd = (up - down) / (xu - xd);
        worst = fmax(worst, fabs(fd - g[i]) / gmax);
    }
    printf("# finite differences %s: worst error %.2e of max |grad| %.3g\n", what, worst, gmax);
    assert_true(worst < 1e-2);
}

static void test_finite_differences(void **state)
{
    (void)state;
    NnLstmConfig cfg = {FD_I, FD_H, 2, FD_K, 0.3f, 99};
    NnLstm m;
    Err e = {0};
    assert_int_equal(nn_lstm_init(&m, &cfg, nn_backend_ref(), 0, &e), 0);
    nn_lstm_init_weights(&m, 5);
    float x[FD_N * FD_T * FD_I], dx[FD_N * FD_T * FD_I] = {0};
    fill_uniform(x, FD_N * FD_T * FD_I, 1.5f, 1);
    fd_loss(&m, x);
    nn_store_zero_grads(&m.store);
    nn_lstm_backward(&m, dx);
    /* the analytic gradients, copied: the probes' forwards leave the store alone but keep
     * them apart from the next backward */
    float *g = mem_alloc(m.store.n_param * sizeof(float));
    memcpy(g, m.store.grads, m.store.n_param * sizeof(float));
    for (int i = 0; i < m.store.n_views; i++)
        fd_check(m.store.views[i].name, &m, nn_store_param(&m.store, i),
                 g + m.store.views[i].offset, m.store.views[i].numel, x);
    fd_check("x", &m, x, dx, FD_N * FD_T * FD_I, x);
    /* padded steps get no gradient */
    for (int i = 0; i < FD_N; i++)
        for (int t = fd_len[i]; t < FD_T; t++)
            for (int k = 0; k < FD_I; k++)
                assert_true(dx[(i * FD_T + t) * FD_I + k] == 0.0f);
    /* the accumulate contract: a second backward doubles every gradient */
    nn_lstm_backward(&m, NULL);
    for (size_t j = 0; j < m.store.n_param; j++)
        assert_true(fabsf(m.store.grads[j] - 2.0f * g[j]) <= 1e-6f * (1.0f + fabsf(g[j])));
    mem_free(g);
    nn_lstm_free(&m);
}

// ---------------------------------------------------------------------------------------------
// Training: AdamW on a learnable toy task must reduce the loss.

static void test_adamw_decreases_loss(void **state)
{
    (void)state;
    enum { N = 32, T = 6, I = 2 };
    NnLstmConfig cfg = {I, 8, 2, 2, 0.1f, 3};
    NnOptim opt = {.kind = NN_ADAMW, .adamw = {1e-2, 0.9, 0.999, 1e-8, 0.01}};
    NnLstm m;
    Err e = {0};
    const NnBackend *be = nn_backend_ref();
    assert_int_equal(nn_lstm_init(&m, &cfg, be, nn_optim_moments(&opt), &e), 0);
    nn_lstm_init_weights(&m, 11);
    /* class 1 when the mean of feature 0 over the valid steps is positive */
    float x[N * T * I];
    int len[N], target[N];
    fill_uniform(x, N * T * I, 1.0f, 2);
    for (int i = 0; i < N; i++) {
        len[i] = 2 + i % (T - 1);
        double s = 0.0;
        for (int t = 0; t < len[i]; t++)
            s += x[(i * T + t) * I];
        target[i] = s > 0.0;
    }
    float first = 0.0f, loss = 0.0f;
    for (int step = 1; step <= 60; step++) {
        assert_int_equal(nn_lstm_forward(&m, N, T, x, len, target, 1, step, &loss, &e), 0);
        if (step == 1)
            first = loss;
        nn_store_zero_grads(&m.store);
        nn_lstm_backward(&m, NULL);
        assert_int_equal(nn_optim_step(be, &opt, &m.store, step, &e), 0);
    }
    assert_int_equal(nn_lstm_forward(&m, N, T, x, len, target, 0, 0, &loss, &e), 0);
    printf("# AdamW 60 steps: loss %.4f -> %.4f\n", first, loss);
    assert_true(loss < 0.5f * first);
    nn_lstm_free(&m);
}

// ---------------------------------------------------------------------------------------------
// Missing visits: garbage where the mask says missing, and past each length, changes nothing.

static void test_masked_visits(void **state)
{
    (void)state;
    enum { N = 3, T = 5, F = 2, I = 2 * F + 1 };
    float values[N * T * F], mask[N * T * F], gap[N * T];
    int len[N] = {5, 3, 4}, target[N] = {1, 0, 1};
    fill_uniform(values, N * T * F, 2.0f, 3);
    for (int j = 0; j < N * T * F; j++)
        mask[j] = (j % 3 == 1) ? 0.0f : 1.0f;
    for (int j = 0; j < N * T; j++)
        gap[j] = 90.0f + 30.0f * (float)(j % 4);
    float garbage[N * T * F];
    memcpy(garbage, values, sizeof values);
    for (int j = 0; j < N * T * F; j++)
        if (mask[j] == 0.0f)
            garbage[j] = (j % 2) ? NAN : 1e30f;
    float xa[N * T * I], xb[N * T * I];
    nn_lstm_visit_inputs(N, T, F, values, mask, gap, xa);
    nn_lstm_visit_inputs(N, T, F, garbage, mask, gap, xb);
    for (int i = 0; i < N; i++) /* past the length: anything at all */
        for (int t = len[i]; t < T; t++)
            for (int k = 0; k < I; k++)
                xb[(i * T + t) * I + k] = NAN;
    assert_true(xa[I + 2 * F] == 120.0f / 365.25f); /* visit 1 of sample 0 */
    assert_true(xa[2 * F] == 0.0f);                 /* the first visit */

    NnLstmConfig cfg = {I, 4, 2, 2, 0.25f, 8};
    NnLstm a, b;
    Err e = {0};
    assert_int_equal(nn_lstm_init(&a, &cfg, nn_backend_ref(), 0, &e), 0);
    assert_int_equal(nn_lstm_init(&b, &cfg, nn_backend_ref(), 0, &e), 0);
    nn_lstm_init_weights(&a, 4);
    nn_lstm_init_weights(&b, 4);
    float la, lb, dxa[N * T * I] = {0}, dxb[N * T * I] = {0};
    assert_int_equal(nn_lstm_forward(&a, N, T, xa, len, target, 1, 2, &la, &e), 0);
    assert_int_equal(nn_lstm_forward(&b, N, T, xb, len, target, 1, 2, &lb, &e), 0);
    nn_lstm_backward(&a, dxa);
    nn_lstm_backward(&b, dxb);
    assert_memory_equal(a.logits, b.logits, N * 2 * sizeof(float));
    assert_memory_equal(a.store.grads, b.store.grads, a.store.n_param * sizeof(float));
    /* the test can fail: an observed value does matter */
    xb[0] += 0.5f;
    assert_int_equal(nn_lstm_forward(&b, N, T, xb, len, target, 1, 2, &lb, &e), 0);
    assert_true(memcmp(a.logits, b.logits, N * 2 * sizeof(float)) != 0);
    nn_lstm_free(&a);
    nn_lstm_free(&b);
}

static void test_errors(void **state)
{
    (void)state;
    NnLstm m;
    Err e = {0};
    NnLstmConfig bad = {3, 4, 3, 2, 0.0f, 0};
    assert_int_equal(nn_lstm_init(&m, &bad, nn_backend_ref(), 0, &e), ERR_CONFIG);
    NnLstmConfig cfg = {3, 4, 1, 2, 0.0f, 0};
    assert_int_equal(nn_lstm_init(&m, &cfg, nn_backend_ref(), 0, &e), 0);
    float x[2 * 3 * 3] = {0};
    int len[2] = {3, 0}, target[2] = {0, 1};
    assert_int_not_equal(nn_lstm_forward(&m, 2, 3, x, len, target, 0, 0, NULL, &e), 0);
    len[1] = 2;
    target[1] = 2;
    assert_int_not_equal(nn_lstm_forward(&m, 2, 3, x, len, target, 0, 0, NULL, &e), 0);
    nn_lstm_free(&m);
}

static int open_fixture(void **state)
{
    (void)state;
    char path[4096];
    const char *root = getenv("ONFH_ROOT");
    snprintf(path, sizeof path, "%s/tests/fixtures/nn/lstm.h5", root ? root : ".");
    Err e = {0};
    if (h5_open_read(path, &file, &e)) {
        fprintf(stderr, "%s (run from the repository root, or set ONFH_ROOT)\n", e.msg);
        return -1;
    }
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
        cmocka_unit_test(test_golden_ref),         cmocka_unit_test(test_golden_dnnl),
        cmocka_unit_test(test_finite_differences), cmocka_unit_test(test_adamw_decreases_loss),
        cmocka_unit_test(test_masked_visits),      cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, open_fixture, close_fixture);
}
