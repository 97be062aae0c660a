/* measure.c: the per-series chain of measure.h. */
#include "stages/vessels/measure.h"

#include <math.h>
#include <string.h>

#include "lib/image/components.h"
#include "lib/image/thin.h"
#include "lib/image/vesselness.h"
#include "lib/util/mem.h"

int vessel_measure(const float *vol, const int dims[3], const double spacing[3],
                   const VesselMethod *p, VesselResult *r, uint8_t *skeleton, Err *e)
{
    memset(r, 0, sizeof *r);
    size_t n = (size_t)dims[0] * dims[1] * dims[2];
    float *v = mem_alloc((n ? n : 1) * sizeof *v);
    uint8_t *mask = mem_alloc(n ? n : 1), *objects = NULL;
    SkelGraph g = {0};
    int rc = 0;
    if (!v || !mask) {
        rc = err_set(e, ERR_NOMEM, "vessels: out of memory for %dx%dx%d voxels", dims[0], dims[1],
                     dims[2]);
        goto out;
    }
    FrangiParams fp = {p->sigmas_mm, p->n_sigmas, p->alpha, p->beta, p->c};
    rc = dims[2] > 1 ? frangi_3d(vol, dims, spacing, &fp, v, NULL, e)
                     : frangi_2d(vol, dims, spacing, &fp, v, NULL, e);
    if (rc)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (v[i] > r->vesselness_max)
            r->vesselness_max = v[i];
    double voxel_mm3 = spacing[0] * spacing[1] * (dims[2] > 1 ? spacing[2] : 1.0);
    int64_t min_voxels = (int64_t)ceil(p->min_object_mm3 / voxel_mm3);
    r->components =
        hysteresis_threshold(v, dims, (float)p->threshold_low, (float)p->threshold_high, 26, mask);
    r->removed_objects = r->components < 0 ? -1 : remove_small_objects(mask, dims, 26, min_voxels);
    for (size_t i = 0; r->removed_objects >= 0 && i < n; i++)
        r->mask_voxels += mask[i];
    if (r->components >= 0 && r->removed_objects >= 0 && !(objects = mem_alloc(n ? n : 1)))
        r->components = -1;
    else if (objects)
        memcpy(objects, mask, n);
    if (r->components < 0 || r->removed_objects < 0 ||
        (dims[2] > 1 ? thin_3d(mask, dims) : thin_2d(mask, dims))) {
        rc = err_set(e, ERR_NOMEM, "vessels: out of memory");
        goto out;
    }
    r->components -= r->removed_objects;
    if ((rc = skel_graph_build(&g, mask, dims, spacing, e)))
        goto out;
    skel_graph_prune(&g, p->prune_mm);
    skel_graph_measures(&g, &r->m);
    r->end_extension_mm = skel_graph_end_extension(&g, objects, p->end_extension_max_mm, NULL);
    r->junction_correction_mm =
        skel_graph_junction_correction(&g, p->junction_line_mm, p->junction_shift_max_mm, NULL);
    r->m.length_mm += r->end_extension_mm + r->junction_correction_mm;
    r->m.mean_branch_mm = r->m.branches ? r->m.length_mm / r->m.branches : 0.0;
    uint8_t *paint = skeleton ? skeleton : mask;
    memset(paint, 0, n);
    r->skeleton_voxels = skel_graph_paint(&g, paint, 1, 2);
out:
    skel_graph_free(&g);
    mem_free(v), mem_free(mask), mem_free(objects);
    return rc;
}
