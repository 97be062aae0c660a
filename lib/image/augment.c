/* augment.c: flip, rotate, scale and intensity jitter in one bilinear pass (see augment.h). */
#include "lib/image/augment.h"

#include <math.h>
#include <stddef.h>

#include "lib/util/philox.h"

static float at(const float *src, int h, int w, int y, int x)
{
    y = y < 0 ? 0 : y >= h ? h - 1 : y;
    x = x < 0 ? 0 : x >= w ? w - 1 : x;
    return src[(size_t)y * w + x];
}

void augment_slice(const Augment *a, uint64_t seed, uint64_t epoch, uint64_t sample,
                   const float *src, int h, int w, float *dst, int out)
{
    double flip = 0, angle = 0, zoom = 1, gain = 1, offset = 0;
    if (a) {
        Philox p;
        philox_init(&p, seed, PHILOX_AUGMENT, (epoch << 32) | (sample & 0xffffffffu));
        /* always five draws, in this order, whatever is switched off */
        double u[5];
        for (int k = 0; k < 5; k++)
            u[k] = philox_uniform(&p);
        flip = a->flip && u[0] < 0.5;
        angle = (2 * u[1] - 1) * a->rotation_deg * M_PI / 180.0;
        zoom = 1 + (2 * u[2] - 1) * a->scale;
        gain = 1 + (2 * u[3] - 1) * a->intensity;
        offset = (2 * u[4] - 1) * a->intensity;
    }
    /* output pixel centre (i, j) -> source coordinates: scale the grid to the slice, then rotate
     * and zoom about the slice centre (cy, cx) */
    double sy = (double)h / out, sx = (double)w / out;
    double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
    double c = cos(angle) / zoom, s = sin(angle) / zoom;
    for (int i = 0; i < out; i++) {
        for (int j = 0; j < out; j++) {
            double y = (i + 0.5) * sy - 0.5 - cy, x = (j + 0.5) * sx - 0.5 - cx;
            if (flip)
                x = -x;
            double yy = cy + c * y - s * x, xx = cx + s * y + c * x;
            int y0 = (int)floor(yy), x0 = (int)floor(xx);
            double fy = yy - y0, fx = xx - x0;
            double v =
                (1 - fy) * ((1 - fx) * at(src, h, w, y0, x0) + fx * at(src, h, w, y0, x0 + 1)) +
                fy * ((1 - fx) * at(src, h, w, y0 + 1, x0) + fx * at(src, h, w, y0 + 1, x0 + 1));
            dst[(size_t)i * out + j] = (float)(v * gain + offset);
        }
    }
}
