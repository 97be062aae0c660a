/* test_resample.c: square-grid resampling and normalisation (lib/image/resample.c).
 *
 * Oracles that need no other library: bilinear resampling reproduces a linear ramp exactly
 * (in physical coordinates), a constant image stays constant, shrinking by an integer factor
 * averages blocks, the aspect ratio is kept with fill outside, and percentiles match numpy's
 * default (linear) definition on small hand-checked arrays. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/image/resample.h"

/* The plain loops resample_apply replaced (one output pixel at a time, taps from
 * resample_plan): the oracle its vectorised passes must match bit for bit. */
static void resample_ref(const float *in, int rows, int columns, const double spacing[2], int size,
                         float fill, float *out)
{
    ResamplePlan p;
    assert_true(resample_plan(&p, rows, columns, spacing, size) > 0);
    int kx = p.kx, ky = p.ky;
    float *h = malloc((size_t)rows * size * sizeof *h);
    assert_non_null(h);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < size; c++) {
            float acc = 0;
            for (int s = 0; s < kx; s++) {
                const Tap *t = &p.tx[c * kx + s];
                if (t->valid)
                    acc += in[r * columns + t->i0] * t->w0 + in[r * columns + t->i1] * t->w1;
            }
            h[r * size + c] = acc;
        }
    for (int r = 0; r < size; r++)
        for (int c = 0; c < size; c++) {
            double acc = 0;
            for (int s = 0; s < ky; s++) {
                const Tap *t = &p.ty[r * ky + s];
                if (t->valid)
                    acc += h[t->i0 * size + c] * t->w0 + h[t->i1 * size + c] * t->w1 +
                           (double)p.x_missing[c] * fill;
                else
                    acc += (double)kx * fill;
            }
            out[r * size + c] = (float)(acc / (kx * ky));
        }
    free(h);
    resample_plan_free(&p);
}

/* Shapes ingest meets (matrices 128 to 512, square or not, anisotropic spacing, grids 64 and
 * 128, odd sizes for the transposes' edges) on random values: the same bits as the oracle. */
static void test_apply_equals_reference(void **state)
{
    (void)state;
    static const int shapes[][3] = {{320, 320, 128}, {256, 256, 64}, {512, 384, 128},
                                    {130, 97, 64},   {37, 41, 128},  {64, 64, 64}};
    static const double spacings[][2] = {{1.1875, 1.1875}, {0.7, 1.3}, {2, 1}};
    uint32_t x = 99;
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        for (size_t q = 0; q < sizeof spacings / sizeof *spacings; q++) {
            int rows = shapes[k][0], columns = shapes[k][1], size = shapes[k][2];
            float *in = malloc((size_t)rows * columns * sizeof *in);
            float *want = malloc((size_t)size * size * sizeof *want);
            float *got = malloc((size_t)size * size * sizeof *got);
            assert_true(in && want && got);
            for (int i = 0; i < rows * columns; i++) {
                x = x * 1664525u + 1013904223u;
                in[i] = (float)(x >> 8) / 16777216.0f * 6.0f - 2.0f;
            }
            resample_ref(in, rows, columns, spacings[q], size, -1.7f, want);
            resample_square(in, rows, columns, spacings[q], size, -1.7f, got);
            assert_memory_equal(got, want, (size_t)size * size * sizeof *got);
            free(in);
            free(want);
            free(got);
        }
}

static void test_ramp_is_exact(void **state)
{
    (void)state;
    /* 40 x 40 at 1 mm, value = 2 x (mm from the left edge of pixel centres): x = column. */
    enum { N = 40, S = 20 };
    float in[N * N], out[S * S];
    for (int r = 0; r < N; r++)
        for (int c = 0; c < N; c++)
            in[r * N + c] = 2.0f * c;
    double sp[2] = {1, 1};
    double px = resample_square(in, N, N, sp, S, -1, out);
    assert_true(fabs(px - 2.0) < 1e-12);
    /* output pixel c covers input columns 2c .. 2c+2: its mean is 2 x (2c + 0.5) */
    for (int r = 0; r < S; r++)
        for (int c = 1; c < S - 1; c++)
            assert_true(fabs(out[r * S + c] - 2.0f * (2 * c + 0.5f)) < 1e-4);
}

static void test_constant_and_aspect(void **state)
{
    (void)state;
    /* 20 rows x 40 columns at 1 x 1 mm: a 40 mm wide, 20 mm high field -> the square output is
     * 40 mm wide; its top and bottom quarters lie outside the input and get the fill. */
    enum { R = 20, C = 40, S = 16 };
    float in[R * C], out[S * S];
    for (int i = 0; i < R * C; i++)
        in[i] = 7.0f;
    double sp[2] = {1, 1};
    resample_square(in, R, C, sp, S, -3.0f, out);
    for (int c = 0; c < S; c++) {
        assert_true(out[0 * S + c] == -3.0f);
        assert_true(out[(S - 1) * S + c] == -3.0f);
        assert_true(fabs(out[(S / 2) * S + c] - 7.0f) < 1e-5);
    }
    /* anisotropic spacing: 20 x 10 pixels of 1 x 2 mm is a square 20 mm field: no fill */
    float in2[20 * 10], out2[10 * 10];
    for (int i = 0; i < 200; i++)
        in2[i] = 5.0f;
    double sp2[2] = {1, 2};
    resample_square(in2, 20, 10, sp2, 10, -1, out2);
    for (int i = 0; i < 100; i++)
        assert_true(fabs(out2[i] - 5.0f) < 1e-5);
}

static void test_block_average(void **state)
{
    (void)state;
    enum { N = 8 };
    float in[N * N], out[4 * 4];
    for (int i = 0; i < N * N; i++)
        in[i] = (float)(rand() % 100);
    double sp[2] = {0.5, 0.5};
    resample_square(in, N, N, sp, 4, 0, out);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            /* samples at the quarter points of a 2 x 2 block: bilinear at (0.25, 0.75) offsets */
            double want = 0;
            for (int sy = 0; sy < 2; sy++)
                for (int sx = 0; sx < 2; sx++)
                    want += in[(2 * r + sy) * N + 2 * c + sx];
            want /= 4;
            assert_true(fabs(out[r * 4 + c] - want) < 1e-4);
        }
}

static void test_percentiles_and_zscore(void **state)
{
    (void)state;
    float x[5] = {4, 1, 3, 2, 5}, scratch[5];
    double lo, hi;
    percentiles(x, 5, 0.1, 0.9, scratch, &lo, &hi); /* numpy: 1.4 and 4.6 */
    assert_true(fabs(lo - 1.4) < 1e-6 && fabs(hi - 4.6) < 1e-6);
    double m, sd;
    clip_zscore(x, 5, lo, hi, &m, &sd);
    double s = 0, s2 = 0;
    for (int i = 0; i < 5; i++) {
        s += x[i];
        s2 += x[i] * x[i];
    }
    assert_true(fabs(s / 5) < 1e-6 && fabs(s2 / 5 - 1) < 1e-5);
    assert_true(fabs(m - 3.0) < 1e-9);
    float flat[3] = {2, 2, 2};
    clip_zscore(flat, 3, 0, 10, &m, &sd);
    assert_true(flat[0] == 0 && sd == 0);
}

/* Selection gives what sorting gives, on data with many ties (like MRI background). */
static int cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_percentiles_match_sorting(void **state)
{
    (void)state;
    enum { N = 5001 };
    static float x[N], sorted[N], scratch[N];
    unsigned seed = 7;
    for (int trial = 0; trial < 20; trial++) {
        int n = 1 + trial * 250;
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            x[i] = (seed >> 16) % 4 == 0 ? 0.0f : (float)((seed >> 8) % 1000) / 10.0f;
        }
        memcpy(sorted, x, (size_t)n * sizeof *x);
        qsort(sorted, (size_t)n, sizeof *sorted, cmp);
        const double qs[4][2] = {{0.005, 0.995}, {0, 1}, {0.25, 0.75}, {0.5, 0.5}};
        for (int k = 0; k < 4; k++) {
            double lo, hi;
            percentiles(x, (size_t)n, qs[k][0], qs[k][1], scratch, &lo, &hi);
            for (int side = 0; side < 2; side++) {
                double pos = qs[k][side] * (n - 1), f = pos - floor(pos);
                size_t i = (size_t)floor(pos);
                double want =
                    sorted[i] + f * ((i + 1 < (size_t)n ? sorted[i + 1] : sorted[i]) - sorted[i]);
                assert_true(fabs((side ? hi : lo) - want) < 1e-6);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ramp_is_exact),
        cmocka_unit_test(test_apply_equals_reference),
        cmocka_unit_test(test_constant_and_aspect),
        cmocka_unit_test(test_block_average),
        cmocka_unit_test(test_percentiles_and_zscore),
        cmocka_unit_test(test_percentiles_match_sorting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
