/* test_nn_nccl.c: the NCCL transport of lib/nn/comm (lib/nn/cuda/nccl.cu) on one GPU, without
 * MPI: a communicator of one rank opened from a unique id made in the same process.
 *
 * One rank is all one GPU allows (NCCL refuses two ranks of a communicator on one device), so
 * every sum and average is the identity, bit for bit. What this checks is the plumbing the
 * multi-GPU path runs through: the id and ncclCommInitRank; each reduction on NCCL's own stream
 * ordered after the work already queued on the compute stream (an upload just before it must be
 * what it reduces); join (the compute stream waits for the reductions: a copy queued after it
 * sees their result); sync (the host waits, polling for a peer's failure); many buckets in
 * flight over one 25 MiB gradient buffer, as comm.c starts them during backward; and a
 * communicator closed and opened again. The sums across ranks themselves are NCCL's.
 *
 * Without a GPU, or in a build without CUDA, it prints TAP's "1..0 # SKIP" with the reason and
 * exits 0 (make test on CPUs); tools/gpu_check.sh runs it on a GPU node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/nn/backend.h"
#include "lib/nn/cuda/nn_cuda.h"
#include "lib/util/mem.h"
#include "lib/util/philox.h"

static const NnBackend *be;
static const NnMemory *dev;

/* n floats of Philox normals (seed, stream), host memory. */
static float *normals(size_t n, uint64_t stream)
{
    float *x = mem_alloc(n * sizeof(float));
    assert_non_null(x);
    Philox p;
    philox_init(&p, 7, PHILOX_SYNTH, stream);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)philox_normal(&p);
    return x;
}

static NnNccl *open_one(void)
{
    unsigned char id[NN_NCCL_ID_BYTES];
    char why[512] = "";
    NnNccl *n = NULL;
    if (nn_nccl_unique_id(id, why, sizeof why) || nn_nccl_open(&n, 1, 0, id, why, sizeof why))
        fail_msg("%s", why);
    return n;
}

/* Sum, then average, of one buffer uploaded just before: both the identity on one rank. */
static void test_sum_and_average(void **state)
{
    (void)state;
    const size_t n = (size_t)1 << 20;
    float *want = normals(n, 1), *got = mem_alloc(n * sizeof(float));
    float *x = dev->alloc(n * sizeof(float));
    assert_non_null(got);
    assert_non_null(x);
    NnNccl *c = open_one();
    char why[512] = "";
    for (int average = 0; average <= 1; average++) {
        dev->upload(x, want, n * sizeof(float));
        assert_int_equal(nn_nccl_allreduce(c, x, n, average, why, sizeof why), 0);
        assert_int_equal(nn_nccl_sync(c, why, sizeof why), 0);
        dev->download(got, x, n * sizeof(float));
        assert_memory_equal(got, want, n * sizeof(float));
    }
    nn_nccl_close(c);
    dev->free(x);
    mem_free(want), mem_free(got);
}

/* comm.c's pattern: buckets of one 25 MiB gradient buffer reduced as backward fills them, each
 * after the compute stream's upload of its values; then join, and a copy on the compute stream
 * that must see every bucket reduced; a second communicator after the first is closed. */
static void test_buckets_join_copy(void **state)
{
    (void)state;
    const size_t n = (size_t)25 << 18, buckets = 16; /* 25 MiB of floats */
    float *want = normals(n, 2), *got = mem_alloc(n * sizeof(float));
    float *g = dev->alloc(n * sizeof(float)), *y = dev->alloc(n * sizeof(float));
    assert_non_null(got);
    assert_non_null(g);
    assert_non_null(y);
    char why[512] = "";
    for (int round = 0; round < 2; round++) {
        NnNccl *c = open_one();
        dev->zero(g, n * sizeof(float));
        for (size_t b = 0; b < buckets; b++) { /* the last bucket from the end, as backward */
            size_t lo = n * (buckets - 1 - b) / buckets, hi = n * (buckets - b) / buckets;
            dev->upload(g + lo, want + lo, (hi - lo) * sizeof(float));
            assert_int_equal(nn_nccl_allreduce(c, g + lo, hi - lo, round, why, sizeof why), 0);
        }
        assert_int_equal(nn_nccl_join(c, why, sizeof why), 0);
        dev->copy(y, g, n * sizeof(float)); /* on the compute stream, after the join */
        dev->download(got, y, n * sizeof(float));
        assert_memory_equal(got, want, n * sizeof(float));
        assert_int_equal(nn_nccl_sync(c, why, sizeof why), 0);
        nn_nccl_close(c);
    }
    dev->free(g), dev->free(y);
    mem_free(want), mem_free(got);
}

int main(void)
{
    Err e = {0};
    be = nn_backend_by_name("cuda", &e);
    if (!be) {
        printf("1..0 # SKIP cuda: %s\n", e.msg); /* TAP's skip-all */
        return 0;
    }
    dev = be->mem;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_and_average),
        cmocka_unit_test(test_buckets_join_copy),
    };
    const char *only = getenv("ONFH_TEST_ONLY");
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
