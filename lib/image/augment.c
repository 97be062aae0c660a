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
     * and zoom about the slice centre (cy, cx). The map is affine, so along a row the source
     * point moves by a constant step (dy, dx): one multiply-add per coordinate per pixel. */
    double sy = (double)h / out, sx = (double)w / out;
    double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
    double c = cos(angle) / zoom, s = sin(angle) / zoom;
    double fsx = flip ? -sx : sx;
    double dyj = -s * fsx, dxj = c * fsx; /* per output column */
    for (int i = 0; i < out; i++) {
        double y = (i + 0.5) * sy - 0.5 - cy;
        double x = (0.5 * sx - 0.5 - cx) * (flip ? -1 : 1);
        double yy = cy + c * y - s * x, xx = cx + s * y + c * x;
        float *row = dst + (size_t)i * out;
        for (int j = 0; j < out; j++, yy += dyj, xx += dxj) {
            double fy0 = floor(yy), fx0 = floor(xx);
            int y0 = (int)fy0, x0 = (int)fx0;
            double fy = yy - fy0, fx = xx - fx0;
            double v;
            if (y0 >= 0 && x0 >= 0 && y0 + 1 < h && x0 + 1 < w) {
                const float *p = src + (size_t)y0 * w + x0;
                v = (1 - fy) * ((1 - fx) * p[0] + fx * p[1]) +
                    fy * ((1 - fx) * p[w] + fx * p[w + 1]);
            } else {
                v = (1 - fy) * ((1 - fx) * at(src, h, w, y0, x0) + fx * at(src, h, w, y0, x0 + 1)) +
                    fy *
                        ((1 - fx) * at(src, h, w, y0 + 1, x0) + fx * at(src, h, w, y0 + 1, x0 + 1));
            }
            row[j] = (float)(v * gain + offset);
        }
    }
}
