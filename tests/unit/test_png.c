/* test_png.c: PNG writing (lib/image/png.c), read back with libpng's own reader. */
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/image/png.h"

/* Reads path with libpng's simplified API into a fresh buffer of the given format. */
static uint8_t *read_png(const char *path, int *w, int *h, png_uint_32 format)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return NULL;
    img.format = format;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        free(buf);
        return NULL;
    }
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

static void test_gray_and_rgb_round_trip(void **state)
{
    (void)state;
    const char *base = getenv("ONFH_TEST_TMP") ? getenv("ONFH_TEST_TMP") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/test_png.%ld.png", base, (long)getpid());
    enum { W = 37, H = 11 };
    uint8_t grey[W * H], rgb[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        grey[i] = (uint8_t)(i * 7);
        rgb[3 * i] = (uint8_t)i;
        rgb[3 * i + 1] = (uint8_t)(255 - i);
        rgb[3 * i + 2] = (uint8_t)(i * 3);
    }
    Err e = {0};
    int w, h;
    assert_int_equal(png_write_gray8(path, grey, W, H, &e), 0);
    uint8_t *back = read_png(path, &w, &h, PNG_FORMAT_GRAY);
    assert_non_null(back);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    assert_memory_equal(back, grey, sizeof grey);
    free(back);
    assert_int_equal(png_write_rgb8(path, rgb, W, H, &e), 0);
    back = read_png(path, &w, &h, PNG_FORMAT_RGB);
    assert_non_null(back);
    assert_memory_equal(back, rgb, sizeof rgb);
    free(back);
    unlink(path);
}

static void test_errors_name_the_file(void **state)
{
    (void)state;
    uint8_t px[4] = {0};
    Err e = {0};
    assert_int_equal(png_write_gray8("/nonexistent/dir/x.png", px, 2, 2, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "/nonexistent/dir/x.png"));
    assert_int_equal(png_write_gray8("/tmp/x.png", px, 0, 2, &e), ERR_INTERNAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gray_and_rgb_round_trip),
        cmocka_unit_test(test_errors_name_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
