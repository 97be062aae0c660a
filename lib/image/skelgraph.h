/* skelgraph.h: the graph of a one-voxel-wide skeleton, its spur pruning and its measures
 * (vessel length and branch count), with Skan's definitions (Nunez-Iglesias et al., PeerJ
 * 2018;6:e4312) as the reference.
 *
 * Definitions (statistics.md section 6; data-schema/vessels.md repeats them):
 *   - voxels are 26-connected (8-connected in a 2D image, nz = 1); a skeleton voxel's degree is
 *     its number of skeleton neighbours;
 *   - nodes: each end point (degree 1) is a node; junction voxels (degree >= 3) that touch each
 *     other form one junction cluster, one node, placed at the cluster's centroid (Skan before
 *     v0.10 and Fiji's AnalyzeSkeleton collapse clusters the same way); lone voxels (degree 0)
 *     are nodes without branches and measure nothing;
 *   - branches: the chains of degree-2 voxels between two node voxels (or two adjacent node
 *     voxels of different nodes), and closed chains of degree-2 voxels (isolated cycles);
 *   - a branch's path length (Skan's branch-distance) is the length of the polyline node
 *     centroid -> its voxels -> node centroid, each step in mm (spacing-aware:
 *     sqrt(sum (d_a spacing_a)^2)); its length, the vessel length, is that of the same polyline
 *     smoothed by a moving average of SKEL_SMOOTH points either side (shrinking at the ends,
 *     which stay fixed): a digital path zig-zags, and on an oblique straight line the raw path
 *     is up to 8% longer than the line;
 *   - branch types as Skan's: 0 end-end, 1 junction-end, 2 junction-junction, 3 isolated cycle.
 * Pruning (one pass): branches of type 0 or 1 shorter than the spur length, and loops from a
 * node to itself shorter than it, are removed; then every node left with two branch ends joins
 * them into one branch (a node of degree 2 is no junction), and a node left with one becomes an
 * end. Measures count what remains: branches, their total and mean length, junctions (nodes of
 * degree >= 3) and end points (degree 1). One pass, not repeated: repeating would eat true
 * terminal branches that pruning has just exposed.
 * Thinning moves a skeleton's ends: it stops short of a vessel's end and pushes an acute
 * junction out to where the vessels part. Two corrections of the length, kept apart from the
 * branch lengths above (which the Skan comparison checks), put them back: the end-point
 * extension and the junction correction (below). */
#ifndef ONFH_IMAGE_SKELGRAPH_H
#define ONFH_IMAGE_SKELGRAPH_H

#include <stdint.h>

#include "lib/util/err.h"

enum { SKEL_END_END, SKEL_JUNCTION_END, SKEL_JUNCTION_JUNCTION, SKEL_CYCLE };

#define SKEL_SMOOTH 2 /* half-width of the moving average of branch lengths, points */

typedef struct SkelNode {
    double pos_mm[3]; /* centroid of its voxels, mm from voxel (0, 0, 0) */
    int64_t first;    /* its voxels: SkelGraph.node_voxels[first .. first + n_voxels) */
    int n_voxels;
    int junction; /* made of voxels of degree >= 3 */
    int degree;   /* branch ends at it now (a loop counts 2) */
} SkelNode;

typedef struct SkelBranch {
    int node[2];      /* end nodes; -1, -1 for an isolated cycle */
    int traced[2];    /* the end nodes as traced (joining moves node[], not these) */
    int type;         /* SKEL_*, from the end nodes' degrees */
    int alive;        /* 0: pruned, or joined into another branch */
    int joined_into;  /* the branch that absorbed it, or -1 */
    double length_mm; /* smoothed length; of a joined branch, the sum of its parts' */
    double path_mm;   /* voxel path length (Skan's branch-distance), likewise */
    int64_t first;    /* its degree-2 voxels: SkelGraph.path[first .. first + n_voxels) */
    int64_t n_voxels;
} SkelBranch;

typedef struct SkelGraph {
    int dims[3];
    double spacing[3];
    SkelNode *nodes;
    int n_nodes;
    SkelBranch *branches;
    int n_branches, cap_branches;
    int64_t *path; /* linear voxel indices of branch interiors, branch by branch */
    int64_t n_path;
    int64_t *node_voxels;
} SkelGraph;

typedef struct SkelMeasures {
    int branches;     /* alive branches */
    double length_mm; /* their total (smoothed) length */
    double path_mm;   /* their total voxel path length */
    double mean_branch_mm;
    int junctions;  /* nodes of degree >= 3 */
    int end_points; /* nodes of degree 1 */
    int by_type[4]; /* alive branches of each SKEL_* type */
    int pruned;     /* branches removed by pruning */
} SkelMeasures;

/* skel: dims[0] x dims[1] x dims[2] voxels (x fastest), non-zero = skeleton; spacing in mm
 * (x, y, z). g is overwritten; on failure it is left freeable. ERR_NOMEM. */
int skel_graph_build(SkelGraph *g, const uint8_t *skel, const int dims[3], const double spacing[3],
                     Err *e);
/* Prunes spurs shorter than min_spur_mm (0: none) and joins degree-2 nodes (see above). */
void skel_graph_prune(SkelGraph *g, double min_spur_mm);
void skel_graph_measures(const SkelGraph *g, SkelMeasures *m);
/* The end-point extension: thinning stops a skeleton short of the end of the object it thins,
 * so at each end point (node of degree 1) the branch is continued along its end direction (end
 * node minus the centroid of the SKEL_SMOOTH + 1 voxels before it) through mask, by steps of a
 * tenth of the smallest spacing, to where the nearest voxel leaves the mask (at most max_mm).
 * Returns the sum over end points (mm); ext (may be NULL; n_nodes entries) gets each node's. */
double skel_graph_end_extension(const SkelGraph *g, const uint8_t *mask, double max_mm,
                                double *ext);

/* The junction correction: where vessels leave a junction at an acute angle their masks merge
 * over a stretch, and thinning puts the junction where they part, out along the bisector; the
 * branch on the other side gains that shift d and each acute one loses nearly as much (children
 * 2a apart: the total changes by d (1 - 2 cos a), -0.73 d at a = 30 degrees, nothing at a
 * 120-degree Y, whose junction is the length's minimum). So at each node of degree >= 3, every
 * branch that ends there and is long enough gives a line: through its voxels from line_mm[0] to
 * line_mm[1] mm of path out (their centroid; the direction from the centroid of the stretch's
 * nearer half to that of its farther half). The point nearest to all the lines (least squares)
 * is where the vessels meet; when at least two lines define it and it lies within max_shift_mm
 * of the node, each of those branches is taken to run straight from it to its stretch's first
 * voxel q instead of from the node: the node's correction is the sum of |x - q| - |node - q|.
 * Returns the sum over junctions (mm, either sign); corr (may be NULL; n_nodes entries) gets
 * each node's. */
double skel_graph_junction_correction(const SkelGraph *g, const double line_mm[2],
                                      double max_shift_mm, double *corr);

/* Paints the voxels of what remains into img (same dims, zeroed by the caller): branch voxels
 * `branch_value`, voxels of nodes with branches `node_value`. Returns the voxels painted. */
int64_t skel_graph_paint(const SkelGraph *g, uint8_t *img, uint8_t branch_value,
                         uint8_t node_value);
void skel_graph_free(SkelGraph *g);

#endif
