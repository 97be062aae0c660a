/* synth_preview.c: synth_preview.png, a montage for a person to judge the cohort's realism.
 *
 *   row 1  the coronal T1 slice through the primary lesion at every visit (up to 5) of the first
 *          patient whose primary hip progresses, whole field of view, lesion outlined in red
 *   row 2  the same slices zoomed on that femoral head (96 mm square), without the outline, so
 *          the band, the growth and the collapse are seen as a reader would
 *   row 3  maximum-intensity projections of the vessel series before and after grafting
 * Tiles are TILE x TILE pixels; rendering is the same code as the DICOM files, so what is seen is
 * what was written. */
#include <math.h>
#include <string.h>

#include "lib/image/png.h"
#include "lib/util/mem.h"
#include "stages/synth/synth_internal.h"
#include "stages/synth/synth_streams.h"

enum { TILE = 256, COLS = 5, ROWS = 3 };

/* Copies the source region [x0, x0+w) x [y0, y0+h) of a grey image (bilinear) into tile (col,
 * row) of the RGB montage; mask pixels on the lesion's edge are painted red. */
static void put_tile(uint8_t *rgb, int col, int row, const uint8_t *grey, const uint8_t *mask,
                     int width, int height, double x0, double y0, double w, double h)
{
    for (int ty = 0; ty < TILE; ty++)
        for (int tx = 0; tx < TILE; tx++) {
            double sx = x0 + (tx + 0.5) * w / TILE - 0.5, sy = y0 + (ty + 0.5) * h / TILE - 0.5;
            int ix = (int)floor(sx), iy = (int)floor(sy);
            double fx = sx - ix, fy = sy - iy, acc = 0;
            for (int k = 0; k < 4; k++) {
                int px = ix + (k & 1), py = iy + (k >> 1);
                px = px < 0 ? 0 : px >= width ? width - 1 : px;
                py = py < 0 ? 0 : py >= height ? height - 1 : py;
                acc += grey[(size_t)py * width + px] * ((k & 1) ? fx : 1 - fx) *
                       ((k >> 1) ? fy : 1 - fy);
            }
            uint8_t *o = rgb + ((size_t)(row * TILE + ty) * COLS * TILE + col * TILE + tx) * 3;
            o[0] = o[1] = o[2] = (uint8_t)(acc + 0.5);
            int mx = (int)(sx + 0.5), my = (int)(sy + 0.5);
            if (mask && mx > 0 && my > 0 && mx < width - 1 && my < height - 1) {
                size_t at = (size_t)my * width + mx;
                int edge = mask[at] &&
                           !(mask[at - 1] && mask[at + 1] && mask[at - width] && mask[at + width]);
                if (edge) {
                    o[0] = 255;
                    o[1] = 40;
                    o[2] = 40;
                }
            }
        }
}

/* 12-bit stored values to 8 bits through a window. */
static void window(const uint16_t *in, uint8_t *out, size_t n, double center, double width)
{
    for (size_t k = 0; k < n; k++) {
        double v = (in[k] - (center - 0.5 * width)) / width * 255.0;
        out[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5);
    }
}

int synth_write_preview(SynthCtx *c, const char *path, Err *e)
{
    const CohortPlan *plan = &c->plan;
    int who = 0;
    for (int i = 0; i < plan->params.patients; i++)
        if (plan->progresses[i][0] && plan->n_visits[i] >= 2) {
            who = i;
            break;
        }
    CohortPatient *pt = mem_alloc(sizeof *pt);
    uint8_t *rgb = mem_calloc((size_t)ROWS * TILE * COLS * TILE * 3, 1);
    uint8_t *grey = NULL;
    VesselTree pre = {0}, post = {0};
    int rc = !pt || !rgb ? err_set(e, ERR_NOMEM, "synth preview: out of memory") : 0;
    if (!rc)
        rc = cohort_patient(plan, who, pt, e);
    int m = c->matrix[0];
    for (int k = 1; k < c->n_matrix; k++)
        m = c->matrix[k] > m ? c->matrix[k] : m;
    size_t cap = (size_t)m * m;
    size_t vcap = (size_t)c->vessel_matrix * c->vessel_matrix;
    if (!rc && !(grey = mem_alloc(cap > vcap ? cap : vcap)))
        rc = err_set(e, ERR_NOMEM, "synth preview: out of memory");
    if (rc)
        goto out;

    const SynthHip *hip = &pt->visits[0].anatomy.hip[pt->primary_hip];
    int best = 0;
    for (int s = 1; s < plan->params.slices; s++)
        if (fabs(cohort_slice_y(pt, 0, s) - hip->lesion.center[1]) <
            fabs(cohort_slice_y(pt, 0, best) - hip->lesion.center[1]))
            best = s;
    for (int v = 0; !rc && v < pt->n_visits && v < COLS; v++) {
        SynthSlice sl;
        SynthScanner sc;
        synth_t1_geometry(c, pt, v, best, &sl, &sc);
        anatomy_render(&pt->visits[v].anatomy, &sl, &sc, c->seed,
                       synth_stream(pt->index, SYNTH_STREAM_T1, v, best), c->pixels, c->mask);
        window(c->pixels, grey, (size_t)sl.rows * sl.columns, 0.5 * sc.scale, sc.scale);
        put_tile(rgb, v, 0, grey, c->mask, sl.columns, sl.rows, 0, 0, sl.columns, sl.rows);
        /* zoom: 96 mm around the head centre, in pixel coordinates of this slice */
        double cx = (hip->head_center[0] - sl.position[0]) / sl.spacing[1];
        double cy = (sl.position[2] - hip->head_center[2]) / sl.spacing[0];
        double half = 48.0 / sl.spacing[1];
        put_tile(rgb, v, 1, grey, NULL, sl.columns, sl.rows, cx - half, cy - half, 2 * half,
                 2 * half);
    }
    if (!rc)
        rc = synth_vessel_trees(c, pt, &pre, &post, e);
    for (int k = 0; !rc && k < 2; k++) {
        int dims[3] = {c->vessel_matrix, c->vessel_matrix, c->vessel_slices};
        double vox[3] = {c->vessel_voxel_mm, c->vessel_voxel_mm, c->vessel_voxel_mm};
        vessel_tree_render(k ? &post : &pre, dims, vox, 1.2 * c->snr, 2000, c->seed,
                           synth_stream(pt->index, SYNTH_STREAM_MRA, 0, 0), c->volume);
        size_t plane = (size_t)dims[0] * dims[1];
        uint16_t *mip = (uint16_t *)c->pixels; /* c->pixels holds at least one T1 slice */
        for (size_t q = 0; q < plane; q++) {
            uint16_t top = 0;
            for (int z = 0; z < dims[2]; z++)
                top = c->volume[z * plane + q] > top ? c->volume[z * plane + q] : top;
            mip[q] = top;
        }
        window(mip, grey, plane, 1000, 2000);
        put_tile(rgb, k, 2, grey, NULL, dims[0], dims[1], 0, 0, dims[0], dims[1]);
    }
    if (!rc)
        rc = png_write_rgb8(path, rgb, COLS * TILE, ROWS * TILE, e);
out:
    vessel_tree_free(&pre);
    vessel_tree_free(&post);
    mem_free(grey);
    mem_free(rgb);
    mem_free(pt);
    return rc;
}
