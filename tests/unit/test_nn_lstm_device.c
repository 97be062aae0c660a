/* test_nn_lstm_device.c: the LSTM (lib/nn/lstm.h) on a device backend against the host loop on
 * ref, with the same weights and batches.
 *
 *   test_nn_lstm_device [BACKEND]     BACKEND: argv[1], else $ONFH_TEST_BACKEND, else refdev
 *
 * refdev runs the device path (the replica of the store, the batch's uploads and downloads, the
 * head on the backend's memory, the (L,N,H) final states) around the host loop itself, so
 * every result must equal ref's to the bit: this checks the path's transfers and layouts on
 * CPUs. cuda runs the cuDNN core (lib/nn/cuda/lstm_cudnn.cu): fp32 summed in other orders, so
 * errors are judged relative to the largest reference value of each tensor (|got - ref| <=
 * tol max|ref|, test_nn_backend's rule) with the tolerances below. Its dropout masks are
 * cuDNN's, not Philox's: with dropout, cuda is compared in evaluation only (dropout off, then
 * backward, as the golden cases do), and test_dropout_runs checks that training with dropout
 * runs, is finite, and drops something.
 *
 * Compared, for 1 and 2 layers, on sequences of unequal lengths (1 and T among them, unsorted,
 * NaN in the padding) and on two batch shapes per model (the buffers grow): top-layer outputs,
 * logits, loss, every parameter gradient and the input gradient; that a second backward adds
 * the same again (the accumulate contract); evaluation logits; and 5 SGD steps with momentum
 * through nn_lstm_zero_grads and nn_lstm_step on the replica.
 *
 * A backend this build or machine cannot provide (cuda without CUDA or without a GPU) is a
 * skip, not a failure: the program prints TAP's "1..0 # SKIP" with the reason and exits 0. */
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
#include "lib/nn/lstm.h"
#include "lib/nn/optimizer.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

/* Tolerances relative to max|ref| of each tensor. cuda: cuDNN's fp32 LSTM (FMA math, no TF32)
 * differs from the host loop by float rounding in other orders, ~1e-6 of max|ref| at these
 * sizes; TF32 (~1e-3) or a misplaced gate or bias fails by far. */
typedef struct Tol {
    const char *backend;
    double fwd;   /* outputs, logits, loss, parameters after SGD steps */
    double bwd;   /* gradients */
    double accum; /* a second backward against twice the first: never exact, since the
                     kernels add into the gradient in pieces (g + a + b is not 2g to the bit) */
} Tol;

static const Tol tolerances[] = {
    {"refdev", 0.0, 0.0, 1e-6},
    {"cuda", 2e-5, 1e-4, 1e-5},
    {NULL, 2e-5, 1e-4, 1e-5},
};

static const NnBackend *rf, *be; /* ref, and the backend under test */
static Tol tol;
static int philox_masks; /* be's dropout masks are the host loop's (refdev) */

enum { I = 3, H = 8, K = 3 };

/* Largest |got - want| over tol max|want|; fails above 1. tol 0: equal to the bit. */
static void compare(const char *what, const float *got, const float *want, size_t n, double t)
{
    double scale = 0.0, worst = 0.0;
    size_t at = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        int off = t == 0.0 ? memcmp(&got[i], &want[i], sizeof(float)) != 0 : !(d <= t * scale);
        double r = off ? INFINITY : t > 0.0 && scale > 0.0 ? d / (t * scale) : 0.0;
        if (r > worst || (off && !bad))
            worst = r, at = i;
        bad |= off;
    }
    if (bad) {
        fprintf(stderr, "%s[%zu]: %s %.9g, ref %.9g (max|ref| %.3g, tolerance %.0e of it)\n", what,
                at, be->name, got[at], want[at], scale, t);
        fail();
    }
    printf("# %-22s worst %.3f of tolerance (max|ref| %.3g)\n", what, worst, scale);
}

static void fill_uniform(float *p, size_t n, float scale, uint64_t stream)
{
    Philox r;
    philox_init(&r, 91, PHILOX_TEST, stream);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (2.0f * philox_uniformf(&r) - 1.0f);
}

/* The model on ref (a) and on be (b) with the same weights: drawn into a's store, copied into
 * b's and uploaded, as a checkpoint load does. */
static void make_pair(NnLstm *a, NnLstm *b, const NnLstmConfig *cfg, int n_moments)
{
    Err e = {0};
    assert_int_equal(nn_lstm_init(a, cfg, rf, n_moments, &e), 0);
    if (nn_lstm_init(b, cfg, be, n_moments, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    nn_lstm_init_weights(a, 21);
    memcpy(b->store.params, a->store.params, a->store.n_param * sizeof(float));
    nn_lstm_upload(b);
}

/* A batch of n sequences of t steps: lengths t, 1 and others unsorted; NaN past each length. */
static void make_batch(int n, int t, float *x, int *len, int *target, uint64_t stream)
{
    fill_uniform(x, (size_t)n * t * I, 1.5f, stream);
    for (int i = 0; i < n; i++) {
        len[i] = i == 0 ? t : i == 1 ? 1 : 1 + (5 * i + 2) % t;
        target[i] = (i + (int)stream) % K;
        for (int s = len[i]; s < t; s++)
            for (int k = 0; k < I; k++)
                x[((size_t)i * t + s) * I + k] = NAN;
    }
}

static void compare_grads(NnLstm *a, NnLstm *b, double scale_b, double t)
{
    char what[64];
    nn_lstm_download(b);
    for (int v = 0; v < a->store.n_views; v++) {
        size_t n = a->store.views[v].numel;
        float *want = mem_alloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++)
            want[j] = (float)(scale_b * nn_store_grad(&a->store, v)[j]);
        snprintf(what, sizeof what, "%sd %s", scale_b == 1.0 ? "" : "2x ", a->store.views[v].name);
        compare(what, nn_store_grad(&b->store, v), want, n, t);
        mem_free(want);
    }
}

/* Forward with a target, backward with dx, twice for the accumulate contract, then an
 * evaluation forward without a target; on two batch shapes. */
static void parity(const NnLstmConfig *cfg, int training)
{
    static const int shapes[2][2] = {{5, 6}, {9, 4}};
    NnLstm a, b;
    Err e = {0};
    make_pair(&a, &b, cfg, 0);
    printf("# layers %d, dropout %g, training %d\n", cfg->layers, cfg->dropout, training);
    for (int s = 0; s < 2; s++) {
        int n = shapes[s][0], t = shapes[s][1], len[9], target[9];
        size_t nx = (size_t)n * t * I, ny = (size_t)n * t * H;
        float *x = mem_alloc(nx * sizeof(float)), *dxa = mem_calloc(nx, sizeof(float));
        float *dxb = mem_calloc(nx, sizeof(float)), *ya = mem_alloc(ny * sizeof(float));
        float *yb = mem_alloc(ny * sizeof(float)), la = 0.0f, lb = 0.0f;
        make_batch(n, t, x, len, target, (uint64_t)s);
        printf("# batch %d x %d\n", n, t);
        assert_int_equal(nn_lstm_forward(&a, n, t, x, len, target, training, 7, &la, &e), 0);
        if (nn_lstm_forward(&b, n, t, x, len, target, training, 7, &lb, &e)) {
            fprintf(stderr, "%s\n", e.msg);
            fail();
        }
        nn_lstm_outputs(&a, ya);
        nn_lstm_outputs(&b, yb);
        compare("outputs", yb, ya, ny, tol.fwd);
        compare("logits", b.logits, a.logits, (size_t)n * K, tol.fwd);
        compare("loss", &lb, &la, 1, tol.fwd);

        nn_lstm_zero_grads(&a);
        nn_lstm_zero_grads(&b);
        nn_lstm_backward(&a, dxa);
        nn_lstm_backward(&b, dxb);
        compare("dx", dxb, dxa, nx, tol.bwd);
        compare_grads(&a, &b, 1.0, tol.bwd);
        nn_lstm_backward(&b, NULL);
        compare_grads(&a, &b, 2.0, tol.accum);

        assert_int_equal(nn_lstm_forward(&a, n, t, x, len, NULL, 0, 0, NULL, &e), 0);
        assert_int_equal(nn_lstm_forward(&b, n, t, x, len, NULL, 0, 0, NULL, &e), 0);
        compare("eval logits", b.logits, a.logits, (size_t)n * K, tol.fwd);
        mem_free(x), mem_free(dxa), mem_free(dxb), mem_free(ya), mem_free(yb);
    }
    nn_lstm_free(&a);
    nn_lstm_free(&b);
}

static void test_one_layer(void **state)
{
    (void)state;
    NnLstmConfig cfg = {I, H, 1, K, 0.0f, 5};
    parity(&cfg, 1);
}

static void test_two_layers(void **state)
{
    (void)state;
    NnLstmConfig cfg = {I, H, 2, K, 0.0f, 5};
    parity(&cfg, 1);
}

/* Dropout between the layers: evaluation (dropout off, backward after it) everywhere; training
 * only where the masks are the host loop's. */
static void test_two_layers_dropout(void **state)
{
    (void)state;
    NnLstmConfig cfg = {I, H, 2, K, 0.3f, 5};
    parity(&cfg, 0);
    if (philox_masks)
        parity(&cfg, 1);
    else
        printf("# training with dropout not compared: %s's masks are not Philox's\n", be->name);
}

/* Training with dropout 0.5 runs, gives a finite loss and gradients, and drops something: its
 * logits differ from evaluation's. */
static void test_dropout_runs(void **state)
{
    (void)state;
    enum { N = 6, T = 5 };
    NnLstmConfig cfg = {I, H, 2, K, 0.5f, 5};
    NnLstm m;
    Err e = {0};
    float x[N * T * I], dx[N * T * I] = {0}, eval[N * K], loss = NAN;
    int len[N], target[N];
    if (nn_lstm_init(&m, &cfg, be, 0, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    nn_lstm_init_weights(&m, 8);
    make_batch(N, T, x, len, target, 3);
    assert_int_equal(nn_lstm_forward(&m, N, T, x, len, target, 0, 0, NULL, &e), 0);
    memcpy(eval, m.logits, sizeof eval);
    assert_int_equal(nn_lstm_forward(&m, N, T, x, len, target, 1, 3, &loss, &e), 0);
    assert_true(isfinite(loss) && loss > 0.0f);
    double moved = 0.0;
    for (int j = 0; j < N * K; j++)
        moved = fmax(moved, fabs(m.logits[j] - eval[j]));
    printf("# dropout 0.5: loss %.4f, largest logit change from evaluation %.3g\n", loss, moved);
    assert_true(moved > 1e-4);
    nn_lstm_zero_grads(&m);
    nn_lstm_backward(&m, dx);
    nn_lstm_download(&m);
    for (size_t j = 0; j < m.store.n_param; j++)
        assert_true(isfinite(m.store.grads[j]));
    for (int i = 0; i < N; i++)
        for (int k = 0; k < len[i] * I; k++)
            assert_true(isfinite(dx[i * T * I + k]));
    nn_lstm_free(&m);
}

/* 5 SGD steps (momentum 0.9) through the replica: the parameters follow ref's. */
static void test_sgd_steps(void **state)
{
    (void)state;
    enum { N = 7, T = 5 };
    NnLstmConfig cfg = {I, H, 2, K, 0.0f, 5};
    NnOptim opt = {.kind = NN_SGD, .sgd = {0.1, 0.9, 0.01, 0}};
    NnLstm a, b;
    Err e = {0};
    float x[N * T * I];
    int len[N], target[N];
    make_pair(&a, &b, &cfg, nn_optim_moments(&opt));
    make_batch(N, T, x, len, target, 4);
    for (long step = 1; step <= 5; step++) {
        NnLstm *m[2] = {&a, &b};
        for (int k = 0; k < 2; k++) {
            assert_int_equal(nn_lstm_forward(m[k], N, T, x, len, target, 1, step, NULL, &e), 0);
            nn_lstm_zero_grads(m[k]);
            nn_lstm_backward(m[k], NULL);
            assert_int_equal(nn_lstm_step(m[k], &opt, step, &e), 0);
        }
    }
    nn_lstm_download(&b);
    compare("params after SGD", b.store.params, a.store.params, a.store.n_param, tol.fwd);
    compare("momentum buffers", b.store.moments[0], a.store.moments[0], a.store.n_param, tol.bwd);
    nn_lstm_free(&a);
    nn_lstm_free(&b);
}

/* Backends that a build or a machine may lack: not obtaining them is a skip. */
static int optional_backend(const char *name)
{
    return !strcmp(name, "cuda") || !strcmp(name, "dnnl");
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : getenv("ONFH_TEST_BACKEND");
    if (!name || !*name)
        name = "refdev";
    Err e = {0};
    rf = nn_backend_ref();
    be = nn_backend_by_name(name, &e);
    if (!be) {
        if (!optional_backend(name)) {
            fprintf(stderr, "test_nn_lstm_device: %s\n", e.msg);
            return 2;
        }
        printf("1..0 # SKIP %s: %s\n", name, e.msg); /* TAP's skip-all */
        return 0;
    }
    for (const Tol *t = tolerances;; t++)
        if (!t->backend || !strcmp(t->backend, be->name)) {
            tol = *t;
            break;
        }
    philox_masks = strcmp(be->name, "cuda") != 0;
    printf("# backend %s (%s memory); tolerances fwd %.0e bwd %.0e accumulate %.0e\n", be->name,
           be->mem->device ? "device" : "host", tol.fwd, tol.bwd, tol.accum);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_layer),          cmocka_unit_test(test_two_layers),
        cmocka_unit_test(test_two_layers_dropout), cmocka_unit_test(test_dropout_runs),
        cmocka_unit_test(test_sgd_steps),
    };
    const char *only = getenv("ONFH_TEST_ONLY");
    if (only && *only)
        cmocka_set_test_filter(only);
    return _cmocka_run_group_tests(be->name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
