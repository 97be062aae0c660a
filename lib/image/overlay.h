/* overlay.h: a report figure of a 3D skeleton: the maximum-intensity projection of the volume
 * along z in grey, with the skeleton projected on it in colour (label 1 red, 2 yellow), each
 * pixel drawn as a scale x scale block. */
#ifndef ONFH_IMAGE_OVERLAY_H
#define ONFH_IMAGE_OVERLAY_H

#include <stdint.h>

#include "lib/util/err.h"

/* vol, skel: dims[0] x dims[1] x dims[2] (x fastest). Writes a PNG of (scale dims[0]) x
 * (scale dims[1]) pixels, rows top to bottom = y ascending. */
int overlay_mip_png(const char *path, const float *vol, const uint8_t *skel, const int dims[3],
                    int scale, Err *e);

#endif
