/* png.c: PNG writing through libpng (see png.h).
 *
 * libpng reports errors by longjmp; the jump lands in write_png, which removes the temporary
 * file and returns ERR_IO with libpng's message. Compression level 6 and no filter search keep
 * previews fast; the files are small either way. */
#include "lib/image/png.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct PngErr {
    char msg[256];
} PngErr;

static void on_error(png_structp png, png_const_charp msg)
{
    PngErr *pe = png_get_error_ptr(png);
    snprintf(pe->msg, sizeof pe->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* warnings (e.g. about text chunks) do not concern written files */
}

static int write_png(const char *path, const uint8_t *pixels, int width, int height, int rgb,
                     Err *e)
{
    if (width <= 0 || height <= 0)
        return err_set(e, ERR_INTERNAL, "%s: cannot write a %dx%d image", path, width, height);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return err_set(e, ERR_IO, "%s: cannot create", tmp);
    PngErr pe = {""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &pe, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        unlink(tmp);
        return err_set(e, ERR_NOMEM, "%s: out of memory starting libpng", path);
    }
    /* volatile: read after a longjmp */
    volatile int ok = 0;
    if (setjmp(png_jmpbuf(png)) == 0) {
        png_init_io(png, f);
        png_set_compression_level(png, 6);
        png_set_filter(png, 0, PNG_FILTER_SUB);
        png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                     rgb ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        size_t stride = (size_t)width * (rgb ? 3 : 1);
        for (int y = 0; y < height; y++)
            png_write_row(png, (png_const_bytep)(pixels + (size_t)y * stride));
        png_write_end(png, NULL);
        ok = 1;
    }
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return err_set(e, ERR_IO, "%s: cannot write PNG%s%s", path, pe.msg[0] ? ": " : "", pe.msg);
    }
    return 0;
}

int png_write_gray8(const char *path, const uint8_t *pixels, int width, int height, Err *e)
{
    return write_png(path, pixels, width, height, 0, e);
}

int png_write_rgb8(const char *path, const uint8_t *pixels, int width, int height, Err *e)
{
    return write_png(path, pixels, width, height, 1, e);
}
