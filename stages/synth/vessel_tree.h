/* vessel_tree.h: the branching vessel tree of a femoral-head region, its growth after
 * vascularized bone grafting, its exact length and branch count, and its rendering as an
 * MR-angiography-like volume (bright vessels on a dark background).
 *
 * A tree is a set of nodes (3D points, mm, in the volume's own frame: origin at voxel (0,0,0),
 * axes along columns, rows, slices) and edges; each edge is a polyline of points, so vessels
 * curve. Branch count and length are defined on this graph exactly as the vessels stage
 * measures them on a pruned skeleton (DESIGN.md, statistics.md section 6):
 *   branches  = number of edges of the graph whose nodes are the root, the junctions (degree
 *               >= 3) and the end points (degree 1); a chain through degree-2 points is one edge;
 *   length_mm = the sum of the polyline lengths of those edges.
 * Every terminal edge is at least min_branch_mm long, so pruning spurs shorter than that in the
 * vessels stage never removes a true branch. (Measured on a skeleton, a terminal branch comes out
 * shorter than its polyline by about its parent's radius plus its own, so prune at about
 * min_branch_mm - 1 mm.)
 *
 * A tree may hold more than one vessel (a forest): a root is a node that no edge points `to`,
 * and every root has degree 1. The femoral head is fed by several arteries (superior and
 * inferior retinacular branches of the medial circumflex femoral artery), and a graft brings
 * its own; a second vessel is also how an even branch count is made without junctions of
 * degree 4 (a root of degree 1 with junctions of degree 3 gives 1 + 2k edges).
 *
 * Geometry guarantees, which let a skeleton of the rendered volume recover the graph:
 *   - polyline points are at most VESSEL_TREE_STEP_MM apart;
 *   - every point lies at least VESSEL_TREE_MARGIN_MM inside each face of the extent;
 *   - for points p, q of two edges that share no node, |p - q| >= r_p + r_q + VESSEL_TREE_GAP_MM
 *     (+ half a step, so that point-to-segment distances keep the gap too);
 *   - for edges meeting at node c, the same bound times min(1, max(|p-c|, |q-c|) / X) with
 *     X = 2 (r_p + r_q + VESSEL_TREE_GAP_MM): vessels leave a junction at >= 30 degrees apart;
 *   - every edge, terminal or not, is at least min_branch_mm long. */
#ifndef ONFH_SYNTH_VESSEL_TREE_H
#define ONFH_SYNTH_VESSEL_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util/err.h"
#include "lib/util/philox.h"

#define VESSEL_TREE_STEP_MM       0.5 /* spacing of polyline points */
#define VESSEL_TREE_MARGIN_MM     2.0 /* centrelines keep this far from the faces of the extent */
#define VESSEL_TREE_GAP_MM        1.5 /* clearance between the walls of vessels that do not meet */
#define VESSEL_TREE_MIN_RADIUS_MM 0.4 /* thinner vessels fade out at 0.6 mm voxels */

typedef struct VesselPoint {
    double p[3];   /* mm */
    double radius; /* mm */
} VesselPoint;

typedef struct VesselEdge {
    int from;         /* node index (towards the root) */
    int to;           /* node index */
    VesselPoint *pts; /* polyline from node `from` to node `to`, both ends included */
    int n_pts;
} VesselEdge;

typedef struct VesselTree {
    double (*nodes)[3];
    int n_nodes;
    VesselEdge *edges;
    int n_edges;
    double extent[3]; /* the volume it lives in, mm (x, y, z) */
} VesselTree;

typedef struct VesselParams {
    double extent[3];      /* mm, e.g. 40 x 40 x 24 */
    int initial_branches;  /* branch count of the tree before grafting, e.g. 5..9 */
    double min_branch_mm;  /* shortest terminal edge, e.g. 3 */
    double root_radius_mm; /* e.g. 0.8; children thinner (Murray's law) */
} VesselParams;

/* Draws a tree with exactly p->initial_branches branches (edges). t is overwritten (not freed
 * first); on failure it is left empty and freeable. ERR_CONFIG for parameters out of range or a
 * tree that does not fit the extent, ERR_NOMEM. */
int vessel_tree_draw(VesselTree *t, const VesselParams *p, Philox *rng, Err *e);
/* Deep copy. dst is overwritten; on failure it is left empty and freeable. */
int vessel_tree_copy(VesselTree *dst, const VesselTree *src, Err *e);
/* Grows t after grafting: adds exactly add_branches edges (>= 0; sprouts from edge interiors
 * add 2, from existing junctions 1) and new vessel length, so that the total length grows by
 * exactly add_length_mm (>= 0; > 0 whenever add_branches > 0, else the tree's ends extend).
 * An odd count takes one branch from a new vessel entering with the graft (adds 1), or, where
 * none fits, from a sprout at a junction. Growth works on a copy: on any failure t is unchanged.
 * ERR_CONFIG when add_length_mm is below vessel_tree_grow_min_length_mm or the extent has no
 * room left; ERR_NOMEM. */
int vessel_tree_grow(VesselTree *t, int add_branches, double add_length_mm, const VesselParams *p,
                     Philox *rng, Err *e);
/* The least add_length_mm that vessel_tree_grow accepts for add_branches new branches: every new
 * terminal edge is at least min_branch_mm long and each interior sprout adds two branches, so
 * ceil(add_branches / 2) * min_branch_mm. Callers drawing correlated changes clamp to it. */
double vessel_tree_grow_min_length_mm(int add_branches, const VesselParams *p);
void vessel_tree_free(VesselTree *t);

int vessel_tree_branches(const VesselTree *t);
double vessel_tree_length_mm(const VesselTree *t);

/* Renders the tree into a volume of dims[0] x dims[1] x dims[2] voxels (x fastest) with the
 * given voxel size (mm): vessel signal by partial volume of each tube, a dark noisy background
 * and Rician noise at snr, values 0..4095 scaled by `scale`. Noise from Philox keyed by
 * (seed, PHILOX_SYNTH, noise_index). Voxel (i, j, k) is centred at (i, j, k) * voxel_mm in
 * the tree's frame. snr is vessel signal (scale) over the noise sigma; snr <= 0 renders without
 * noise. The background is about 0.12 * scale with a smooth texture of +-25%. Cannot fail: it
 * allocates nothing (voxels doubles as the partial-volume accumulator). */
void vessel_tree_render(const VesselTree *t, const int dims[3], const double voxel_mm[3],
                        double snr, double scale, uint64_t seed, uint64_t noise_index,
                        uint16_t *voxels);

#endif
