/* measure.h: one vessel series -> its skeleton and measures, the composition of lib/image's
 * parts that the vessels stage runs per series (and the accuracy test runs on synthetic trees):
 *
 *   volume (nz, ny, nx) float, spacing (x, y, z) mm
 *     -> Frangi vesselness, max over scales (vesselness.h)
 *     -> hysteresis threshold on it, 26-connected (components.h)
 *     -> components under min_object_mm3 removed
 *     -> Lee thinning (3D; Zhang-Suen for a single slice) (thin.h)
 *     -> skeleton graph, spurs under prune_mm pruned, measures (skelgraph.h)
 *     -> the length corrected where thinning moves a skeleton's ends: end points continued to
 *        the vessel's end, junctions moved to where the branches' lines meet (skelgraph.h). */
#ifndef ONFH_VESSELS_MEASURE_H
#define ONFH_VESSELS_MEASURE_H

#include <stdint.h>

#include "lib/image/skelgraph.h"
#include "lib/util/err.h"

enum { VESSEL_MAX_SIGMAS = 16 };

typedef struct VesselMethod {
    double sigmas_mm[VESSEL_MAX_SIGMAS];
    int n_sigmas;
    double alpha, beta, c;                /* Frangi's parameters (vesselness.h) */
    double threshold_low, threshold_high; /* hysteresis on the vesselness, 0..1 */
    double min_object_mm3;                /* smaller mask components are dropped */
    double prune_mm;                      /* spurs shorter than this are pruned */
    double end_extension_max_mm;          /* end points continue to the mask's edge, <= this */
    double junction_line_mm[2];           /* stretch of each branch whose line meets the others */
    double junction_shift_max_mm;         /* junctions move to where the lines meet, <= this */
} VesselMethod;

typedef struct VesselResult {
    SkelMeasures m;
    int components;      /* mask components kept */
    int removed_objects; /* mask components under min_object_mm3 */
    int64_t mask_voxels;
    int64_t skeleton_voxels; /* after pruning */
    double vesselness_max;
    double end_extension_mm;       /* included in m.length_mm */
    double junction_correction_mm; /* included in m.length_mm; either sign */
} VesselResult;

/* vol: dims[0] x dims[1] x dims[2] (nz = 1: a 2D image). skeleton (may be NULL; same size, zeroed
 * here): the pruned skeleton, 1 on branches, 2 on nodes. ERR_CONFIG for bad geometry, ERR_NOMEM. */
int vessel_measure(const float *vol, const int dims[3], const double spacing[3],
                   const VesselMethod *p, VesselResult *r, uint8_t *skeleton, Err *e);

#endif
