/* resample.c: square-grid resampling and per-series normalisation (see resample.h). */
#include "lib/image/resample.h"

#include <math.h>
#include <string.h>

#include "lib/util/mem.h"

/* One axis of the resampling. Output pixel o is sampled at k points across its footprint; the
 * linear interpolation at each point reads input samples i0 and i1 with weights w0 and w1, or
 * the point lies beyond the input's edge (more than half a pixel out) and gets the fill. */
typedef struct Tap {
    int i0;
    int i1;
    float w0;
    float w1;
    int valid;
} Tap;

/* taps[o * k + s] for o < size, s < k: input of n samples of `spacing` mm, centred in a field of
 * fov mm cut into size output pixels of px mm. */
static void axis_taps(int n, double spacing, double fov, double px, int size, int k, Tap *taps)
{
    double extent = n * spacing;
    for (int o = 0; o < size; o++)
        for (int s = 0; s < k; s++) {
            double mm = (o + (s + 0.5) / k) * px - 0.5 * fov;
            double t = (mm + 0.5 * extent) / spacing - 0.5; /* input pixel coordinate */
            Tap *tp = &taps[o * k + s];
            tp->valid = t >= -0.5 && t <= n - 0.5;
            t = t < 0 ? 0 : t > n - 1 ? n - 1 : t;
            tp->i0 = (int)t;
            tp->i1 = tp->i0 + 1 < n ? tp->i0 + 1 : tp->i0;
            tp->w1 = (float)(t - tp->i0);
            tp->w0 = 1.0f - tp->w1;
        }
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
    /* Bilinear interpolation is separable, and so is the mean over a k x k grid of samples:
     * first every input row is sampled across (h: rows x size, the sum over the valid x
     * samples), then h down each column. A sample outside the input in x or in y is the fill. */
    Tap *tx = mem_alloc((size_t)size * kx * sizeof *tx);
    Tap *ty = mem_alloc((size_t)size * ky * sizeof *ty);
    float *h = mem_alloc((size_t)rows * size * sizeof *h);
    int *nvx = mem_alloc((size_t)size * sizeof *nvx);
    if (!tx || !ty || !h || !nvx) {
        px = -1;
        goto out;
    }
    axis_taps(columns, spacing[1], fov, px, size, kx, tx);
    axis_taps(rows, spacing[0], fov, px, size, ky, ty);
    for (int c = 0; c < size; c++) {
        nvx[c] = 0;
        for (int s = 0; s < kx; s++)
            nvx[c] += tx[c * kx + s].valid;
    }
    for (int r = 0; r < rows; r++) {
        const float *row = in + (size_t)r * columns;
        for (int c = 0; c < size; c++) {
            float acc = 0;
            for (int s = 0; s < kx; s++) {
                const Tap *t = &tx[c * kx + s];
                if (t->valid)
                    acc += row[t->i0] * t->w0 + row[t->i1] * t->w1;
            }
            h[(size_t)r * size + c] = acc;
        }
    }
    for (int r = 0; r < size; r++)
        for (int c = 0; c < size; c++) {
            double acc = 0;
            for (int s = 0; s < ky; s++) {
                const Tap *t = &ty[r * ky + s];
                if (t->valid)
                    acc += h[(size_t)t->i0 * size + c] * t->w0 +
                           h[(size_t)t->i1 * size + c] * t->w1 + (double)(kx - nvx[c]) * fill;
                else
                    acc += (double)kx * fill;
            }
            out[(size_t)r * size + c] = (float)(acc / (kx * ky));
        }
out:
    mem_free(tx);
    mem_free(ty);
    mem_free(h);
    mem_free(nvx);
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
