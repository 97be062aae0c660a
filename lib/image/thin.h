/* thin.h: topology-preserving thinning of binary images to one-voxel-wide skeletons.
 *
 *   thin_2d: Zhang and Suen (CACM 1984;27:236), two sub-iterations per pass with the 256-entry
 *            table of scikit-image's skeletonize (2D), so the two give the same pixels;
 *   thin_3d: Lee, Kashyap and Chu (CVGIP 1994;56:462): per pass, for each of the six border
 *            directions, collect border voxels that are not end points, keep the Euler
 *            characteristic (26-connectivity, Lee's Table 2) and are simple (one 26-connected
 *            object component in the 3x3x3 neighbourhood, by octree labelling); then delete them
 *            one by one, re-checking simplicity. A port of scikit-image's skeletonize_3d (after
 *            Arganda-Carreras's Skeletonize3D for ImageJ, BSD), same direction order and raster
 *            order; it scans only the remaining foreground. One change: the sequential re-check
 *            also keeps voxels that have become end points, which scikit-image 0.19 deletes,
 *            erasing objects of even width whole (a 4 x 4 x 16 bar leaves nothing) and
 *            shortening tips by a voxel or two, sometimes a short tip spur with them; the
 *            voxels otherwise agree (tests/unit/test_vessel_oracle.c, on skimage's fixtures).
 * Both keep the number of connected components and holes (thinning never cuts a vessel) and
 * leave end points where a tube ends. dims are (nx, ny[, nz]), x fastest in memory; values 0 /
 * non-zero; outside the image is background. */
#ifndef ONFH_IMAGE_THIN_H
#define ONFH_IMAGE_THIN_H

#include <stdint.h>

/* In place: img (dims[0] x dims[1]) becomes its skeleton (0 / 1). -1 when out of memory. */
int thin_2d(uint8_t *img, const int dims[2]);
/* In place: img (dims[0] x dims[1] x dims[2]) becomes its skeleton (0 / 1). -1 out of memory. */
int thin_3d(uint8_t *img, const int dims[3]);

#endif
