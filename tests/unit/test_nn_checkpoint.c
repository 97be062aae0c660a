/* test_nn_checkpoint.c: HDF5 checkpoints round-trip exactly, are byte-reproducible, and refuse
 * what does not fit with a message naming the tensor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/nn/checkpoint.h"
#include "lib/nn/models/models.h"
#include "lib/util/fileio.h"
#include "lib/util/mem.h"

static char dir[512];

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("ONFH_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/ckpt.%ld", tmp ? tmp : "/tmp", (long)getpid());
    Err e = {0};
    return dir_create(dir, &e);
}

static int teardown(void **state)
{
    (void)state;
    Err e = {0};
    dir_remove_tree(dir, &e);
    return 0;
}

static void build(NnGraph *g, const char *model, int classes, int moments)
{
    Err e = {0};
    if (nn_model_graph(g, nn_backend_ref(), model, 1, 3, 32, 32, classes, 0, moments, &e))
        fail_msg("%s", e.msg);
}

static NnCheckpointInfo sample_info(const char *model, int classes)
{
    NnCheckpointInfo info = {
        .classes = classes,
        .in_channels = 3,
        .image_size = 32,
        .step = 1234,
        .best_val_loss = 0.25,
        .best_epoch = 3,
        .stale_epochs = 2,
        .epoch = 7,
        .data_position = 96,
        .seed = 0xFEDCBA9876543210ull,
        .has_optim = 1,
        .optim = {.kind = NN_RMSPROP, .rmsprop = {0.064, 0.9, 0.0316, 1e-5, 0.9}}};
    snprintf(info.model, sizeof info.model, "%s", model);
    snprintf(info.producer, sizeof info.producer, "test_nn_checkpoint");
    snprintf(info.config_sha256, sizeof info.config_sha256, "%064d", 7);
    return info;
}

static void fill(NnGraph *g)
{
    nn_graph_init_params(g, 99);
    ParamStore *s = &g->store;
    for (size_t i = 0; i < s->n_param; i++)
        s->moments[0][i] = (float)i * 0.5f, s->moments[1][i] = -(float)i;
    for (size_t i = 0; i < s->n_buffer; i++)
        s->buffers[i] = (float)i / 3.0f;
    for (size_t i = 0; i < s->n_counter; i++)
        s->counters[i] = (int64_t)i + 5000000000ll;
}

static void test_round_trip(void **state)
{
    (void)state;
    NnGraph a, b;
    build(&a, "mobilenet_v3_small", 2, 2);
    build(&b, "mobilenet_v3_small", 2, 2);
    fill(&a);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/a.h5", dir);
    snprintf(p2, sizeof p2, "%s/b.h5", dir);
    NnCheckpointInfo info = sample_info("mobilenet_v3_small", 2), got;
    Err e = {0};
    if (nn_checkpoint_save(p1, &a.store, &info, &e))
        fail_msg("%s", e.msg);
    if (nn_checkpoint_load(p1, &b.store, &got, 0, NULL, &e))
        fail_msg("%s", e.msg);
    ParamStore *x = &a.store, *y = &b.store;
    assert_memory_equal(x->params, y->params, x->n_param * sizeof(float));
    assert_memory_equal(x->buffers, y->buffers, x->n_buffer * sizeof(float));
    assert_memory_equal(x->counters, y->counters, x->n_counter * sizeof(int64_t));
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < x->n_views; i++)
            if (x->views[i].kind == NN_PARAM)
                assert_memory_equal(nn_store_moment(x, k, i), nn_store_moment(y, k, i),
                                    x->views[i].numel * sizeof(float));
    assert_string_equal(got.model, "mobilenet_v3_small");
    assert_int_equal(got.step, 1234);
    assert_int_equal(got.epoch, 7);
    assert_int_equal(got.data_position, 96);
    assert_true(got.best_val_loss == 0.25 && got.best_epoch == 3 && got.stale_epochs == 2);
    assert_true(got.seed == 0xFEDCBA9876543210ull);
    assert_int_equal(got.optim.kind, NN_RMSPROP);
    assert_true(got.optim.rmsprop.eps == 0.0316 && got.optim.rmsprop.momentum == 0.9);
    /* the same state gives the same bytes */
    if (nn_checkpoint_save(p2, &b.store, &info, &e))
        fail_msg("%s", e.msg);
    size_t n1, n2;
    char *f1, *f2;
    assert_int_equal(file_read_all(p1, &f1, &n1, &e), 0);
    assert_int_equal(file_read_all(p2, &f2, &n2, &e), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(f1, f2, n1);
    mem_free(f1);
    mem_free(f2);
    nn_graph_free(&a);
    nn_graph_free(&b);
}

static void test_refusals(void **state)
{
    (void)state;
    NnGraph big, small, other;
    build(&big, "mobilenet_v3_small", 1000, 0);
    build(&small, "mobilenet_v3_small", 2, 0);
    build(&other, "mobilenet_v3_large", 2, 0);
    nn_graph_init_params(&big, 1);
    char p[600];
    snprintf(p, sizeof p, "%s/imagenet.h5", dir);
    NnCheckpointInfo info = sample_info("mobilenet_v3_small", 1000), got;
    info.has_optim = 0;
    Err e = {0};
    if (nn_checkpoint_save(p, &big.store, &info, &e))
        fail_msg("%s", e.msg);
    /* a 1000-class head into a 2-class model: refused, naming the tensor and both shapes */
    assert_int_not_equal(nn_checkpoint_load(p, &small.store, &got, 0, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "classifier.3.weight"));
    assert_non_null(strstr(e.msg, "1000x1024"));
    /* unless the caller keeps its own head */
    int skipped = 0;
    memset(&e, 0, sizeof e);
    assert_int_equal(nn_checkpoint_load(p, &small.store, &got, NN_CKPT_NEW_HEAD, &skipped, &e), 0);
    assert_int_equal(skipped, 2);
    int k = nn_store_find(&small.store, "features.0.0.weight");
    assert_memory_equal(
        nn_store_param(&small.store, k),
        nn_store_param(&big.store, nn_store_find(&big.store, "features.0.0.weight")),
        small.store.views[k].numel * sizeof(float));
    /* another architecture */
    memset(&e, 0, sizeof e);
    assert_int_not_equal(nn_checkpoint_load(p, &other.store, &got, NN_CKPT_NEW_HEAD, NULL, &e), 0);
    assert_non_null(strstr(e.msg, "does not have"));
    /* not a checkpoint, and no file */
    char q[600];
    snprintf(q, sizeof q, "%s/junk.h5", dir);
    assert_int_equal(file_write_atomic(q, "junk", 4, &e), 0);
    memset(&e, 0, sizeof e);
    assert_int_not_equal(nn_checkpoint_info(q, &got, &e), 0);
    assert_non_null(strstr(e.msg, "junk.h5"));
    snprintf(q, sizeof q, "%s/none.h5", dir);
    memset(&e, 0, sizeof e);
    assert_int_not_equal(nn_checkpoint_info(q, &got, &e), 0);
    assert_non_null(strstr(e.msg, "none.h5"));
    /* a save into a directory that does not exist fails cleanly and leaves nothing */
    snprintf(q, sizeof q, "%s/no/such/dir/c.h5", dir);
    memset(&e, 0, sizeof e);
    assert_int_not_equal(nn_checkpoint_save(q, &small.store, &info, &e), 0);
    assert_non_null(strstr(e.msg, "c.h5"));
    nn_graph_free(&big);
    nn_graph_free(&small);
    nn_graph_free(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
