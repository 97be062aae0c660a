/* vesselness.h: multi-scale Hessian vesselness (Frangi et al., MICCAI 1998) of bright tubes on
 * a dark background, in 2D and 3D, on voxels of any (anisotropic) spacing.
 *
 * Volumes are (nz, ny, nx), x fastest: dims = {nx, ny, nz}, spacing = {x, y, z} in mm. A 2D
 * image is a volume with nz = 1 (frangi_2d). Scales are given in millimetres and converted per
 * axis (sigma_voxels[a] = sigma_mm / spacing[a]), so a 0.5 mm vessel gets the same response
 * whatever the voxel shape: the fix scikit-image users need by hand (scikit-image#5058).
 *
 * At each scale the Hessian comes from separable sampled Gaussian-derivative kernels (radius
 * ceil(4 sigma) voxels, mirrored boundary as scipy's 'reflect'), in mm^-2, times sigma_mm^2
 * (Lindeberg's gamma = 2 normalisation, so responses of different scales compare). With
 * eigenvalues sorted by magnitude |l1| <= |l2| <= |l3|, a bright tube has l2, l3 < 0 and
 *   3D: V = (1 - exp(-Ra^2 / 2 alpha^2)) exp(-Rb^2 / 2 beta^2) (1 - exp(-S^2 / 2 c^2)),
 *       Ra = |l2| / |l3| (plate vs line), Rb = |l1| / sqrt(|l2 l3|) (blob), S = |(l1, l2, l3)|;
 *   2D: V = exp(-Rb^2 / 2 beta^2) (1 - exp(-S^2 / 2 c^2)), Rb = |l1| / |l2|;
 * V = 0 where l2 > 0 or (3D) l3 > 0. c <= 0 takes Frangi's suggestion, half the largest S of
 * the image at that scale. The output is the maximum of V over scales, in [0, 1). */
#ifndef ONFH_IMAGE_VESSELNESS_H
#define ONFH_IMAGE_VESSELNESS_H

#include <stdint.h>

#include "lib/util/err.h"

typedef struct FrangiParams {
    const double *sigmas_mm; /* scales, mm */
    int n_sigmas;
    double alpha; /* plate-like suppression (3D only), Frangi's 0.5 */
    double beta;  /* blob-like suppression, Frangi's 0.5 */
    double c;     /* structureness scale; <= 0: half the largest Hessian norm, per scale */
} FrangiParams;

/* in, out: dims[0] * dims[1] * dims[2] floats. scale (may be NULL) gets the index of the sigma
 * that gave each voxel's maximum (0 where V = 0 at every scale). ERR_CONFIG for bad
 * dims/spacing/sigmas, ERR_NOMEM. */
int frangi_3d(const float *in, const int dims[3], const double spacing[3], const FrangiParams *p,
              float *out, uint8_t *scale, Err *e);
/* The 2D filter: dims = {nx, ny}, spacing = {x, y}. */
int frangi_2d(const float *in, const int dims[2], const double spacing[2], const FrangiParams *p,
              float *out, uint8_t *scale, Err *e);

/* The scale-normalised Hessian of a volume at one scale: h[0..5] = (xx, xy, yy, xz, yz, zz),
 * each a volume like in (nz = 1: xz, yz, zz are zero). Exposed for the tests' analytic checks. */
int hessian_3d(const float *in, const int dims[3], const double spacing[3], double sigma_mm,
               float *h[6], Err *e);

/* Eigenvalues of the symmetric matrix (a[0..5] = xx, xy, yy, xz, yz, zz), sorted by magnitude. */
void eig3_sym(const double a[6], double l[3]);

#endif
