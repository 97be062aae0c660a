/* png.h: writing 8-bit grey and RGB images as PNG (libpng), for previews, overlays and report
 * figures. Written atomically (temporary name, then rename), like every onfh output. */
#ifndef ONFH_IMAGE_PNG_H
#define ONFH_IMAGE_PNG_H

#include <stdint.h>

#include "lib/util/err.h"

/* pixels: height rows of width bytes (grey) or 3 * width bytes (RGB), top row first. */
int png_write_gray8(const char *path, const uint8_t *pixels, int width, int height, Err *e);
int png_write_rgb8(const char *path, const uint8_t *pixels, int width, int height, Err *e);

#endif
