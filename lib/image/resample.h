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

/* The values at quantiles lo and hi (0..1) of x[0..n) (linear interpolation between order
 * statistics, as numpy's default). scratch holds n floats. */
void percentiles(const float *x, size_t n, double lo, double hi, float *scratch, double *vlo,
                 double *vhi);

/* Clips x to [vlo, vhi] then z-scores it with the clipped values' mean and SD (SD 0: zeros).
 * Writes the mean and SD used. */
void clip_zscore(float *x, size_t n, double vlo, double vhi, double *mean, double *sd);

#endif
