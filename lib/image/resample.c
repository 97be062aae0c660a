/* resample.c: square-grid resampling and per-series normalisation (see resample.h). */
#include "lib/image/resample.h"

#include <math.h>
#include <string.h>

/* Bilinear sample at continuous pixel coordinates (y, x) (pixel centres at integers); outside
 * the image (beyond half a pixel) gives fill. */
static float bilinear(const float *in, int rows, int columns, double y, double x, float fill)
{
    if (y < -0.5 || x < -0.5 || y > rows - 0.5 || x > columns - 0.5)
        return fill;
    y = y < 0 ? 0 : y > rows - 1 ? rows - 1 : y;
    x = x < 0 ? 0 : x > columns - 1 ? columns - 1 : x;
    int y0 = (int)y, x0 = (int)x;
    int y1 = y0 + 1 < rows ? y0 + 1 : y0, x1 = x0 + 1 < columns ? x0 + 1 : x0;
    double fy = y - y0, fx = x - x0;
    double top = in[(size_t)y0 * columns + x0] * (1 - fx) + in[(size_t)y0 * columns + x1] * fx;
    double bot = in[(size_t)y1 * columns + x0] * (1 - fx) + in[(size_t)y1 * columns + x1] * fx;
    return (float)(top * (1 - fy) + bot * fy);
}

double resample_square(const float *in, int rows, int columns, const double spacing[2], int size,
                       float fill, float *out)
{
    double height = rows * spacing[0], width = columns * spacing[1];
    double fov = height > width ? height : width;
    double px = fov / size; /* output pixel size, mm */
    int ky = (int)ceil(px / spacing[0] - 1e-9), kx = (int)ceil(px / spacing[1] - 1e-9);
    ky = ky < 1 ? 1 : ky;
    kx = kx < 1 ? 1 : kx;
    for (int r = 0; r < size; r++)
        for (int c = 0; c < size; c++) {
            /* Output pixel centre in mm from the field's centre, then input pixel coordinates. */
            double acc = 0;
            for (int sy = 0; sy < ky; sy++)
                for (int sx = 0; sx < kx; sx++) {
                    double my = (r + (sy + 0.5) / ky) * px - 0.5 * fov;
                    double mx = (c + (sx + 0.5) / kx) * px - 0.5 * fov;
                    double y = (my + 0.5 * height) / spacing[0] - 0.5;
                    double x = (mx + 0.5 * width) / spacing[1] - 0.5;
                    acc += bilinear(in, rows, columns, y, x, fill);
                }
            out[(size_t)r * size + c] = (float)(acc / (ky * kx));
        }
    return px;
}

/* The k-th smallest of a[0..n) (0-based), leaving a partitioned around it: a[0..k) <= a[k] <=
 * a[k+1..n). Iterative quickselect with a three-way partition (MRI has runs of equal values:
 * background zeros) and a median-of-three pivot; O(n) expected, where sorting a series' millions
 * of voxels was most of ingest's time. */
static float select_kth(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* a[lo..hi) holds the answer */
    while (hi - lo > 1) {
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t lt = lo, i = lo, gt = hi; /* [lo,lt) < pivot, [lt,i) == pivot, [gt,hi) > pivot */
        while (i < gt) {
            float v = a[i];
            if (v < pivot) {
                a[i++] = a[lt];
                a[lt++] = v;
            } else if (v > pivot) {
                a[i] = a[--gt];
                a[gt] = v;
            } else {
                i++;
            }
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return pivot;
    }
    return a[k];
}

/* The smallest of a[from..n). */
static float min_from(const float *a, size_t from, size_t n)
{
    float m = a[from];
    for (size_t i = from + 1; i < n; i++)
        m = a[i] < m ? a[i] : m;
    return m;
}

void percentiles(const float *x, size_t n, double lo, double hi, float *scratch, double *vlo,
                 double *vhi)
{
    if (n == 0) {
        *vlo = *vhi = 0;
        return;
    }
    memcpy(scratch, x, n * sizeof *x);
    double q[2] = {lo, hi}, *v[2] = {vlo, vhi};
    for (int k = 0; k < 2; k++) {
        /* numpy's default: linear interpolation between the order statistics around q (n-1) */
        double pos = q[k] * (double)(n - 1);
        size_t i = (size_t)floor(pos);
        double f = pos - (double)i;
        float a = select_kth(scratch, n, i);
        float b = i + 1 < n ? min_from(scratch, i + 1, n) : a;
        *v[k] = a + f * (b - a);
    }
}

void clip_zscore(float *x, size_t n, double vlo, double vhi, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i] < vlo ? vlo : x[i] > vhi ? vhi : x[i];
        s += v;
        s2 += v * v;
    }
    double m = n ? s / n : 0, var = n ? s2 / n - m * m : 0;
    double d = var > 0 ? sqrt(var) : 0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i] < vlo ? vlo : x[i] > vhi ? vhi : x[i];
        x[i] = d > 0 ? (float)((v - m) / d) : 0.0f;
    }
    *mean = m;
    *sd = d;
}
