/* test_augment.c: lib/image/augment.c: exact identity and flips, resampling, bounds of the
 * random transforms, and draws that depend only on (seed, epoch, sample). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/image/augment.h"

#define H 12
#define W 17

static float src[H * W];

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < H * W; i++)
        src[i] = sinf(0.37f * (float)i) * 3.0f + (float)(i % 5);
    return 0;
}

static void test_identity_and_flip(void **state)
{
    (void)state;
    float sq[W * W], out[W * W];
    for (int i = 0; i < W * W; i++)
        sq[i] = (float)((i * 7919) % 101) - 50.0f;
    augment_slice(NULL, 1, 0, 0, sq, W, W, out, W);
    assert_memory_equal(out, sq, sizeof sq);
    /* flips only: every sample is the slice or its mirror, exactly */
    Augment a = {.flip = 1};
    int flipped = 0, same = 0;
    for (uint64_t k = 0; k < 40; k++) {
        augment_slice(&a, 3, 1, k, sq, W, W, out, W);
        int is_same = !memcmp(out, sq, sizeof sq), is_flip = 1;
        for (int i = 0; i < W && is_flip; i++)
            for (int j = 0; j < W; j++)
                if (out[i * W + j] != sq[i * W + (W - 1 - j)])
                    is_flip = 0;
        assert_true(is_same || is_flip);
        same += is_same, flipped += is_flip;
    }
    assert_true(same > 5 && flipped > 5);
}

static void test_resample_and_bounds(void **state)
{
    (void)state;
    /* a constant slice stays constant under any transform, up to the intensity jitter */
    float flat[H * W], out[32 * 32];
    for (int i = 0; i < H * W; i++)
        flat[i] = 2.0f;
    Augment a = {.flip = 1, .rotation_deg = 30, .scale = 0.2, .intensity = 0.1};
    for (uint64_t k = 0; k < 20; k++) {
        augment_slice(&a, 9, 2, k, flat, H, W, out, 32);
        for (int i = 1; i < 32 * 32; i++)
            assert_true(fabsf(out[i] - out[0]) < 1e-5f);
        /* gain in [0.9, 1.1], offset in [-0.1, 0.1] */
        assert_true(out[0] >= 2.0f * 0.9f - 0.1f - 1e-5f && out[0] <= 2.0f * 1.1f + 0.1f + 1e-5f);
    }
    /* values stay within the slice's range (bilinear with edge clamping) */
    float lo = src[0], hi = src[0];
    for (int i = 0; i < H * W; i++)
        lo = fminf(lo, src[i]), hi = fmaxf(hi, src[i]);
    Augment geo = {.flip = 1, .rotation_deg = 45, .scale = 0.3};
    for (uint64_t k = 0; k < 20; k++) {
        augment_slice(&geo, 5, 0, k, src, H, W, out, 32);
        for (int i = 0; i < 32 * 32; i++)
            assert_true(out[i] >= lo - 1e-4f && out[i] <= hi + 1e-4f);
    }
}

static void test_keyed_draws(void **state)
{
    (void)state;
    Augment a = {.flip = 1, .rotation_deg = 10, .scale = 0.1, .intensity = 0.1};
    float x[24 * 24], y[24 * 24];
    augment_slice(&a, 7, 3, 11, src, H, W, x, 24);
    augment_slice(&a, 7, 3, 11, src, H, W, y, 24);
    assert_memory_equal(x, y, sizeof x); /* same key, same output */
    augment_slice(&a, 7, 4, 11, src, H, W, y, 24);
    assert_true(memcmp(x, y, sizeof x) != 0); /* another epoch */
    augment_slice(&a, 8, 3, 11, src, H, W, y, 24);
    assert_true(memcmp(x, y, sizeof x) != 0); /* another seed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_and_flip),
        cmocka_unit_test(test_resample_and_bounds),
        cmocka_unit_test(test_keyed_draws),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
