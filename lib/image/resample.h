/* resample.h: bringing MRI slices of any matrix and pixel spacing to the square grid the CNNs
 * take, and normalising their intensities per series.
 *
 * Spacing-aware: the output covers a square field of view as wide as the larger side of the
 * input's field (rows x row spacing, columns x column spacing), centred, so anatomy keeps its
 * aspect ratio whatever the acquisition matrix; outside the input is filled with `fill`. Each
 * output pixel is the mean of bilinear samples over its footprint (k x k samples, k the ratio of
 * output to input pixel size, at least 1), which antialiases when shrinking and interpolates when
 * enlarging. */
#ifndef ONFH_IMAGE_RESAMPLE_H
#define ONFH_IMAGE_RESAMPLE_H

#include <stddef.h>

/* in: rows x columns, row-major; spacing[0] between rows, spacing[1] between columns (mm).
 * out: size x size. Returns the output pixel size in mm, or -1 when out of memory. */
double resample_square(const float *in, int rows, int columns, const double spacing[2], int size,
                       float fill, float *out);

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

/* resample_square in two steps, for many slices of one geometry (a series): the plan holds both
 * axes' taps and the workspace, made once; each slice is then one resample_apply, with the
 * same result bit for bit. */
typedef struct ResamplePlan {
    int rows;
    int columns;
    int size;
    int kx; /* samples per output pixel across, and down */
    int ky;
    Tap *tx;        /* size x kx */
    Tap *ty;        /* size x ky */
    int *x_missing; /* per output column: its x samples outside the input */
    float *in_t;    /* columns x rows: the slice transposed */
    float *h_t;     /* size x rows: the first pass, transposed */
    float *h;       /* rows x size */
    double *acc;    /* size: one output row's sums */
} ResamplePlan;

/* Returns the output pixel size in mm, or -1 when out of memory (nothing to free then). */
double resample_plan(ResamplePlan *p, int rows, int columns, const double spacing[2], int size);
void resample_apply(const ResamplePlan *p, const float *in, float fill, float *out);
void resample_plan_free(ResamplePlan *p);

/* The values at quantiles lo and hi (0..1) of x[0..n) (linear interpolation between order
 * statistics, as numpy's default). scratch holds n floats. */
void percentiles(const float *x, size_t n, double lo, double hi, float *scratch, double *vlo,
                 double *vhi);

/* Clips x to [vlo, vhi] then z-scores it with the clipped values' mean and SD (SD 0: zeros).
 * Writes the mean and SD used. */
void clip_zscore(float *x, size_t n, double vlo, double vhi, double *mean, double *sd);

#endif
