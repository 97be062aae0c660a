/* components.h: connected components of binary volumes, hysteresis thresholding and removal of
 * small objects: the steps between a vesselness map and the mask that is thinned.
 *
 * Volumes are (nz, ny, nx), x fastest, dims = {nx, ny, nz}; a 2D image has nz = 1. conn is 6,
 * 18 or 26 (face, edge, vertex neighbours; in a 2D image 6 acts as 4-connectivity and 18 or 26
 * as 8-connectivity). Components are numbered 1, 2, ... in the raster order of their first
 * voxel, so the labelling is a pure function of the mask. */
#ifndef ONFH_IMAGE_COMPONENTS_H
#define ONFH_IMAGE_COMPONENTS_H

#include <stdint.h>

/* labels (one per voxel): 0 background, else the component's number. sizes (may be NULL):
 * *sizes = mem_alloc'ed voxel counts indexed by label (entry 0 unused). Returns the number of
 * components, -1 when out of memory or conn is not 6, 18 or 26. */
int cc_label(const uint8_t *mask, const int dims[3], int conn, int32_t *labels, int64_t **sizes);

/* Hysteresis (Canny's double threshold, as skimage.filters.apply_hysteresis_threshold): mask =
 * the components of {v > lo} that hold at least one voxel with v > hi. Returns the number of
 * components kept, -1 when out of memory. */
int hysteresis_threshold(const float *v, const int dims[3], float lo, float hi, int conn,
                         uint8_t *mask);

/* Clears the components of mask smaller than min_voxels. Returns the number removed, -1 when out
 * of memory. */
int remove_small_objects(uint8_t *mask, const int dims[3], int conn, int64_t min_voxels);

/* The neighbour offsets of a connectivity: d[k] = (dx, dy, dz); returns their count (0 for a
 * conn other than 6, 18, 26). Shared with the skeleton code. */
int cc_offsets(int conn, int d[26][3]);

#endif
