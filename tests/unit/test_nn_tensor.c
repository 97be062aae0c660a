/* test_nn_tensor.c: tensors and the flat parameter store (lib/nn/tensor.c), and the store-wide
 * optimizer loop's checks (lib/nn/optimizer.c).
 *
 * The store is checked for its layout promises (state_dict names, aligned non-overlapping
 * views, buffers and counters kept apart, one-loop zeroing) and for clean unwinding: every
 * allocation of a store's construction is made to fail in turn, and each failure must come
 * back as ERR_NOMEM with no byte leaked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/nn/optimizer.h"
#include "lib/nn/tensor.h"
#include "lib/util/mem.h"

static void test_tensor_views_and_alloc(void **state)
{
    (void)state;
    float data[24];
    Tensor v = nn_tensor4(data, 1, 2, 3, 4);
    assert_ptr_equal(v.data, data);
    assert_int_equal(v.ndim, 4);
    assert_int_equal(nn_numel(&v), 24);
    Tensor s = nn_tensor(data, 0, NULL);
    assert_int_equal(nn_numel(&s), 1); /* a scalar */

    size_t base = mem_bytes_in_use();
    Err e = {0};
    Tensor t;
    const int shape[3] = {3, 5, 7};
    assert_int_equal(nn_tensor_alloc(&t, 3, shape, &e), 0);
    assert_int_equal(nn_numel(&t), 105);
    for (size_t i = 0; i < nn_numel(&t); i++)
        assert_true(t.data[i] == 0.0f);
    nn_tensor_free(&t);
    assert_null(t.data);
    assert_int_equal(mem_bytes_in_use(), base);

    const int bad[2] = {3, 0};
    assert_int_equal(nn_tensor_alloc(&t, 2, bad, &e), ERR_INTERNAL);
    mem_fail_at(1);
    assert_int_equal(nn_tensor_alloc(&t, 3, shape, &e), ERR_NOMEM);
    mem_fail_at(0);
    assert_int_equal(mem_bytes_in_use(), base);
}

/* The tensors of torchvision's "features.0" Conv2dNormActivation: conv weight, then BN. */
static int add_conv_bn(ParamStore *s, Err *e)
{
    const int w[4] = {16, 3, 3, 3};
    const int c[1] = {16};
    int rc = nn_store_add(s, NN_PARAM, "features.0.0.weight", 4, w, 1, e);
    if (!rc)
        rc = nn_store_add(s, NN_PARAM, "features.0.1.weight", 1, c, 0, e);
    if (!rc)
        rc = nn_store_add(s, NN_PARAM, "features.0.1.bias", 1, c, 0, e);
    if (!rc)
        rc = nn_store_add(s, NN_BUFFER, "features.0.1.running_mean", 1, c, 0, e);
    if (!rc)
        rc = nn_store_add(s, NN_BUFFER, "features.0.1.running_var", 1, c, 0, e);
    if (!rc)
        rc = nn_store_add(s, NN_COUNTER, "features.0.1.num_batches_tracked", 0, NULL, 0, e);
    return rc;
}

static void test_store_layout(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    Err e = {0};
    ParamStore s;
    nn_store_init(&s);
    assert_int_equal(add_conv_bn(&s, &e), 0);
    const int lin[2] = {2, 5};
    assert_int_equal(nn_store_add(&s, NN_PARAM, "classifier.weight", 2, lin, 1, &e), 0);
    assert_int_equal(nn_store_add(&s, NN_PARAM, "classifier.weight", 2, lin, 1, &e), ERR_INTERNAL);
    assert_non_null(strstr(e.msg, "added twice"));
    assert_int_equal(nn_store_alloc(&s, 2, &e), 0);
    assert_int_equal(nn_store_add(&s, NN_PARAM, "late", 2, lin, 1, &e), ERR_INTERNAL);

    assert_int_equal(s.n_views, 7);
    assert_int_equal(nn_store_param_count(&s), 432 + 16 + 16 + 10);
    assert_int_equal(nn_store_find(&s, "features.0.1.bias"), 2);
    assert_int_equal(nn_store_find(&s, "features.0.1.num_batches_tracked"), 5);
    assert_int_equal(nn_store_find(&s, "features.0.2.weight"), -1);
    assert_int_equal(s.n_buffer, 32);
    assert_int_equal(s.n_counter, 1);

    /* parameter views are 16-float aligned, in order, and do not overlap */
    size_t end = 0;
    for (int i = 0; i < s.n_views; i++) {
        const NnView *v = &s.views[i];
        if (v->kind != NN_PARAM)
            continue;
        assert_int_equal(v->offset % 16, 0);
        assert_true(v->offset >= end);
        end = v->offset + v->numel;
        assert_true(end <= s.n_param);
    }
    assert_int_equal(s.views[0].decay, 1);
    assert_int_equal(s.views[1].decay, 0);
    assert_int_equal(s.views[3].decay, 0); /* buffers never decay */

    /* views address the right memory: fill each with its index, read back */
    for (int i = 0; i < s.n_views; i++) {
        const NnView *v = &s.views[i];
        for (size_t j = 0; j < v->numel; j++) {
            if (v->kind == NN_PARAM) {
                nn_store_param(&s, i)[j] = (float)i;
                nn_store_grad(&s, i)[j] = (float)i + 0.5f;
                nn_store_moment(&s, 1, i)[j] = (float)-i;
            } else if (v->kind == NN_BUFFER) {
                nn_store_buffer(&s, i)[j] = (float)i;
            } else {
                nn_store_counter(&s, i)[j] = 1000 + i;
            }
        }
    }
    for (int i = 0; i < s.n_views; i++) {
        const NnView *v = &s.views[i];
        if (v->kind == NN_COUNTER) {
            assert_int_equal(*nn_store_counter(&s, i), 1000 + i);
            continue;
        }
        Tensor t = nn_store_tensor(&s, i);
        assert_int_equal(t.ndim, v->ndim);
        assert_int_equal(nn_numel(&t), v->numel);
        for (size_t j = 0; j < v->numel; j++)
            assert_true(t.data[j] == (float)i);
        if (v->kind == NN_PARAM) {
            Tensor g = nn_store_grad_tensor(&s, i);
            assert_true(g.data[v->numel - 1] == (float)i + 0.5f);
            assert_true(nn_store_moment(&s, 1, i)[0] == (float)-i);
        }
    }
    Tensor w = nn_store_tensor(&s, 0);
    assert_int_equal(w.shape[0], 16);
    assert_int_equal(w.shape[3], 3);

    nn_store_zero_grads(&s);
    for (size_t j = 0; j < s.n_param; j++)
        assert_true(s.grads[j] == 0.0f);
    assert_true(nn_store_param(&s, 6)[0] == 6.0f); /* params untouched */

    nn_store_free(&s);
    assert_int_equal(s.n_views, 0);
    nn_store_free(&s); /* twice is harmless */
    assert_int_equal(mem_bytes_in_use(), base);
}

static void test_store_rejects_bad_declarations(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    Err e = {0};
    ParamStore s;
    nn_store_init(&s);
    const int zero[1] = {0};
    const int five[5] = {1, 1, 1, 1, 1};
    assert_int_equal(nn_store_add(&s, NN_PARAM, "a", 1, zero, 1, &e), ERR_INTERNAL);
    assert_int_equal(nn_store_add(&s, NN_PARAM, "b", 5, five, 1, &e), ERR_INTERNAL);
    assert_int_equal(nn_store_add(&s, NN_PARAM, "", 1, five, 1, &e), ERR_INTERNAL);
    assert_int_equal(nn_store_add(&s, 9, "c", 1, five, 1, &e), ERR_INTERNAL);
    char long_name[NN_NAME_MAX + 1];
    memset(long_name, 'x', NN_NAME_MAX);
    long_name[NN_NAME_MAX] = '\0';
    assert_int_equal(nn_store_add(&s, NN_PARAM, long_name, 1, five, 1, &e), ERR_INTERNAL);
    assert_int_equal(nn_store_alloc(&s, NN_MAX_MOMENTS + 1, &e), ERR_INTERNAL);
    assert_int_equal(s.n_views, 0);
    nn_store_free(&s);
    assert_int_equal(mem_bytes_in_use(), base);
}

/* A store as a model builder makes one: many views (the table grows), then the buffers. */
static int build_store(ParamStore *s, Err *e)
{
    nn_store_init(s);
    int rc = 0;
    for (int layer = 0; layer < 30 && !rc; layer++) {
        char name[64];
        const int w[4] = {8, 4, 3, 3};
        snprintf(name, sizeof name, "features.%d.0.weight", layer + 1);
        rc = nn_store_add(s, NN_PARAM, name, 4, w, 1, e);
    }
    if (!rc)
        rc = add_conv_bn(s, e);
    if (!rc)
        rc = nn_store_alloc(s, 2, e);
    if (rc)
        nn_store_free(s);
    return rc;
}

static void test_store_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    size_t base = mem_bytes_in_use();
    size_t before = mem_allocations();
    ParamStore s;
    Err e = {0};
    assert_int_equal(build_store(&s, &e), 0);
    size_t needed = mem_allocations() - before;
    nn_store_free(&s);
    assert_int_equal(mem_bytes_in_use(), base);
    assert_true(needed > 36); /* names, the growing table, six buffers */

    for (size_t n = 1; n <= needed; n++) {
        e = (Err){0};
        mem_fail_at((long)n);
        int rc = build_store(&s, &e);
        mem_fail_at(0);
        assert_int_equal(rc, ERR_NOMEM);
        assert_int_equal(e.code, ERR_NOMEM);
        assert_non_null(strstr(e.msg, "out of memory"));
        assert_null(s.params);
        assert_int_equal(mem_bytes_in_use(), base);
    }
}

static void test_optim_needs_moments(void **state)
{
    (void)state;
    Err e = {0};
    ParamStore s;
    nn_store_init(&s);
    const int shape[1] = {3};
    assert_int_equal(nn_store_add(&s, NN_PARAM, "w", 1, shape, 1, &e), 0);
    assert_int_equal(nn_store_alloc(&s, 1, &e), 0);
    NnOptim adamw = {.kind = NN_ADAMW, .adamw = {1e-3, 0.9, 0.999, 1e-8, 0.01}};
    NnOptim sgd = {.kind = NN_SGD, .sgd = {0.1, 0.9, 0.0, 0}};
    NnOptim plain = {.kind = NN_SGD, .sgd = {0.1, 0.0, 0.0, 0}};
    NnOptim rms = {.kind = NN_RMSPROP, .rmsprop = {0.01, 0.9, 0.0316, 0.0, 0.9}};
    assert_int_equal(nn_optim_moments(&adamw), 2);
    assert_int_equal(nn_optim_moments(&sgd), 1);
    assert_int_equal(nn_optim_moments(&plain), 0);
    assert_int_equal(nn_optim_moments(&rms), 2);
    const NnBackend *be = nn_backend_ref();
    assert_int_equal(nn_optim_step(be, &adamw, &s, 1, &e), ERR_INTERNAL);
    assert_int_equal(nn_optim_step(be, &sgd, &s, 0, &e), ERR_INTERNAL);
    nn_store_grad(&s, 0)[0] = 1.0f;
    assert_int_equal(nn_optim_step(be, &sgd, &s, 1, &e), 0);
    assert_true(nn_store_param(&s, 0)[0] == -0.1f);
    nn_store_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tensor_views_and_alloc),
        cmocka_unit_test(test_store_layout),
        cmocka_unit_test(test_store_rejects_bad_declarations),
        cmocka_unit_test(test_store_fails_cleanly_at_every_allocation),
        cmocka_unit_test(test_optim_needs_moments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
