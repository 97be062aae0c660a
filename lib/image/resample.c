/* resample.c: square-grid resampling and per-series normalisation (see resample.h). */
#include "lib/image/resample.h"

#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "lib/util/mem.h"

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

/* dst (n x m) = the transpose of src (m x n), both row-major, in 16 x 16 tiles (so a tile's
 * stores fill whole cache lines; a whole column of src at a time strides through more lines than
 * L1 holds), each through 4 x 4 blocks in SSE registers where there are whole blocks. */
static void transpose(const float *src, int m, int n, float *dst)
{
    enum { TILE = 16 };
    for (int i0 = 0; i0 < m; i0 += TILE)
        for (int j0 = 0; j0 < n; j0 += TILE) {
            int i1 = i0 + TILE < m ? i0 + TILE : m, j1 = j0 + TILE < n ? j0 + TILE : n;
            int i = i0;
#if defined(__SSE2__)
            for (; i + 4 <= i1; i += 4) {
                int j = j0;
                for (; j + 4 <= j1; j += 4) {
                    __m128 r0 = _mm_loadu_ps(src + (size_t)(i + 0) * n + j);
                    __m128 r1 = _mm_loadu_ps(src + (size_t)(i + 1) * n + j);
                    __m128 r2 = _mm_loadu_ps(src + (size_t)(i + 2) * n + j);
                    __m128 r3 = _mm_loadu_ps(src + (size_t)(i + 3) * n + j);
                    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                    _mm_storeu_ps(dst + (size_t)(j + 0) * m + i, r0);
                    _mm_storeu_ps(dst + (size_t)(j + 1) * m + i, r1);
                    _mm_storeu_ps(dst + (size_t)(j + 2) * m + i, r2);
                    _mm_storeu_ps(dst + (size_t)(j + 3) * m + i, r3);
                }
                for (; j < j1; j++)
                    for (int k = i; k < i + 4; k++)
                        dst[(size_t)j * m + k] = src[(size_t)k * n + j];
            }
#endif
            for (; i < i1; i++)
                for (int j = j0; j < j1; j++)
                    dst[(size_t)j * m + i] = src[(size_t)i * n + j];
        }
}

void resample_plan_free(ResamplePlan *p)
{
    mem_free(p->tx);
    mem_free(p->ty);
    mem_free(p->x_missing);
    mem_free(p->in_t);
    mem_free(p->h_t);
    mem_free(p->h);
    mem_free(p->acc);
    memset(p, 0, sizeof *p);
}

double resample_plan(ResamplePlan *p, int rows, int columns, const double spacing[2], int size)
{
    memset(p, 0, sizeof *p);
    double height = rows * spacing[0], width = columns * spacing[1];
    double fov = height > width ? height : width;
    double px = fov / size; /* output pixel size, mm */
    int ky = (int)ceil(px / spacing[0] - 1e-9), kx = (int)ceil(px / spacing[1] - 1e-9);
    p->ky = ky < 1 ? 1 : ky;
    p->kx = kx < 1 ? 1 : kx;
    p->rows = rows;
    p->columns = columns;
    p->size = size;
    p->tx = mem_alloc((size_t)size * p->kx * sizeof *p->tx);
    p->ty = mem_alloc((size_t)size * p->ky * sizeof *p->ty);
    p->x_missing = mem_alloc((size_t)size * sizeof *p->x_missing);
    p->in_t = mem_alloc((size_t)rows * columns * sizeof *p->in_t);
    p->h_t = mem_alloc((size_t)size * rows * sizeof *p->h_t);
    p->h = mem_alloc((size_t)rows * size * sizeof *p->h);
    p->acc = mem_alloc((size_t)size * sizeof *p->acc);
    if (!p->tx || !p->ty || !p->x_missing || !p->in_t || !p->h_t || !p->h || !p->acc) {
        resample_plan_free(p);
        return -1;
    }
    axis_taps(columns, spacing[1], fov, px, size, p->kx, p->tx);
    axis_taps(rows, spacing[0], fov, px, size, p->ky, p->ty);
    for (int c = 0; c < size; c++) {
        int valid = 0;
        for (int s = 0; s < p->kx; s++)
            valid += p->tx[c * p->kx + s].valid;
        p->x_missing[c] = p->kx - valid;
    }
    return px;
}

/* Built twice, for AVX2 and for the baseline, the loader picking by CPU (GCC's target_clones,
 * an ifunc): twice the lanes where the machine has them, the same bits (no FMA is allowed to
 * contract anything: -std=c11 keeps -ffp-contract=off). */
__attribute__((target_clones("avx2", "default"))) void
resample_apply(const ResamplePlan *p, const float *in, float fill, float *out)
{
    int rows = p->rows, size = p->size, kx = p->kx, ky = p->ky;
    /* Bilinear interpolation is separable, and so is the mean over a k x k grid of samples:
     * first every input row is sampled across (h: rows x size, the sum over the valid x
     * samples), then h down each column. A sample outside the input in x or in y is the fill.
     * Both passes run along contiguous memory, one output pixel per vector lane, each lane
     * adding in the order the plain double loop would (the same bits): the first pass on the
     * transposed slice (in_t: columns x rows), whose output comes out transposed (h_t). */
    transpose(in, rows, p->columns, p->in_t);
    for (int c = 0; c < size; c++) {
        float *hc = p->h_t + (size_t)c * rows;
        for (int r = 0; r < rows; r++)
            hc[r] = 0.0f;
        for (int s = 0; s < kx; s++) {
            const Tap *t = &p->tx[c * kx + s];
            if (!t->valid)
                continue;
            const float *a = p->in_t + (size_t)t->i0 * rows, *b = p->in_t + (size_t)t->i1 * rows;
            float w0 = t->w0, w1 = t->w1;
            for (int r = 0; r < rows; r++)
                hc[r] += a[r] * w0 + b[r] * w1;
        }
    }
    transpose(p->h_t, size, rows, p->h);
    double *acc = p->acc, outside = (double)kx * fill, n = (double)(kx * ky);
    for (int r = 0; r < size; r++) {
        for (int c = 0; c < size; c++)
            acc[c] = 0;
        for (int s = 0; s < ky; s++) {
            const Tap *t = &p->ty[r * ky + s];
            if (!t->valid) {
                for (int c = 0; c < size; c++)
                    acc[c] += outside;
                continue;
            }
            const float *a = p->h + (size_t)t->i0 * size, *b = p->h + (size_t)t->i1 * size;
            float w0 = t->w0, w1 = t->w1;
            for (int c = 0; c < size; c++)
                acc[c] += a[c] * w0 + b[c] * w1 + (double)p->x_missing[c] * fill;
        }
        for (int c = 0; c < size; c++)
            out[(size_t)r * size + c] = (float)(acc[c] / n);
    }
}

double resample_square(const float *in, int rows, int columns, const double spacing[2], int size,
                       float fill, float *out)
{
    ResamplePlan p;
    double px = resample_plan(&p, rows, columns, spacing, size);
    if (px < 0)
        return -1;
    resample_apply(&p, in, fill, out);
    resample_plan_free(&p);
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
