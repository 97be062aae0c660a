/* overlay.c: MIP plus projected skeleton, to PNG (overlay.h). */
#include "lib/image/overlay.h"

#include <math.h>
#include <string.h>

#include "lib/image/png.h"
#include "lib/util/mem.h"

int overlay_mip_png(const char *path, const float *vol, const uint8_t *skel, const int dims[3],
                    int scale, Err *e)
{
    int nx = dims[0], ny = dims[1], nz = dims[2];
    size_t plane = (size_t)nx * ny;
    float *mip = mem_alloc(plane * sizeof *mip);
    uint8_t *lab = mem_calloc(plane, 1);
    uint8_t *rgb = mem_alloc(3 * plane * (size_t)scale * scale);
    if (!mip || !lab || !rgb) {
        mem_free(mip), mem_free(lab), mem_free(rgb);
        return err_set(e, ERR_NOMEM, "overlay: out of memory");
    }
    for (size_t i = 0; i < plane; i++)
        mip[i] = -INFINITY;
    for (int z = 0; z < nz; z++)
        for (size_t i = 0; i < plane; i++) {
            size_t k = (size_t)z * plane + i;
            if (vol[k] > mip[i])
                mip[i] = vol[k];
            if (skel[k] > lab[i])
                lab[i] = skel[k];
        }
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < plane; i++)
        lo = mip[i] < lo ? mip[i] : lo, hi = mip[i] > hi ? mip[i] : hi;
    float span = hi > lo ? hi - lo : 1.0f;
    int w = nx * scale;
    for (int y = 0; y < ny; y++)
        for (int x = 0; x < nx; x++) {
            size_t i = (size_t)y * nx + x;
            uint8_t g = (uint8_t)(255.0f * (mip[i] - lo) / span + 0.5f), c[3] = {g, g, g};
            if (lab[i] == 1)
                c[0] = 255, c[1] = 40, c[2] = 40;
            else if (lab[i] >= 2)
                c[0] = 255, c[1] = 220, c[2] = 0;
            for (int dy = 0; dy < scale; dy++)
                for (int dx = 0; dx < scale; dx++)
                    memcpy(rgb + 3 * ((size_t)(y * scale + dy) * w + x * scale + dx), c, 3);
        }
    int rc = png_write_rgb8(path, rgb, w, ny * scale, e);
    mem_free(mip), mem_free(lab), mem_free(rgb);
    return rc;
}
